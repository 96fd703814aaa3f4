import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { SharedMemory, Mutex, DeadlockError, NotOwnerError, TimeoutError, BusyError } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child, libraryUrl } from '../helpers/child.js';

leakGuard();

test('4 processes x 100,000 increments under a Mutex give exactly 400,000', async () => {
  const name = uniqueName('count');
  using shm = SharedMemory.create(name, 4096);
  const counter = new Int32Array(shm.buffer, 64, 1);
  const kids = [0, 1, 2, 3].map((i) => new Child(`
    import { SharedMemory, Mutex } from 'multiproc';
    const [name, mode] = process.argv.slice(1);
    const shm = SharedMemory.open(name);
    const m = new Mutex(shm, 0);
    const c = new Int32Array(shm.buffer, 64, 1);
    for (let i = 0; i < 100000; i++) {
      const g = mode === 'async' ? await m.acquire({ timeout: 60000 }) : m.acquireSync({ timeout: 60000 });
      c[0] = c[0] + 1; // deliberately not atomic: only the lock makes it right
      g.release();
    }
    shm.close();
  `, { args: [name, i % 2 === 0 ? 'sync' : 'async'], timeout: 120000 }));
  const results = await Promise.all(kids.map((k) => k.exited));
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  assert.equal(counter[0], 400000);
});

test('a named mutex is shared by unrelated processes', async () => {
  const name = uniqueName('named');
  using m = Mutex.create(name);
  const guard = await m.acquire();
  const child = new Child(`
    import { Mutex } from 'multiproc';
    const m = Mutex.open(process.argv[1]);
    console.log(m.tryAcquire() === null ? 'busy' : 'free');
    const g = await m.acquire({ timeout: 30000 });
    console.log('acquired');
    g.release();
    m.close();
  `, { args: [name] });
  await child.waitFor('busy');
  assert.equal(m.locked, true);
  guard.release();
  await child.waitFor('acquired');
  const r = await child.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(m.locked, false);
});

