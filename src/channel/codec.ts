/**
 * Codecs turn messages into bytes and back. Every channel takes one; custom
 * codecs plug in by implementing {@link Codec}.
 */
import { deserialize, serialize } from 'node:v8';
import { Packr } from 'msgpackr';
import { codes, IpcError } from '../errors.js';
import { decodeFast, encodeFast, FAST_FORMAT } from './structured-fast.js';

/** Encodes messages of type `T` to bytes and back. */
export interface Codec<T> {
  /** A short name, shown in stats and errors. */
  readonly name: string;
  /** Returns the encoded bytes. May return a view of the input (no copy). */
  encode(value: T): Uint8Array;
  /**
   * Optional: like `encode`, but the bytes may live in a buffer the codec
   * reuses, valid only until its next encode. Transports that copy a message
   * at once (ShmRing) call it instead, which saves allocating every message.
   */
  encodeTransient?(value: T): Uint8Array;
  /** Decodes one message. `bytes` may be reused by the transport after this returns; copy what you keep. */
  decode(bytes: Uint8Array): T;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * Raw bytes: `Uint8Array` in, `Uint8Array` out, no copy on send. On receive,
 * the array is a fresh copy the caller owns (or, for zero-copy transports, a
 * view valid until the next receive; see the transport).
 */
export const raw: Codec<Uint8Array> = {
  name: 'raw',
  encode(value: Uint8Array): Uint8Array {
    if (!(value instanceof Uint8Array)) {
      const e = new TypeError(`The raw codec sends Uint8Array (or Buffer) messages. Received ${value === null ? 'null' : typeof value}`) as TypeError & { code: string };
      e.code = 'ERR_INVALID_ARG_TYPE';
      throw e;
    }
    return value;
  },
  decode(bytes: Uint8Array): Uint8Array {
    return bytes.slice();
  },
};

/** JSON text (UTF-8). Plain objects, arrays, strings, numbers, booleans, null. */
export const json: Codec<unknown> = {
  name: 'json',
  encode(value: unknown): Uint8Array {
    const text = JSON.stringify(value);
    if (text === undefined) {
      const e = new TypeError(`The json codec cannot encode ${typeof value}`) as TypeError & { code: string };
      e.code = 'ERR_INVALID_ARG_VALUE';
      throw e;
    }
    return textEncoder.encode(text);
  },
  decode(bytes: Uint8Array): unknown {
    try {
      return JSON.parse(textDecoder.decode(bytes));
    } catch (err) {
      throw new IpcError(codes.DECODE, `json codec: ${(err as Error).message}`, { cause: err });
    }
  },
};

/**
 * The structured clone algorithm (`v8.serialize`): Map, Set, Date, RegExp,
 * BigInt, typed arrays, cycles. Small plain values (numbers, strings, arrays,
 * plain objects, `Uint8Array`/`Buffer`, up to 64 KiB) take a faster format of
 * this library's own that decodes to exactly what `v8.deserialize` would give;
 * anything else is `v8.serialize`d, and v8-format bytes always decode.
 *
 * Decoding errors: `ERR_MULTIPROC_DECODE` (an `IpcError`; the v8 error, if
 * any, in `cause`).
 */
export const structured: Codec<unknown> = {
  name: 'structured',
  encode(value: unknown): Uint8Array {
    return encodeFast(value) ?? serialize(value);
  },
  encodeTransient(value: unknown): Uint8Array {
    return encodeFast(value, true) ?? serialize(value);
  },
  decode(bytes: Uint8Array): unknown {
    const first = bytes.length > 0 ? bytes[0] : -1;
    if (first === FAST_FORMAT) return decodeFast(bytes, 0, bytes.length);
    if (first !== 0xff) {
      throw new IpcError(codes.DECODE, `structured codec: not a structured message (${bytes.length === 0 ? 'no bytes' : `first byte 0x${first.toString(16)}`})`);
    }
    // v8 returns typed arrays that view its input: a ring's shared memory is
    // overwritten by later messages, so those bytes are copied first.
    try {
      return deserialize(bytes.buffer instanceof SharedArrayBuffer ? new Uint8Array(bytes) : bytes);
    } catch (err) {
      throw new IpcError(codes.DECODE, `structured codec: ${(err as Error).message}`, { cause: err });
    }
  },
};

/**
 * The structured codec's decode of bytes `[start, stop)` of `bytes`, without
 * a view of them when they are in the fast format (ShmRing decodes in place). @internal
 */
export function decodeStructuredRange(bytes: Uint8Array, start: number, stop: number): unknown {
  return stop > start && bytes[start] === FAST_FORMAT ? decodeFast(bytes, start, stop) : structured.decode(bytes.subarray(start, stop));
}

const packr = new Packr({ useRecords: false, moreTypes: true });

/** MessagePack (msgpackr): compact and fast; Date, typed arrays, BigInt (64-bit). Maps arrive as plain objects: use `structured` for Map and Set. Decoding errors: `ERR_MULTIPROC_DECODE`. */
export const msgpack: Codec<unknown> = {
  name: 'msgpack',
  encode(value: unknown): Uint8Array {
    return packr.pack(value);
  },
  decode(bytes: Uint8Array): unknown {
    try {
      return packr.unpack(bytes);
    } catch (err) {
      throw new IpcError(codes.DECODE, `msgpack codec: ${(err as Error).message}`, { cause: err });
    }
  },
};

/** Codecs by name, for options that accept `'json' | 'structured' | 'msgpack' | 'raw'`. */
export const codecs = { raw, json, structured, msgpack } as const;

/** A codec name or a codec. */
export type CodecOption<T> = keyof typeof codecs | Codec<T>;

/** @internal */
export function resolveCodec<T>(option: unknown, fallback: keyof typeof codecs): Codec<T> {
  if (option === undefined) return codecs[fallback] as unknown as Codec<T>;
  if (typeof option === 'string' && option in codecs) return codecs[option as keyof typeof codecs] as unknown as Codec<T>;
  if (option !== null && typeof option === 'object' && typeof (option as Codec<T>).encode === 'function' && typeof (option as Codec<T>).decode === 'function') {
    return option as Codec<T>;
  }
  const e = new TypeError(`The option 'codec' must be one of 'raw', 'json', 'structured', 'msgpack', or an object with encode() and decode()`) as TypeError & { code: string };
  e.code = 'ERR_INVALID_ARG_VALUE';
  throw e;
}
