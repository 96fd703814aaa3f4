// ShmRing against the channel contract (docs/api/channels.md) where a ring
// has its own paths: an aborted signal, timeouts while records this call
// cannot take keep arriving, concurrent waits on one handle, names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { ShmRing } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { libraryUrl } from '../helpers/child.js';

leakGuard();

const code = (c: string) => (e: { code?: string }) => e.code === c;

for (const mode of ['spsc', 'mpmc'] as const) {
  test(`${mode}: a signal aborted already fails every wait with ABORT_ERR and nothing is sent or taken`, { timeout: 30000 }, async () => {
    const name = uniqueName('ring-abort');
    const rx = ShmRing.create<number>(name, { mode, codec: 'json', capacity: 4096 });
    const tx = ShmRing.open<number>(name, { codec: 'json' });
    try {
      const reason = new Error('stop');
      const ctl = new AbortController();
      ctl.abort(reason);
      const signal = ctl.signal;
      const aborted = (e: { code?: string; cause?: unknown }) => e.code === 'ABORT_ERR' && e.cause === reason;
      // Room for all of these: each call could complete at once.
      await assert.rejects(tx.send(1, { signal }), aborted, 'send');
      await assert.rejects(tx.reserve(8, { signal }), aborted, 'reserve');
      assert.equal(tx.stats().messagesSent, 0);
      assert.ok(tx.trySend(2));
      // The same options object twice: the second call takes the parsed-options shortcut.
      const opts = { signal };
      await assert.rejects(rx.receive(opts), aborted, 'receive');
      await assert.rejects(rx.receive(opts), aborted, 'receive, same options');
      await assert.rejects(rx.receiveMessage({ signal }), aborted, 'receiveMessage');
      await assert.rejects(rx.receiveView({ signal }), aborted, 'receiveView');
      await assert.rejects(rx.receiveInto(new Uint8Array(16), { signal }), aborted, 'receiveInto');
      assert.equal(rx.stats().messagesReceived, 0);
      // A signal that aborts later, passed in the same cached options object, is honoured too.
      const later = new AbortController();
      const reused = { signal: later.signal };
      assert.equal(await rx.receive(reused), 2);
      later.abort(reason);
      assert.ok(tx.trySend(3));
      await assert.rejects(rx.receive(reused), aborted, 'receive, cached options, aborted since');
      assert.equal(rx.tryReceive(), 3);
    } finally {
      await tx.close();
      await rx.close();
    }
  });
}

/**
 * Sends a type-1 message on `tx` once per event-loop turn until stopped; a
 * guard stops it after `guardMs` and sends one of type 2, so a wait that
 * ignores its deadline ends (with the wrong outcome) instead of hanging.
 */
function typeOneStream(tx: ShmRing<unknown>, guardMs: number, burstMs = 0): { stop(): void; sent(): number } {
  let on = true;
  let n = 0;
  const pump = (): void => {
    if (!on) return;
    // With burstMs, one message every few microseconds for that long per turn (for a receiver in another thread).
    const end = performance.now() + burstMs;
    do if (tx.trySend(n, { type: 1 })) n++;
    while (performance.now() < end);
    setImmediate(pump);
  };
  setImmediate(pump);
  const guard = setTimeout(() => {
    on = false;
    tx.trySend('late', { type: 2 });
  }, guardMs);
  return {
    stop: () => {
      on = false;
      clearTimeout(guard);
    },
    sent: () => n,
  };
}

for (const mode of ['spsc', 'mpmc'] as const) {
  test(`${mode}: a typed receive ends at its timeout, or on abort, while messages of another type keep coming`, { timeout: 30000 }, async () => {
    const name = uniqueName('ring-type-timeout');
    const rx = ShmRing.create<unknown>(name, { mode, codec: 'json', capacity: 1 << 20, role: 'receiver' });
    const tx = ShmRing.open<unknown>(name, { codec: 'json', role: 'sender' });
    try {
      let stream = typeOneStream(tx, 5000);
      await assert.rejects(rx.receive({ type: 2, timeout: 100 }), code('ERR_MULTIPROC_TIMEOUT'));
      assert.ok(stream.sent() > 0);
      const ctl = new AbortController();
      setTimeout(() => ctl.abort(), 100);
      await assert.rejects(rx.receiveMessage({ type: 2, signal: ctl.signal }), code('ABORT_ERR'));
      stream.stop();
      // A spinning handle too.
      const spinner = ShmRing.open<unknown>(name, { codec: 'json', spinUs: 200 });
      try {
        await rx.close();
        stream = typeOneStream(tx, 5000);
        await assert.rejects(spinner.receive({ type: 2, timeout: 100 }), code('ERR_MULTIPROC_TIMEOUT'));
        stream.stop();
      } finally {
        await spinner.close();
      }
    } finally {
      await tx.close();
      await rx.close();
    }
  });
}

