import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedMemory, Event, TimeoutError, ClosedError } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child } from '../helpers/child.js';

leakGuard();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeout = 20000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(5);
  }
}

test('the event loop keeps ticking while 100 async waiters sleep; set() in another process wakes all 100', async () => {
  const name = uniqueName('ev');
  using ev = Event.create(name);
  let ticks = 0;
  const interval = setInterval(() => ticks++, 5);
  let woken = 0;
  const waiters = Array.from({ length: 100 }, () => ev.wait({ timeout: 60000 }).then(() => woken++));
  try {
    await until('10 ticks', () => ticks >= 10);
    assert.equal(woken, 0, 'nobody returns before set()');
    const child = new Child(`
      import { Event } from 'multiproc';
      const ev = Event.open(process.argv[1]);
      ev.set();
      ev.close();
    `, { args: [name] });
    const r = await child.exited;
    assert.equal(r.code, 0, r.stderr);
    await Promise.all(waiters);
    assert.equal(woken, 100);
    assert.equal(ev.isSet(), true);
  } finally {
    clearInterval(interval);
  }
});

test('set, clear, isSet; wait returns at once while set', async () => {
  const ev = new Event(new SharedArrayBuffer(64), 32);
  assert.equal(ev.isSet(), false);
  ev.set();
  ev.set();
  assert.equal(ev.isSet(), true);
  await ev.wait({ timeout: 0 });
  ev.waitSync({ timeout: 0 });
  ev.clear();
  assert.equal(ev.isSet(), false);
  await assert.rejects(ev.wait({ timeout: 20 }), (e: any) => e instanceof TimeoutError && e.code === 'ERR_MULTIPROC_TIMEOUT');
  assert.throws(() => ev.waitSync({ timeout: 20 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
});

test('a set() immediately followed by clear() still releases the waiters of that moment', async () => {
  const ev = new Event(new SharedArrayBuffer(64));
  const waiters = Array.from({ length: 5 }, () => ev.wait({ timeout: 20000 }));
  ev.set();
  ev.clear();
  await Promise.all(waiters);
  assert.equal(ev.isSet(), false);
  // A waiter that starts after the clear waits for the next set().
  await assert.rejects(ev.wait({ timeout: 20 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
});

test('a blocked waiter in another process wakes on set()', async () => {
  using shm = SharedMemory.create(uniqueName('evshm'), 4096);
  using ev = new Event(shm, 128);
  const child = new Child(`
    import { SharedMemory, Event } from 'multiproc';
    const shm = SharedMemory.open(process.argv[1]);
    const ev = new Event(shm, 128);
    console.log('waiting');
    ev.waitSync({ timeout: 30000 });
    console.log('woken');
    shm.close();
  `, { args: [shm.name] });
  await child.waitFor('waiting');
  ev.set();
  const r = await child.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /woken/);
});

test('abort gives ABORT_ERR; close rejects pending waits with ERR_MULTIPROC_CLOSED', async () => {
  const name = uniqueName('evclose');
  const ev = Event.create(name);
  const ac = new AbortController();
  const aborted = ev.wait({ signal: ac.signal });
  ac.abort();
  await assert.rejects(aborted, (e: any) => e.name === 'AbortError' && e.code === 'ABORT_ERR');
  await assert.rejects(ev.wait({ signal: AbortSignal.abort() }), (e: any) => e.code === 'ABORT_ERR');
  const pending = ev.wait();
  ev.close();
  await assert.rejects(pending, (e: any) => e instanceof ClosedError && e.code === 'ERR_MULTIPROC_CLOSED');
  assert.throws(() => ev.set(), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
  ev.close();
});

test('bad arguments are TypeError / RangeError with Node codes', async () => {
  const sab = new SharedArrayBuffer(64);
  assert.throws(() => new Event(new ArrayBuffer(64) as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE' && e instanceof TypeError);
  assert.throws(() => new Event(sab, 12), (e: any) => e.code === 'ERR_OUT_OF_RANGE' && e instanceof RangeError);
  assert.throws(() => new Event(sab, 'x' as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
  assert.throws(() => Event.create(42 as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
  assert.throws(() => Event.create(uniqueName('o'), { creation: 'maybe' } as any), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
  const ev = new Event(sab);
  await assert.rejects(ev.wait({ timeout: NaN }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  await assert.rejects(ev.wait(5 as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
  assert.throws(() => Event.open(uniqueName('missing')), (e: any) => e.code === 'ENOENT');
});
