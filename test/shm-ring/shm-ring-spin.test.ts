// options.spinUs: async waits that spin before they poll and park. What is
// checked is behaviour: the option's arguments, messages and RPC calls that
// arrive right with a spinning peer (also a receive loop that waits ahead of
// its own next call), timeouts and aborts, and a spinning receiver whose peer
// goes idle still lets its event loop run and falls asleep.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { ShmRing, connect } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child } from '../helpers/child.js';
import { assertIdleReceiverSleeps } from '../helpers/idle-receiver.js';

leakGuard();

const code = (c: string) => (e: { code?: string }) => e.code === c;

test('spinUs: bad values are refused with Node-style codes before anything is created or opened', () => {
  const name = uniqueName('ring-spin-args');
  for (const [value, c] of [
    [-1, 'ERR_OUT_OF_RANGE'],
    [1001, 'ERR_OUT_OF_RANGE'],
    [1.5, 'ERR_OUT_OF_RANGE'],
    ['10', 'ERR_INVALID_ARG_TYPE'],
  ] as const) {
    const spinUs = value as unknown as number;
    assert.throws(() => ShmRing.create(name, { spinUs }), code(c), `create ${String(value)}`);
    assert.throws(() => ShmRing.createDuplex(name, { spinUs }), code(c), `createDuplex ${String(value)}`);
    assert.throws(() => ShmRing.open(name, { spinUs }), code(c), `open ${String(value)}`);
    assert.throws(() => ShmRing.openDuplex(name, { spinUs }), code(c), `openDuplex ${String(value)}`);
  }
  for (const suffix of ['', '.0', '.1']) assert.equal(existsSync(`/dev/shm/mp.ring.${name}${suffix}`), false);
});

test('spinUs: a timeout and an abort end a spinning wait with their codes', { timeout: 30000 }, async () => {
  const ring = ShmRing.create<number>(uniqueName('ring-spin-wait'), { codec: 'json', spinUs: 1000 });
  try {
    await assert.rejects(ring.receive({ timeout: 30 }), code('ERR_MULTIPROC_TIMEOUT'));
    await assert.rejects(ring.receive({ signal: AbortSignal.timeout(30) }), (e: { name?: string }) => e.name === 'TimeoutError' || e.name === 'AbortError');
    ring.trySend(7);
    assert.equal(await ring.receive({ timeout: 5000 }), 7);
  } finally {
    await ring.close();
  }
});

test('spinUs: a spinning receive by type skips the others, and ends with ERR_MULTIPROC_CLOSED when the sender closes', { timeout: 30000 }, async () => {
  const name = uniqueName('ring-spin-type');
  const rx = ShmRing.create<string>(name, { codec: 'json', role: 'receiver', spinUs: 500 });
  const tx = ShmRing.open<string>(name, { codec: 'json', role: 'sender' });
  try {
    const one = rx.receive({ type: 1, timeout: 10000 });
    tx.trySend('two', { type: 2 });
    tx.trySend('one', { type: 1 });
    assert.equal(await one, 'one');
    assert.equal(await rx.receive({ timeout: 10000 }), 'two');
    const closed = rx.receive({ timeout: 10000 });
    await tx.close();
    await assert.rejects(closed, code('ERR_MULTIPROC_CLOSED'));
  } finally {
    await tx.close();
    await rx.close();
  }
});

test('spinUs: ping-pong and RPC with a spinning peer in another process, every reply right and in order', { timeout: 60000 }, async () => {
  const name = uniqueName('ring-spin-pp');
  const duplex = ShmRing.createDuplex<number[]>(name, { codec: 'json', capacity: 65536, spinUs: 200 });
  const rpcName = `${name}.rpc`;
  const rpcRing = ShmRing.createDuplex(rpcName, { capacity: 65536, spinUs: 200 });
  try {
    const child = new Child(`
      import { ShmRing, expose } from 'multiproc';
      const d = ShmRing.openDuplex(process.argv[1], { codec: 'json', spinUs: 200 });
      expose({ add: (a, b) => a + b, twice: async (x) => 2 * x }, ShmRing.openDuplex(process.argv[2], { spinUs: 200 }));
      console.log('ready');
      // Echo with the sequence number doubled, until the parent closes its end.
      for (;;) {
        let m;
        try { m = await d.receive({ timeout: 30000 }); } catch (e) { if (e.code === 'ERR_MULTIPROC_CLOSED') break; throw e; }
        await d.send([m[0], m[1] * 2]);
      }
      await d.close();
      process.exit(0);
    `, { args: [name, rpcName] });
    await child.waitFor('ready');
    for (let i = 0; i < 3000; i++) {
      await duplex.send([i, i + 1]);
      assert.deepEqual(await duplex.receive({ timeout: 20000 }), [i, 2 * (i + 1)]);
    }
    // connect() receives ahead of its next call: a spin must not hold that call back for good.
    const remote = connect<{ add(a: number, b: number): number; twice(x: number): number }>(rpcRing, { timeout: 20000 });
    for (let i = 0; i < 2000; i++) {
      assert.equal(await remote.add(i, 1), i + 1);
      assert.equal(await remote.twice(i), 2 * i);
    }
    // Many calls in flight at once, through the same spinning ends.
    const all = await Promise.all(Array.from({ length: 500 }, (_, i) => remote.add(i, i)));
    assert.deepEqual(all, Array.from({ length: 500 }, (_, i) => 2 * i));
    await duplex.close();
    const r = await child.exited;
    assert.equal(r.code, 0, r.stderr);
  } finally {
    await duplex.close();
    await rpcRing.close();
  }
});

test('spinUs: a receiver whose peer went idle stops spinning, lets its event loop run and sleeps', { timeout: 60000 }, async () => {
  // A few quick messages first, so the receiver is spinning when the sender stops.
  await assertIdleReceiverSleeps(`{ role: 'receiver', spinUs: 1000 }`, `for (let i = 0; i < 100; i++) { tx.trySend(i); await ring.receive({ timeout: 5000 }); }`);
});

test('spinUs: a typed receive that finds only records of another type spins once, then lets its event loop run', { timeout: 30000 }, async () => {
  // A sender in microtasks puts a type-1 record in whenever the receiver has
  // taken the last one out of the ring, and stops after 100 microtasks
  // without that. So every spin finds a record, but none this receive takes.
  // A receive that spins again right away (through microtasks) keeps the
  // sender going to its limit before the event loop gets a turn.
  const name = uniqueName('ring-spin-starve');
  const rx = ShmRing.create<number | string>(name, { codec: 'json', capacity: 1 << 20, role: 'receiver', spinUs: 1000 });
  const tx = ShmRing.open<number | string>(name, { codec: 'json', role: 'sender' });
  try {
    const limit = 1000;
    let sent = 0;
    let idle = 0;
    let turned = false;
    const pump = (): void => {
      if (turned || sent >= limit) return;
      if (tx.stats().messagesQueued === 0 && tx.trySend(sent, { type: 1 })) {
        sent++;
        idle = 0;
      } else if (++idle > 100) return;
      queueMicrotask(pump);
    };
    const got = rx.receive({ type: 2, timeout: 20000 });
    queueMicrotask(pump);
    setImmediate(() => {
      turned = true;
      tx.trySend('two', { type: 2 });
    });
    assert.equal(await got, 'two');
    assert.ok(sent <= 10, `${sent} records of type 1 were taken before the event loop got a turn`);
  } finally {
    await tx.close();
    await rx.close();
  }
});
