import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { SharedMemory, Mutex, Condition, TimeoutError, NotOwnerError, ClosedError } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { libraryUrl } from '../helpers/child.js';

leakGuard();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeout = 20000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(5);
  }
}

// Each worker: take the mutex, wait once, count itself woken (word 64), release.
const waiterSource = `
  const { workerData, parentPort } = require('node:worker_threads');
  import(${JSON.stringify(libraryUrl)}).then(({ Mutex, Condition }) => {
    const { sab } = workerData;
    const m = new Mutex(sab, 0), cv = new Condition(sab, 64);
    const woken = new Int32Array(sab, 128, 1);
    const g = m.acquireSync({ timeout: 30000 });
    cv.waitSync(m, { timeout: 30000 });
    Atomics.add(woken, 0, 1);
    g.release();
    parentPort.postMessage('done');
  });
`;

test('notify(1) lets exactly one of three waiting threads return; notifyAll the rest', async () => {
  const sab = new SharedArrayBuffer(256);
  const m = new Mutex(sab, 0);
  const cv = new Condition(sab, 64);
  const woken = new Int32Array(sab, 128, 1);
  const workers = [0, 1, 2].map(() => new Worker(waiterSource, { eval: true, workerData: { sab } }));
  const done = workers.map((w) => once(w, 'message'));
  try {
    await until('three waiters', () => cv.waiting === 3);
    cv.notify(0);
    assert.equal(cv.waiting, 3, 'notify(0) does nothing');
    const g = await m.acquire({ timeout: 10000 });
    cv.notify();
    assert.equal(cv.waiting, 2, 'one waiter is taken off at once');
    g.release();
    await until('one woken', () => Atomics.load(woken, 0) === 1);
    await sleep(100);
    assert.equal(Atomics.load(woken, 0), 1, 'only one returned');
    cv.notifyAll();
    assert.equal(cv.waiting, 0);
    await Promise.all(done);
    assert.equal(Atomics.load(woken, 0), 3);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
});

test('async tasks of one thread can wait on the same condition and mutex', async () => {
  const sab = new SharedArrayBuffer(128);
  const m = new Mutex(sab, 0);
  const cv = new Condition(sab, 64);
  let items = 0;
  let consumed = 0;
  const consumers = Array.from({ length: 5 }, async () => {
    const g = await m.acquire({ timeout: 20000 });
    while (items === 0) await cv.wait(m, { timeout: 20000 });
    items--;
    consumed++;
    g.release();
  });
  await until('five waiters', () => cv.waiting === 5);
  for (let k = 0; k < 5; k++) {
    const g = await m.acquire({ timeout: 20000 });
    items++;
    cv.notify();
    g.release();
  }
  await Promise.all(consumers);
  assert.equal(consumed, 5);
  assert.equal(cv.waiting, 0);
  assert.equal(m.locked, false);
});

test('notify with nobody waiting is not remembered', async () => {
  const sab = new SharedArrayBuffer(128);
  const m = new Mutex(sab, 0);
  const cv = new Condition(sab, 64);
  cv.notify(5);
  cv.notifyAll();
  const g = await m.acquire();
  await assert.rejects(cv.wait(m, { timeout: 30 }), (e: any) => e instanceof TimeoutError && e.code === 'ERR_MULTIPROC_TIMEOUT');
  g.release();
});

test('wait holds the mutex again after a timeout, an abort or a close', async () => {
  using shm = SharedMemory.create(uniqueName('cvto'), 4096);
  const m = new Mutex(shm, 0);
  const cv = new Condition(shm, 64);
  const g = await m.acquire();
  await assert.rejects(cv.wait(m, { timeout: 20 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  assert.equal(m.locked, true);
  assert.throws(() => cv.waitSync(m, { timeout: 20 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  assert.equal(m.locked, true);
  const ac = new AbortController();
  const p = cv.wait(m, { signal: ac.signal });
  // While we wait the mutex is free for others.
  await until('mutex released', () => !m.locked);
  ac.abort();
  await assert.rejects(p, (e: any) => e.name === 'AbortError' && e.code === 'ABORT_ERR');
  assert.equal(m.locked, true);
  await assert.rejects(cv.wait(m, { signal: AbortSignal.abort() }), (e: any) => e.code === 'ABORT_ERR');
  assert.equal(m.locked, true, 'an already aborted wait never released the mutex');
  const pending = cv.wait(m);
  cv.close();
  await assert.rejects(pending, (e: any) => e instanceof ClosedError && e.code === 'ERR_MULTIPROC_CLOSED');
  assert.equal(m.locked, true);
  g.release();
  assert.equal(m.locked, false);
  const cv2 = new Condition(shm, 64);
  assert.equal(cv2.waiting, 0, 'waiters that gave up are not counted');
});

test('waiting without holding the mutex is ERR_MULTIPROC_NOT_OWNER; bad arguments have Node codes', async () => {
  const sab = new SharedArrayBuffer(128);
  const m = new Mutex(sab, 0);
  const cv = new Condition(sab, 64);
  await assert.rejects(cv.wait(m, { timeout: 1000 }), (e: any) => e instanceof NotOwnerError && e.code === 'ERR_MULTIPROC_NOT_OWNER');
  assert.throws(() => cv.waitSync(m, { timeout: 1000 }), (e: any) => e.code === 'ERR_MULTIPROC_NOT_OWNER');
  assert.equal(cv.waiting, 0);
  assert.equal(m.locked, false);
  await assert.rejects(cv.wait({} as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE' && e instanceof TypeError);
  assert.throws(() => cv.waitSync(undefined as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
  assert.throws(() => cv.notify(-1), (e: any) => e.code === 'ERR_OUT_OF_RANGE' && e instanceof RangeError);
  assert.throws(() => cv.notify('1' as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
  await assert.rejects(cv.wait(m, { timeout: 1, extra: true } as any), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
  assert.throws(() => new Condition(sab, 100), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => new Condition(sab, -8), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
});