test('receiveSync by type in a worker thread ends at its timeout while messages of another type keep coming', { timeout: 30000 }, async () => {
  const name = uniqueName('ring-type-timeout-sync');
  const tx = ShmRing.create<unknown>(name, { codec: 'json', capacity: 1 << 20, role: 'sender' });
  try {
    const w = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads');
      import(${JSON.stringify(libraryUrl)}).then(({ ShmRing }) => {
        const rx = ShmRing.open(workerData, { codec: 'json', role: 'receiver' });
        parentPort.postMessage('ready');
        let r;
        try { r = rx.receiveSync({ type: 2, timeout: 200 }); } catch (e) { r = e.code; }
        rx.close();
        parentPort.postMessage(r);
      });
      `,
      { eval: true, workerData: name },
    );
    const messages = once(w, 'message');
    await messages;
    const result = once(w, 'message');
    const stream = typeOneStream(tx, 5000, 2);
    const [r] = await result;
    stream.stop();
    await w.terminate();
    assert.equal(r, 'ERR_MULTIPROC_TIMEOUT');
  } finally {
    await tx.close();
  }
});

for (const mode of ['spsc', 'mpmc'] as const) {
  test(`${mode}: receiveMessage calls in flight at once each report their own message's type, priority and size`, { timeout: 30000 }, async () => {
    const name = uniqueName('ring-msg-race');
    const rx = ShmRing.create<string>(name, { mode, codec: 'json', capacity: 4096, role: 'receiver' });
    const tx = ShmRing.open<string>(name, { codec: 'json', role: 'sender' });
    const size = (s: string): number => Buffer.byteLength(JSON.stringify(s));
    const check = (m: { data: string; type: number; priority: number; size: number }): void => {
      const type = m.data.length;
      assert.deepEqual(m, { data: m.data, type, priority: type === 4 ? 7 : 0, size: size(m.data) });
    };
    try {
      // Both waiting, then two arrive together.
      const waiting = Promise.all([rx.receiveMessage({ timeout: 10000 }), rx.receiveMessage({ timeout: 10000 })]);
      setTimeout(() => {
        tx.trySend('cc', { type: 2 });
        tx.trySend('bbbbbbbb', { type: 8 });
      }, 20);
      const both = await waiting;
      assert.deepEqual(both.map((m) => m.data).sort(), ['bbbbbbbb', 'cc']);
      both.forEach(check);
      // Ready already (one with a priority: taken through the inbox).
      tx.trySend('a', { type: 1 });
      tx.trySend('dddd', { type: 4, priority: 7 });
      const ready = await Promise.all([rx.receiveMessage(), rx.receiveMessage()]);
      assert.deepEqual(ready.map((m) => m.data).sort(), ['a', 'dddd']);
      ready.forEach(check);
    } finally {
      await tx.close();
      await rx.close();
    }
  });
}

test('createDuplex and openDuplex refuse a bad name before anything is created or opened', () => {
  const long = 'n'.repeat(199);
  for (const [value, c] of [
    [42, 'ERR_INVALID_ARG_TYPE'],
    [undefined, 'ERR_INVALID_ARG_TYPE'],
    ['', 'ERR_INVALID_ARG_VALUE'],
    ['a/b', 'ERR_INVALID_ARG_VALUE'],
    [long, 'ERR_INVALID_ARG_VALUE'],
  ] as const) {
    const name = value as unknown as string;
    assert.throws(() => ShmRing.createDuplex(name), code(c), `createDuplex ${String(value)}`);
    assert.throws(() => ShmRing.openDuplex(name), code(c), `openDuplex ${String(value)}`);
  }
  for (const n of ['42', 'undefined', '', long]) for (const suffix of ['.0', '.1']) assert.equal(existsSync(`/dev/shm/mp.ring.${n}${suffix}`), false);
});
