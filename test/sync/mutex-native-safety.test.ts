// Misuse and races around held mutexes must never crash the process. Each
// scenario runs in a child process, so that a crash shows as a signal exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { libraryUrl, runChild } from '../helpers/child.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const tmp = tempDir('mutex-safety');

test('closing a segment or map while a worker holds a mutex inside is ERR_MULTIPROC_BUSY, and works once it is released', async () => {
  const r = await runChild(`
    import { Worker } from 'node:worker_threads';
    import { once } from 'node:events';
    import { SharedMemory, MemoryMap } from 'multiproc';
    const [url, name, file] = process.argv.slice(1);
    const shm = SharedMemory.create(name, 4096);
    const map = MemoryMap.create(file, 4096);
    // The worker (an ES module, as this child is) locks a mutex in each,
    // then releases both on request.
    const worker = new Worker(\`
      import { parentPort, workerData } from 'node:worker_threads';
      const { Mutex } = await import(workerData.url);
      const guards = [new Mutex(workerData.a, 0).acquireSync(), new Mutex(workerData.b, 64).acquireSync()];
      parentPort.postMessage('held');
      parentPort.once('message', () => {
        for (const g of guards) g.release();
        parentPort.postMessage('released');
      });
    \`, { eval: true, workerData: { url, a: shm.buffer, b: map.buffer } });
    const [held] = await once(worker, 'message');
    if (held !== 'held') process.exit(2);
    for (const [what, handle] of [['shm', shm], ['map', map]]) {
      try {
        handle.close();
        console.log(what + ' closed');
      } catch (e) {
        console.log(what + ' ' + e.name + ' ' + e.code + ' closed=' + handle.closed);
      }
    }
    worker.postMessage('go');
    await once(worker, 'message');
    shm.close();
    map.close();
    console.log('closed after release: ' + shm.closed + ' ' + map.closed);
    await once(worker, 'exit');
    console.log('worker exited');
  `, { args: [libraryUrl, uniqueName('wclose'), tmp.file('wclose')], timeout: 30000 });
  assert.equal(r.signal, null, `crashed: ${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /shm BusyError ERR_MULTIPROC_BUSY closed=false/);
  assert.match(r.stdout, /map BusyError ERR_MULTIPROC_BUSY closed=false/);
  assert.match(r.stdout, /closed after release: true true/);
  assert.match(r.stdout, /worker exited/);
});
