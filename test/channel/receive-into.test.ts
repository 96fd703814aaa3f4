// receiveInto / tryReceiveInto on the stream transports: a message's bytes go
// into a buffer of the caller's, a large one straight from the socket. Frames
// are written by hand where the test needs them cut at a given place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Socket } from '../../src/index.js';
import { header } from '../../src/channel/framing.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { socketPair, streamChannel as channel } from '../helpers/socket-pair.js';
import { Child } from '../helpers/child.js';
import { uniqueName } from '../helpers/names.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

leakGuard();

const code = (c: string) => (e: { code?: string }) => e.code === c;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `n` bytes that depend on `seed` and on the position. */
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >>> 8)) & 0xff;
  return b;
}

async function rawPair(): Promise<{ write: (b: Uint8Array) => void; b: ReturnType<typeof channel>; cleanup(): void }> {
  const [x, y] = await socketPair();
  const b = channel(y, { codec: 'raw', maxMessageSize: 8 << 20 });
  return {
    write: (bytes) => x.write(bytes),
    b,
    cleanup() {
      b.destroy();
      x.destroy();
    },
  };
}

test('tryReceiveInto copies queued messages in order, at an offset, and counts them', async () => {
  const { write, b, cleanup } = await rawPair();
  try {
    const m1 = pattern(10, 1);
    const m2 = pattern(3000, 2);
    write(Buffer.concat([header(m1.length, 1, 0), m1, header(m2.length, 1, 0), m2]));
    const target = new Uint8Array(4096).fill(0xee);
    await b.receiveInto(target, { timeout: 5000 }).then((n) => assert.equal(n, 10));
    assert.deepEqual(target.subarray(0, 10), m1);
    for (let i = 0; i < 50 && b.stats().messagesReceived < 1; i++) await pause(10);
    let n: number | undefined;
    for (let i = 0; i < 100 && (n = b.tryReceiveInto(target, 5)) === undefined; i++) await pause(10);
    assert.equal(n, 3000);
    assert.deepEqual(target.subarray(5, 3005), m2);
    assert.equal(target[4], m1[4], 'bytes before the offset are left alone');
    assert.equal(b.tryReceiveInto(target), undefined);
    const s = b.stats();
    assert.equal(s.messagesReceived, 2);
    assert.equal(s.bytesReceived, 3010);
  } finally {
    cleanup();
  }
});

test('a large message that arrives while receiveInto waits is assembled in the target, in pieces', async () => {
  const { write, b, cleanup } = await rawPair();
  try {
    const m = pattern(300_000, 3);
    const target = new Uint8Array(1 << 20);
    const p = b.receiveInto(target, { timeout: 10000 });
    write(header(m.length, 1, 0));
    for (let at = 0; at < m.length; at += 70_000) {
      await pause(5);
      write(m.subarray(at, Math.min(m.length, at + 70_000)));
    }
    assert.equal(await p, m.length);
    assert.deepEqual(target.subarray(0, m.length), m);
  } finally {
    cleanup();
  }
});

test('small messages read together with the start of a large one go first: each call gets its own', async () => {
  const { write, b, cleanup } = await rawPair();
  try {
    const small = pattern(100, 4);
    const big = pattern(200_000, 5);
    const target = new Uint8Array(1 << 20);
    const first = b.receiveInto(target, { timeout: 10000 });
    // One write: a whole small frame, then a large frame's header and its first bytes.
    write(Buffer.concat([header(small.length, 1, 0), small, header(big.length, 1, 0), big.subarray(0, 1000)]));
    assert.equal(await first, small.length);
    assert.deepEqual(target.subarray(0, small.length), small);
    const second = new Uint8Array(1 << 20);
    const p = b.receiveInto(second, { timeout: 10000 });
    await pause(20);
    write(big.subarray(1000));
    assert.equal(await p, big.length);
    assert.deepEqual(second.subarray(0, big.length), big);
    assert.deepEqual(target.subarray(0, small.length), small, 'the first target was not written again');
  } finally {
    cleanup();
  }
});

