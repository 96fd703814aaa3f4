// The structured codec: its fast format decodes to exactly what
// v8.deserialize(v8.serialize(v)) gives, everything else goes to v8, old
// (v8-format) bytes still decode, bad bytes give a coded error, and it all
// holds between processes over a ring in shared memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deserialize, serialize } from 'node:v8';
import { pathToFileURL } from 'node:url';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { IpcError, ShmRing, codecs } from '../../src/index.js';
import { decodeStructuredRange } from '../../src/channel/codec.js';
import { FAST_FORMAT, vouchForArrays } from '../../src/channel/structured-fast.js';
import { samples } from './fixtures/codec-values.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child } from '../helpers/child.js';

leakGuard();

const { structured } = codecs;
const v8RoundTrip = (v: unknown): unknown => deserialize(serialize(v));
const roundTrip = (v: unknown): unknown => structured.decode(structured.encode(v));

/** Decodes from a view in the middle of a SharedArrayBuffer, as a ring does, then scribbles over it. */
function viaShared(bytes: Uint8Array): unknown {
  const sab = new SharedArrayBuffer(bytes.length + 32);
  const u8 = new Uint8Array(sab);
  u8.set(bytes, 16);
  const v = structured.decode(u8.subarray(16, 16 + bytes.length));
  u8.fill(0xee);
  return v;
}

test('every sample decodes to what v8 gives (deep, prototypes and types included), by the expected path', () => {
  for (const { name, value, fast } of samples()) {
    const bytes = structured.encode(value);
    assert.equal(bytes[0], fast ? FAST_FORMAT : 0xff, `${name}: ${fast ? 'fast format' : 'v8 format'} expected`);
    const want = v8RoundTrip(value);
    assert.deepStrictEqual(structured.decode(bytes), want, name);
    assert.deepStrictEqual(viaShared(bytes), want, `${name}, decoded from shared memory`);
    // What an old peer sends (plain v8.serialize) decodes too.
    assert.deepStrictEqual(structured.decode(serialize(value)), want, `${name}, v8 bytes`);
  }
});

test('numbers keep -0, NaN and the infinities', () => {
  assert.ok(Object.is(roundTrip(-0), -0));
  assert.ok(Object.is(roundTrip(0), 0));
  assert.ok(Number.isNaN(roundTrip(NaN)));
  assert.equal(roundTrip(-Infinity), -Infinity);
  const a = roundTrip([-0, 0]) as number[];
  assert.ok(Object.is(a[0], -0) && Object.is(a[1], 0));
});

test('holes, undefined elements and undefined properties are kept as v8 keeps them', () => {
  const sparse = roundTrip([1, , 3]) as unknown[]; // eslint-disable-line no-sparse-arrays
  assert.equal(sparse.length, 3);
  assert.ok(!(1 in sparse));
  const dense = roundTrip([1, undefined, 3]) as unknown[];
  assert.ok(1 in dense);
  const o = roundTrip({ a: undefined }) as object;
  assert.ok(Object.hasOwn(o, 'a'));
  const trailing: number[] = [1];
  trailing.length = 3;
  assert.equal((roundTrip(trailing) as unknown[]).length, 3);
  const extra = roundTrip(Object.assign([1], { tag: 'x' })) as unknown[] & { tag: string };
  assert.equal(extra.tag, 'x');
});

test('shared references and cycles keep their identity', () => {
  const s = { n: 1 };
  const o = roundTrip({ a: s, b: [s] }) as { a: object; b: object[] };
  assert.equal(o.a, o.b[0]);
  const c: Record<string, unknown> = {};
  c.me = c;
  const r = roundTrip(c) as Record<string, unknown>;
  assert.equal(r.me, r);
  const bytes = new Uint8Array([1]);
  const pair = roundTrip([bytes, bytes]) as Uint8Array[];
  assert.equal(pair[0], pair[1]);
});

test('strings: lone surrogates, emoji, a leading BOM, long ones, exactly', () => {
  for (const s of ['\ud800', 'x\udfff', 'ab\ud83d', '😀', '\ufeff', '\ufeff' + 'y'.repeat(100), 'é'.repeat(30000), '\u0000', 'a'.repeat(65532)]) {
    assert.equal(roundTrip(s), s);
    assert.equal(viaShared(structured.encode(s)), s);
  }
});

