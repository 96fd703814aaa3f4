// The shm queue survives processes killed with SIGKILL in the middle of an
// operation: the robust mutex reports the dead holder and the queue repairs
// itself; no message is ever seen half written, and no waiter is left asleep
// by a process that died before it rang the doorbell.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageQueue, SharedMemory } from '../../src/index.js';
import { Child, libraryUrl } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';

leakGuard();

const T = { timeout: 20000 };

// Sends 512 KiB messages as fast as it can, forever: the sequence number at
// both ends, a fill byte derived from it in between (memset-fast, so most of
// the producer's time goes to copying under the queue's lock).
const SIZE = 512 * 1024;
const flooder = `
import { MessageQueue } from 'multiproc';
const [name] = process.argv.slice(1);
const q = MessageQueue.open(name, { backend: 'shm', codec: 'raw' });
const m = Buffer.alloc(${SIZE});
console.log('ready');
for (let i = 0; ; i++) {
  m.fill((i * 7) & 0xff);
  m.writeUInt32LE(i, 0);
  m.writeUInt32LE(i, m.length - 4);
  if (!q.trySend(m)) await q.send(m, { timeout: 60000 });
}
`;

// Receives and checks messages until a 4-byte stop message: each must be
// whole and the sequence must run on without a gap.
const checker = `
import { MessageQueue } from 'multiproc';
const [name] = process.argv.slice(1);
const q = MessageQueue.open(name, { backend: 'shm', codec: 'raw' });
console.log('ready');
let expected = 0;
for (;;) {
  const m = await q.receive({ timeout: 60000 });
  if (m.length === 4) break;
  const b = Buffer.from(m.buffer, m.byteOffset, m.byteLength);
  const seq = b.readUInt32LE(0);
  // Both ends and a byte every 4 KiB: a copy cut short or interleaved shows.
  let whole = b.length === ${SIZE} && b.readUInt32LE(b.length - 4) === seq;
  for (let k = 4 + (seq % 4096); whole && k < b.length - 4; k += 4096) whole = b[k] === ((seq * 7) & 0xff);
  if (!whole || seq !== expected) {
    console.log('BAD message', seq, 'expected', expected, 'whole', whole);
    process.exit(3);
  }
  expected++;
}
await q.close();
console.log('RECEIVED ' + expected);
`;

test('producers killed with SIGKILL while sending leave a queue that works, with every message whole and in order', { timeout: 120000 }, async (t) => {
  const name = uniqueName('crash');
  const q = MessageQueue.create<Uint8Array>(name, { backend: 'shm', codec: 'raw', capacity: 8, capacityBytes: 8 * SIZE });
  const segment = SharedMemory.open(`/mp.shmq.${name}`);
  const lockWord = new Int32Array(segment.buffer, 128, 1);
  let repairs = 0;
  try {
    for (let round = 0; round < 8; round++) {
      const consumer = new Child(checker, { args: [name] });
      await consumer.waitFor('ready');
      const producer = new Child(flooder, { args: [name] });
      await producer.waitFor('ready');
      await new Promise((r) => setTimeout(r, 20 + ((round * 37) % 80)));
      if (round % 2 === 1) {
        // Odd rounds: kill the producer while it holds the queue's lock (the
        // lock word names its holder's thread id, the pid for a main thread).
        const deadline = performance.now() + 5000;
        while ((Atomics.load(lockWord, 0) & 0x3fffffff) !== producer.pid && performance.now() < deadline);
      }
      producer.kill('SIGKILL');
      assert.equal((await producer.exited).signal, 'SIGKILL');
      // Everything the producer committed is ahead of this: the consumer sees it all, whole and in order.
      await q.send(new Uint8Array(4), T);
      const r = await consumer.exited;
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const s = q.stat();
      assert.equal(s.messages, 0);
      assert.equal(s.bytes, 0);
      assert.equal(s.lost, 0);
      repairs = s.repairs ?? 0;
      t.diagnostic(`round ${round}: ${r.stdout.trim().split('\n').pop()}; ${repairs} repairs so far`);
    }
    // Still a working queue: fill it to capacity and drain it.
    const big = new Uint8Array(SIZE).fill(7);
    let n = 0;
    while (q.trySend(big)) n++;
    assert.equal(n, 8);
    for (let i = 0; i < n; i++) assert.equal((await q.receive(T)).length, SIZE);
    assert.ok(repairs >= 1, 'at least one producer died holding the lock');
  } finally {
    segment.close();
    await q.close();
  }
});

