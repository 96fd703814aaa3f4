/**
 * The fast path of the `structured` codec. `v8.serialize` builds a serializer
 * object per call and costs microseconds even for the number 1; RPC messages
 * (`[kind, id, 'method', [args]]`) and most channel messages are small plain
 * values. This encoder writes those values in a simple format of its own and
 * gives up (the codec then calls `v8.serialize`) on anything whose structured
 * clone it cannot reproduce exactly, so a value decodes to the same thing
 * whichever path carried it.
 *
 * Format: byte 0 is {@link FAST_FORMAT} (`v8.serialize` output always starts
 * with 0xFF, its version tag), then one value: a tag byte and its payload.
 * Lengths and counts are 8 or 16 bits, little-endian; the whole message is at
 * most {@link MAX_SIZE} bytes.
 *
 * Handled: undefined, null, booleans, numbers (-0 and NaN included), strings
 * that are well-formed UTF-16, arrays of up to {@link MAX_ARRAY} elements
 * without holes or extra properties, objects whose prototype is
 * `Object.prototype` or null (they come back with `Object.prototype`, as from
 * v8) without a `__proto__` own key, `Uint8Array` and `Buffer` (copied), each
 * object seen once (shared references and cycles go to v8, which keeps them),
 * nested at most {@link MAX_DEPTH} deep. Everything else (Date, RegExp, Map,
 * Set, BigInt, Error, other typed arrays, class instances, proxies, lone
 * surrogates, functions, symbols) goes to v8, which clones it or throws its
 * own error as before.
 *
 * One difference can be observed: an accessor property is read by this
 * encoder, and read again by v8 if the value then falls back.
 * @internal
 */
import { types } from 'node:util';
import { codes, IpcError } from '../errors.js';

/** First byte of a fast-format message. */
export const FAST_FORMAT = 0x01;
/** Largest fast-format message; larger values go to v8 (which is as fast per byte there). */
export const MAX_SIZE = 65536;
/** Deepest nesting of arrays and objects. */
export const MAX_DEPTH = 64;
/** Longest array (checking a long array for extra properties costs more than v8 does). */
export const MAX_ARRAY = 64;
/** Most arrays, objects and byte arrays in one message (each is checked against all before it). */
export const MAX_OBJECTS = 64;

// Value tags. 0x80 | n is the integer n (0..127).
const UNDEFINED = 0x00;
const NULL = 0x01;
const FALSE = 0x02;
const TRUE = 0x03;
const INT32 = 0x04; // 4 bytes
const FLOAT64 = 0x05; // 8 bytes
const ASCII8 = 0x06; // u8 length, then the characters
const ASCII16 = 0x07; // u16 length
const UTF8_8 = 0x08; // u8 byte length, then UTF-8
const UTF8_16 = 0x09; // u16 byte length
const ARRAY = 0x0a; // u8 count, then the elements
const OBJECT = 0x0b; // u16 count, then key (a string value) and value, per property
const BYTES = 0x0c; // Uint8Array: u16 length, then the bytes
const BUFFER = 0x0d; // Buffer: u16 length, then the bytes

/** Longest string hand-encoded (3 bytes per UTF-16 unit at most: fits a u8 length). */
const SHORT_STRING = 85;

const textEncoder = new TextEncoder();
// ignoreBOM: a string that starts with U+FEFF must keep it.
const textDecoder = new TextDecoder('utf-8', { ignoreBOM: true });

const out = new Uint8Array(MAX_SIZE);
/** Views of `out` by length, for transient encodes of small messages: no object per message. */
const VIEWS = 1024;
const views: (Uint8Array | undefined)[] = [];
const outView = new DataView(out.buffer);
let pos = 0;
const seen: unknown[] = [];
let seenCount = 0;
let busy = false;

const isProxy = types.isProxy;
const ObjectProto = Object.prototype;
const BufferProto = Buffer.prototype;
const Uint8ArrayProto = Uint8Array.prototype;
const getProto = Object.getPrototypeOf;
const objectKeys = Object.keys;
const isArray = Array.isArray;

// Arrays vouched for by vouchForArrays, until the next encode ends.
let vouched0: unknown;
let vouched1: unknown;

