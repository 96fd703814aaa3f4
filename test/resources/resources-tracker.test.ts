import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn as spawnProcess, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { SharedMemory } from '../../src/index.js';
import { libraryUrl } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { tempDir } from '../helpers/temp-files.js';
import { eventually, leftOfAll, trackersOf } from './helpers.js';

leakGuard();
const tmp = tempDir('trk');

/** A plain detached Node process (not started by spawn()) running `source`; resolves once it prints 'ready'. */
async function startRoot(source: string, tracker: '0' | '1'): Promise<ChildProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env, MULTIPROC_TRACKER: tracker, MULTIPROC_TEST_CHILD: '1' };
  delete env.MULTIPROC_TREE;
  delete env.MULTIPROC_TRACKED_TREE;
  const root = spawnProcess(process.execPath, ['--input-type=module', '-e', source.replace(/from\s+'multiproc'/g, `from '${libraryUrl}'`)], {
    detached: true,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  root.stdout!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`root not ready: ${out}`)), 30000);
    root.stdout!.on('data', (d: string) => {
      out += d;
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    root.once('exit', (code) => reject(new Error(`root exited with ${code}: ${out}`)));
  });
  return root;
}

test('the tracker sweeps what a SIGKILLed root left, then exits', async () => {
  const base = uniqueName('trk');
  const fifo = tmp.file('fifo');
  const sock = tmp.file('sock');
  const root = await startRoot(
    `import { MessageQueue, NamedPipe, SharedMemory, Socket } from 'multiproc';
     const keep = [SharedMemory.create('${base}-shm', 4096), NamedPipe.create('${fifo}'),
       MessageQueue.create('${base}-pq', { backend: 'posix' }), MessageQueue.create('${base}-sq', { backend: 'sysv' }),
       await Socket.listen({ path: '${sock}' })];
     console.log('ready');
     setInterval(() => {}, 60000);`,
    '1',
  );
  const pid = root.pid!;
  try {
    assert.equal(leftOfAll(base, fifo, sock).length, 7, 'the root made its objects and their records');
    assert.equal(trackersOf(pid).length, 1, 'one tracker watches the tree');
    root.kill('SIGKILL');
    await once(root, 'exit');
    assert.ok(await eventually(() => leftOfAll(base, fifo, sock).length === 0), `left: ${leftOfAll(base, fifo, sock).join(', ')}`);
    assert.ok(await eventually(() => trackersOf(pid).length === 0), 'the tracker exits after its sweep');
  } finally {
    if (root.exitCode === null && root.signalCode === null) root.kill('SIGKILL');
  }
});

test('MULTIPROC_TRACKER=0 starts no tracker', async () => {
  const name = uniqueName('notrk');
  const root = await startRoot(`import { SharedMemory } from 'multiproc'; SharedMemory.create('${name}', 4096); console.log('ready'); setInterval(() => {}, 60000);`, '0');
  try {
    assert.deepEqual(trackersOf(root.pid!), []);
  } finally {
    root.kill('SIGKILL');
    await once(root, 'exit');
    // Nobody sweeps for it: remove it by hand, which drops its record too.
    const shm = SharedMemory.open(name);
    shm.unlink();
    shm.close();
  }
});