// Takes the queue's own lock, scribbles over everything derived from the
// message list (counts, tail, free lists), and waits to be killed.
const saboteur = `
import { SharedMemory, Mutex } from 'multiproc';
const [name] = process.argv.slice(1);
const shm = SharedMemory.open('/mp.shmq.' + name);
const lock = new Mutex(shm, 128);
const guard = lock.acquireSync({ timeout: 10000 });
const h = new Int32Array(shm.buffer);
h[10] = 999;     // count
h[11] = 12345;   // bytes
h[13] = 77;      // tail
h[14] = 3;       // free descriptors (3 is in use)
h[15] = 8;       // free blocks (not even in the arena)
console.log('holding');
setInterval(() => {}, 1000);
`;

test('a process killed while holding the lock mid-update: the next operation repairs the queue and waits no longer than the death', { timeout: 60000 }, async () => {
  const name = uniqueName('repair');
  const q = MessageQueue.create<string>(name, { backend: 'shm', codec: 'json', capacity: 16, capacityBytes: 4096 });
  try {
    for (let i = 0; i < 5; i++) await q.send(`m${i}`, { priority: i % 2, ...T });
    const c = new Child(saboteur, { args: [name] });
    await c.waitFor('holding');
    // This receive finds the lock held and sleeps on it; the death wakes it.
    const pending = q.receive(T);
    await new Promise((r) => setTimeout(r, 50));
    c.kill('SIGKILL');
    assert.equal((await c.exited).signal, 'SIGKILL');
    assert.equal(await pending, 'm1');
    const s = q.stat();
    assert.equal(s.repairs, 1);
    assert.equal(s.lost, 0);
    assert.equal(s.messages, 4);
    assert.deepEqual([await q.receive(T), await q.receive(T), await q.receive(T), await q.receive(T)], ['m3', 'm0', 'm2', 'm4']);
    // The rebuilt free lists hold: fill to capacity twice over.
    for (let round = 0; round < 2; round++) {
      let n = 0;
      while (q.trySend(`x${n}`, { priority: n % 3 })) n++;
      assert.equal(n, 16);
      for (let i = 0; i < n; i++) await q.receive(T);
      assert.equal(q.stat().messages, 0);
    }
  } finally {
    await q.close();
  }
});

// Commits one send (or one receive) to the queue and is killed before it
// rings the doorbell, holding the queue's lock or after releasing it: what the
// shm backend does, cut short at the worst moment.
const storeUrl = new URL('./mqueue/shm-store.js', libraryUrl).href;
const diesBeforeRing = `
import { SharedMemory, Mutex } from 'multiproc';
import { ShmStore, MUTEX_OFFSET } from '${storeUrl}';
const [name, op, lock] = process.argv.slice(1);
const shm = SharedMemory.open('/mp.shmq.' + name);
const store = new ShmStore(shm.buffer);
const guard = new Mutex(shm, MUTEX_OFFSET).acquireSync({ timeout: 10000 });
if (op === 'send') store.put(1, 0, Uint8Array.of(1, 2, 3));
else if (store.take(0) === undefined) process.exit(3);
if (lock === 'released') guard.release();
process.kill(process.pid, 'SIGKILL');
`;

for (const lock of ['held', 'released']) {
  test(`a sender killed after its commit and before its ring (lock ${lock}): a receive already waiting still gets the message`, { timeout: 60000 }, async () => {
    const name = uniqueName('ringsend');
    const q = MessageQueue.create<Uint8Array>(name, { backend: 'shm', codec: 'raw' });
    try {
      const waiting = q.receive({ timeout: 15000 });
      await new Promise((r) => setTimeout(r, 50));
      const c = new Child(diesBeforeRing, { args: [name, 'send', lock] });
      assert.equal((await c.exited).signal, 'SIGKILL', c.stderr);
      assert.deepEqual(Uint8Array.from(await waiting), Uint8Array.of(1, 2, 3));
      assert.equal(q.stat().messages, 0);
      assert.equal(q.stat().repairs, lock === 'held' ? 1 : 0);
    } finally {
      await q.close();
    }
  });

  test(`a receiver killed after its commit and before its ring (lock ${lock}): a send already waiting for room still gets it`, { timeout: 60000 }, async () => {
    const name = uniqueName('ringrecv');
    const q = MessageQueue.create<string>(name, { backend: 'shm', codec: 'json', capacity: 1 });
    try {
      await q.send('first', T);
      const waiting = q.send('second', { timeout: 15000 });
      await new Promise((r) => setTimeout(r, 50));
      const c = new Child(diesBeforeRing, { args: [name, 'receive', lock] });
      assert.equal((await c.exited).signal, 'SIGKILL', c.stderr);
      await waiting;
      assert.equal(await q.receive(T), 'second');
      assert.equal(q.stat().repairs, lock === 'held' ? 1 : 0);
    } finally {
      await q.close();
    }
  });
}