/**
 * Tells the next {@link encodeFast} that `a` and `b` are plain arrays made by
 * this library and never handed to anyone (RPC's message and its rest
 * arguments), so that it skips their check for extra properties
 * (`Object.keys`, the dearest step of a small message). Call with no
 * arguments when no encode followed, so that nothing is kept.
 */
export function vouchForArrays(a?: unknown[], b?: unknown[]): void {
  vouched0 = a;
  vouched1 = b;
}

// The writers return false when the value must go to v8 (no exceptions:
// a throw and catch costs microseconds in Node, as much as v8.serialize).

/**
 * Encodes `value` in the fast format into a fresh array (or, `transient`, a
 * view of the encoder's scratch buffer, valid until the next encode), or
 * returns undefined when only v8 can clone it exactly. Errors thrown by the value's getters
 * propagate (v8 would meet the same getter at the same point).
 */
export function encodeFast(value: unknown, transient = false): Uint8Array | undefined {
  // A getter that encodes a message of its own: that one goes to v8.
  if (busy) return undefined;
  busy = true;
  out[0] = FAST_FORMAT;
  pos = 1;
  seenCount = 0;
  try {
    if (!writeValue(value, 0)) return undefined;
    const n = pos;
    if (transient) return n < VIEWS ? (views[n] ??= out.subarray(0, n)) : out.subarray(0, n);
    // A Buffer, like v8.serialize returns: small ones come from Node's pool,
    // cheaper than an ArrayBuffer of their own.
    const r = Buffer.allocUnsafe(n);
    if (n <= 64) for (let i = 0; i < n; i++) r[i] = out[i]!;
    else r.set(out.subarray(0, n));
    return r;
  } finally {
    // Keep no reference to the message.
    for (let i = 0; i < seenCount; i++) seen[i] = undefined;
    vouched0 = vouched1 = undefined;
    busy = false;
  }
}

function writeValue(v: unknown, depth: number): boolean {
  // Room for any fixed-size value; strings and bytes check their own length.
  if (pos > MAX_SIZE - 16) return false;
  switch (typeof v) {
    case 'number':
      writeNumber(v);
      return true;
    case 'string':
      return writeString(v);
    case 'boolean':
      out[pos++] = v ? TRUE : FALSE;
      return true;
    case 'undefined':
      out[pos++] = UNDEFINED;
      return true;
    case 'object':
      if (v !== null) return writeObject(v, depth);
      out[pos++] = NULL;
      return true;
    default:
      // bigint (v8 clones it), symbol and function (v8 throws its DataCloneError)
      return false;
  }
}

function writeNumber(v: number): void {
  // An int32 other than -0 (which must stay -0).
  if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
    if (v >= 0 && v < 128) {
      out[pos++] = 0x80 | v;
    } else {
      out[pos] = INT32;
      outView.setInt32(pos + 1, v, true);
      pos += 5;
    }
  } else {
    out[pos] = FLOAT64;
    outView.setFloat64(pos + 1, v, true);
    pos += 9;
  }
}

function writeString(s: string): boolean {
  const n = s.length;
  if (n <= SHORT_STRING) {
    if (pos + 2 + 3 * n > MAX_SIZE) return false;
    let p = pos + 2;
    let ascii = true;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) {
        out[p++] = c;
      } else if (c < 0x800) {
        ascii = false;
        out[p++] = 0xc0 | (c >> 6);
        out[p++] = 0x80 | (c & 0x3f);
      } else if (c < 0xd800 || c > 0xdfff) {
        ascii = false;
        out[p++] = 0xe0 | (c >> 12);
        out[p++] = 0x80 | ((c >> 6) & 0x3f);
        out[p++] = 0x80 | (c & 0x3f);
      } else {
        // A surrogate: only a high one followed by a low one is well-formed.
        const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c > 0xdbff || d < 0xdc00 || d > 0xdfff) return false;
        ascii = false;
        i++;
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        out[p++] = 0xf0 | (cp >> 18);
        out[p++] = 0x80 | ((cp >> 12) & 0x3f);
        out[p++] = 0x80 | ((cp >> 6) & 0x3f);
        out[p++] = 0x80 | (cp & 0x3f);
      }
    }
    out[pos] = ascii ? ASCII8 : UTF8_8;
    out[pos + 1] = p - pos - 2;
    pos = p;
    return true;
  }
  if (pos + 3 + n > MAX_SIZE) return false;
  // Lone surrogates: v8 keeps them, UTF-8 cannot.
  if (!(s as unknown as { isWellFormed(): boolean }).isWellFormed()) return false;
  const r = textEncoder.encodeInto(s, out.subarray(pos + 3));
  if (r.read !== n) return false; // did not fit
  // Well-formed: one byte per unit exactly when every character is ASCII.
  out[pos] = r.written === n ? ASCII16 : UTF8_16;
  out[pos + 1] = r.written & 0xff;
  out[pos + 2] = r.written >> 8;
  pos += 3 + r.written;
  return true;
}

