// ShmRing between processes: a million SPSC messages with sequence numbers
// and checksums, and 4 producers x 4 consumers on an MPMC ring where every
// message must arrive exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { SharedMemory, ShmRing } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child } from '../helpers/child.js';

leakGuard();

test('SPSC: 1,000,000 messages from another process, in order, none torn (sequence + crc32)', { timeout: 120000 }, async () => {
  const name = uniqueName('ring-x');
  const n = 1_000_000;
  const ring = ShmRing.create<Uint8Array>(name, { capacity: 1 << 20, codec: 'raw', role: 'receiver' });
  try {
    const sender = new Child(`
      import { ShmRing } from 'multiproc';
      import { crc32 } from 'node:zlib';
      const [name, count] = process.argv.slice(1);
      const ring = ShmRing.open(name, { codec: 'raw', role: 'sender' });
      const n = Number(count);
      const b = Buffer.alloc(64);
      for (let i = 0; i < n; i++) {
        // Vary the length too: 8 to 64 bytes.
        const len = 8 + (i % 57);
        b.writeUInt32LE(i, 0);
        for (let k = 8; k < len; k++) b[k] = (i + k) & 0xff;
        b.writeUInt32LE(crc32(b.subarray(8, len), i), 4);
        const m = b.subarray(0, len);
        if (!ring.trySend(m)) await ring.send(m, { timeout: 60000 });
      }
      await ring.close();
    `, { args: [name, String(n)], timeout: 110000 });
    let next = 0;
    for await (const m of ring) {
      const seq = m[0]! | (m[1]! << 8) | (m[2]! << 16) | (m[3]! << 24);
      if (seq !== next) assert.fail(`expected message ${next}, got ${seq}`);
      if (m.length !== 8 + (seq % 57)) assert.fail(`message ${seq} has ${m.length} bytes`);
      const sum = (m[4]! | (m[5]! << 8) | (m[6]! << 16) | (m[7]! << 24)) >>> 0;
      if (sum !== crc32(m.subarray(8), seq)) assert.fail(`checksum mismatch in message ${seq}`);
      next++;
    }
    const r = await sender.exited;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(next, n, 'the loop ended after the last message, when the sender closed');
    const s = ring.stats();
    assert.equal(s.messagesReceived, n);
    assert.equal(s.messagesQueued, 0);
  } finally {
    await ring.close();
  }
});

test('large messages from another process arrive whole, on both sides of the memcpy threshold (sequence + crc32)', { timeout: 120000 }, async () => {
  const name = uniqueName('ring-big');
  // Around 16 KiB the copies switch from V8's to the addon's memcpy.
  const sizes = [1000, 16383, 16384, 65539, (1 << 20) + 1];
  const rounds = 8;
  const ring = ShmRing.create<Uint8Array>(name, { capacity: 4 << 20, codec: 'raw', role: 'receiver' });
  try {
    const sender = new Child(`
      import { ShmRing } from 'multiproc';
      import { crc32 } from 'node:zlib';
      const [name, sizes, rounds] = process.argv.slice(1);
      const ring = ShmRing.open(name, { codec: 'raw', role: 'sender' });
      let seq = 0;
      for (let r = 0; r < Number(rounds); r++) {
        for (const size of sizes.split(',').map(Number)) {
          const b = Buffer.allocUnsafe(size);
          for (let k = 8; k < size; k++) b[k] = (seq * 7 + k) & 0xff;
          b.writeUInt32LE(seq, 0);
          b.writeUInt32LE(crc32(b.subarray(8), seq), 4);
          if (!ring.trySend(b)) await ring.send(b, { timeout: 60000 });
          seq++;
        }
      }
      await ring.close();
    `, { args: [name, sizes.join(','), String(rounds)], timeout: 110000 });
    let next = 0;
    for await (const m of ring) {
      const seq = m[0]! | (m[1]! << 8) | (m[2]! << 16) | (m[3]! << 24);
      assert.equal(seq, next, 'in order');
      assert.equal(m.length, sizes[seq % sizes.length]);
      const sum = (m[4]! | (m[5]! << 8) | (m[6]! << 16) | (m[7]! << 24)) >>> 0;
      if (sum !== crc32(m.subarray(8), seq)) assert.fail(`checksum mismatch in message ${seq} (${m.length} bytes)`);
      next++;
    }
    const r = await sender.exited;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(next, sizes.length * rounds);
  } finally {
    await ring.close();
  }
});

