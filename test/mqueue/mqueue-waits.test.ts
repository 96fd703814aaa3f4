// How waiting operations of one MessageQueue handle behave together, on every
// backend: many waits sharing one AbortSignal; receives already waiting when
// the handle comes to hold a message too large for a receiveInto; `timeout: 0`
// as one attempt without a wait.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { MessageQueue, type MessageQueueBackend } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { devMqueueSkip } from '../helpers/mqueue.js';

leakGuard();
devMqueueSkip();

const backends: MessageQueueBackend[] = ['shm', 'sysv', 'posix'];

for (const backend of backends) {
  test(`${backend}: many waits on one signal add one listener to it, and its abort ends them all with ABORT_ERR`, async () => {
    const name = uniqueName(`sig${backend}`);
    const q = MessageQueue.create<number>(name, { backend, codec: 'json' });
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(`${w.name}: ${w.message}`);
    };
    process.on('warning', onWarning);
    try {
      const ac = new AbortController();
      const waits = Array.from({ length: 16 }, (_, i) => q.receive({ signal: ac.signal, timeout: 20000, ...(i % 2 === 1 ? { type: i } : {}) }));
      // A receive may take a moment to reach its wait in the backend.
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(getEventListeners(ac.signal, 'abort').length <= 1, `${getEventListeners(ac.signal, 'abort').length} abort listeners on the caller's signal`);
      ac.abort();
      const codes = await Promise.all(waits.map((w) => w.then(() => 'resolved', (e: any) => e.code)));
      assert.deepEqual(new Set(codes), new Set(['ABORT_ERR']));
      // process.emitWarning reports on the next tick.
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')), []);
    } finally {
      process.off('warning', onWarning);
      await q.close();
    }
  });
}

/** Settles to the number of bytes received, or the error code. */
const outcome = (p: Promise<Uint8Array | number>): Promise<number | string> =>
  p.then(
    (m) => (typeof m === 'number' ? m : m.length),
    (e: any) => e.code,
  );

/** The next event-loop turns: long enough for a receive to be asleep in its backend. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

for (const backend of backends) {
  test(`${backend}: a receive already waiting gets the message a tryReceiveInto of its handle took and could not fit`, async () => {
    const name = uniqueName(`held${backend}`);
    const q = MessageQueue.create<Uint8Array>(name, { backend, codec: 'raw' });
    try {
      const waiting = q.receive({ timeout: 10000 });
      await settle();
      // In one turn of the event loop: the tryReceiveInto takes the message, not the waiting receive.
      assert.equal(q.trySend(new Uint8Array(100).fill(9)), true);
      assert.throws(() => q.tryReceiveInto(new Uint8Array(10)), (e: any) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE' && e.size === 100);
      assert.deepEqual(Uint8Array.from(await waiting), new Uint8Array(100).fill(9));
      assert.equal(q.tryReceive(), undefined);
    } finally {
      await q.close();
    }
  });

  test(`${backend}: the held message goes to the first waiting receive that selects it; a waiting receiveInto too small for it passes it on`, async () => {
    const name = uniqueName(`held2${backend}`);
    const q = MessageQueue.create<Uint8Array>(name, { backend, codec: 'raw' });
    const other = MessageQueue.open<Uint8Array>(name, { backend, codec: 'raw' });
    try {
      const T = { timeout: 10000 };
      // Waiting in this order: a receiveInto with 10 bytes of room, receives of type 3, of any type, of type 2.
      const into = outcome(q.receiveInto(new Uint8Array(10), T));
      const ofType3 = outcome(q.receive({ type: 3, ...T }));
      const any = outcome(q.receive(T));
      const ofType2 = outcome(q.receive({ type: 2, ...T }));
      let type3Done = false;
      void ofType3.then(() => (type3Done = true));
      await settle();
      assert.equal(q.trySend(new Uint8Array(100), { type: 2 }), true);
      assert.throws(() => q.tryReceiveInto(new Uint8Array(20)), (e: any) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE');
      assert.equal(await into, 'ERR_MULTIPROC_MESSAGE_TOO_LARGE');
      assert.equal(await any, 100);
      await settle();
      assert.equal(type3Done, false, 'a receive of another type is not given it');
      // The others wait on for messages of their types.
      await other.send(new Uint8Array(50), { type: 2, ...T });
      assert.equal(await ofType2, 50);
      await other.send(new Uint8Array(7), { type: 3, ...T });
      assert.equal(await ofType3, 7);
    } finally {
      await other.close();
      await q.close();
    }
  });
}

/** A queue of `backend` that one 64-byte message fills. */
function smallQueue(name: string, backend: MessageQueueBackend): MessageQueue<Uint8Array> {
  if (backend === 'sysv') return MessageQueue.create<Uint8Array>(name, { backend, codec: 'raw', maxMessageSize: 64, capacityBytes: 64 });
  return MessageQueue.create<Uint8Array>(name, { backend, codec: 'raw', capacity: 1, maxMessageSize: 64 });
}