function writeObject(o: object, depth: number): boolean {
  // Vouched for: a plain array, no proxy, held nowhere else (so seen once).
  if (o === vouched0 || o === vouched1) return writeArray(o as unknown[], depth);
  if (depth >= MAX_DEPTH || seenCount >= MAX_OBJECTS) return false;
  // Shared references and cycles: v8 keeps them.
  for (let i = 0; i < seenCount; i++) if (seen[i] === o) return false;
  // v8 refuses proxies; looking into one would run its traps.
  if (isProxy(o)) return false;
  seen[seenCount++] = o;
  if (isArray(o)) return writeArray(o, depth);
  const proto = getProto(o);
  if (proto === ObjectProto || proto === null) {
    // Own enumerable string keys, integer keys first: the order v8 writes and rebuilds.
    const keys = objectKeys(o);
    const n = keys.length;
    if (n > 0xffff) return false;
    out[pos++] = OBJECT;
    out[pos++] = n & 0xff;
    out[pos++] = n >> 8;
    for (let i = 0; i < n; i++) {
      const k = keys[i]!;
      // Assigning '__proto__' on decode would set the prototype.
      if (k === '__proto__' || pos > MAX_SIZE - 16) return false;
      if (!writeString(k) || !writeValue((o as Record<string, unknown>)[k], depth + 1)) return false;
    }
    return true;
  }
  // Node's serializer tells the two apart by `constructor === Buffer`; anything unusual goes to v8.
  let tag: number;
  if (proto === BufferProto && (o as Buffer).constructor === Buffer) tag = BUFFER;
  else if (proto === Uint8ArrayProto && (o as Uint8Array).constructor === Uint8Array) tag = BYTES;
  else return false;
  const b = o as Uint8Array;
  const n = b.byteLength;
  if (pos + 3 + n > MAX_SIZE) return false;
  out[pos] = tag;
  out[pos + 1] = n & 0xff;
  out[pos + 2] = n >> 8;
  pos += 3;
  if (n <= 64) for (let i = 0; i < n; i++) out[pos + i] = b[i]!;
  else out.set(b, pos);
  pos += n;
  return true;
}

function writeArray(a: unknown[], depth: number): boolean {
  const n = a.length;
  if (n > MAX_ARRAY) return false;
  out[pos++] = ARRAY;
  out[pos++] = n;
  for (let i = 0; i < n; i++) {
    const v = a[i];
    // A hole reads as undefined: v8 keeps holes.
    if (v === undefined && !(i in a)) return false;
    if (!writeValue(v, depth + 1)) return false;
  }
  // Non-index properties (a RegExp match's index, input, groups): v8 keeps them.
  // Without holes, the own enumerable keys are otherwise exactly the n indices.
  return a === vouched0 || a === vouched1 || objectKeys(a).length === n;
}

// ---------------------------------------------------------------------------
// Decoding

let src: Uint8Array = out;
let at = 0;
let end = 0;
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
// TextDecoder may refuse views of a SharedArrayBuffer: those bytes are copied here first.
const stringScratch = new Uint8Array(MAX_SIZE);
const fcc = String.fromCharCode;
const units: number[] = [];

/** The error for bytes that are not a valid fast-format message. */
function malformed(what: string): IpcError {
  return new IpcError(codes.DECODE, `structured codec: malformed message (${what})`);
}

/** Decodes a fast-format message, bytes `[start, stop)` of `bytes` (`bytes[start] === FAST_FORMAT`). Never keeps a view of `bytes`. */
export function decodeFast(bytes: Uint8Array, start = 0, stop = bytes.length): unknown {
  src = bytes;
  at = start + 1;
  end = stop;
  try {
    const v = readValue(0);
    if (at !== end) throw malformed(`${end - at} bytes after the value`);
    return v;
  } finally {
    src = out;
  }
}

