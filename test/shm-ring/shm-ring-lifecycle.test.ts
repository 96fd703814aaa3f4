// ShmRing names, options, roles and lifetime: who owns the segment, what is
// refused and with which code, duplex pairs, and records that wrap around.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { SharedMemory, ShmRing } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child, runChild } from '../helpers/child.js';

leakGuard();

const code = (c: string) => (e: { code?: string }) => e.code === c;

test('the creator owns the name: its close removes it, an opener\'s close does not', async () => {
  const name = uniqueName('ring-own');
  const a = ShmRing.create(name);
  assert.equal(a.owner, true);
  assert.equal(a.name, name);
  assert.equal(a.mode, 'spsc');
  assert.equal(a.capacity, 1 << 20);
  assert.ok(existsSync(`/dev/shm/mp.ring.${name}`));
  const b = ShmRing.open(name);
  assert.equal(b.owner, false);
  await b.close();
  assert.ok(existsSync(`/dev/shm/mp.ring.${name}`));
  const p = a.close();
  assert.equal(a.close(), p, 'idempotent');
  await p;
  assert.equal(existsSync(`/dev/shm/mp.ring.${name}`), false);
  assert.throws(() => a.trySend('x'), code('ERR_MULTIPROC_CLOSED'));
  assert.throws(() => a.tryReceive(), code('ERR_MULTIPROC_CLOSED'));
  assert.throws(() => ShmRing.open(name), code('ENOENT'));
});

test('creation modes: create fails on an existing name, openOrCreate attaches, purgeAndCreate replaces', async () => {
  const name = uniqueName('ring-mode');
  const a = ShmRing.create(name, { capacity: 8192 });
  try {
    assert.throws(() => ShmRing.create(name, { capacity: 8192 }), code('EEXIST'));
    const b = ShmRing.create(name, { capacity: 8192, creation: 'openOrCreate' });
    assert.equal(b.owner, false);
    await b.close();
    const c0 = ShmRing.create(name, { creation: 'openOrCreate' });
    assert.equal(c0.capacity, 8192, 'the existing ring\'s parameters win');
    await c0.close();
    assert.throws(() => ShmRing.create(name, { capacity: 8192, mode: 'mpmc', creation: 'openOrCreate' }), code('ERR_MULTIPROC_INCOMPATIBLE'));
    assert.throws(() => ShmRing.create(name, { capacity: 16384, creation: 'openOrCreate' }), code('ERR_MULTIPROC_INCOMPATIBLE'));
    a.trySend('old');
    const c = ShmRing.create(name, { capacity: 8192, creation: 'purgeAndCreate' });
    assert.equal(c.tryReceive(), undefined, 'a fresh ring');
    await c.close();
  } finally {
    await a.close();
  }
});

test('a segment that is not a ring is refused with ERR_MULTIPROC_INCOMPATIBLE', () => {
  const name = uniqueName('ring-bad');
  const shm = SharedMemory.create(`mp.ring.${name}`, 65536);
  try {
    new Int32Array(shm.buffer)[7] = 1; // "ready", with no ring header
    assert.throws(() => ShmRing.open(name), code('ERR_MULTIPROC_INCOMPATIBLE'));
  } finally {
    shm.close();
  }
});

