import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedMemory, Mutex, IncompatibleError } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child } from '../helpers/child.js';

leakGuard();

test('a holder killed with SIGKILL is recovered by a waiting process, which is told the owner died', async () => {
  const name = uniqueName('robust');
  using m = Mutex.create(name);
  const holder = new Child(`
    import { Mutex } from 'multiproc';
    const m = Mutex.open(process.argv[1]);
    const g = m.acquireSync();
    console.log('holding');
    setInterval(() => {}, 1000);
  `, { args: [name] });
  await holder.waitFor('holding');
  const waiter = new Child(`
    import { Mutex } from 'multiproc';
    const m = Mutex.open(process.argv[1]);
    console.log('waiting');
    const g = await m.acquire({ timeout: 20000 });
    console.log('acquired ownerDied=' + g.ownerDied);
    g.release();
    m.close();
  `, { args: [name] });
  await waiter.waitFor('waiting');
  holder.kill('SIGKILL');
  const h = await holder.exited;
  assert.equal(h.signal, 'SIGKILL');
  const r = await waiter.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /acquired ownerDied=true/);
  const g = m.tryAcquire();
  assert.ok(g, 'the lock is free and consistent afterwards');
  assert.equal(g.ownerDied, false);
  g.release();
});

test('a blocking waiter is also woken when the holder dies', async () => {
  const name = uniqueName('robust-sync');
  using shm = SharedMemory.create(name, 4096);
  assert.equal(shm.owner, true);
  const holder = new Child(`
    import { SharedMemory, Mutex } from 'multiproc';
    const shm = SharedMemory.open(process.argv[1]);
    new Mutex(shm, 64).acquireSync();
    console.log('holding');
    setInterval(() => {}, 1000);
  `, { args: [name] });
  await holder.waitFor('holding');
  const waiter = new Child(`
    import { SharedMemory, Mutex } from 'multiproc';
    const shm = SharedMemory.open(process.argv[1]);
    console.log('waiting');
    const g = new Mutex(shm, 64).acquireSync({ timeout: 20000 });
    console.log('ownerDied=' + g.ownerDied);
    g.release();
  `, { args: [name] });
  await waiter.waitFor('waiting');
  await new Promise((r) => setTimeout(r, 100));
  holder.kill('SIGKILL');
  await holder.exited;
  const r = await waiter.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /ownerDied=true/);
});

test('no waiter starves: a slow async waiter gets its turns while another process hammers the lock', async () => {
  const name = uniqueName('fair');
  using shm = SharedMemory.create(name, 4096);
  const flags = new Int32Array(shm.buffer, 128, 4); // [stop, hammerCount, waiterCount]
  const hammer = new Child(`
    import { SharedMemory, Mutex } from 'multiproc';
    const shm = SharedMemory.open(process.argv[1]);
    const m = new Mutex(shm, 0);
    const f = new Int32Array(shm.buffer, 128, 4);
    console.log('started');
    while (Atomics.load(f, 0) === 0) {
      const g = m.acquireSync();
      for (let i = 0; i < 200; i++) Atomics.add(f, 3, 1); // a short critical section
      g.release();
      Atomics.add(f, 1, 1);
    }
  `, { args: [name] });
  await hammer.waitFor('started');
  const waiter = new Child(`
    import { SharedMemory, Mutex } from 'multiproc';
    const shm = SharedMemory.open(process.argv[1]);
    const m = new Mutex(shm, 0);
    const f = new Int32Array(shm.buffer, 128, 4);
    for (let i = 0; i < 200; i++) {
      const g = await m.acquire({ timeout: 20000 });
      Atomics.add(f, 2, 1);
      g.release();
      await new Promise((r) => setImmediate(r));
    }
    Atomics.store(f, 0, 1);
  `, { args: [name], timeout: 60000 });
  const r = await waiter.exited;
  Atomics.store(flags, 0, 1);
  const h = await hammer.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(h.code, 0, h.stderr);
  assert.equal(Atomics.load(flags, 2), 200, 'the async waiter got all its turns');
  assert.ok(Atomics.load(flags, 1) > 0, 'the hammer ran too');
});

test('opening a segment that is not a mutex of this layout is ERR_MULTIPROC_INCOMPATIBLE', () => {
  const name = uniqueName('incompat');
  using shm = SharedMemory.create(`mp.mutex.${name}`, 128);
  new Uint32Array(shm.buffer)[0] = 0xdeadbeef;
  new Uint32Array(shm.buffer)[3] = 1; // "ready"
  assert.throws(() => Mutex.open(name), (e: any) => e instanceof IncompatibleError && e.code === 'ERR_MULTIPROC_INCOMPATIBLE');
});
