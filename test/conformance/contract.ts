/**
 * The Channel contract suite (src/channel/channel.ts). Every transport's
 * test file calls `conformance(factory)`; the suite knows nothing of any
 * particular transport.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { BytesReceiver, Receiver, Sender } from '../../src/channel/channel.js';
import type { CodecOption } from '../../src/channel/codec.js';

/** A connected pair: `a` sends to `b` (and `b` to `a` on two-way transports). */
export interface Pair {
  a: Sender<any> & Partial<Receiver<any>>;
  b: Receiver<any> & Partial<Sender<any>>;
  /** Closes both ends and removes anything named. */
  cleanup(): Promise<void>;
}

export interface TransportFactory {
  /** Transport name, as in `traits.mechanism`. */
  name: string;
  pair(options: { codec?: CodecOption<any>; maxMessageSize?: number }): Promise<Pair>;
  /** Messages for the sequence/checksum run (fewer for slow kernel queues). */
  stressCount: number;
  /** Largest message the transport can carry (its kernel limit), if below 1 MiB. */
  maxSize?: number;
  /** Whether `trySend` returns false once the transport's buffer is full. */
  bounded?: boolean;
  /**
   * Whether closing the sender ends the receiver's stream (pipes, sockets).
   * Kernel queues outlive their senders, so there it does not.
   */
  peerCloseEnds?: boolean;
  /** A reason to skip the whole suite (the transport's server is not installed), or false. */
  skip?: string | false;
}

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

const T = { timeout: 30000 };

