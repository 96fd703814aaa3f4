import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedMemory, RWLock } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child } from '../helpers/child.js';

leakGuard();

// Shared words: 0 readers inside, 1 writers inside, 2 violations, 3 most readers
// inside at once, 4 reads, 5 writes; the data a writer fills is words 32-47.
const actor = `
  import { SharedMemory, RWLock } from 'multiproc';
  const [shmName, lockName, role, mode, rounds] = process.argv.slice(1);
  const shm = SharedMemory.open(shmName);
  const lock = RWLock.open(lockName);
  const w = new Int32Array(shm.buffer);
  const pause = () => new Promise((r) => setTimeout(r, 1));
  for (let i = 0; i < Number(rounds); i++) {
    if (role === 'reader') {
      const g = mode === 'async' ? await lock.acquireRead({ timeout: 60000 }) : lock.acquireReadSync({ timeout: 60000 });
      const inside = Atomics.add(w, 0, 1) + 1;
      let max = Atomics.load(w, 3);
      while (inside > max) max = Atomics.compareExchange(w, 3, max, inside) === max ? inside : Atomics.load(w, 3);
      if (Atomics.load(w, 1) !== 0) Atomics.add(w, 2, 1);
      const first = w[32];
      for (let j = 33; j < 48; j++) if (w[j] !== first) { Atomics.add(w, 2, 1); break; }
      if (i % 4 === 0) await pause();
      Atomics.add(w, 4, 1);
      Atomics.sub(w, 0, 1);
      g.release();
    } else {
      const g = mode === 'async' ? await lock.acquireWrite({ timeout: 60000 }) : lock.acquireWriteSync({ timeout: 60000 });
      if (Atomics.add(w, 1, 1) !== 0 || Atomics.load(w, 0) !== 0) Atomics.add(w, 2, 1);
      // Not atomic on purpose: a reader inside would see a mix.
      for (let j = 32; j < 48; j++) w[j] = process.pid * 1000 + i;
      if (i % 8 === 0) await pause();
      Atomics.add(w, 5, 1);
      Atomics.sub(w, 1, 1);
      g.release();
    }
  }
  lock.close();
  shm.close();
`;

test('across 4 processes a writer is always alone and readers never see a half-written value', async () => {
  using shm = SharedMemory.create(uniqueName('rw'), 4096);
  const name = uniqueName('rwlock');
  using lock = RWLock.create(name);
  const roles: Array<[string, string]> = [['reader', 'async'], ['reader', 'sync'], ['writer', 'sync'], ['writer', 'async']];
  const kids = roles.map(([role, mode]) => new Child(actor, { args: [shm.name, name, role, mode, role === 'reader' ? '400' : '150'], timeout: 120000 }));
  const results = await Promise.all(kids.map((k) => k.exited));
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const w = new Int32Array(shm.buffer);
  assert.equal(w[2], 0, 'no reader met a writer, no writer met anyone');
  assert.equal(w[4], 800);
  assert.equal(w[5], 300);
  assert.ok(w[3]! <= 2);
  assert.equal(lock.readers, 0);
  assert.equal(lock.writeLocked, false);
});

test('readers in different processes hold the lock at the same time; a writer must wait for all of them', async () => {
  const name = uniqueName('rwshare');
  using lock = RWLock.create(name);
  const reader = new Child(`
    import { RWLock } from 'multiproc';
    const lock = RWLock.open(process.argv[1]);
    const g = await lock.acquireRead({ timeout: 30000 });
    console.log('reading');
    setInterval(() => {}, 1000);
  `, { args: [name] });
  // The child holds its read lock until we kill it.
  await reader.waitFor('reading');
  const mine = lock.tryAcquireRead();
  assert.ok(mine, 'a second reader gets in while the first reads');
  assert.equal(lock.readers, 2);
  assert.equal(lock.tryAcquireWrite(), null);
  await assert.rejects(lock.acquireWrite({ timeout: 30 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  mine.release();
  assert.equal(lock.readers, 1);
  const writer = lock.acquireWrite({ timeout: 30000 });
  reader.kill();
  await reader.exited;
  // A dead reader's hold is not given back: release it on its behalf.
  lock.releaseRead();
  const g = await writer;
  assert.equal(g.mode, 'write');
  assert.equal(lock.writeLocked, true);
  assert.equal(lock.tryAcquireRead(), null);
  g.release();
  assert.equal(lock.writeLocked, false);
});