test('Buffer stays Buffer, Uint8Array stays Uint8Array, both copied (not views of the input)', () => {
  const v = { b: Buffer.from('abc'), u: new Uint8Array([1, 2, 3]) };
  const bytes = structured.encode(v);
  assert.equal(bytes[0], FAST_FORMAT);
  const r = structured.decode(bytes) as typeof v;
  assert.ok(Buffer.isBuffer(r.b));
  assert.equal(Object.getPrototypeOf(r.u), Uint8Array.prototype);
  bytes.fill(0);
  assert.equal(r.b.toString(), 'abc');
  assert.deepEqual([...r.u], [1, 2, 3]);
  // v8 format from shared memory: its typed arrays used to view the ring itself.
  const old = { f: new Float64Array([2.5]), b: Buffer.alloc(100000, 3) };
  const back = viaShared(structured.encode(old)) as typeof old;
  assert.equal(back.f[0], 2.5);
  assert.equal(back.b[99999], 3);
});

test('prototypes: null-prototype objects come back plain, own __proto__ keys stay own keys, classes become plain objects', () => {
  const np = Object.create(null) as Record<string, number>;
  np.k = 1;
  assert.equal(Object.getPrototypeOf(roundTrip(np)), Object.prototype);
  const tricky = JSON.parse('{"__proto__": {"x": 1}, "y": 2}') as object;
  const r = roundTrip(tricky) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(r), Object.prototype);
  assert.ok(Object.hasOwn(r, '__proto__'));
  assert.equal(({} as Record<string, unknown>).x, undefined);
  class K {
    v = 1;
  }
  assert.deepStrictEqual(roundTrip(new K()), { v: 1 });
});

test('Date, Map, Set, BigInt, RegExp, Error and typed arrays other than Uint8Array go to v8', () => {
  const d = roundTrip(new Date(5)) as Date;
  assert.ok(d instanceof Date && d.getTime() === 5);
  assert.deepStrictEqual(roundTrip(new Map([[1, new Set(['a'])]])), new Map([[1, new Set(['a'])]]));
  assert.equal(roundTrip(2n ** 70n), 2n ** 70n);
  assert.deepStrictEqual(roundTrip({ when: new Date(0), n: 1n }), { when: new Date(0), n: 1n });
  assert.ok(roundTrip(new Error('x')) instanceof Error);
  assert.deepStrictEqual(roundTrip(new Int16Array([1, -1])), new Int16Array([1, -1]));
});

test('what v8 refuses is still refused: functions, symbols, proxies', () => {
  for (const v of [() => 1, Symbol('s'), { f() {} }, [Symbol('t')], new Proxy({}, {}), [new Proxy([], {})]]) {
    assert.throws(() => serialize(v));
    assert.throws(() => structured.encode(v));
  }
});

test('getters run once on the fast path; one that encodes a message of its own does not disturb the outer one', () => {
  let calls = 0;
  const o = {
    get g(): unknown {
      calls++;
      return { inner: structured.decode(structured.encode([1, 'two', { three: 3 }])) };
    },
    after: 'x',
  };
  const r = roundTrip(o);
  assert.equal(calls, 1);
  assert.deepStrictEqual(r, { g: { inner: [1, 'two', { three: 3 }] }, after: 'x' });
  const boom = {
    get g(): unknown {
      throw new Error('from the getter');
    },
  };
  assert.throws(() => structured.encode(boom), /from the getter/);
  // The codec still works after a throw in the middle of a message.
  assert.deepStrictEqual(roundTrip([1, 2]), [1, 2]);
});

test('each encode returns its own bytes', () => {
  const a = structured.encode('first');
  const b = structured.encode('second');
  assert.equal(structured.decode(a), 'first');
  assert.equal(structured.decode(b), 'second');
  a.fill(0);
  assert.equal(structured.decode(b), 'second');
});

test('encodeTransient gives the bytes encode gives, in a buffer the next encode reuses', () => {
  assert.ok(structured.encodeTransient !== undefined);
  for (const { name, value } of samples()) {
    const want = structured.encode(value);
    const bytes = structured.encodeTransient!(value);
    assert.deepStrictEqual(Buffer.from(bytes), Buffer.from(want), name);
    assert.deepStrictEqual(structured.decode(bytes), v8RoundTrip(value), name);
  }
  // Fast-format bytes are the encoder's scratch: the next encode writes over them.
  const first = structured.encodeTransient!('first');
  structured.encodeTransient!('later');
  assert.equal(structured.decode(first), 'later');
});