export function conformance(f: TransportFactory): void {
  describe(`Channel contract: ${f.name}`, { skip: f.skip ?? false }, () => {
    test('traits describe the mechanism', async () => {
      const p = await f.pair({});
      try {
        const t = p.a.traits;
        assert.equal(t.mechanism, f.name);
        assert.ok(['file', 'memory', 'file+memory', 'socket'].includes(t.medium));
        assert.ok(['stream', 'message', 'page'].includes(t.unit));
        assert.ok(['one-way', 'two-way'].includes(t.direction));
        assert.ok(['same-host', 'network'].includes(t.scope));
        assert.equal(typeof t.use, 'string');
        assert.ok(p.a.maxMessageSize > 0);
      } finally {
        await p.cleanup();
      }
    });

    test('message boundaries are kept, in order, for sizes from 0 bytes up', async () => {
      const p = await f.pair({ codec: 'raw' });
      try {
        const top = Math.min(f.maxSize ?? 1 << 20, p.a.maxMessageSize);
        const sizes = [0, 1, 100, 4096, 65536, top].filter((s) => s <= top);
        const sent = sizes.map((s, i) => bytes(s, i));
        const receiving = (async () => {
          const got: Uint8Array[] = [];
          for (let i = 0; i < sent.length; i++) got.push(await p.b.receive(T));
          return got;
        })();
        for (const m of sent) await p.a.send(m, T);
        const got = await receiving;
        assert.equal(got.length, sent.length);
        for (let i = 0; i < sent.length; i++) assert.deepEqual(Buffer.from(got[i]!), Buffer.from(sent[i]!), `message ${i} (${sent[i]!.length} bytes)`);
      } finally {
        await p.cleanup();
      }
    });

    test('codecs: json, structured clone (Map, Date, BigInt, typed arrays), msgpack', async () => {
      const value = { n: 1, s: 'é', list: [1, 2, 3], nested: { ok: true } };
      for (const codec of ['json', 'structured', 'msgpack'] as const) {
        const p = await f.pair({ codec });
        try {
          await p.a.send(value, T);
          assert.deepEqual(await p.b.receive(T), value, codec);
          if (codec !== 'json') {
            const rich = { m: new Map([[1, 'a']]), d: new Date(1700000000000), big: 2n ** 60n, t: new Float64Array([1.5, -2]) };
            await p.a.send(rich, T);
            const back = (await p.b.receive(T)) as typeof rich;
            if (codec === 'structured') assert.deepEqual(back.m, rich.m);
            assert.equal(back.d.getTime(), rich.d.getTime());
            assert.equal(back.big, rich.big);
            assert.deepEqual([...back.t], [1.5, -2]);
          }
        } finally {
          await p.cleanup();
        }
      }
    });

    test('a message above maxMessageSize is refused before sending; the channel goes on', async () => {
      const p = await f.pair({ codec: 'raw', maxMessageSize: 1024 });
      try {
        assert.equal(p.a.maxMessageSize, 1024);
        await assert.rejects(p.a.send(new Uint8Array(1025)), (e: any) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE' && e.size === 1025 && e.limit === 1024);
        assert.throws(() => p.a.trySend(new Uint8Array(2000)), (e: any) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE');
        await p.a.send(bytes(1024, 7), T);
        assert.deepEqual(Buffer.from(await p.b.receive(T)), Buffer.from(bytes(1024, 7)));
        assert.equal(p.a.stats().messagesSent, 1);
      } finally {
        await p.cleanup();
      }
    });

    test('receive by type (System V rule) and by priority', async () => {
      const p = await f.pair({ codec: 'json' });
      try {
        await p.a.send('t3', { type: 3 });
        await p.a.send('t1', { type: 1 });
        await p.a.send('t2-low', { type: 2, priority: 0 });
        await p.a.send('t2-high', { type: 2, priority: 5 });
        await p.a.send('end', { type: 9 });
        // Stream transports deliver in order: once 'end' is here, so is everything before it.
        assert.equal(await p.b.receive({ type: 9, ...T }), 'end');
        assert.equal(await p.b.receive({ type: 2, ...T }), 't2-high');
        assert.equal(await p.b.receive({ type: -3, ...T }), 't1');
        const m = await p.b.receiveMessage({ type: -3, ...T });
        assert.deepEqual([m.data, m.type], ['t2-low', 2]);
        assert.equal(await p.b.receive(T), 't3');
      } finally {
        await p.cleanup();
      }
    });

    test('a receive that waits for a type skips others and is woken by the right one', async () => {
      const p = await f.pair({ codec: 'json' });
      try {
        const waiting = p.b.receive({ type: 7, ...T });
        await p.a.send('other', { type: 1 });
        await p.a.send('seven', { type: 7 });
        assert.equal(await waiting, 'seven');
        assert.equal(await p.b.receive(T), 'other');
      } finally {
        await p.cleanup();
      }
    });

    test('tryReceive takes what is here without waiting: undefined when none, by type, ERR_MULTIPROC_CLOSED once closed', async () => {
      const p = await f.pair({ codec: 'json' });
      try {
        const b = p.b;
        assert.equal(b.tryReceive(), undefined);
        await p.a.send('one', { type: 1, ...T });
        await p.a.send('two', { type: 2, ...T });
        await p.a.send('nine', { type: 9, ...T });
        // Delivered in order: once 'nine' is here, so is everything before it.
        assert.equal(await b.receive({ type: 9, ...T }), 'nine');
        assert.equal(b.tryReceive({ type: 2 }), 'two');
        assert.equal(b.tryReceive({ type: 2 }), undefined);
        assert.equal(b.tryReceive(), 'one');
        assert.equal(b.tryReceive(), undefined);
        assert.throws(() => b.tryReceive({ type: 1.5 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
        assert.throws(() => b.tryReceive({ timeout: 5 } as any), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
        assert.equal(b.stats().messagesReceived, 3);
        await b.close();
        assert.throws(() => b.tryReceive(), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
      } finally {
        await p.cleanup();
      }
    });

    test('receiveInto, where the transport has it: each message\'s bytes into one buffer, in order; one that does not fit stays first', async (t) => {
      const p = await f.pair({ codec: 'raw' });
      try {
        const maybe = p.b as Partial<BytesReceiver> & Receiver<any>;
        if (typeof maybe.receiveInto !== 'function' || typeof maybe.tryReceiveInto !== 'function') {
          t.skip('this transport has no receiveInto');
          return;
        }
        const b = maybe as BytesReceiver & Receiver<any>;
        const top = Math.min(f.maxSize ?? 1 << 20, p.a.maxMessageSize);
        const sizes = [1, 100, 4096, top].filter((s) => s <= top);
        const target = new Uint8Array(top + 8);
        for (let i = 0; i < sizes.length; i++) {
          const m = bytes(sizes[i]!, 50 + i);
          const got: Promise<number> = b.receiveInto(target, { offset: 8, ...T });
          await p.a.send(m, T);
          assert.equal(await got, m.length);
          assert.deepEqual(target.subarray(8, 8 + m.length), m);
        }
        const big = bytes(Math.min(top, 3000), 90);
        await p.a.send(big, T);
        await p.a.send(bytes(5, 91), T);
        await assert.rejects(b.receiveInto(new Uint8Array(2), T), (e: any) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE' && e.size === big.length);
        assert.equal(b.tryReceiveInto(target), big.length);
        assert.deepEqual(target.subarray(0, big.length), big);
        assert.equal(await b.receiveInto(target, T), 5);
        assert.deepEqual(target.subarray(0, 5), bytes(5, 91));
        assert.equal(b.tryReceiveInto(target), undefined);
        assert.throws(() => b.tryReceiveInto({} as Uint8Array), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
        assert.equal(b.stats().messagesReceived, sizes.length + 2);
        // A detached target is refused before a message is taken (an empty one would fit it).
        await p.a.send(new Uint8Array(0), T);
        const gone = new Uint8Array(16);
        structuredClone(gone.buffer, { transfer: [gone.buffer] });
        assert.throws(() => b.tryReceiveInto(gone), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
        await assert.rejects(b.receiveInto(gone, T), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
        assert.equal(await b.receiveInto(target, T), 0);
      } finally {
        await p.cleanup();
      }
    });

    test('tryReceive after the sender closed: what was sent, then ERR_MULTIPROC_CLOSED', { skip: f.peerCloseEnds === false ? 'the transport outlives its senders' : false }, async () => {
      const p = await f.pair({ codec: 'json' });
      try {
        await p.a.send('last', T);
        await p.a.close();
        assert.equal(await p.b.receive(T), 'last');
        // The end arrives on its own time: poll, bounded.
        const deadline = performance.now() + T.timeout;
        let end: any;
        while (end === undefined) {
          try {
            assert.equal(p.b.tryReceive(), undefined);
          } catch (e) {
            end = e;
          }
          if (performance.now() > deadline) assert.fail('tryReceive never reported the end');
          await new Promise((r) => setTimeout(r, 5));
        }
        assert.equal(end.code, 'ERR_MULTIPROC_CLOSED');
      } finally {
        await p.cleanup();
      }
    });

    test('receive times out with ERR_MULTIPROC_TIMEOUT and aborts with ABORT_ERR', async () => {
      const p = await f.pair({});
      try {
        await assert.rejects(p.b.receive({ timeout: 20 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
        const ac = new AbortController();
        const r = p.b.receive({ signal: ac.signal });
        ac.abort();
        await assert.rejects(r, (e: any) => e.code === 'ABORT_ERR');
        await assert.rejects(p.b.receive({ signal: AbortSignal.abort() }), (e: any) => e.code === 'ABORT_ERR');
        // Still usable afterwards, and nothing was lost.
        await p.a.send('after', T);
        assert.equal(await p.b.receive(T), 'after');
      } finally {
        await p.cleanup();
      }
    });

    test('timeout: 0 does what can be done now: a ready message is returned, a send with room goes out; else ERR_MULTIPROC_TIMEOUT', async () => {
      const p = await f.pair({ codec: 'raw' });
      try {
        await assert.rejects(p.b.receive({ timeout: 0 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
        await p.a.send(bytes(10, 1), { timeout: 0 });
        await p.a.send(bytes(20, 2), T);
        assert.equal((await p.b.receive(T)).length, 10);
        // The second message may still be on its way (datagrams, a server between).
        const ready = async (take: () => Promise<number>): Promise<number> => {
          for (const until = Date.now() + 20000; ; ) {
            try {
              return await take();
            } catch (e: any) {
              if (e.code !== 'ERR_MULTIPROC_TIMEOUT' || Date.now() > until) throw e;
              await new Promise((r) => setTimeout(r, 5));
            }
          }
        };
        assert.equal(await ready(async () => (await p.b.receiveMessage({ timeout: 0 })).size), 20);
        const into = p.b as Partial<BytesReceiver>;
        if (typeof into.receiveInto === 'function') {
          await p.a.send(bytes(30, 3), T);
          assert.equal(await ready(() => into.receiveInto!(new Uint8Array(64), { timeout: 0 })), 30);
        }
        await assert.rejects(p.b.receive({ timeout: 0, signal: AbortSignal.abort() }), (e: any) => e.code === 'ABORT_ERR');
      } finally {
        await p.cleanup();
      }
    });

    test('backpressure: a full channel makes send wait, never drop', async () => {
      const p = await f.pair({ codec: 'raw' });
      try {
        const chunk = new Uint8Array(Math.min(16384, p.a.maxMessageSize));
        let accepted = 0;
        if (f.bounded) {
          while (p.a.trySend(chunk) && accepted < 1_000_000) accepted++;
          assert.ok(accepted < 1_000_000, 'trySend reported full at some point');
        }
        const extra = 20;
        const sending = (async () => {
          for (let i = 0; i < extra; i++) await p.a.send(chunk, T);
        })();
        let received = 0;
        while (received < accepted + extra) {
          await p.b.receive(T);
          received++;
        }
        await sending;
        assert.equal(received, accepted + extra);
      } finally {
        await p.cleanup();
      }
    });

    test('stats count messages and bytes, msqid_ds style', async () => {
      const p = await f.pair({ codec: 'raw' });
      try {
        const before = Date.now();
        await p.a.send(new Uint8Array(10), T);
        await p.a.send(new Uint8Array(20), T);
        await p.b.receive(T);
        const s = p.a.stats();
        assert.equal(s.messagesSent, 2);
        assert.equal(s.bytesSent, 30);
        assert.ok(s.lastSendTime instanceof Date && s.lastSendTime.getTime() >= before - 1000);
        const r = p.b.stats();
        assert.equal(r.messagesReceived, 1);
        assert.equal(r.bytesReceived, 10);
        assert.ok(r.lastReceivePid === null || Number.isInteger(r.lastReceivePid));
        await p.b.receive(T);
      } finally {
        await p.cleanup();
      }
    });

    test('close: idempotent, pending receives reject, for-await ends, later calls fail with ERR_MULTIPROC_CLOSED', async () => {
      const p = await f.pair({ codec: 'json' });
      try {
        const pending = assert.rejects(p.b.receive(T), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
        const c1 = p.b.close();
        assert.equal(p.b.close(), c1, 'a second close returns the same promise');
        await c1;
        assert.equal(p.b.closed, true);
        await pending;
        await assert.rejects(p.b.receive(T), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
        await p.a.close();
        await assert.rejects(p.a.send('x'), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
      } finally {
        await p.cleanup();
      }
    });

    test('for await ends when the sender closes, after every message sent before', { skip: f.peerCloseEnds === false ? 'the transport outlives its senders' : false }, async () => {
      const p = await f.pair({ codec: 'json' });
      try {
        const got: number[] = [];
        const loop = (async () => {
          for await (const m of p.b) got.push(m as number);
        })();
        for (let i = 0; i < 50; i++) await p.a.send(i, T);
        await p.a.close();
        await loop;
        assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
      } finally {
        await p.cleanup();
      }
    });

    test('destroy rejects pending receives with the given error', async () => {
      const p = await f.pair({});
      try {
        const boom = new Error('boom');
        const pending = assert.rejects(p.b.receive(T), (e: any) => e === boom || e.code === 'ERR_MULTIPROC_CLOSED');
        p.b.destroy(boom);
        p.b.destroy(boom);
        await pending;
      } finally {
        await p.cleanup();
      }
    });

    test('bad arguments are refused with Node-style codes', async () => {
      const p = await f.pair({ codec: 'json' });
      try {
        await assert.rejects(p.a.send('x', { type: 0 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
        await assert.rejects(p.a.send('x', { priorty: 1 } as any), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
        await assert.rejects(p.a.send('x', { timeout: -5 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
        await assert.rejects(p.b.receive({ type: 1.5 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
        await assert.rejects(p.b.receive({ signal: {} as any }), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
      } finally {
        await p.cleanup();
      }
    });

    test(`${f.stressCount} messages with sequence numbers and checksums: none lost, none duplicated`, { timeout: 300000 }, async () => {
      const p = await f.pair({ codec: 'raw' });
      try {
        const n = f.stressCount;
        const sender = (async () => {
          const b = Buffer.alloc(64);
          for (let i = 0; i < n; i++) {
            b.writeUInt32LE(i, 0);
            b.fill(i & 0xff, 4, 48);
            createHash('md5').update(b.subarray(0, 48)).digest().copy(b, 48);
            if (!p.a.trySend(b)) await p.a.send(b, T);
          }
        })();
        let next = 0;
        while (next < n) {
          const m = Buffer.from(await p.b.receive(T));
          assert.equal(m.length, 64);
          const seq = m.readUInt32LE(0);
          if (seq !== next) assert.fail(`expected message ${next}, got ${seq}`);
          const sum = createHash('md5').update(m.subarray(0, 48)).digest();
          if (!sum.equals(m.subarray(48))) assert.fail(`checksum mismatch in message ${seq}`);
          next++;
        }
        await sender;
        assert.equal(next, n);
      } finally {
        await p.cleanup();
      }
    });
  });
}