function readValue(depth: number): unknown {
  if (at >= end) throw malformed('cut off');
  const t = src[at++];
  if (t >= 0x80) return t & 0x7f;
  switch (t) {
    case UNDEFINED:
      return undefined;
    case NULL:
      return null;
    case FALSE:
      return false;
    case TRUE:
      return true;
    case INT32: {
      if (at + 4 > end) throw malformed('cut off');
      const s = src;
      const p = at;
      at += 4;
      return s[p] | (s[p + 1] << 8) | (s[p + 2] << 16) | (s[p + 3] << 24);
    }
    case FLOAT64: {
      if (at + 8 > end) throw malformed('cut off');
      const s = src;
      const p = at;
      at += 8;
      if (littleEndian) for (let i = 0; i < 8; i++) f64Bytes[i] = s[p + i];
      else for (let i = 0; i < 8; i++) f64Bytes[7 - i] = s[p + i];
      return f64[0];
    }
    case ASCII8:
    case UTF8_8:
    case ASCII16:
    case UTF8_16:
      return readString(t);
    case ARRAY: {
      if (depth >= MAX_DEPTH) throw malformed('nested too deep');
      if (at >= end) throw malformed('cut off');
      const n = src[at++];
      // Small arrays as literals, of their exact size: an array grown by push
      // from empty gets room for 17 elements (RPC's messages have 2 to 4).
      const d = depth + 1;
      switch (n) {
        case 0:
          return [];
        case 1:
          return [readValue(d)];
        case 2: {
          const v0 = readValue(d);
          return [v0, readValue(d)];
        }
        case 3: {
          const v0 = readValue(d);
          const v1 = readValue(d);
          return [v0, v1, readValue(d)];
        }
        case 4: {
          const v0 = readValue(d);
          const v1 = readValue(d);
          const v2 = readValue(d);
          return [v0, v1, v2, readValue(d)];
        }
      }
      const a: unknown[] = [];
      for (let i = 0; i < n; i++) a.push(readValue(d));
      return a;
    }
    case OBJECT: {
      if (depth >= MAX_DEPTH) throw malformed('nested too deep');
      const n = readLength16();
      const o: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        const k = readKey();
        if (k === '__proto__') throw malformed("a '__proto__' key");
        o[k] = readValue(depth + 1);
      }
      return o;
    }
    case BYTES:
    case BUFFER: {
      const n = readLength16();
      if (at + n > end) throw malformed('cut off');
      const s = src;
      const p = at;
      at += n;
      // A copy: the transport may reuse `bytes`.
      const b = t === BUFFER ? Buffer.allocUnsafe(n) : new Uint8Array(n);
      if (n <= 64) for (let i = 0; i < n; i++) b[i] = s[p + i]!;
      else b.set(s.subarray(p, p + n));
      return b;
    }
    default:
      throw malformed(`unknown tag 0x${t.toString(16)}`);
  }
}

function readLength8(): number {
  if (at >= end) throw malformed('cut off');
  return src[at++];
}

function readLength16(): number {
  if (at + 2 > end) throw malformed('cut off');
  const n = src[at] | (src[at + 1] << 8);
  at += 2;
  return n;
}

/**
 * Recently decoded short ASCII keys, by a hash of their bytes: the same key
 * comes back as the same string, which V8 has already internalized, so adding
 * the property is cheap.
 */
const keyCache: (string | undefined)[] = new Array<string | undefined>(4096).fill(undefined);

function readKey(): string {
  if (at + 2 > end) throw malformed('cut off');
  const s = src;
  const n = s[at + 1]!;
  if (s[at] !== ASCII8 || n === 0 || n > 16 || at + 2 + n > end) return readString(s[at++]!);
  const p = at + 2;
  let h = n;
  for (let i = 0; i < n; i++) h = (Math.imul(h, 31) + s[p + i]!) | 0;
  const slot = h & 4095;
  const cached = keyCache[slot];
  at = p + n;
  if (cached !== undefined && cached.length === n) {
    let i = 0;
    while (i < n && cached.charCodeAt(i) === s[p + i]) i++;
    if (i === n) return cached;
  }
  const k = ascii(s, p, n);
  keyCache[slot] = k;
  return k;
}

