import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedMemory, Semaphore, SemaphoreOverflowError, TimeoutError, IncompatibleError, ClosedError } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

test('release above max throws SemaphoreOverflowError and changes nothing', () => {
  const sem = new Semaphore(new SharedArrayBuffer(64), 0, { initial: 1, max: 2 });
  sem.release();
  assert.equal(sem.value, 2);
  assert.throws(() => sem.release(), (e: any) => e instanceof SemaphoreOverflowError && e.code === 'ERR_MULTIPROC_SEMAPHORE_OVERFLOW');
  assert.equal(sem.value, 2);
  const g = sem.tryAcquire();
  assert.ok(g);
  assert.throws(() => sem.release(2), (e: any) => e.code === 'ERR_MULTIPROC_SEMAPHORE_OVERFLOW');
  g.release();
  g.release(); // a guard gives its permit back once
  assert.equal(sem.value, 2);
  const unbounded = new Semaphore(new SharedArrayBuffer(64), 0, { initial: Semaphore.MAX_VALUE });
  assert.equal(unbounded.max, Semaphore.MAX_VALUE);
  assert.throws(() => unbounded.release(), (e: any) => e.code === 'ERR_MULTIPROC_SEMAPHORE_OVERFLOW');
});

test('tryAcquire takes permits without waiting', () => {
  const sem = new Semaphore(new SharedArrayBuffer(64), 0, { initial: 2 });
  const a = sem.tryAcquire();
  const b = sem.tryAcquire();
  assert.ok(a && b);
  assert.equal(sem.tryAcquire(), null);
  sem.release(2);
  assert.equal(sem.value, 2);
});

test('waits time out with ERR_MULTIPROC_TIMEOUT and abort with ABORT_ERR', async () => {
  const sem = new Semaphore(new SharedArrayBuffer(64));
  await assert.rejects(sem.acquire({ timeout: 30 }), (e: any) => e instanceof TimeoutError && e.code === 'ERR_MULTIPROC_TIMEOUT' && e.timeout === 30);
  await assert.rejects(sem.acquire({ timeout: 0 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  assert.throws(() => sem.acquireSync({ timeout: 30 }), (e: any) => e instanceof TimeoutError && e.code === 'ERR_MULTIPROC_TIMEOUT');
  const ac = new AbortController();
  const p = sem.acquire({ signal: ac.signal, timeout: 10000 });
  setTimeout(() => ac.abort(new Error('stop')), 10);
  await assert.rejects(p, (e: any) => e.name === 'AbortError' && e.code === 'ABORT_ERR' && e.cause?.message === 'stop');
  await assert.rejects(sem.acquire({ signal: AbortSignal.abort() }), (e: any) => e.code === 'ABORT_ERR');
  // Waiters that gave up left no trace: a release is still there for the next one.
  sem.release();
  const g = await sem.acquire({ timeout: 10000 });
  g.release();
  assert.equal(sem.value, 1);
});

test('closing a semaphore rejects its pending waits with ERR_MULTIPROC_CLOSED', async () => {
  const name = uniqueName('close');
  const sem = Semaphore.create(name);
  const other = Semaphore.open(name);
  const pending = [sem.acquire(), sem.acquire({ timeout: 60000 })];
  const survivor = other.acquire({ timeout: 10000 });
  sem.close();
  for (const p of pending) await assert.rejects(p, (e: any) => e instanceof ClosedError && e.code === 'ERR_MULTIPROC_CLOSED');
  assert.throws(() => sem.release(), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
  await assert.rejects(sem.acquire(), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
  // The other handle still works on the same memory.
  other.release();
  (await survivor).release();
  other.close();
});

test('bad arguments are TypeError / RangeError with Node codes', async () => {
  const sab = new SharedArrayBuffer(64);
  assert.throws(() => new Semaphore({} as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE' && e instanceof TypeError);
  assert.throws(() => new Semaphore(sab, 4), (e: any) => e.code === 'ERR_OUT_OF_RANGE' && e instanceof RangeError);
  assert.throws(() => new Semaphore(sab, 64), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => new Semaphore(sab, 0, { initial: -1 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => new Semaphore(sab, 0, { initial: 3, max: 2 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => new Semaphore(sab, 0, { initial: '1' } as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
  assert.throws(() => new Semaphore(sab, 0, { inital: 1 } as any), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE' && e instanceof TypeError);
  assert.throws(() => Semaphore.create('bad/name'), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
  assert.throws(() => Semaphore.create(uniqueName('p'), { max: 0 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  const sem = new Semaphore(sab, 0, { initial: 1 });
  assert.throws(() => sem.release(0), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => sem.release(1.5), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  await assert.rejects(sem.acquire({ timeout: -1 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  await assert.rejects(sem.acquire({ timeout: '5' } as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
  await assert.rejects(sem.acquire({ signal: {} } as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
  await assert.rejects(sem.acquire({ timout: 5 } as any), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
  assert.throws(() => sem.acquireSync({ signal: AbortSignal.abort() } as any), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
  assert.equal(sem.value, 1, 'nothing was taken by the failed calls');
});

test('a second handle with another max is refused; memory that is not a semaphore too', () => {
  using shm = SharedMemory.create(uniqueName('mismatch'), 4096);
  const a = new Semaphore(shm, 0, { initial: 1, max: 4 });
  assert.equal(new Semaphore(shm, 0).max, 4);
  assert.equal(new Semaphore(shm, 0, { initial: 0, max: 4 }).value, 1, 'initial only counts for the first handle');
  assert.throws(() => new Semaphore(shm, 0, { max: 3 }), (e: any) => e instanceof IncompatibleError && e.code === 'ERR_MULTIPROC_INCOMPATIBLE');
  new Int32Array(shm.buffer)[16 + 3] = 12345;
  assert.throws(() => new Semaphore(shm, 64), (e: any) => e.code === 'ERR_MULTIPROC_INCOMPATIBLE');
  a.close();
});
