// Many producer and consumer processes on one queue: every message arrives
// exactly once, intact (sequence numbers and checksums).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageQueue, type MessageQueueBackend } from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { devMqueueSkip } from '../helpers/mqueue.js';

leakGuard();
devMqueueSkip();

// Message: producer u32, sequence u32, 16..215 bytes of body, md5 of all that.
const producer = `
import { MessageQueue } from 'multiproc';
import { createHash } from 'node:crypto';
const [name, backend, idArg, countArg] = process.argv.slice(1);
const id = Number(idArg), count = Number(countArg);
const q = MessageQueue.open(name, { backend, codec: 'raw' });
for (let i = 0; i < count; i++) {
  const len = 16 + ((i * 7919 + id * 31) % 200);
  const m = Buffer.alloc(8 + len + 16);
  m.writeUInt32LE(id, 0);
  m.writeUInt32LE(i, 4);
  for (let k = 0; k < len; k++) m[8 + k] = (i + k * id) & 0xff;
  createHash('md5').update(m.subarray(0, 8 + len)).digest().copy(m, 8 + len);
  if (!q.trySend(m)) await q.send(m, { timeout: 60000 });
}
await q.close();
`;

const consumer = `
import { MessageQueue } from 'multiproc';
import { createHash } from 'node:crypto';
const [name, backend] = process.argv.slice(1);
const q = MessageQueue.open(name, { backend, codec: 'raw' });
const got = {};
for (;;) {
  const m = Buffer.from(await q.receive({ timeout: 60000 }));
  if (m.length === 4) break;
  const sum = createHash('md5').update(m.subarray(0, m.length - 16)).digest();
  if (!sum.equals(m.subarray(m.length - 16))) {
    console.log('BAD', m.readUInt32LE(0), m.readUInt32LE(4));
    process.exit(3);
  }
  (got[m.readUInt32LE(0)] ??= []).push(m.readUInt32LE(4));
}
await q.close();
process.stdout.write('RESULT ' + JSON.stringify(got) + '\\n');
`;

async function run(backend: MessageQueueBackend, producers: number, consumers: number, perProducer: number, options: object): Promise<void> {
  const name = uniqueName(`pc${backend}`);
  const q = MessageQueue.create<Uint8Array>(name, { backend, codec: 'raw', ...options });
  const children: Child[] = [];
  try {
    const cons = Array.from({ length: consumers }, () => new Child(consumer, { args: [name, backend], timeout: 120000 }));
    children.push(...cons);
    const prods = Array.from({ length: producers }, (_, i) => new Child(producer, { args: [name, backend, String(i), String(perProducer)], timeout: 120000 }));
    children.push(...prods);
    for (const p of prods) {
      const r = await p.exited;
      assert.equal(r.code, 0, `producer failed: ${r.stderr}`);
    }
    // Every data message is queued ahead of the stop messages: each consumer takes one stop after the data is gone.
    for (let i = 0; i < consumers; i++) await q.send(new Uint8Array([0xff, 0xff, 0xff, 0xff]), { timeout: 60000 });
    const seen = Array.from({ length: producers }, () => new Uint8Array(perProducer));
    let total = 0;
    for (const c of cons) {
      const r = await c.exited;
      assert.equal(r.code, 0, `consumer failed: ${r.stdout} ${r.stderr}`);
      const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      assert.ok(line, `consumer printed no result: ${r.stdout}`);
      const got = JSON.parse(line.slice(7)) as Record<string, number[]>;
      for (const [p, seqs] of Object.entries(got)) {
        for (const s of seqs) {
          assert.equal(seen[Number(p)]![s], 0, `message ${s} of producer ${p} arrived twice`);
          seen[Number(p)]![s] = 1;
          total++;
        }
      }
    }
    assert.equal(total, producers * perProducer, 'every message arrived');
    const s = q.stat();
    assert.equal(s.messages, 0);
    if (s.bytes !== null) assert.equal(s.bytes, 0);
  } finally {
    for (const c of children) c.kill();
    await Promise.all(children.map((c) => c.exited));
    await q.close();
  }
}

test('shm: 4 producers x 4 consumers, 100,000 messages, each exactly once and intact', { timeout: 180000 }, async () => {
  // A small queue, so producers also wait for room.
  await run('shm', 4, 4, 25000, { capacity: 256, capacityBytes: 32 * 1024 });
});

test('sysv: 2 producers x 2 consumers, 6,000 messages, each exactly once and intact', { timeout: 120000 }, async () => {
  await run('sysv', 2, 2, 3000, {});
});

test('posix: 2 producers x 2 consumers, 6,000 messages, each exactly once and intact', { timeout: 120000 }, async () => {
  await run('posix', 2, 2, 3000, {});
});