function readString(t: number): string {
  let n: number;
  if (t === ASCII8 || t === UTF8_8) n = readLength8();
  else if (t === ASCII16 || t === UTF8_16) n = readLength16();
  else throw malformed(`a key of tag 0x${t.toString(16)}`);
  if (at + n > end) throw malformed('cut off');
  const p = at;
  at += n;
  if (n === 0) return '';
  const s = src;
  // Short strings by hand: cheaper than a TextDecoder call.
  if (t === ASCII8 || t === ASCII16) {
    if (n <= 32) return ascii(s, p, n);
  } else if (n <= 64) {
    const r = utf8(s, p, n);
    if (r !== undefined) return r;
  }
  const view = s.subarray(p, p + n);
  if (!(s.buffer instanceof SharedArrayBuffer)) return textDecoder.decode(view);
  stringScratch.set(view);
  return textDecoder.decode(stringScratch.subarray(0, n));
}

/** `n` (1 to 32) ASCII characters at `s[p]`. */
function ascii(s: Uint8Array, p: number, n: number): string {
  switch (n) {
    case 1:
      return fcc(s[p]!);
    case 2:
      return fcc(s[p]!, s[p + 1]!);
    case 3:
      return fcc(s[p]!, s[p + 1]!, s[p + 2]!);
    case 4:
      return fcc(s[p]!, s[p + 1]!, s[p + 2]!, s[p + 3]!);
    case 5:
      return fcc(s[p]!, s[p + 1]!, s[p + 2]!, s[p + 3]!, s[p + 4]!);
    case 6:
      return fcc(s[p]!, s[p + 1]!, s[p + 2]!, s[p + 3]!, s[p + 4]!, s[p + 5]!);
    case 7:
      return fcc(s[p]!, s[p + 1]!, s[p + 2]!, s[p + 3]!, s[p + 4]!, s[p + 5]!, s[p + 6]!);
    case 8:
      return fcc(s[p]!, s[p + 1]!, s[p + 2]!, s[p + 3]!, s[p + 4]!, s[p + 5]!, s[p + 6]!, s[p + 7]!);
    default:
      return ascii(s, p, 8) + ascii(s, p + 8, n - 8);
  }
}

/**
 * `n` bytes of UTF-8 at `s[p]`, or undefined when they are not well-formed
 * (only a corrupt or hostile message; TextDecoder then decides).
 */
function utf8(s: Uint8Array, p: number, n: number): string | undefined {
  const u = units;
  const e = p + n;
  let k = 0;
  while (p < e) {
    const b = s[p++]!;
    if (b < 0x80) {
      u[k++] = b;
    } else if (b >= 0xc2 && b < 0xe0) {
      if (p >= e || (s[p]! & 0xc0) !== 0x80) return undefined;
      u[k++] = ((b & 0x1f) << 6) | (s[p++]! & 0x3f);
    } else if (b >= 0xe0 && b < 0xf0) {
      if (p + 1 >= e || (s[p]! & 0xc0) !== 0x80 || (s[p + 1]! & 0xc0) !== 0x80) return undefined;
      const c = ((b & 0x0f) << 12) | ((s[p]! & 0x3f) << 6) | (s[p + 1]! & 0x3f);
      // Overlong, or an encoded surrogate.
      if (c < 0x800 || (c >= 0xd800 && c <= 0xdfff)) return undefined;
      u[k++] = c;
      p += 2;
    } else if (b >= 0xf0 && b < 0xf5) {
      if (p + 2 >= e || (s[p]! & 0xc0) !== 0x80 || (s[p + 1]! & 0xc0) !== 0x80 || (s[p + 2]! & 0xc0) !== 0x80) return undefined;
      const c = ((b & 0x07) << 18) | ((s[p]! & 0x3f) << 12) | ((s[p + 1]! & 0x3f) << 6) | (s[p + 2]! & 0x3f);
      if (c < 0x10000 || c > 0x10ffff) return undefined;
      u[k++] = 0xd800 + ((c - 0x10000) >> 10);
      u[k++] = 0xdc00 + ((c - 0x10000) & 0x3ff);
      p += 3;
    } else {
      return undefined;
    }
  }
  u.length = k;
  return fcc.apply(null, u);
}
