// How ShmRing waits: blocking forms in worker threads, an idle receiver that
// sleeps in the kernel while the event loop keeps running, and wake-ups.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { ShmRing } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child, libraryUrl } from '../helpers/child.js';
import { assertIdleReceiverSleeps } from '../helpers/idle-receiver.js';

leakGuard();

/** Runs `body` in a worker thread; the promise settles with what it returned (listening from the start, so no message is missed). */
function worker(body: string, workerData: unknown): Promise<unknown> {
  const w = new Worker(
    `
    const { workerData, parentPort } = require('node:worker_threads');
    import(${JSON.stringify(libraryUrl)})
      .then((lib) => (async () => { ${body} })())
      .then((r) => parentPort.postMessage({ ok: r }), (e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
    `,
    { eval: true, workerData },
  );
  const done = once(w, 'message').then(async (args) => {
    const m = args[0] as { ok?: unknown; error?: string };
    await w.terminate();
    if (m.error !== undefined) assert.fail(m.error);
    return m.ok;
  });
  // Awaited later; a failure meanwhile is not "unhandled".
  done.catch(() => undefined);
  return done;
}

for (const mode of ['spsc', 'mpmc'] as const) {
  test(`${mode}: receiveSync and sendSync in worker threads`, { timeout: 60000 }, async () => {
    const name = uniqueName('ring-w');
    const ring = ShmRing.create<number>(name, { mode, capacity: 4096, codec: 'json', role: 'sender' });
    const back = ShmRing.create<number>(`${name}.back`, { mode, capacity: 4096, codec: 'json', role: 'receiver' });
    try {
      // The worker blocks in receiveSync until each message comes, and answers with sendSync.
      const w = worker(
        `
        const { ShmRing } = lib;
        const rx = ShmRing.open(workerData.name, { codec: 'json', role: 'receiver' });
        const tx = ShmRing.open(workerData.name + '.back', { codec: 'json', role: 'sender' });
        let sum = 0;
        for (;;) {
          let m;
          try { m = rx.receiveSync({ timeout: 20000 }); } catch (e) { if (e.code === 'ERR_MULTIPROC_CLOSED') break; throw e; }
          sum += m;
          tx.sendSync(m * 2, { timeout: 20000 });
        }
        const timedOut = (() => { try { rx.receiveSync({ timeout: 10 }); } catch (e) { return e.code; } })();
        tx.close(); rx.close();
        return { sum, timedOut };
      `,
        { name },
      );
      let doubled = 0;
      for (let i = 1; i <= 300; i++) {
        await ring.send(i, { timeout: 20000 });
        doubled += await back.receive({ timeout: 20000 });
      }
      await ring.close();
      const r = (await w) as { sum: number; timedOut: string };
      assert.equal(r.sum, 45150);
      assert.equal(doubled, 90300);
      assert.equal(r.timedOut, 'ERR_MULTIPROC_CLOSED', 'the senders closed: receiveSync ends rather than waiting');
    } finally {
      await ring.close();
      await back.close();
    }
  });
}

test('a blocking send waits for room in a worker until the main thread receives', { timeout: 60000 }, async () => {
  const name = uniqueName('ring-w2');
  const ring = ShmRing.create<Uint8Array>(name, { capacity: 4096, codec: 'raw', role: 'receiver' });
  try {
    const w = worker(
      `
      const rx = lib.ShmRing.open(workerData.name, { codec: 'raw', role: 'sender' });
      for (let i = 0; i < 100; i++) rx.sendSync(new Uint8Array(1000).fill(i), { timeout: 20000 });
      rx.close();
      return 'done';
    `,
      { name },
    );
    let i = 0;
    for await (const m of ring) {
      assert.equal(m.length, 1000);
      assert.equal(m[999], i);
      i++;
    }
    assert.equal(i, 100);
    assert.equal(await w, 'done');
  } finally {
    await ring.close();
  }
});

test('an idle receiver sleeps: the event loop keeps ticking and the process stays nearly idle', { timeout: 60000 }, async () => {
  await assertIdleReceiverSleeps(`{ role: 'receiver' }`);
});

