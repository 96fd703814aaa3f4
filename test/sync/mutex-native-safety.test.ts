// Misuse and races around held mutexes must never crash the process. Each
// scenario runs in a child process, so that a crash shows as a signal exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Mutex } from '../../src/index.js';
import { Child, libraryUrl, runChild } from '../helpers/child.js';
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

test("foreign writes over a held mutex's list links (an overlapping placement, stray bytes) neither crash its release nor cost the thread its robustness", async () => {
  const name = uniqueName('links');
  using named = Mutex.create(name);
  const holder = new Child(`
    import { Mutex, Semaphore } from 'multiproc';
    const sab = new SharedArrayBuffer(512);
    const bytes = new DataView(sab);
    // A Semaphore placed over the second half of a held mutex.
    const g0 = new Mutex(sab, 0).acquireSync();
    new Semaphore(sab, 32, { initial: 1 });
    g0.release();
    // Stray bytes over the links: misaligned, unmapped, pointing at itself.
    const m1 = new Mutex(sab, 128);
    const g1 = m1.acquireSync();
    const g2 = new Mutex(sab, 192).acquireSync();
    bytes.setBigUint64(128 + 24, 0xdead0003n, true);
    bytes.setBigUint64(128 + 32, 0x1234567n, true);
    g1.release();
    const g3 = new Mutex(sab, 256).acquireSync();
    bytes.setBigUint64(256 + 24, BigInt(0), true);
    bytes.setBigUint64(256 + 32, BigInt(0), true);
    g3.release();
    m1.acquireSync().release();
    // The kernel must still find what this thread holds when it dies.
    const named = Mutex.open(process.argv[1]);
    const g4 = named.acquireSync();
    g2.release();
    console.log('holding');
    setInterval(() => {}, 1000);
  `, { args: [name], timeout: 30000 });
  try {
    await holder.waitFor('holding');
  } finally {
    holder.process.kill('SIGKILL');
  }
  const r = await holder.exited;
  assert.equal(r.signal, 'SIGKILL', `the holder crashed by itself: ${r.stderr}`);
  const guard = await named.acquire({ timeout: 20000 });
  assert.equal(guard.ownerDied, true, 'the dead holder was still on its robust list');
  guard.release();
});

test('loading the addon again in the same thread (a module registry reset) works, in the main thread and in a worker', async () => {
  const addon = fileURLToPath(new URL('../../../build/Release/multiproc.node', import.meta.url));
  const r = await runChild(`
    import { Worker } from 'node:worker_threads';
    import { once } from 'node:events';
    import { Mutex } from 'multiproc';
    const [url, addon] = process.argv.slice(1);
    const again = { exports: {} };
    process.dlopen(again, addon);
    const sab = new SharedArrayBuffer(64);
    new Mutex(sab, 0).acquireSync().release();
    console.log('main ok ' + typeof again.exports.mutexTryLock);
    const worker = new Worker(\`
      import { workerData } from 'node:worker_threads';
      const { Mutex } = await import(workerData.url);
      process.dlopen({ exports: {} }, workerData.addon);
      process.dlopen({ exports: {} }, workerData.addon);
      // Held at exit: the cleanup hook releases it as owner-died.
      new Mutex(workerData.sab, 0).acquireSync();
    \`, { eval: true, workerData: { url, addon, sab } });
    const [code] = await once(worker, 'exit');
    const guard = new Mutex(sab, 0).acquireSync({ timeout: 10000 });
    console.log('worker exit ' + code + ' ownerDied=' + guard.ownerDied);
  `, { args: [libraryUrl, addon], timeout: 30000 });
  assert.equal(r.signal, null, `crashed: ${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /main ok function/);
  assert.match(r.stdout, /worker exit 0 ownerDied=true/);
});

test('acquireSync through a second handle of a named mutex this thread holds is ERR_MULTIPROC_DEADLOCK; acquire() waits for the release', async () => {
  const name = uniqueName('twoh');
  using a = Mutex.create(name);
  using b = Mutex.open(name);
  const held = a.acquireSync();
  // Without deadlock detection this blocks the thread for the whole timeout.
  assert.throws(() => b.acquireSync({ timeout: 3000 }), { name: 'DeadlockError', code: 'ERR_MULTIPROC_DEADLOCK' });
  assert.equal(b.tryAcquire(), null);
  const waiting = b.acquire({ timeout: 20000 });
  setTimeout(() => held.release(), 50);
  const guard = await waiting;
  assert.equal(guard.ownerDied, false);
  guard.release();
});

test('a held lock keeps its buffer alive when JavaScript drops it (raw addon)', async () => {
  const r = await runChild(`
    import { setFlagsFromString } from 'node:v8';
    import { runInNewContext } from 'node:vm';
    import { native } from '${new URL('../../src/binding/native.js', import.meta.url).href}';
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc');
    (() => {
      const sab = new SharedArrayBuffer(64);
      if (native.mutexTryLock(sab, 0, 0) !== 1) process.exit(2);
    })();
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Each lock links its entry in front of the dropped one, writing into it.
    const keep = [];
    for (let i = 0; i < 20000; i++) {
      const b = new SharedArrayBuffer(64);
      native.mutexTryLock(b, 0, 0);
      native.mutexUnlock(b, 0);
      if (i % 1000 === 0) {
        keep.push(new SharedArrayBuffer(64));
        gc();
      }
    }
    console.log('done');
  `, { timeout: 30000 });
  assert.equal(r.signal, null, `crashed: ${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /done/);
});
