import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SharedMemory, maxBufferSize } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

function python(code: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('python3', ['-c', code, ...args], { encoding: 'utf8', timeout: 30000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const hasPython = spawnSync('python3', ['-c', 'import multiprocessing.shared_memory'], { timeout: 30000 }).status === 0;

test('Python attaches to a segment Node wrote, and Node reads what Python wrote', { skip: hasPython ? false : 'python3 with multiprocessing.shared_memory is not installed' }, () => {
  const name = uniqueName('py');
  using shm = SharedMemory.create(name, 4096);
  const bytes = new Uint8Array(shm.buffer);
  bytes.set(Buffer.from('hello from node'), 0);
  const r = python(`
import sys
from multiprocessing import shared_memory, resource_tracker
shm = shared_memory.SharedMemory(name=sys.argv[1])
# Python's resource tracker would unlink a segment it did not create; Node owns this one.
resource_tracker.unregister(shm._name, "shared_memory")
print(bytes(shm.buf[0:15]).decode())
shm.buf[100:117] = b"hello from python"
shm.close()
`, name);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'hello from node');
  assert.equal(Buffer.from(bytes.subarray(100, 117)).toString(), 'hello from python');
});

test('Node opens a segment Python created', { skip: hasPython ? false : 'python3 is not installed' }, () => {
  const name = uniqueName('pyc');
  // Python creates and fills the segment, then leaves it for Node (which unlinks it).
  const r = python(`
import sys
from multiprocessing import shared_memory, resource_tracker
shm = shared_memory.SharedMemory(name=sys.argv[1], create=True, size=4096)
resource_tracker.unregister(shm._name, "shared_memory")
shm.buf[0:6] = b"py->js"
shm.close()
`, name);
  assert.equal(r.status, 0, r.stderr);
  const shm = SharedMemory.open(name);
  try {
    assert.equal(shm.size >= 4096, true);
    assert.equal(Buffer.from(new Uint8Array(shm.buffer, 0, 6)).toString(), 'py->js');
  } finally {
    shm.unlink();
    shm.close();
  }
});

test('a worker thread that receives the buffer shares the same memory', async () => {
  const name = uniqueName('worker');
  using shm = SharedMemory.create(name, 4096);
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const v = new Int32Array(workerData);
    Atomics.add(v, 0, 41);
    parentPort.postMessage(Atomics.load(v, 1));
  `, { eval: true, workerData: shm.buffer });
  new Int32Array(shm.buffer)[1] = 99;
  const [seen] = await once(worker, 'message');
  await once(worker, 'exit');
  assert.equal(seen, 99);
  assert.equal(new Int32Array(shm.buffer)[0], 41);
});

test('segments larger than one buffer are reached through windows', { skip: maxBufferSize > 2 ** 33 ? 'this engine holds buffers larger than the test segment' : false }, () => {
  const name = uniqueName('big');
  const size = maxBufferSize + 64 * 1024 * 1024; // sparse: only touched pages use memory
  using shm = SharedMemory.create(name, size);
  assert.throws(() => shm.buffer, (e: any) => e.code === 'ERR_OUT_OF_RANGE' && /view\(offset, length\)/.test(e.message));
  const far = maxBufferSize + 4096 + 3; // beyond the first 4 GiB, not page aligned
  const w = shm.view(far, 16);
  w.set([1, 2, 3, 4]);
  using other = SharedMemory.open(name);
  const r = other.view(far - 2, 8);
  assert.deepEqual([...r.subarray(0, 6)], [0, 0, 1, 2, 3, 4]);
  const low = shm.view(10, 4);
  low[0] = 77;
  assert.equal(other.view(10, 1)[0], 77);
  assert.throws(() => shm.view(size - 1, 2), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
});

test('windows of views nobody holds any more are unmapped when collected, not kept until close', { skip: maxBufferSize > 2 ** 33 ? 'this engine holds buffers larger than the test segment' : false }, async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const maps = (): number => readFileSync('/proc/self/maps', 'latin1').split('\n').length;
  using shm = SharedMemory.create(uniqueName('windows'), maxBufferSize + 8192);
  const before = maps();
  // A WeakRef keeps its target until the job that made it ends: collect between turns.
  const collect = async (): Promise<void> => {
    await new Promise((r) => setImmediate(r));
    gc();
  };
  for (let i = 0; i < 3000; i++) {
    shm.view(maxBufferSize, 16)[0] = 1;
    if (i % 500 === 499) await collect();
  }
  await collect();
  // Each window is a mapping of its own: 3000 kept would show here.
  assert.ok(maps() - before < 1000, `${maps() - before} more mappings after 3000 dropped views`);
  const kept = shm.view(maxBufferSize, 16);
  await collect();
  kept[0] = 2;
  assert.equal(shm.view(maxBufferSize, 1)[0], 2, 'a view in use keeps its window');
});
