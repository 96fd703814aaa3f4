// A ShmRing handle's inbox (where receives by type and priorities choose):
// it takes at most about `capacity` bytes from the ring, so a slow receiver
// still makes the ring fill and its senders wait.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShmRing } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

const code = (c: string) => (e: { code?: string }) => e.code === c;

for (const mode of ['spsc', 'mpmc'] as const) {
  for (const how of ['priority', 'type'] as const) {
    test(`${mode}: once the inbox is in use (${how}), the ring still fills and senders wait; nothing is lost or reordered`, { timeout: 30000 }, async () => {
      const name = uniqueName('ring-inbox-bp');
      const capacity = 4096;
      const rx = ShmRing.create<Uint8Array>(name, { mode, codec: 'raw', capacity, role: 'receiver' });
      const tx = ShmRing.open<Uint8Array>(name, { codec: 'raw', role: 'sender' });
      try {
        const message = (n: number): Uint8Array => new Uint8Array(100).fill(n & 255);
        let sent = 0;
        // A message with a priority makes every receive choose in the inbox from now on.
        if (how === 'priority') assert.ok(tx.trySend(message(sent++), { priority: 1 }));
        const fill = (): void => {
          while (tx.trySend(message(sent))) sent++;
        };
        fill();
        // A receive by a type nobody sends moves the ready records into the inbox.
        if (how === 'type') await assert.rejects(rx.receive({ type: 2, timeout: 0 }), code('ERR_MULTIPROC_TIMEOUT'));
        let received = 0;
        let maxBytes = 0;
        // A slow receiver: one message per full ring.
        for (let i = 0; i < 100; i++) {
          const m = await rx.receive({ timeout: 10000 });
          assert.equal(m[0], received & 255, `message ${received} in order`);
          received++;
          fill();
          maxBytes = Math.max(maxBytes, rx.stats().bytesQueued!);
        }
        // The ring (capacity) and the inbox (about capacity) hold what waits: the sender was held back.
        assert.ok(maxBytes <= 2 * capacity, `${maxBytes} bytes were queued with a ${capacity}-byte ring`);
        assert.ok(sent - received <= (2 * capacity) / 100, `${sent - received} messages were queued`);
        // Everything comes out, in order.
        while (received < sent) {
          const m = await rx.receive({ timeout: 10000 });
          assert.equal(m[0], received & 255, `message ${received} in order`);
          received++;
        }
        assert.equal(rx.stats().messagesQueued, 0);
      } finally {
        await tx.close();
        await rx.close();
      }
    });
  }
}

test('priorities choose among the messages in the inbox, and a closed ring gives up all of them', { timeout: 30000 }, async () => {
  const name = uniqueName('ring-inbox-prio');
  const rx = ShmRing.create<number>(name, { codec: 'json', capacity: 4096, role: 'receiver' });
  const tx = ShmRing.open<number>(name, { codec: 'json', role: 'sender' });
  try {
    for (const p of [0, 0, 3, 0, 5, 1]) assert.ok(tx.trySend(p, { priority: p }));
    await tx.close();
    const got: number[] = [];
    for (;;) {
      try {
        got.push(await rx.receive({ timeout: 10000 }));
      } catch (e) {
        assert.equal((e as { code?: string }).code, 'ERR_MULTIPROC_CLOSED');
        break;
      }
    }
    assert.deepEqual(got, [5, 3, 1, 0, 0, 0]);
  } finally {
    await tx.close();
    await rx.close();
  }
});

test('a receive by type looks about capacity bytes ahead while senders are attached, and past that once they closed', { timeout: 30000 }, async () => {
  const name = uniqueName('ring-inbox-ahead');
  const rx = ShmRing.create<number>(name, { codec: 'json', capacity: 4096, role: 'receiver' });
  const tx = ShmRing.open<number>(name, { codec: 'json', role: 'sender' });
  try {
    let n = 0;
    const fill = (): void => {
      while (tx.trySend(n, { type: 1 })) n++;
    };
    // Two rings' worth of type 1: the inbox fills up, the ring too.
    for (let i = 0; i < 3; i++) {
      fill();
      await assert.rejects(rx.receive({ type: 2, timeout: 0 }), code('ERR_MULTIPROC_TIMEOUT'));
    }
    fill();
    assert.equal(tx.trySend(-1, { type: 2 }), false, 'the ring is full: the sender is held back');
    // The wait neither spins nor takes more: it ends at its deadline.
    await assert.rejects(rx.receive({ type: 2, timeout: 100 }), code('ERR_MULTIPROC_TIMEOUT'));
    // Room comes when FIFO receives take from the inbox; then the type-2 message goes in behind.
    assert.equal(await rx.receive({ timeout: 10000 }), 0);
    while (!tx.trySend(-1, { type: 2 })) assert.equal(await rx.receive({ timeout: 10000 }) >= 0, true);
    await tx.close();
    // Every sender closed: nothing more can come, so the whole ring is looked at.
    assert.equal(await rx.receive({ type: 2, timeout: 10000 }), -1);
    const left = rx.stats().messagesQueued!;
    assert.ok(left > 0);
    for (let i = 0; i < left; i++) assert.equal(typeof rx.tryReceive(), 'number');
    await assert.rejects(rx.receive({ timeout: 10000 }), code('ERR_MULTIPROC_CLOSED'));
  } finally {
    await tx.close();
    await rx.close();
  }
});