test('a sleeping receiver in another process is woken by a send', { timeout: 60000 }, async () => {
  const name = uniqueName('ring-wake');
  const ring = ShmRing.create<string>(name, { codec: 'json', role: 'sender' });
  try {
    const child = new Child(`
      import { ShmRing } from 'multiproc';
      const ring = ShmRing.open(process.argv[1], { codec: 'json', role: 'receiver' });
      console.log('waiting');
      for (let i = 0; i < 3; i++) console.log('got ' + (await ring.receive({ timeout: 20000 })));
      ring.close();
    `, { args: [name] });
    await child.waitFor('waiting');
    for (const word of ['one', 'two', 'three']) {
      // Long enough for the receiver to fall asleep in between.
      await new Promise((r) => setTimeout(r, 300));
      await ring.send(word);
    }
    const r = await child.exited;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /got one\ngot two\ngot three/);
  } finally {
    await ring.close();
  }
});

test('a send waiting for room keeps its message while other sends encode meanwhile (structured codec)', { timeout: 60000 }, async () => {
  const name = uniqueName('ring-wait-enc');
  const rx = ShmRing.create<unknown>(name, { capacity: 4096, codec: 'structured', role: 'receiver' });
  const tx = ShmRing.open<unknown>(name, { role: 'sender' });
  try {
    let sent = 0;
    while (tx.trySend({ n: sent, fill: 'x'.repeat(40) })) sent++;
    // Full: this send waits, with its bytes encoded before it did.
    const waiting = tx.send({ n: 'waiting', fill: 'y'.repeat(40) }, { timeout: 20000 });
    // Other encodes meanwhile (refused for room, but encoded first).
    for (let i = 0; i < 10; i++) assert.equal(tx.trySend({ n: `other ${i}`, fill: 'z'.repeat(40) }), false);
    const got: unknown[] = [];
    // Receiving frees room (the sender is woken once a quarter is free).
    for (let i = 0; i <= sent; i++) got.push(await rx.receive({ timeout: 20000 }));
    await waiting;
    assert.deepStrictEqual(got.at(-1), { n: 'waiting', fill: 'y'.repeat(40) });
    assert.deepStrictEqual(got.slice(0, sent), Array.from({ length: sent }, (_, n) => ({ n, fill: 'x'.repeat(40) })));
  } finally {
    await tx.close();
    await rx.close();
  }
});

for (const mode of ['spsc', 'mpmc'] as const) {
  test(`${mode}: a message that must wrap past the end wakes a parked receiver for the pad it leaves`, { timeout: 60000 }, async () => {
    const name = uniqueName('ring-pad');
    const tx = ShmRing.create<Uint8Array>(name, { mode, capacity: 4096, codec: 'raw', role: 'sender', ...(mode === 'mpmc' ? { slotSize: 64 } : {}) });
    const rx = ShmRing.open<Uint8Array>(name, { codec: 'raw', role: 'receiver' });
    try {
      const first = rx.receive({ timeout: 20000 });
      await tx.send(new Uint8Array(2000).fill(1), { timeout: 20000 });
      assert.equal((await first).length, 2000);
      const second = rx.receive({ timeout: 20000 });
      // The receiver polls for at most a millisecond, then parks.
      await delay(100);
      // 3000 bytes fit neither before the end nor, until the pad there is
      // taken, at the start: the sender publishes a pad and waits for room.
      // Unless the pad wakes the parked receiver, both sleep until its wait
      // slice (1 s) ends, and this send times out.
      await tx.send(new Uint8Array(3000).fill(2), { timeout: 600 });
      const m = await second;
      assert.equal(m.length, 3000);
      assert.equal(m[0], 2);
    } finally {
      await rx.close();
      await tx.close();
    }
  });
}

for (const mode of ['spsc', 'mpmc'] as const) {
  test(`${mode}: two receives of one handle parked at once are both woken`, { timeout: 60000 }, async () => {
    const name = uniqueName('ring-two');
    const rx = ShmRing.create<string>(name, { mode, capacity: 4096, codec: 'json', role: 'receiver' });
    const tx = ShmRing.open<string>(name, { codec: 'json', role: 'sender' });
    try {
      // The ring's wait slice is 1 s: a wait that is never woken fails these timeouts.
      const waits = [rx.receive({ timeout: 700 }), rx.receive({ timeout: 700 })];
      await delay(100);
      assert.ok(tx.trySend('first'));
      await delay(50);
      assert.ok(tx.trySend('second'));
      assert.deepEqual((await Promise.all(waits)).sort(), ['first', 'second']);
    } finally {
      await tx.close();
      await rx.close();
    }
  });
}