test('blocking on a mutex this thread holds is a DeadlockError, not a hang; async tasks of the thread queue', async () => {
  using shm = SharedMemory.create(uniqueName('dead'), 4096);
  const m = new Mutex(shm, 0);
  const g = m.acquireSync();
  assert.throws(() => m.acquireSync({ timeout: 5000 }), (e: any) => e instanceof DeadlockError && e.code === 'ERR_MULTIPROC_DEADLOCK');
  assert.equal(m.tryAcquire(), null);
  // An async task of the same thread waits for the holder's release...
  await assert.rejects(m.acquire({ timeout: 30 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  const order: string[] = [];
  const next = m.acquire({ timeout: 10000 }).then((g2) => {
    order.push('second');
    g2.release();
  });
  await new Promise((r) => setTimeout(r, 20));
  order.push('first releases');
  g.release();
  await next;
  assert.deepEqual(order, ['first releases', 'second']);
  g.release(); // a guard releases once
  assert.throws(() => m.release(), (e: any) => e instanceof NotOwnerError && e.code === 'ERR_MULTIPROC_NOT_OWNER');
});

test('waits time out with ERR_MULTIPROC_TIMEOUT and abort with ABORT_ERR; the lock stays usable', async () => {
  const name = uniqueName('wait');
  using shm = SharedMemory.create(name, 4096);
  const holder = new Child(`
    import { SharedMemory, Mutex } from 'multiproc';
    const shm = SharedMemory.open(process.argv[1]);
    const g = new Mutex(shm, 0).acquireSync();
    console.log('holding');
    setInterval(() => {}, 1000);
  `, { args: [name] });
  await holder.waitFor('holding');
  const m = new Mutex(shm, 0);
  await assert.rejects(m.acquire({ timeout: 50 }), (e: any) => e instanceof TimeoutError && e.code === 'ERR_MULTIPROC_TIMEOUT' && e.timeout === 50);
  assert.throws(() => m.acquireSync({ timeout: 50 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  const ac = new AbortController();
  const p = m.acquire({ signal: ac.signal });
  setTimeout(() => ac.abort(new Error('stop')), 20);
  await assert.rejects(p, (e: any) => e.name === 'AbortError' && e.code === 'ABORT_ERR' && e.cause?.message === 'stop');
  await assert.rejects(m.acquire({ signal: AbortSignal.abort() }), (e: any) => e.code === 'ABORT_ERR');
  assert.equal(m.tryAcquire(), null);
  holder.kill();
  await holder.exited;
  // The holder died holding the lock: the next acquirer is told.
  const g = await m.acquire({ timeout: 10000 });
  assert.equal(g.ownerDied, true);
  g.release();
  const again = m.tryAcquire();
  assert.ok(again);
  assert.equal(again.ownerDied, false);
  again.release();
});

test('the event loop keeps ticking while 100 async waiters sleep on a mutex', async () => {
  using shm = SharedMemory.create(uniqueName('loop'), 4096);
  const m = new Mutex(shm, 0);
  const holder = new Child(`
    import { SharedMemory, Mutex } from 'multiproc';
    const shm = SharedMemory.open(process.argv[1]);
    const g = new Mutex(shm, 0).acquireSync();
    console.log('holding');
    process.stdin.resume();
    setTimeout(() => { g.release(); console.log('released'); setTimeout(() => process.exit(0), 100); }, 500);
  `, { args: [shm.name] });
  await holder.waitFor('holding');
  let ticks = 0;
  const iv = setInterval(() => ticks++, 5);
  let inside = 0;
  let maxInside = 0;
  const waiters = Array.from({ length: 100 }, async () => {
    const g = await m.acquire({ timeout: 30000 });
    inside++;
    maxInside = Math.max(maxInside, inside);
    await new Promise((r) => setImmediate(r));
    inside--;
    g.release();
  });
  const r = await holder.exited;
  assert.equal(r.code, 0, r.stderr);
  await Promise.all(waiters);
  clearInterval(iv);
  assert.ok(ticks >= 10, `the loop ticked only ${ticks} times`);
  assert.equal(maxInside, 1);
});

test('closing a segment while holding a mutex in it is refused with ERR_MULTIPROC_BUSY', () => {
  const shm = SharedMemory.create(uniqueName('busy'), 4096);
  const m = new Mutex(shm, 128);
  const g = m.acquireSync();
  assert.throws(() => shm.close(), (e: any) => e instanceof BusyError && e.code === 'ERR_MULTIPROC_BUSY');
  g.release();
  shm.close();
  assert.equal(shm.closed, true);
});

test('worker threads of one process exclude each other, and a terminated holder is reported', async () => {
  const sab = new SharedArrayBuffer(4096);
  const src = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.url).then(async ({ Mutex }) => {
      const m = new Mutex(workerData.sab, 0);
      const c = new Int32Array(workerData.sab, 64, 1);
      if (workerData.hold) { m.acquireSync(); parentPort.postMessage('holding'); return; }
      for (let i = 0; i < 20000; i++) { const g = m.acquireSync(); c[0] = c[0] + 1; g.release(); }
      parentPort.postMessage('done');
    });
  `;
  const { libraryUrl } = await import('../helpers/child.js');
  const workers = [0, 1].map(() => new Worker(src, { eval: true, workerData: { sab, url: libraryUrl } }));
  const exits = workers.map((w) => once(w, 'exit')); // before any await: a worker may exit early
  await Promise.all(workers.map((w) => once(w, 'message')));
  await Promise.all(exits);
  assert.equal(new Int32Array(sab, 64, 1)[0], 40000);

  const holder = new Worker(src, { eval: true, workerData: { sab, url: libraryUrl, hold: true } });
  await once(holder, 'message');
  await holder.terminate();
  const g = await new Mutex(sab, 0).acquire({ timeout: 10000 });
  assert.equal(g.ownerDied, true);
  g.release();
});

test('bad arguments are refused with Node-style codes', async () => {
  using shm = SharedMemory.create(uniqueName('args'), 4096);
  assert.throws(() => new Mutex({} as any), (e: any) => e instanceof TypeError && (e as any).code === 'ERR_INVALID_ARG_TYPE');
  assert.throws(() => new Mutex(shm, 4), (e: any) => e instanceof RangeError && (e as any).code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => new Mutex(shm, 4096), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => new Mutex(shm, -8), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  const m = new Mutex(shm, 0);
  await assert.rejects(m.acquire({ timout: 5 } as any), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
  await assert.rejects(m.acquire({ timeout: -1 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  await assert.rejects(m.acquire({ signal: 'x' } as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
  assert.throws(() => m.acquireSync({ signal: AbortSignal.abort() } as any), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
  assert.throws(() => Mutex.create('bad/name'), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
  assert.throws(() => Mutex.open(uniqueName('missing')), (e: any) => e.code === 'ENOENT');
});

test('a wake-up that an async waiter took before it gave up is passed on to a waiter in another process', { timeout: 60000 }, async () => {
  const name = uniqueName('pass-on');
  using m = Mutex.create(name);
  // The holder is another thread, so that this thread's wait goes through the kernel.
  const holder = new Worker(
    `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.url).then(({ Mutex }) => {
      const m = Mutex.open(workerData.name);
      const g = m.tryAcquire();
      parentPort.postMessage('held');
      parentPort.once('message', () => { g.release(); m.close(); parentPort.postMessage('released'); });
    });
    `,
    { eval: true, workerData: { name, url: libraryUrl } },
  );
  try {
    await once(holder, 'message');
    // First in the kernel's queue: this process's async waiter.
    const ac = new AbortController();
    const mine = m.acquire({ signal: ac.signal, timeout: 30000 }).then(
      (g) => (g.release(), 'acquired'),
      (e: { code?: string }) => e.code,
    );
    await new Promise((r) => setTimeout(r, 50));
    // Second: a blocking waiter in another process.
    const child = new Child(`
      import { Mutex } from 'multiproc';
      const m = Mutex.open(process.argv[1]);
      console.log('waiting');
      const t0 = performance.now();
      try {
        // At its deadline a waiter tries once more and may find the lock free:
        // the time tells whether it was woken.
        const g = m.acquireSync({ timeout: 20000 });
        console.log('acquired after', Math.round(performance.now() - t0), 'ms');
        g.release();
      } catch (e) {
        console.log('failed', e.code);
      }
      m.close();
    `, { args: [name] });
    await child.waitFor('waiting');
    await new Promise((r) => setTimeout(r, 200));
    // The unlock wakes one waiter: ours, whose callback cannot run before the
    // abort below, in this same synchronous stretch. Unless the abort passes
    // that wake on, the child sleeps with the lock free until its timeout.
    holder.postMessage('release');
    const until = Date.now() + 10000;
    while (m.locked && Date.now() < until);
    const settle = Date.now() + 50;
    while (Date.now() < settle);
    ac.abort();
    assert.equal(await mine, 'ABORT_ERR');
    const r = await child.exited;
    assert.equal(r.code, 0, r.stderr);
    const waited = Number(/acquired after (\d+) ms/.exec(r.stdout)?.[1]);
    assert.ok(waited < 10000, `the child slept through the release: ${r.stdout}`);
  } finally {
    await holder.terminate();
  }
});
