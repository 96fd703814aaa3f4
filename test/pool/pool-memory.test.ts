// Bounded look-ahead on endless sources; large binary values through shared memory, and nothing left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn as spawnProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { libraryUrl } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { listRecords } from '../../src/resources/registry.js';
import { readStatuses } from '../../src/resources/status.js';
import { unlinkQuietly } from '../../src/pool/shm-args.js';
import { trackersOf } from '../resources/helpers.js';
import { makePool, shmOf, tasks, until, within } from './helpers.js';

leakGuard();

test('imap over an endless generator pulls only a bounded window ahead', async () => {
  await using pool = makePool({ size: 2 });
  let pulled = 0;
  let finished = false;
  function* endless(): Generator<number> {
    try {
      for (let i = 0; ; i++) {
        pulled++;
        yield i;
      }
    } finally {
      finished = true;
    }
  }
  const window = 3;
  const chunkSize = 4;
  let got = 0;
  for await (const v of pool.imap<number>('square', endless(), { window, chunkSize })) {
    assert.equal(v, got * got);
    got++;
    // Everything pulled is either consumed or in at most `window` chunks (plus the one being filled).
    assert.ok(pulled <= got + (window + 1) * chunkSize, `pulled ${pulled} items for ${got} results`);
    if (got === 60) break;
  }
  assert.ok(finished, 'leaving the loop closed the source');
  let pulledU = 0;
  async function* endlessAsync(): AsyncGenerator<number> {
    for (let i = 0; ; i++) {
      pulledU++;
      yield i;
    }
  }
  let gotU = 0;
  for await (const _ of pool.imapUnordered('square', endlessAsync(), { window: 2 })) {
    gotU++;
    assert.ok(pulledU <= gotU + 3, `unordered: pulled ${pulledU} items for ${gotU} results`);
    if (gotU === 30) break;
  }
  assert.ok(await until(() => pool.stats().running === 0, 10000), 'the cancelled chunks stopped');
});

test('a 1 MiB Float64Array goes through shared memory both ways; nothing is left in /dev/shm', async () => {
  await using pool = makePool();
  const big = new Float64Array(131072);
  for (let i = 0; i < big.length; i++) big[i] = i * 0.5;
  const r = await within(pool.run('doubleAll', [big]), 30000, 'doubleAll');
  assert.equal(r.shared, true, 'the worker saw a view of shared memory, not a copy from the pipe');
  assert.equal(r.length, big.length);
  assert.ok(r.out instanceof Float64Array && !(r.out.buffer instanceof SharedArrayBuffer), 'the result is ordinary memory');
  for (let i = 0; i < big.length; i += 997) assert.equal(r.out[i], i);
  assert.equal(big[10], 5, 'the argument was not changed');
  // Under the threshold it is an ordinary copy; `transfer` forces shared memory.
  const small = new Float64Array(16).fill(2);
  assert.equal((await pool.run('doubleAll', [small])).shared, false);
  assert.equal((await pool.run('doubleAll', [small], { transfer: [small] })).shared, true);
  // Buffers and nested values too.
  const buf = Buffer.alloc(200_000, 7);
  assert.deepEqual(await pool.run('inspect', [{ data: buf }]), { buffer: true, shared: true, length: 200_000, first: 7 });
  const back = await pool.run('makeBuffer', [300_000, 9]);
  assert.ok(Buffer.isBuffer(back) && back.length === 300_000 && back[299_999] === 9);
  assert.deepEqual(shmOf(pool), [], 'no segment left after the tasks');
  await pool.close();
  assert.deepEqual(shmOf(pool), [], 'no ring left after close');
});

test('a worker killed while it holds a big argument leaves no segment behind', async () => {
  await using pool = makePool();
  const pid = (await pool.run('pid')) as number;
  assert.deepEqual(shmOf(pool), [], 'the ring names are removed once the worker is ready');
  const big = new Float64Array(1 << 17).fill(1);
  const task = pool.run('hang', [big]);
  // (Tasks are dispatched a microtask after run(), together with those submitted alongside.)
  assert.ok(await until(() => shmOf(pool).length === 1, 10000), 'the argument segment exists while the task runs');
  await new Promise((r) => setTimeout(r, 100));
  process.kill(pid, 'SIGKILL');
  await assert.rejects(within(task, 10000, 'task'), { code: 'ERR_MULTIPROC_WORKER_EXITED' });
  assert.deepEqual(shmOf(pool), []);
});

test('a large result still unread when the pool process is SIGKILLed is removed by its tree\'s tracker', async () => {
  // A root of its own tree, with a tracker: the pool sends a task whose 1 MiB result goes through a
  // segment, then keeps its event loop busy so that the reply stays unread.
  const env: NodeJS.ProcessEnv = { ...process.env, MULTIPROC_TRACKER: '1', MULTIPROC_TEST_CHILD: '1' };
  delete env.MULTIPROC_TREE;
  delete env.MULTIPROC_TRACKED_TREE;
  const source = `import { Pool } from '${libraryUrl}';
    const pool = new Pool({ module: ${JSON.stringify(tasks)}, size: 1 });
    await pool.run('pid');
    void pool.run('makeBuffer', [1 << 20, 7]);
    await Promise.resolve();
    await Promise.resolve();
    console.log('sent ' + pool.namePrefix);
    const end = Date.now() + 60000;
    while (Date.now() < end);`;
  const root = spawnProcess(process.execPath, ['--input-type=module', '-e', source], { detached: true, env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  root.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  let prefix: string | undefined;
  const segments = (): string[] => (prefix === undefined ? [] : readdirSync('/dev/shm').filter((n) => n.startsWith(prefix!) && n.endsWith('-r')));
  try {
    assert.ok(await until(() => /sent (\S+)/.test(out), 30000), `the pool sent its task; stdout: ${out}`);
    prefix = /sent (\S+)/.exec(out)![1]!;
    // The worker wrote the result and handed its segment on (the record changes) before replying.
    const handedOn = (): boolean => listRecords().some((r) => r.record.name.startsWith(`/${prefix}`) && r.record.name.endsWith('-r') && (r.record.pid === root.pid || !r.record.owned));
    assert.ok(await until(handedOn, 30000), 'the worker replied with a result segment');
    assert.equal(segments().length, 1);
    root.kill('SIGKILL');
    await once(root, 'exit');
    // The tracker sweeps the tree once the root is dead (again every second while its workers live).
    assert.ok(await until(() => segments().length === 0, 15000), `left in /dev/shm: ${segments().join(', ')}`);
    // The tracker removes the record right after the segment: wait for it too.
    const recordsLeft = (): string[] => listRecords().filter((r) => r.record.name.startsWith(`/${prefix}`)).map((r) => r.file);
    await until(() => recordsLeft().length === 0, 15000);
    assert.deepEqual(recordsLeft(), [], 'no record left');
    assert.ok(await until(() => trackersOf(root.pid!).length === 0, 15000), 'the tracker exits');
  } finally {
    if (root.exitCode === null && root.signalCode === null) root.kill('SIGKILL');
    for (const n of segments()) unlinkQuietly(n);
    // The status file of the killed pool (`multiproc top` would remove it too).
    readStatuses();
  }
});