test('vouchForArrays skips the extra-property check of those arrays for one encode only', () => {
  const a: unknown[] & { extra?: string } = [1, 2];
  a.extra = 'kept by v8';
  // Not vouched for: v8 keeps the extra property.
  assert.equal(structured.encode(a)[0], 0xff);
  vouchForArrays(a);
  assert.equal(structured.encode(a)[0], FAST_FORMAT, 'the vouched array takes the fast path');
  // The vouch ended with that encode.
  assert.deepStrictEqual(roundTrip(a), v8RoundTrip(a));
  assert.equal((roundTrip(a) as { extra?: string }).extra, 'kept by v8');
  // Cleared without an encode: nothing is skipped later.
  vouchForArrays(a);
  vouchForArrays();
  assert.equal(structured.encode(a)[0], 0xff);
});

test('UTF-8 from a peer decodes as TextDecoder decodes it, malformed sequences included', () => {
  let seed = 7;
  const rnd = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  const interesting = [0x00, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xa0, 0x9f, 0x90, 0x8f];
  for (let i = 0; i < 5000; i++) {
    const n = 1 + Math.floor(rnd() * 70);
    const text = Array.from({ length: n }, () => (rnd() < 0.5 ? interesting[Math.floor(rnd() * interesting.length)]! : Math.floor(rnd() * 256)));
    // Valid text now and then: a real string's bytes, cut to n.
    const bytes = rnd() < 0.3 ? [...Buffer.from('é😀世a\u0800\uffff'.repeat(10))].slice(0, n) : text;
    const message = new Uint8Array([FAST_FORMAT, 0x08, bytes.length, ...bytes]);
    assert.equal(structured.decode(message), decoder.decode(new Uint8Array(bytes)), `bytes ${bytes.join(',')}`);
  }
});

test('random values decode to what v8 gives', () => {
  // A small deterministic generator: same values on every run.
  let seed = 12345;
  const rnd = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const units = [0x41, 0x7a, 0x20, 0x7f, 0x80, 0xe9, 0x7ff, 0x800, 0x4e16, 0xd7ff, 0xd83d, 0xde00, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xfeff, 0xffff, 0];
  const str = (): string => {
    const n = Math.floor(rnd() ** 2 * 120);
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(rnd() < 0.7 ? 0x61 + Math.floor(rnd() * 26) : units[Math.floor(rnd() * units.length)]!);
    return s;
  };
  const nums = [0, -0, 1, -1, 127, 128, -129, 2 ** 31, -(2 ** 31), NaN, Infinity, 0.5, 1e300, -1e-300];
  const gen = (depth: number): unknown => {
    const r = rnd();
    if (depth > 4 || r < 0.45) {
      const k = Math.floor(rnd() * 8);
      return [undefined, null, true, false, nums[Math.floor(rnd() * nums.length)], Math.floor(rnd() * 2 ** 32) - 2 ** 31, rnd() * 1000, str()][k];
    }
    if (r < 0.7) return Array.from({ length: Math.floor(rnd() * 6) }, () => gen(depth + 1));
    if (r < 0.9) return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 6) }, () => [rnd() < 0.2 ? String(Math.floor(rnd() * 10)) : str(), gen(depth + 1)]));
    return rnd() < 0.5 ? Buffer.from(str()) : new Uint8Array(Math.floor(rnd() * 70));
  };
  let fast = 0;
  for (let i = 0; i < 3000; i++) {
    const v = gen(0);
    const bytes = structured.encode(v);
    if (bytes[0] === FAST_FORMAT) fast++;
    assert.deepStrictEqual(structured.decode(bytes), v8RoundTrip(v), `value ${i}: ${JSON.stringify(v)}`);
  }
  assert.ok(fast > 1500, `most random values take the fast path (${fast} of 3000)`);
});

test('bytes that are neither format, or a cut or malformed fast message, give ERR_MULTIPROC_DECODE', () => {
  const bad: [string, number[]][] = [
    ['empty', []],
    ['unknown first byte', [0x42, 1, 2]],
    ['fast tag only', [FAST_FORMAT]],
    ['cut int32', [FAST_FORMAT, 0x04, 1, 2]],
    ['cut float64', [FAST_FORMAT, 0x05, 0, 0, 0]],
    ['cut string', [FAST_FORMAT, 0x06, 5, 0x61]],
    ['cut array', [FAST_FORMAT, 0x0a, 255]],
    ['cut object', [FAST_FORMAT, 0x0b, 1, 0x06, 1, 0x61]],
    ['key that is not a string', [FAST_FORMAT, 0x0b, 1, 0x81, 0x81]],
    ["'__proto__' key", [FAST_FORMAT, 0x0b, 1, 0x06, 9, ...Buffer.from('__proto__'), 0x81]],
    ['cut bytes', [FAST_FORMAT, 0x0d, 10, 0, 1]],
    ['unknown tag', [FAST_FORMAT, 0x7e]],
    ['trailing bytes', [FAST_FORMAT, 0x81, 0x81]],
    ['nested too deep', [FAST_FORMAT, ...new Array(70).fill([0x0a, 1]).flat(), 0x00]],
    ['v8 version byte only', [0xff]],
    ['v8 garbage', [0xff, 0x0f, 0x6f, 0x22, 0x7f]],
  ];
  for (const [name, b] of bad) {
    assert.throws(
      () => structured.decode(new Uint8Array(b)),
      (err: unknown) => err instanceof IpcError && err.code === 'ERR_MULTIPROC_DECODE',
      name,
    );
  }
  // The codec goes on working.
  assert.equal(roundTrip('fine'), 'fine');
  assert.equal(({} as Record<string, unknown>).x, undefined);
});

