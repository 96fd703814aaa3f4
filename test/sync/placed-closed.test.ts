// A primitive placed in a SharedMemory is closed with it: once the segment
// is unmapped, what is left at its address is a private zero page, so a lock
// there would exclude nobody. Every use fails with ERR_MULTIPROC_CLOSED.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { Barrier, Condition, Event, Mutex, RWLock, Semaphore, SharedMemory } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { libraryUrl } from '../helpers/child.js';

leakGuard();

const closed = { code: 'ERR_MULTIPROC_CLOSED' };

test('a Mutex held by another thread is not taken through a handle whose SharedMemory is closed', { timeout: 60_000 }, async () => {
  const name = uniqueName('placed');
  const shm = SharedMemory.create(name, 4096);
  const m = new Mutex(shm, 0);
  const w = new Worker(
    `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.lib).then(({ SharedMemory, Mutex }) => {
      const shm = SharedMemory.open(workerData.name);
      const g = new Mutex(shm, 0).acquireSync();
      parentPort.postMessage('held');
      parentPort.once('message', () => { g.release(); shm.close(); parentPort.postMessage('done'); });
    });
    `,
    { eval: true, workerData: { lib: libraryUrl, name } },
  );
  try {
    await once(w, 'message');
    assert.equal(m.tryAcquire(), null);
    assert.equal(m.closed, false);
    shm.close();
    assert.throws(() => m.tryAcquire(), closed);
    assert.equal(m.closed, true);
    assert.throws(() => m.acquireSync(), closed);
    assert.throws(() => m.acquireSync({ timeout: 10 }), closed);
    await assert.rejects(m.acquire({ timeout: 10_000 }), closed);
    assert.throws(() => m.locked, closed);
  } finally {
    w.postMessage('bye');
    await once(w, 'message');
    await w.terminate();
    shm.close();
  }
});

test('every primitive placed in a SharedMemory reports ERR_MULTIPROC_CLOSED once it is closed', async () => {
  const shm = SharedMemory.create(uniqueName('placed'), 4096);
  const sem = new Semaphore(shm, 0, { initial: 1 });
  const ev = new Event(shm, 64);
  const cv = new Condition(shm, 128);
  const bar = new Barrier(shm, 192, 2);
  const rw = new RWLock(shm, 256);
  const m = new Mutex(shm, 320);
  // Still usable while the memory is open.
  sem.acquireSync({ timeout: 1000 }).release();
  ev.set();
  assert.equal(ev.isSet(), true);
  shm.close();
  for (const p of [sem, ev, cv, bar, rw, m]) assert.equal(p.closed, true);
  assert.throws(() => sem.tryAcquire(), closed);
  assert.throws(() => sem.release(), closed);
  await assert.rejects(sem.acquire({ timeout: 10_000 }), closed);
  assert.throws(() => ev.isSet(), closed);
  assert.throws(() => ev.set(), closed);
  assert.throws(() => ev.waitSync({ timeout: 10_000 }), closed);
  assert.throws(() => cv.notifyAll(), closed);
  await assert.rejects(bar.wait({ timeout: 10_000 }), closed);
  assert.throws(() => rw.tryAcquireWrite(), closed);
  assert.throws(() => m.tryAcquire(), closed);
  // Memory given as a SharedArrayBuffer has no close of its own.
  const sab = new SharedArrayBuffer(64);
  const other = new Mutex(sab, 0);
  other.tryAcquire()!.release();
  assert.equal(other.closed, false);
});
