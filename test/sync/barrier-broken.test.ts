import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedMemory, Barrier, BrokenBarrierError, TimeoutError, IncompatibleError, ClosedError } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child } from '../helpers/child.js';

leakGuard();

const isBroken = (e: any): boolean => e instanceof BrokenBarrierError && e.code === 'ERR_MULTIPROC_BARRIER_BROKEN';

test('a party that times out breaks the barrier for the others, in other processes too', async () => {
  const name = uniqueName('brk');
  using b = Barrier.create(name, 3);
  const child = new Child(`
    import { Barrier } from 'multiproc';
    const b = Barrier.open(process.argv[1]);
    console.log('arriving');
    try {
      await b.wait({ timeout: 30000 });
      console.log('passed');
    } catch (e) {
      console.log('failed ' + e.code);
    }
    b.close();
  `, { args: [name] });
  await child.waitFor('arriving');
  await new Promise((r) => setTimeout(r, 50));
  await assert.rejects(b.wait({ timeout: 50 }), (e: any) => e instanceof TimeoutError && e.code === 'ERR_MULTIPROC_TIMEOUT');
  const r = await child.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /failed ERR_MULTIPROC_BARRIER_BROKEN/);
  assert.equal(b.broken, true);
  await assert.rejects(b.wait({ timeout: 1000 }), isBroken);
  assert.throws(() => b.waitSync({ timeout: 1000 }), isBroken);
  b.reset();
  assert.equal(b.broken, false);
  const again = await Promise.all([b.wait({ timeout: 10000 }), b.wait({ timeout: 10000 }), b.wait({ timeout: 10000 })]);
  assert.equal(again.filter((x) => x.serial).length, 1);
});

test('an aborted party breaks the barrier; reset() makes it usable again', async () => {
  const b = new Barrier(new SharedArrayBuffer(64), 0, 3);
  const other = b.wait({ timeout: 20000 });
  const ac = new AbortController();
  const mine = b.wait({ signal: ac.signal });
  ac.abort();
  await assert.rejects(mine, (e: any) => e.name === 'AbortError' && e.code === 'ABORT_ERR');
  await assert.rejects(other, isBroken);
  b.reset();
  const three = await Promise.all([b.wait({ timeout: 20000 }), b.wait({ timeout: 20000 }), b.wait({ timeout: 20000 })]);
  assert.equal(three.filter((r) => r.serial).length, 1);
  // An already aborted signal fails before arriving: the barrier stays whole.
  await assert.rejects(b.wait({ signal: AbortSignal.abort() }), (e: any) => e.code === 'ABORT_ERR');
  assert.equal(b.broken, false);
  assert.equal(b.waiting, 0);
});

test('abort() breaks the barrier; reset() while parties wait fails them with BrokenBarrierError', async () => {
  const b = new Barrier(new SharedArrayBuffer(64), 0, 3);
  const waiting = [b.wait({ timeout: 20000 }), b.wait({ timeout: 20000 })];
  b.abort();
  for (const p of waiting) await assert.rejects(p, isBroken);
  await assert.rejects(b.wait({ timeout: 20000 }), isBroken);
  b.reset();
  const second = [b.wait({ timeout: 20000 }), b.wait({ timeout: 20000 })];
  assert.equal(b.waiting, 2);
  b.reset();
  for (const p of second) await assert.rejects(p, isBroken);
  // A reset barrier is whole: a new generation completes.
  assert.equal(b.broken, false);
  assert.equal(b.waiting, 0);
  const third = await Promise.all([b.wait({ timeout: 20000 }), b.wait({ timeout: 20000 }), b.wait({ timeout: 20000 })]);
  assert.equal(third.filter((r) => r.serial).length, 1);
});

test('closing a handle with a pending wait rejects it with ERR_MULTIPROC_CLOSED and breaks the barrier', async () => {
  const name = uniqueName('bclose');
  const b = Barrier.create(name, 2);
  const other = Barrier.open(name);
  const pending = b.wait();
  b.close();
  await assert.rejects(pending, (e: any) => e instanceof ClosedError && e.code === 'ERR_MULTIPROC_CLOSED');
  assert.equal(other.broken, true);
  await assert.rejects(other.wait({ timeout: 1000 }), isBroken);
  other.close();
});

test('parties: required on zeroed memory, must match, stored for openers; bad arguments have Node codes', async () => {
  using shm = SharedMemory.create(uniqueName('bparams'), 4096);
  assert.throws(() => new Barrier(shm, 0), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE' && e instanceof TypeError);
  const b = new Barrier(shm, 0, 5);
  assert.equal(new Barrier(shm, 0).parties, 5);
  assert.throws(() => new Barrier(shm, 0, 4), (e: any) => e instanceof IncompatibleError && e.code === 'ERR_MULTIPROC_INCOMPATIBLE');
  assert.throws(() => new Barrier(shm, 64, 0), (e: any) => e.code === 'ERR_OUT_OF_RANGE' && e instanceof RangeError);
  assert.throws(() => new Barrier(shm, 64, 65536), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => new Barrier(shm, 64, 2.5), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => new Barrier(shm, 64, '2' as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
  assert.throws(() => new Barrier(shm, 4, 2), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => Barrier.create(uniqueName('x'), undefined as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
  // A failed first constructor leaves the memory free for a good one.
  assert.equal(new Barrier(shm, 64, 2).parties, 2);
  await assert.rejects(b.wait({ timeout: -5 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => b.waitSync({ signal: AbortSignal.abort() } as any), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
  const name = uniqueName('bopen');
  using named = Barrier.create(name, 7);
  using opened = Barrier.open(name);
  assert.equal(opened.parties, 7);
  assert.equal(named.segmentName, opened.segmentName);
});