test('between processes over a shared-memory ring: fast and v8-format messages, kept after the ring moves on', { timeout: 120000 }, async () => {
  const name = uniqueName('codec-ring');
  const rounds = 20;
  // A small ring: later messages overwrite the memory earlier ones were decoded from.
  const ring = ShmRing.create(name, { capacity: 1 << 18, codec: 'structured', role: 'receiver' });
  const fixtures = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'codec-values.js')).href;
  try {
    const sender = new Child(
      `
      import { ShmRing } from 'multiproc';
      const [name, fixtures, rounds] = process.argv.slice(1);
      const { samples } = await import(fixtures);
      const ring = ShmRing.open(name, { role: 'sender' });
      for (let r = 0; r < Number(rounds); r++) {
        for (const s of samples()) await ring.send(s.value, { timeout: 60000 });
      }
      await ring.close();
    `,
      { args: [name, fixtures, String(rounds)], timeout: 110000 },
    );
    const got: unknown[] = [];
    for await (const m of ring) got.push(m);
    const r = await sender.exited;
    assert.equal(r.code, 0, r.stderr);
    const table = samples();
    assert.equal(got.length, table.length * rounds);
    for (let i = 0; i < got.length; i++) {
      const s = table[i % table.length]!;
      assert.deepStrictEqual(got[i], v8RoundTrip(s.value), `${s.name} (message ${i})`);
    }
  } finally {
    await ring.close();
  }
});

test('decoding a range of a larger buffer in place gives what decoding a copy of it gives (fast and v8 formats); two transient encodes of one length share a view', () => {
  for (const { name, value } of samples()) {
    const bytes = codecs.structured.encode(value);
    const big = new Uint8Array(bytes.length + 20).fill(0xee);
    big.set(bytes, 7);
    assert.deepEqual(decodeStructuredRange(big, 7, 7 + bytes.length), codecs.structured.decode(bytes), name);
  }
  const v8bytes = serialize(new Map([[1, 'a']]));
  const big = new Uint8Array(v8bytes.length + 4);
  big.set(v8bytes, 2);
  assert.deepEqual(decodeStructuredRange(big, 2, 2 + v8bytes.length), new Map([[1, 'a']]));
  // Cut short inside the larger buffer: the bytes after the range must not be read.
  const whole = codecs.structured.encode(['abc', 12345, [1, 2]]);
  const padded = new Uint8Array(whole.length + 8);
  padded.set(whole, 0);
  assert.throws(() => decodeStructuredRange(padded, 0, whole.length - 2), (e: unknown) => e instanceof IpcError && e.code === 'ERR_MULTIPROC_DECODE');
  const t = codecs.structured.encodeTransient!;
  const a = t([1, 'x']);
  const b = t([2, 'y']);
  assert.equal(a, b, 'a transient encode of the same length made a new view');
  assert.deepEqual(codecs.structured.decode(b.slice()), [2, 'y']);
});

test('json and msgpack: bytes they cannot decode give ERR_MULTIPROC_DECODE with the parser error as cause', () => {
  for (const [codec, bad] of [
    [codecs.json, Buffer.from('{"a": ')],
    [codecs.msgpack, Buffer.from([0xd9, 0x05, 0x61])],
    [codecs.msgpack, Buffer.from([0x92, 0x01])],
  ] as const) {
    assert.throws(
      () => codec.decode(bad),
      (e: unknown) => e instanceof IpcError && e.code === 'ERR_MULTIPROC_DECODE' && (e as Error).cause instanceof Error && e.message.startsWith(`${codec.name} codec:`),
      codec.name,
    );
  }
});
