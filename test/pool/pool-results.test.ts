// Pool results: run, map, starmap, imap, imapUnordered; order; errors from tasks; argument checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool } from '../../src/pool/pool.js';
import { taskContext } from '../../src/pool/context.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { makePool, tasks, within } from './helpers.js';

leakGuard();

const LONG = 30000;

test('run, map, starmap, imap and imapUnordered give the right results', async () => {
  await using pool = makePool({ size: 2 });
  assert.equal(await within(pool.run('square', [7]), LONG, 'run'), 49);
  assert.equal(await pool.run('add', [2, 3]), 5);
  const items = Array.from({ length: 40 }, (_, i) => i);
  assert.deepEqual(await pool.map('square', items), items.map((i) => i * i));
  assert.deepEqual(await pool.map('square', items, { chunkSize: 7 }), items.map((i) => i * i));
  assert.deepEqual(await pool.starmap('add', items.map((i) => [i, 1])), items.map((i) => i + 1));
  const seen: number[] = [];
  for await (const v of pool.imap('square', items, { chunkSize: 3 })) seen.push(v);
  assert.deepEqual(seen, items.map((i) => i * i));
  const unordered: number[] = [];
  for await (const v of pool.imapUnordered('square', items)) unordered.push(v);
  assert.deepEqual(unordered.sort((a, b) => a - b), items.map((i) => i * i));
  // An async source works as well.
  async function* gen() {
    for (const i of items.slice(0, 5)) yield i;
  }
  assert.deepEqual(await pool.map('square', gen()), [0, 1, 4, 9, 16]);
  const s = pool.stats();
  assert.equal(s.failed, 0);
  assert.ok(s.completed > 0 && s.runTime.count === s.completed, 'every completed task has a run time');
  assert.ok(s.waitTime.p50 >= 0 && s.runTime.p99 >= s.runTime.p50);
});

test('ordered results keep input order; unordered ones come as they complete', async () => {
  await using pool = makePool({ size: 2 });
  // Warm both workers up so that neither waits for a start.
  await Promise.all([pool.run('slowSquare', [0, 50]), pool.run('slowSquare', [0, 50])]);
  const items: [number, number][] = [[1, 1500], [2, 10], [3, 10]];
  const unordered: number[] = [];
  for await (const v of pool.imapUnordered('slowSquare', items.map(([x]) => x), { chunkSize: 1 })) unordered.push(v);
  assert.deepEqual(unordered.sort(), [1, 4, 9]);
  const order = await pool.starmap('slowSquare', items, { chunkSize: 1, ordered: false });
  assert.deepEqual(order.slice(0, 2).sort(), [4, 9], 'the slow first item comes last');
  assert.equal(order[2], 1);
  assert.deepEqual(await pool.starmap('slowSquare', items, { chunkSize: 1 }), [1, 4, 9]);
});

test('a task that throws rejects with its error; the worker stays', async () => {
  await using pool = makePool();
  const pid = await pool.run('pid');
  await assert.rejects(pool.run('fail', ['bad input']), (err: any) => err instanceof RangeError && (err as any).code === 'E_TASK' && err.message === 'bad input');
  await assert.rejects(pool.run('noSuchTask'), { code: 'ERR_MULTIPROC_NO_SUCH_METHOD' });
  await assert.rejects(pool.map('fail', ['x', 'y']), { code: 'E_TASK' });
  await assert.rejects(pool.run('square', [() => 1]), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(pool.run('unclonable'), { code: 'ERR_INVALID_RETURN_VALUE' });
  const ctx = await pool.run('contextLater');
  assert.equal(ctx.name, 'contextLater');
  assert.ok(Number.isInteger(ctx.id) && ctx.id > 0);
  assert.equal(ctx.later, 'ERR_INVALID_STATE');
  assert.throws(() => taskContext(), { code: 'ERR_INVALID_STATE' });
  assert.equal(await pool.run('pid'), pid, 'the same worker served on');
  assert.equal(pool.stats().workerExits, 0);
});

test('bad arguments throw TypeError / RangeError with codes', async () => {
  assert.throws(() => new Pool(undefined as any), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new Pool({} as any), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new Pool({ module: '' }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => new Pool({ module: tasks, size: 0 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => new Pool({ module: tasks, size: 1.5 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => new Pool({ module: tasks, retries: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => new Pool({ module: tasks, taskTimeout: -5 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => new Pool({ module: tasks, transport: 'carrier-pigeon' as any }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => new Pool({ module: tasks, sizee: 2 } as any), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => new Pool({ module: tasks, permissions: { addons: false } }), { code: 'ERR_INVALID_ARG_VALUE' });
  // Permissions are checked as spawn() checks them: a string is not a list of paths (its
  // characters would be, and '/' opens the whole file system), a misspelt field is refused now.
  assert.throws(() => new Pool({ module: tasks, permissions: { fsRead: '/tmp' as any } }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new Pool({ module: tasks, permissions: { fsRead: 5 as any } }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new Pool({ module: tasks, permissions: { fsRead: [''] } }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => new Pool({ module: tasks, permissions: { fsWrite: '/tmp' as any } }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new Pool({ module: tasks, permissions: { fsread: ['/tmp'] } as any }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => new Pool({ module: tasks, permissions: { childProcess: 1 } as any }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new Pool({ module: tasks, permissions: [] as any }), { code: 'ERR_INVALID_ARG_TYPE' });
  const pool = makePool();
  try {
    await assert.rejects(pool.run(42 as any), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    await assert.rejects(pool.run('', []), { code: 'ERR_INVALID_ARG_VALUE' });
    await assert.rejects(pool.run('square', 3 as any), { code: 'ERR_INVALID_ARG_TYPE' });
    await assert.rejects(pool.run('square', [1], { timeout: -1 }), { code: 'ERR_OUT_OF_RANGE' });
    await assert.rejects(pool.run('square', [1], { signal: {} as any }), { code: 'ERR_INVALID_ARG_TYPE' });
    await assert.rejects(pool.run('square', [1], { transfer: [1] as any }), { code: 'ERR_INVALID_ARG_TYPE' });
    await assert.rejects(pool.run('square', [1], { bogus: 1 } as any), { code: 'ERR_INVALID_ARG_VALUE' });
    await assert.rejects(pool.map('square', 5 as any), { code: 'ERR_INVALID_ARG_TYPE' });
    await assert.rejects(pool.map('square', [1], { chunkSize: 0 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => pool.imap('square', [1], { window: 0 }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => pool.imapUnordered('square', [1], { ordered: true } as any), { code: 'ERR_INVALID_ARG_VALUE' });
    await assert.rejects(pool.starmap('add', [[1, 2], 3 as any]), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.equal(pool.stats().workers <= 1, true);
  } finally {
    await pool.destroy();
  }
});

test('the stream transport gives the same results and the same failure handling', async () => {
  await using pool = makePool({ transport: 'stream' });
  assert.equal(await within(pool.run('add', [20, 22]), 30000, 'run'), 42);
  assert.deepEqual(await pool.starmap('add', [[1, 1], [2, 2]]), [2, 4]);
  const big = new Float64Array(100_000).fill(3);
  const r = await pool.run('doubleAll', [big]);
  assert.equal(r.shared, true);
  assert.equal(r.out[99_999], 6);
  const pid = await pool.run('pid');
  const task = pool.run('hang');
  await new Promise((res) => setTimeout(res, 100));
  process.kill(pid, 'SIGKILL');
  await assert.rejects(within(task, 10000, 'hang'), { code: 'ERR_MULTIPROC_WORKER_EXITED', reason: 'killed' });
  assert.equal(await pool.run('square', [5]), 25);
});
