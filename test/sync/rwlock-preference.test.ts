import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RWLock, NotOwnerError, TimeoutError, ClosedError } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child } from '../helpers/child.js';

leakGuard();

test('a waiting writer keeps new readers out, in other processes too, and gets the lock when the readers leave', async () => {
  const name = uniqueName('pref');
  using lock = RWLock.create(name);
  const r1 = await lock.acquireRead({ timeout: 1000 });
  const order: string[] = [];
  const writer = lock.acquireWrite({ timeout: 30000 }).then((g) => (order.push('writer'), g));
  assert.equal(lock.tryAcquireRead(), null, 'no new reader while a writer waits');
  const child = new Child(`
    import { RWLock } from 'multiproc';
    const lock = RWLock.open(process.argv[1]);
    console.log('try ' + (lock.tryAcquireRead() === null ? 'refused' : 'granted'));
    const g = await lock.acquireRead({ timeout: 30000 });
    console.log('read after writer');
    g.release();
    lock.close();
  `, { args: [name] });
  await child.waitFor(/try \w+/);
  assert.match(child.stdout, /try refused/);
  r1.release();
  const w = await writer;
  w.release();
  const r = await child.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /read after writer/);
  assert.deepEqual(order, ['writer']);
});

test('a writer that gives up lets the readers it held back in', async () => {
  const lock = new RWLock(new SharedArrayBuffer(64));
  const r1 = lock.tryAcquireRead()!;
  const ac = new AbortController();
  const writer = lock.acquireWrite({ signal: ac.signal });
  const reader = lock.acquireRead({ timeout: 20000 });
  ac.abort();
  await assert.rejects(writer, (e: any) => e.name === 'AbortError' && e.code === 'ABORT_ERR');
  const r2 = await reader;
  assert.equal(lock.readers, 2);
  r1.release();
  r2.release();
  assert.ok(lock.tryAcquireWrite());
});

test('timeouts, sync forms, try forms and guards', async () => {
  const lock = new RWLock(new SharedArrayBuffer(64), 32);
  const w = lock.acquireWriteSync({ timeout: 1000 });
  assert.equal(w.mode, 'write');
  await assert.rejects(lock.acquireRead({ timeout: 20 }), (e: any) => e instanceof TimeoutError && e.code === 'ERR_MULTIPROC_TIMEOUT');
  assert.throws(() => lock.acquireReadSync({ timeout: 20 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  assert.throws(() => lock.acquireWriteSync({ timeout: 20 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  assert.equal(lock.tryAcquireWrite(), null);
  {
    using _ = w;
  }
  assert.equal(lock.writeLocked, false);
  w.release(); // a guard releases once
  const a = lock.acquireReadSync({ timeout: 1000 });
  const b = lock.acquireReadSync({ timeout: 1000 });
  assert.equal(lock.readers, 2);
  a.release();
  b.release();
  assert.throws(() => lock.releaseRead(), (e: any) => e instanceof NotOwnerError && e.code === 'ERR_MULTIPROC_NOT_OWNER');
  assert.throws(() => lock.releaseWrite(), (e: any) => e.code === 'ERR_MULTIPROC_NOT_OWNER');
});

test('close rejects pending acquisitions with ERR_MULTIPROC_CLOSED; bad arguments have Node codes', async () => {
  const name = uniqueName('rwclose');
  const lock = RWLock.create(name);
  const held = lock.tryAcquireWrite()!;
  const pending = [lock.acquireRead(), lock.acquireWrite()];
  lock.close();
  for (const p of pending) await assert.rejects(p, (e: any) => e instanceof ClosedError && e.code === 'ERR_MULTIPROC_CLOSED');
  assert.throws(() => held.release(), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
  assert.throws(() => lock.tryAcquireRead(), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');

  const sab = new SharedArrayBuffer(64);
  assert.throws(() => new RWLock(null as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE' && e instanceof TypeError);
  assert.throws(() => new RWLock(sab, 40), (e: any) => e.code === 'ERR_OUT_OF_RANGE' && e instanceof RangeError);
  const l = new RWLock(sab);
  await assert.rejects(l.acquireRead({ timeout: Symbol() } as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
  await assert.rejects(l.acquireWrite({ signal: 'x' } as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
  assert.throws(() => l.acquireWriteSync({ wait: 1 } as any), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
  assert.throws(() => RWLock.create(''), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
});