test('MPMC: 4 producer processes x 4 consumer processes, every message exactly once', { timeout: 120000 }, async () => {
  const name = uniqueName('ring-mpmc');
  const producers = 4;
  const consumers = 4;
  const perProducer = 25_000;
  // One counter per message, bumped by whichever consumer got it.
  const counts = SharedMemory.create(uniqueName('ring-counts'), producers * perProducer);
  // Holding a sender registration keeps the ring open until every producer registered.
  const ring = ShmRing.create(name, { mode: 'mpmc', capacity: 1 << 16, codec: 'raw', role: 'sender' });
  const children: Child[] = [];
  try {
    for (let c = 0; c < consumers; c++) {
      children.push(
        new Child(`
          import { ShmRing, SharedMemory } from 'multiproc';
          const [name, countsName, per] = process.argv.slice(1);
          const counts = new Uint8Array(SharedMemory.open(countsName).buffer);
          const ring = ShmRing.open(name, { codec: 'raw', role: 'receiver' });
          console.log('ready');
          let got = 0;
          for await (const m of ring) {
            const p = m[0], seq = m[1] | (m[2] << 8) | (m[3] << 16);
            for (let k = 4; k < m.length; k++) if (m[k] !== ((seq + k) & 0xff)) throw new Error('torn message ' + p + '/' + seq);
            Atomics.add(counts, p * Number(per) + seq, 1);
            got++;
          }
          console.log('got ' + got);
        `, { args: [name, counts.name.slice(1), String(perProducer)], timeout: 110000 }),
      );
    }
    for (let p = 0; p < producers; p++) {
      children.push(
        new Child(`
          import { ShmRing } from 'multiproc';
          const [name, id, per] = process.argv.slice(1);
          const ring = ShmRing.open(name, { codec: 'raw', role: 'sender' });
          console.log('ready');
          const b = new Uint8Array(40);
          for (let seq = 0; seq < Number(per); seq++) {
            const len = 4 + (seq % 37);
            b[0] = Number(id); b[1] = seq & 0xff; b[2] = (seq >> 8) & 0xff; b[3] = seq >> 16;
            for (let k = 4; k < len; k++) b[k] = (seq + k) & 0xff;
            const m = b.subarray(0, len);
            if (!ring.trySend(m)) await ring.send(m, { timeout: 60000 });
          }
          await ring.close();
        `, { args: [name, String(p), String(perProducer)], timeout: 110000 }),
      );
    }
    await Promise.all(children.map((c) => c.waitFor('ready', 60000)));
    await ring.close();
    const results = await Promise.all(children.map((c) => c.exited));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const total = results.reduce((sum, r) => sum + Number(/got (\d+)/.exec(r.stdout)?.[1] ?? 0), 0);
    assert.equal(total, producers * perProducer);
    const c = new Uint8Array(counts.buffer);
    const wrong = c.findIndex((v) => v !== 1);
    assert.equal(wrong, -1, wrong < 0 ? '' : `message ${wrong % perProducer} of producer ${Math.floor(wrong / perProducer)} arrived ${c[wrong]} times`);
    assert.ok(results.slice(0, consumers).filter((r) => Number(/got (\d+)/.exec(r.stdout)?.[1]) > 0).length >= 2, 'the work was shared');
  } finally {
    for (const ch of children) ch.kill();
    await Promise.all(children.map((ch) => ch.exited));
    await ring.close();
    counts.close();
  }
});