test('a receiveInto that times out while its target is being filled leaves the target alone; the message arrives whole', async () => {
  const { write, b, cleanup } = await rawPair();
  try {
    const m = pattern(400_000, 6);
    const target = new Uint8Array(1 << 20);
    const p = b.receiveInto(target, { timeout: 300 });
    write(Buffer.concat([header(m.length, 1, 0), m.subarray(0, 150_000)]));
    await assert.rejects(p, code('ERR_MULTIPROC_TIMEOUT'));
    target.fill(0xee);
    write(m.subarray(150_000));
    const got = (await b.receive({ timeout: 10000 })) as Uint8Array;
    assert.equal(got.length, m.length);
    assert.deepEqual(got, m);
    assert.ok(target.every((v) => v === 0xee), 'nothing was written into the target after its call returned');
  } finally {
    cleanup();
  }
});

test('the same after an abort; a channel closed while a target is being filled rejects its receiveInto', async () => {
  const { write, b, cleanup } = await rawPair();
  try {
    const m = pattern(400_000, 7);
    const target = new Uint8Array(1 << 20);
    const ac = new AbortController();
    const p = b.receiveInto(target, { signal: ac.signal });
    write(Buffer.concat([header(m.length, 1, 0), m.subarray(0, 100_000)]));
    await pause(50);
    ac.abort();
    await assert.rejects(p, code('ABORT_ERR'));
    target.fill(0xee);
    write(m.subarray(100_000));
    assert.deepEqual(await b.receive({ timeout: 10000 }), m);
    assert.ok(target.every((v) => v === 0xee));
    // Closed while the next one is half read into a target.
    const q = b.receiveInto(target, { timeout: 10000 });
    write(Buffer.concat([header(m.length, 1, 0), m.subarray(0, 100_000)]));
    await pause(50);
    b.destroy();
    await assert.rejects(q, code('ERR_MULTIPROC_CLOSED'));
  } finally {
    cleanup();
  }
});

