// The contract suite over StreamChannel on a connected Unix socket pair, and
// framing faults: garbage, oversized and truncated frames close only that connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conformance } from '../conformance/contract.js';
import { leakGuard } from '../helpers/leak-guard.js';
import v8 from 'node:v8';
import { channelPair, socketPair, streamChannel as channel } from '../helpers/socket-pair.js';

leakGuard();

conformance({
  name: 'stream',
  stressCount: 1_000_000,
  bounded: false,
  async pair(opts) {
    const [x, y] = await socketPair();
    const a = channel(x, opts);
    const b = channel(y, opts);
    return {
      a,
      b,
      async cleanup() {
        a.destroy();
        b.destroy();
      },
    };
  },
});

test('garbage from a peer closes that connection with ERR_MULTIPROC_PROTOCOL; messages before it arrive', async () => {
  const [x, y] = await socketPair();
  const good = channel(x, { codec: 'json' });
  const b = channel(y, { codec: 'json' });
  await good.send('first');
  await new Promise((r) => setTimeout(r, 50));
  x.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
  assert.equal(await b.receive({ timeout: 5000 }), 'first');
  await assert.rejects(b.receive({ timeout: 5000 }), (e: any) => e.code === 'ERR_MULTIPROC_PROTOCOL');
  good.destroy();
  b.destroy();
});

test('a length prefix beyond maxMessageSize is a protocol error before any payload is buffered', async () => {
  const [x, y] = await socketPair();
  const b = channel(y, { maxMessageSize: 1000 });
  const h = Buffer.alloc(16);
  h.writeUInt32LE(2 ** 31, 0);
  h.writeUInt16LE(0x4d50, 4);
  h.writeUInt16LE(1, 6);
  h.writeInt32LE(1, 8);
  x.write(h);
  await assert.rejects(b.receive({ timeout: 5000 }), (e: any) => e.code === 'ERR_MULTIPROC_PROTOCOL' && /2147483648/.test(e.message));
  x.destroy();
  b.destroy();
});

test('a writer cut off mid-frame: whole messages first, then a protocol error, never a torn message', async () => {
  const [x, y] = await socketPair();
  const a = channel(x, { codec: 'raw' });
  const b = channel(y, { codec: 'raw' });
  await a.send(new Uint8Array([1, 2, 3]));
  await new Promise((r) => setTimeout(r, 50));
  const h = Buffer.alloc(16);
  h.writeUInt32LE(100, 0);
  h.writeUInt16LE(0x4d50, 4);
  h.writeUInt16LE(1, 6);
  h.writeInt32LE(1, 8);
  x.end(Buffer.concat([h, Buffer.alloc(10)]));
  assert.deepEqual([...(await b.receive({ timeout: 5000 }))], [1, 2, 3]);
  await assert.rejects(b.receive({ timeout: 5000 }), (e: any) => e.code === 'ERR_MULTIPROC_PROTOCOL' && /middle of a message/.test(e.message));
  a.destroy();
  b.destroy();
});

test('stats counters keep one hidden class after the first send and receive (no deoptimization of the channel code)', async () => {
  // A stamp that turned a small-integer counter into a double would give the
  // counters of every channel a new hidden class (see DOUBLE_FIELD).
  v8.setFlagsFromString('--allow-natives-syntax');
  const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
  const counters = (ch: object): object => (ch as unknown as { counters: object }).counters;
  const witness = await channelPair();
  const p = await channelPair({ codec: 'json' });
  try {
    assert.ok(sameMap(counters(p.a), counters(witness.a)));
    await p.a.send({ n: 1 });
    assert.deepEqual(await p.b.receive({ timeout: 20000 }), { n: 1 });
    for (const ch of [p.a, p.b]) assert.ok(sameMap(counters(ch), counters(witness.a)), 'a counters object changed hidden class');
    assert.equal(p.a.stats().messagesSent, 1);
    assert.ok(p.b.stats().lastReceiveTime instanceof Date);
  } finally {
    p.cleanup();
    witness.cleanup();
  }
});

test('many sends waiting for room share one drain listener: no leak warning, all go out in order', async () => {
  const [x, y] = await socketPair();
  const a = channel(x, { codec: 'raw' });
  const b = channel(y, { codec: 'raw' });
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  try {
    // Large frames fill the kernel and the stream's buffer: later sends wait for 'drain'.
    const n = 40;
    const sends = Array.from({ length: n }, (_, i) => a.send(new Uint8Array(256 * 1024).fill(i), { timeout: 30000 }));
    for (let i = 0; i < n; i++) {
      const m = await b.receive({ timeout: 30000 });
      assert.equal(m.length, 256 * 1024);
      assert.equal(m[0], i);
    }
    await Promise.all(sends);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings.map((w) => w.name), []);
    assert.ok(x.listenerCount('drain') <= 1, `${x.listenerCount('drain')} drain listeners`);
  } finally {
    process.off('warning', onWarning);
    a.destroy();
    b.destroy();
  }
});