for (const backend of backends) {
  test(`${backend}: timeout 0 makes one attempt: what can be done now succeeds, else ERR_MULTIPROC_TIMEOUT; an aborted signal fails first`, async () => {
    const name = uniqueName(`t0${backend}`);
    const q = smallQueue(name, backend);
    try {
      const zero = { timeout: 0 };
      const code = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: any) => e.code);
      // Nothing queued: receives time out at once.
      assert.equal(await code(q.receive(zero)), 'ERR_MULTIPROC_TIMEOUT');
      assert.equal(await code(q.receiveInto(new Uint8Array(64), zero)), 'ERR_MULTIPROC_TIMEOUT');
      // Room: the send goes through.
      await q.send(new Uint8Array(64).fill(1), { type: 2, ...zero });
      assert.equal(q.stat().messages, 1);
      // Full: the next send times out, and nothing more is queued.
      assert.equal(await code(q.send(new Uint8Array(64).fill(2), zero)), 'ERR_MULTIPROC_TIMEOUT');
      assert.equal(q.stat().messages, 1);
      // An aborted signal fails before the attempt, whatever the queue holds.
      const ac = new AbortController();
      ac.abort();
      assert.equal(await code(q.receive({ ...zero, signal: ac.signal })), 'ABORT_ERR');
      assert.equal(await code(q.receiveInto(new Uint8Array(64), { ...zero, signal: ac.signal })), 'ABORT_ERR');
      assert.equal(q.stat().messages, 1);
      // A queued message: a receive of another type times out, one that selects it gets it.
      assert.equal(await code(q.receive({ type: 3, ...zero })), 'ERR_MULTIPROC_TIMEOUT');
      const m = await q.receiveMessage({ type: 2, ...zero });
      assert.deepEqual([m.type, m.size, m.data[0]], [2, 64, 1]);
      assert.equal(q.stat().messages, 0);
      assert.equal(await code(q.send(new Uint8Array(1), { ...zero, signal: ac.signal })), 'ABORT_ERR');
      assert.equal(q.stat().messages, 0);
      // receiveInto too, and the message a too-small target left with the handle.
      await q.send(new Uint8Array(64).fill(3), zero);
      assert.equal(await code(q.receiveInto(new Uint8Array(8), zero)), 'ERR_MULTIPROC_MESSAGE_TOO_LARGE');
      const target = new Uint8Array(64);
      assert.equal(await q.receiveInto(target, zero), 64);
      assert.equal(target[63], 3);
      await q.send(new Uint8Array(64).fill(4), zero);
      assert.equal(await code(q.receiveInto(new Uint8Array(8), zero)), 'ERR_MULTIPROC_MESSAGE_TOO_LARGE');
      assert.equal((await q.receive(zero))[0], 4);
    } finally {
      await q.close();
    }
  });
}