test('a message larger than the target: ERR_MULTIPROC_MESSAGE_TOO_LARGE, and it stays first in line', async () => {
  const { write, b, cleanup } = await rawPair();
  try {
    const big = pattern(5000, 8);
    const next = pattern(20, 9);
    const small = new Uint8Array(1000);
    // Arriving while a receiveInto waits.
    const p = b.receiveInto(small, { timeout: 5000 });
    write(Buffer.concat([header(big.length, 1, 0), big]));
    await assert.rejects(p, (e: { code?: string; size?: number; limit?: number }) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE' && e.size === 5000 && e.limit === 1000);
    write(Buffer.concat([header(next.length, 1, 0), next]));
    for (let i = 0; i < 100 && b.stats().messagesQueued !== 2; i++) await pause(10);
    // Already queued.
    assert.throws(() => b.tryReceiveInto(small, 100), (e: { code?: string; size?: number; limit?: number }) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE' && e.size === 5000 && e.limit === 900);
    await assert.rejects(b.receiveInto(small), code('ERR_MULTIPROC_MESSAGE_TOO_LARGE'));
    const room = new Uint8Array(8192);
    assert.equal(b.tryReceiveInto(room), 5000);
    assert.deepEqual(room.subarray(0, 5000), big);
    assert.deepEqual(await b.receive({ timeout: 5000 }), next);
  } finally {
    cleanup();
  }
});

test('a message refused by a waiting receiveInto goes to a receive waiting after it', async () => {
  const { write, b, cleanup } = await rawPair();
  try {
    const big = pattern(5000, 11);
    const small = new Uint8Array(100);
    const first = b.receiveInto(small, { timeout: 5000 });
    const second = b.receive({ timeout: 5000 });
    write(Buffer.concat([header(big.length, 1, 0), big]));
    await assert.rejects(first, code('ERR_MULTIPROC_MESSAGE_TOO_LARGE'));
    assert.deepEqual(await second, big);
    assert.equal(b.tryReceive(), undefined);
  } finally {
    cleanup();
  }
});

test('receiveInto arguments are checked before anything is taken', async () => {
  const { write, b, cleanup } = await rawPair();
  try {
    const m = pattern(64, 10);
    write(Buffer.concat([header(m.length, 1, 0), m]));
    assert.deepEqual(await b.receive({ timeout: 5000 }).then(() => 'taken'), 'taken');
    write(Buffer.concat([header(m.length, 1, 0), m]));
    const target = new Uint8Array(100);
    assert.throws(() => b.tryReceiveInto('x' as unknown as Uint8Array), code('ERR_INVALID_ARG_TYPE'));
    assert.throws(() => b.tryReceiveInto(target, 101), code('ERR_OUT_OF_RANGE'));
    assert.throws(() => b.tryReceiveInto(target, -1), code('ERR_OUT_OF_RANGE'));
    await assert.rejects(b.receiveInto([] as unknown as Uint8Array), code('ERR_INVALID_ARG_TYPE'));
    await assert.rejects(b.receiveInto(target, { offset: 1.5 }), code('ERR_OUT_OF_RANGE'));
    await assert.rejects(b.receiveInto(target, { timeout: -1 }), code('ERR_OUT_OF_RANGE'));
    await assert.rejects(b.receiveInto(target, { type: 1 } as object), code('ERR_INVALID_ARG_VALUE'));
    // The message is still there, and a DataView target works.
    const dv = new DataView(new ArrayBuffer(80), 8);
    assert.equal(await b.receiveInto(dv, { timeout: 5000 }), 64);
    assert.deepEqual(new Uint8Array(dv.buffer, 8, 64), m);
    b.destroy();
    assert.throws(() => b.tryReceiveInto(target), code('ERR_MULTIPROC_CLOSED'));
  } finally {
    cleanup();
  }
});

for (const kind of ['unix', 'tcp'] as const) {
  test(`${kind}: messages of every size from another process, into one reused buffer, intact and in order`, { timeout: 120000 }, async () => {
    const address = kind === 'unix' ? { path: join(tmpdir(), `${uniqueName('into')}.sock`) } : { port: 0 };
    const server = await Socket.listen<Uint8Array>({ ...address, codec: 'raw', maxMessageSize: 4 << 20 });
    try {
      const accepted = new Promise<Awaited<ReturnType<typeof Socket.connect<Uint8Array>>>>((resolve) => server.once('connection', resolve));
      const to = kind === 'unix' ? address : { port: (server.address as { port: number }).port };
      const child = new Child(
        `
        import { Socket } from 'multiproc';
        const sizes = [7, 70000, 1 << 20, (2 << 20) + 3, 100, 0, 65536];
        function pattern(n, seed) { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >>> 8)) & 0xff; return b; }
        const conn = await Socket.connect({ ...JSON.parse(process.argv[1]), codec: 'raw', maxMessageSize: 4 << 20, retry: true, timeout: 20000 });
        for (let i = 0; i < 140; i++) await conn.send(pattern(sizes[i % sizes.length], i));
        await conn.receive({ timeout: 60000 });
        await conn.close();
      `,
        { args: [JSON.stringify(to)] },
      );
      const conn = await accepted;
      const sizes = [7, 70000, 1 << 20, (2 << 20) + 3, 100, 0, 65536];
      const target = new Uint8Array(4 << 20);
      for (let i = 0; i < 140; i++) {
        // Every fifth through receive(), to mix both paths on one connection.
        const got = i % 5 === 4 ? ((await conn.receive({ timeout: 30000 })) as Uint8Array) : target.subarray(0, (conn.tryReceiveInto(target) ?? (await conn.receiveInto(target, { timeout: 30000 }))));
        const want = pattern(sizes[i % sizes.length]!, i);
        assert.equal(got.length, want.length, `message ${i}`);
        assert.ok(Buffer.from(got.buffer, got.byteOffset, got.length).equals(want), `message ${i} differs`);
      }
      await conn.send(new Uint8Array(1));
      const r = await child.exited;
      assert.equal(r.code, 0, r.stderr);
      await conn.close();
    } finally {
      await server.close();
    }
  });
}