test('bad names and options are refused with Node-style codes before anything is created', () => {
  const name = uniqueName('ring-args');
  assert.throws(() => ShmRing.create('a/b'), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => ShmRing.create(42 as unknown as string), code('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => ShmRing.create(name, { capacity: 5000 }), code('ERR_OUT_OF_RANGE'));
  assert.throws(() => ShmRing.create(name, { capacity: 1024 }), code('ERR_OUT_OF_RANGE'));
  assert.throws(() => ShmRing.create(name, { mode: 'spmc' as 'spsc' }), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => ShmRing.create(name, { capacty: 4096 } as object), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => ShmRing.create(name, { slotSize: 64 }), code('ERR_INVALID_ARG_VALUE'), 'slotSize is for mpmc');
  assert.throws(() => ShmRing.create(name, { mode: 'mpmc', slotSize: 48 }), code('ERR_OUT_OF_RANGE'));
  assert.throws(() => ShmRing.create(name, { mode: 'mpmc', maxSenders: 65 }), code('ERR_OUT_OF_RANGE'));
  assert.throws(() => ShmRing.create(name, { capacity: 4096, maxMessageSize: 4096 }), code('ERR_OUT_OF_RANGE'));
  assert.throws(() => ShmRing.create(name, { role: 'both' as 'sender' }), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => ShmRing.create(name, { codec: 'xml' as 'json' }), code('ERR_INVALID_ARG_VALUE'));
  assert.equal(existsSync(`/dev/shm/mp.ring.${name}`), false);
});

test('trySend options: checked on every call, also when the same object is passed again and changed', async () => {
  const name = uniqueName('ring-send-args');
  const rx = ShmRing.create<string>(name, { capacity: 4096, codec: 'json', role: 'receiver' });
  const tx = ShmRing.open<string>(name, { codec: 'json', role: 'sender' });
  try {
    const options: { type: number; priority?: number } = { type: 7 };
    assert.equal(tx.trySend('a', options), true);
    assert.equal(tx.trySend('b', options), true);
    options.type = 0;
    assert.throws(() => tx.trySend('c', options), code('ERR_OUT_OF_RANGE'));
    options.type = 8;
    options.priority = 1.5;
    assert.throws(() => tx.trySend('c', options), code('ERR_OUT_OF_RANGE'));
    delete options.priority;
    assert.equal(tx.trySend('d', options), true);
    assert.throws(() => tx.trySend('e', { type: 1, timeout: 5 } as object), code('ERR_INVALID_ARG_VALUE'));
    assert.throws(() => tx.trySend('e', 'fast' as unknown as object), code('ERR_INVALID_ARG_TYPE'));
    const got = [1, 2, 3].map(() => rx.tryReceiveMessage());
    assert.deepEqual(got.map((m) => [m?.data, m?.type]), [['a', 7], ['b', 7], ['d', 8]]);
    assert.equal(rx.tryReceive(), undefined);
  } finally {
    await tx.close();
    await rx.close();
  }
});

test('trySend checks an options object it saw last time only for a changed type or priority (without a priority too)', async () => {
  const name = uniqueName('ring-send-reuse');
  const rx = ShmRing.create<string>(name, { capacity: 4096, codec: 'json', role: 'receiver' });
  const tx = ShmRing.open<string>(name, { codec: 'json', role: 'sender' });
  try {
    // Checking the keys of the options lists them: count that.
    let listed = 0;
    const options = new Proxy({ type: 3 } as { type: number }, {
      ownKeys: (target) => {
        listed++;
        return Reflect.ownKeys(target);
      },
    });
    for (let i = 0; i < 5; i++) assert.equal(tx.trySend(`m${i}`, options), true);
    assert.equal(listed, 1, 'the same options object, unchanged, was checked again');
    options.type = 4;
    assert.equal(tx.trySend('changed', options), true);
    assert.equal(listed, 2);
    const got = Array.from({ length: 6 }, () => rx.tryReceiveMessage()?.type);
    assert.deepEqual(got, [3, 3, 3, 3, 3, 4]);
  } finally {
    await tx.close();
    await rx.close();
  }
});

test('roles: an SPSC ring admits one live sender and one live receiver; a handle opened for one role refuses the other', async () => {
  const name = uniqueName('ring-roles');
  const rx = ShmRing.create<string>(name, { codec: 'json', role: 'receiver' });
  try {
    const tx = ShmRing.open<string>(name, { codec: 'json', role: 'sender' });
    assert.throws(() => ShmRing.open(name, { role: 'sender' }), code('ERR_MULTIPROC_BUSY'));
    assert.throws(() => ShmRing.open(name, { role: 'receiver' }), code('ERR_MULTIPROC_BUSY'));
    const lazy = ShmRing.open<string>(name, { codec: 'json' });
    assert.throws(() => lazy.trySend('x'), code('ERR_MULTIPROC_BUSY'), 'a handle without a role registers at its first send');
    await lazy.close();
    assert.throws(() => rx.trySend('x'), code('ERR_INVALID_STATE'));
    await assert.rejects(tx.receive(), code('ERR_INVALID_STATE'));
    await tx.send('a');
    await tx.close();
    // The sender left: another may come.
    const tx2 = ShmRing.open<string>(name, { codec: 'json', role: 'sender' });
    await tx2.send('b');
    assert.deepEqual([await rx.receive({ timeout: 1000 }), await rx.receive({ timeout: 1000 })], ['a', 'b']);
    await tx2.close();
  } finally {
    await rx.close();
  }
});

test('mpmc: maxSenders and maxReceivers bound the parties', async () => {
  const name = uniqueName('ring-parties');
  const owner = ShmRing.create(name, { mode: 'mpmc', maxSenders: 2, maxReceivers: 1 });
  const handles = [ShmRing.open(name, { role: 'sender' }), ShmRing.open(name, { role: 'sender' }), ShmRing.open(name, { role: 'receiver' })];
  try {
    assert.throws(() => ShmRing.open(name, { role: 'sender' }), (e: any) => e.code === 'ERR_MULTIPROC_BUSY' && /2 live senders, its maximum \(maxSenders\)/.test(e.message));
    // One receiver at most here: an MPMC ring still, not "single-consumer".
    assert.throws(() => ShmRing.open(name, { role: 'receiver' }), (e: any) => e.code === 'ERR_MULTIPROC_BUSY' && /1 live receiver, its maximum \(maxReceivers\)/.test(e.message));
    await handles[0]!.close();
    handles[0] = ShmRing.open(name, { role: 'sender' });
  } finally {
    for (const h of handles) await h.close();
    await owner.close();
  }
});

for (const mode of ['spsc', 'mpmc'] as const) {
  test(`${mode}: records of every size wrap around a small ring intact`, { timeout: 60000 }, async () => {
    const name = uniqueName('ring-wrap');
    const tx = ShmRing.create<Uint8Array>(name, { mode, capacity: 4096, codec: 'raw', role: 'sender' });
    const rx = ShmRing.open<Uint8Array>(name, { codec: 'raw', role: 'receiver' });
    try {
      const count = 3000;
      const size = (i: number): number => (i * 7919) % (tx.maxMessageSize + 1);
      const receiving = (async () => {
        for (let i = 0; i < count; i++) {
          const m = await rx.receive({ timeout: 20000 });
          if (m.length !== size(i)) assert.fail(`message ${i}: ${m.length} bytes, not ${size(i)}`);
          for (let k = 0; k < m.length; k += 97) if (m[k] !== ((i + k) & 0xff)) assert.fail(`message ${i} byte ${k}`);
        }
      })();
      for (let i = 0; i < count; i++) {
        const m = new Uint8Array(size(i));
        for (let k = 0; k < m.length; k += 97) m[k] = (i + k) & 0xff;
        await tx.send(m, { timeout: 20000 });
      }
      await receiving;
    } finally {
      rx.destroy();
      tx.destroy();
    }
  });
}

test('stats: queue depth from the ring, pids of the other process, capacity', async () => {
  const name = uniqueName('ring-stats');
  const rx = ShmRing.create<Uint8Array>(name, { capacity: 8192, codec: 'raw', role: 'receiver' });
  try {
    const r = await new Child(`
      import { ShmRing } from 'multiproc';
      const tx = ShmRing.open(process.argv[1], { codec: 'raw', role: 'sender' });
      for (let i = 0; i < 5; i++) tx.trySend(new Uint8Array(10 * (i + 1)));
      tx.close();
    `, { args: [name] }).exited;
    assert.equal(r.code, 0, r.stderr);
    let s = rx.stats();
    assert.equal(s.messagesQueued, 5);
    assert.equal(s.bytesQueued, 150);
    assert.equal(s.capacityBytes, 8192);
    assert.ok(s.lastSendPid !== null && s.lastSendPid !== process.pid);
    await rx.receive();
    await rx.receive();
    s = rx.stats();
    assert.equal(s.messagesQueued, 3);
    assert.equal(s.bytesQueued, 120);
    assert.equal(s.messagesReceived, 2);
    assert.equal(s.bytesReceived, 30);
    assert.equal(s.lastReceivePid, process.pid);
    assert.ok(s.lastReceiveTime instanceof Date);
  } finally {
    await rx.close();
  }
});

test('stats: a receiver\'s total ahead of the sender\'s for a moment reads as an empty queue, not 2^32 - 1', async () => {
  const name = uniqueName('ring-race');
  const tx = ShmRing.create<Uint8Array>(name, { capacity: 8192, codec: 'raw', role: 'sender' });
  const rx = ShmRing.open<Uint8Array>(name, { codec: 'raw', role: 'receiver' });
  try {
    tx.trySend(new Uint8Array(10));
    assert.equal((await rx.receive()).length, 10);
    // The sender counts a message after publishing it, so a receiver in
    // another process can count it first: the moment in between, made here
    // by putting the sender's totals (words 17 and 18) one message back.
    using seg = SharedMemory.open(`mp.ring.${name}`);
    const words = new Int32Array(seg.buffer, 0, 64);
    Atomics.sub(words, 17, 1);
    Atomics.sub(words, 18, 10);
    const s = rx.stats();
    assert.equal(s.messagesQueued, 0);
    assert.equal(s.bytesQueued, 0);
  } finally {
    await rx.close();
    await tx.close();
  }
});

test('duplex: two rings make a two-way channel between processes', { timeout: 60000 }, async () => {
  const name = uniqueName('ring-duplex');
  const ch = ShmRing.createDuplex<{ n: number }>(name, { codec: 'json', capacity: 8192 });
  try {
    assert.equal(ch.traits.direction, 'two-way');
    const child = new Child(`
      import { ShmRing } from 'multiproc';
      const ch = ShmRing.openDuplex(process.argv[1], { codec: 'json' });
      for await (const m of ch) await ch.send({ n: m.n * 10 });
      await ch.close();
    `, { args: [name] });
    for (let i = 1; i <= 20; i++) {
      await ch.send({ n: i });
      assert.deepEqual(await ch.receive({ timeout: 20000 }), { n: i * 10 });
    }
    await ch.sender.close();
    await assert.rejects(ch.receive({ timeout: 20000 }), code('ERR_MULTIPROC_CLOSED'));
    assert.equal((await child.exited).code, 0);
  } finally {
    await ch.close();
  }
});

for (const mode of ['spsc', 'mpmc'] as const) {
  test(`${mode}: received raw messages are copies: they stay intact while the ring moves on`, { timeout: 60000 }, async () => {
    const name = uniqueName('ring-keep');
    const tx = ShmRing.create<Uint8Array>(name, { mode, capacity: 1 << 16, codec: 'raw', role: 'sender' });
    const rx = ShmRing.open<Uint8Array>(name, { codec: 'raw', role: 'receiver' });
    try {
      const kept: Uint8Array[] = [];
      const size = (i: number): number => 1 + ((i * 37) % 3000);
      const receiving = (async () => {
        while (kept.length < 5000) kept.push(rx.tryReceive() ?? (await rx.receive({ timeout: 20000 })));
      })();
      for (let i = 0; i < 5000; i++) {
        const m = new Uint8Array(size(i)).fill(i & 0xff);
        if (!tx.trySend(m)) await tx.send(m, { timeout: 20000 });
      }
      await receiving;
      for (let i = 0; i < kept.length; i++) {
        const m = kept[i]!;
        if (m.length !== size(i) || m.some((b) => b !== (i & 0xff))) assert.fail(`message ${i} changed after it was received`);
        assert.equal(m.buffer instanceof SharedArrayBuffer, false);
      }
    } finally {
      rx.destroy();
      tx.destroy();
    }
  });
}

test('a parked receive ends with ABORT_ERR on abort and ERR_MULTIPROC_CLOSED on close; the message after an abort is not lost', { timeout: 30000 }, async () => {
  const name = uniqueName('ring-parked-end');
  const rx = ShmRing.create<string>(name, { capacity: 1 << 16, codec: 'json', role: 'receiver' });
  const tx = ShmRing.open<string>(name, { codec: 'json', role: 'sender' });
  try {
    // 50 ms is far past the polling budget: the receive is parked on the doorbell.
    const ac = new AbortController();
    const aborted = handled(rx.receive({ signal: ac.signal }));
    await new Promise((r) => setTimeout(r, 50));
    ac.abort(new Error('stop'));
    await assert.rejects(aborted, code('ABORT_ERR'));
    await tx.send('after');
    assert.equal(await rx.receive({ timeout: 20000 }), 'after');

    const pending = handled(rx.receive());
    await new Promise((r) => setTimeout(r, 50));
    await rx.close();
    await assert.rejects(pending, code('ERR_MULTIPROC_CLOSED'));
  } finally {
    await tx.close();
    await rx.close();
  }
});

/** Marks a promise handled, so that it may reject before the assertion awaits it. */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

test('both ends of a duplex keep one hidden class after sending and receiving (no deoptimization when one end first sends)', async () => {
  // The totals and stamps start as doubles: a first stamp that turned a
  // small-integer field into a double would give every handle a new hidden
  // class and throw away the code optimized for the old one.
  const r = await runChild(`
    import v8 from 'node:v8';
    import { ShmRing } from 'multiproc';
    v8.setFlagsFromString('--allow-natives-syntax');
    const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)');
    const name = process.argv[1];
    const a = ShmRing.createDuplex(name, { codec: 'raw' });
    const b = ShmRing.openDuplex(name, { codec: 'raw' });
    // Not used until the end: a handle whose hidden class changed no longer matches it.
    const witness = ShmRing.createDuplex(name + '-w', { codec: 'raw' });
    const ends = [a.sender, a.receiver, b.sender, b.receiver];
    const fresh = ends.every((e) => sameMap(e, witness.sender));
    for (let i = 0; i < 100; i++) {
      b.trySend(new Uint8Array(10));
      a.tryReceive();
    }
    a.trySend(new Uint8Array(10));
    b.tryReceive();
    console.log(JSON.stringify({ fresh, after: ends.map((e) => sameMap(e, witness.sender)) }));
    await b.close();
    await a.close();
    await witness.close();
  `, { args: [uniqueName('ring-map')] });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim()), { fresh: true, after: [true, true, true, true] });
});
