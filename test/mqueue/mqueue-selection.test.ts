// Type selection (System V rule) and priority order, with the messages sent by
// another process, on every backend; checked against a model of the rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageQueue, type MessageQueueBackend } from '../../src/index.js';
import { selectFrame } from '../../src/channel/base-channel.js';
import type { Frame } from '../../src/channel/framing.js';
import { Child, runChild } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { devMqueueSkip } from '../helpers/mqueue.js';

leakGuard();
devMqueueSkip();

const T = { timeout: 20000 };
const backends: MessageQueueBackend[] = ['shm', 'sysv', 'posix'];

// Sends the messages given as JSON [[type, priority], ...]; each carries its index.
const sender = `
import { MessageQueue } from 'multiproc';
const [name, backend, list] = process.argv.slice(1);
const q = MessageQueue.open(name, { backend, codec: 'json' });
const messages = JSON.parse(list);
for (let i = 0; i < messages.length; i++) await q.send(i, { type: messages[i][0], priority: messages[i][1], timeout: 20000 });
await q.close();
`;

/** Deterministic pseudo-random numbers. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s >>> 8;
  };
}

for (const backend of backends) {
  // The POSIX queue holds at most fs.mqueue.msg_max (10) messages here: the sender must finish before we look.
  const count = backend === 'posix' ? 10 : 40;

  test(`${backend}: receives by type (exact, lowest up to N, any) and priority follow the rule for messages from another process`, async () => {
    const name = uniqueName(`sel${backend}`);
    const q = MessageQueue.create<number>(name, { backend, codec: 'json' });
    try {
      const rnd = lcg(7);
      const sent: Array<[number, number]> = Array.from({ length: count }, () => [1 + (rnd() % 4), rnd() % 5]);
      const r = await runChild(sender, { args: [name, backend, JSON.stringify(sent)] });
      assert.equal(r.code, 0, r.stderr);
      // The model: the same frames, chosen by the same rule.
      const model: Frame[] = sent.map(([type, priority], i) => ({ type, priority, payload: new Uint8Array([i]) }));
      const selectors = [3, -2, 0, 4, -4, 1, 0, -1, 2, -3];
      let k = 0;
      while (model.length > 0) {
        let selector = selectors[k++ % selectors.length]!;
        let i = selectFrame(model, selector);
        if (i < 0) {
          selector = 0;
          i = selectFrame(model, 0);
        }
        const want = model.splice(i, 1)[0]!;
        const m = await q.receiveMessage({ type: selector, ...T });
        assert.deepEqual([m.data, m.type, m.priority], [want.payload[0], want.type, want.priority], `receive({ type: ${selector} })`);
      }
      await assert.rejects(q.receive({ timeout: 30 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
    } finally {
      await q.close();
    }
  });

  test(`${backend}: without a type, higher priorities come first and equal priorities keep their order`, async () => {
    const name = uniqueName(`pri${backend}`);
    const q = MessageQueue.create<number>(name, { backend, codec: 'json' });
    try {
      const rnd = lcg(11);
      const sent: Array<[number, number]> = Array.from({ length: count }, () => [1 + (rnd() % 3), rnd() % 4]);
      const r = await runChild(sender, { args: [name, backend, JSON.stringify(sent)] });
      assert.equal(r.code, 0, r.stderr);
      const got: Array<{ index: number; priority: number }> = [];
      for (let i = 0; i < count; i++) {
        const m = await q.receiveMessage(T);
        got.push({ index: m.data, priority: m.priority });
      }
      const expected = sent.map(([, priority], index) => ({ index, priority })).sort((a, b) => b.priority - a.priority || a.index - b.index);
      assert.deepEqual(got, expected);
    } finally {
      await q.close();
    }
  });

  test(`${backend}: a receive waiting for a type is woken by another process's message of that type, not by others`, async () => {
    const name = uniqueName(`wait${backend}`);
    const q = MessageQueue.create<number>(name, { backend, codec: 'json', ...(backend === 'sysv' ? { pollInterval: 50 } : {}) });
    try {
      const waiting = q.receiveMessage({ type: 7, ...T });
      let settled = false;
      void waiting.then(() => (settled = true), () => (settled = true));
      const c = new Child(sender, { args: [name, backend, JSON.stringify([[1, 0], [2, 3]])] });
      assert.equal((await c.exited).code, 0);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(settled, false, 'messages of other types do not end the wait');
      const c2 = new Child(sender, { args: [name, backend, JSON.stringify([[7, 1]])] });
      assert.equal((await c2.exited).code, 0);
      const m = await waiting;
      assert.deepEqual([m.data, m.type, m.priority], [0, 7, 1]);
      assert.equal(await q.receive(T), 1, 'the higher-priority message of type 2 is next');
      assert.equal(await q.receive(T), 0);
    } finally {
      await q.close();
    }
  });

  test(`${backend}: a message too large for receiveInto stays this handle's, first for the next receive that selects it`, async () => {
    const name = uniqueName(`into${backend}`);
    const q = MessageQueue.create<Uint8Array>(name, { backend, codec: 'raw' });
    try {
      const big = Uint8Array.from({ length: 100 }, (_, i) => i);
      await q.send(big, { type: 2, ...T });
      await q.send(Uint8Array.of(7, 8, 9), { type: 3, ...T });
      const small = new Uint8Array(10);
      await assert.rejects(q.receiveInto(small, T), (e: any) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE' && e.size === 100);
      assert.throws(() => q.tryReceiveInto(small, 5), (e: any) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE' && e.size === 100);
      assert.deepEqual(Uint8Array.from(await q.receive({ type: 3, ...T })), Uint8Array.of(7, 8, 9), 'a type the held message is not of comes from the queue');
      const target = new Uint8Array(120);
      assert.equal(q.tryReceiveInto(target, 20), 100);
      assert.deepEqual(target.subarray(20), big);
      assert.equal(q.tryReceiveInto(target), undefined);
      assert.equal(q.stats().messagesReceived, 2);
    } finally {
      await q.close();
    }
  });

  test(`${backend}: a handle that closes while it holds a message too large for receiveInto puts it back in the queue`, async () => {
    const name = uniqueName(`back${backend}`);
    const owner = MessageQueue.create<Uint8Array>(name, { backend, codec: 'raw' });
    try {
      const big = Uint8Array.from({ length: 100 }, (_, i) => 255 - i);
      await owner.send(big, { type: 5, ...T });
      const reader = MessageQueue.open<Uint8Array>(name, { backend, codec: 'raw' });
      await assert.rejects(reader.receiveInto(new Uint8Array(10), T), (e: any) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE');
      await reader.close();
      const m = await owner.receiveMessage(T);
      assert.deepEqual(Uint8Array.from(m.data), big);
      assert.equal(m.type, 5);
    } finally {
      await owner.close();
    }
  });
}
