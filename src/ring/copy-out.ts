/**
 * Copies a message out of the ring into memory the caller owns.
 *
 * Allocating a small ArrayBuffer costs far more than copying 100 bytes (the
 * engine gives each one an off-heap backing store), so small messages are
 * copied into a shared pool, as Buffer.allocUnsafe does, and returned as
 * views of it: a message's `.buffer` may then hold other messages too.
 * Ring payloads are 16-byte aligned, so the copy goes by 32-bit words.
 * Large messages get a buffer of their own, filled by memcpy (see shm/copy).
 *
 * @internal
 */
import { copyOf } from '../shm/copy.js';

const POOL_BYTES = 256 * 1024;
/** Messages up to this size share the pool; larger ones get their own buffer. */
const POOLED_MAX = 1024;

/**
 * A fresh pool, uninitialized as Buffer.allocUnsafe's: zeroing it would be
 * a pass over every byte that the copies overwrite anyway. Bytes of the pool
 * not yet handed out are never visible through a message's bounds, but are
 * through its `.buffer`, as with Node's own Buffer pool.
 */
function newPool(): ArrayBuffer {
  return Buffer.allocUnsafeSlow(POOL_BYTES).buffer as ArrayBuffer;
}

let pool = newPool();
let pool8 = new Uint8Array(pool);
let pool32 = new Int32Array(pool);
let used = 0;

/** A copy of `length` bytes at `offset` (a multiple of 4) of the ring. @internal */
export function copyOut(src8: Uint8Array, src32: Int32Array, offset: number, length: number): Uint8Array {
  if (length > POOLED_MAX) return copyOf(src8, offset, length);
  if (used + length > POOL_BYTES) {
    pool = newPool();
    pool8 = new Uint8Array(pool);
    pool32 = new Int32Array(pool);
    used = 0;
  }
  const at = used;
  used = (at + length + 7) & ~7;
  const words = length >> 2;
  const s = offset >> 2;
  const d = at >> 2;
  const p32 = pool32;
  for (let k = 0; k < words; k++) p32[d + k] = src32[s + k]!;
  const p8 = pool8;
  for (let k = words << 2; k < length; k++) p8[at + k] = src8[offset + k]!;
  return new Uint8Array(pool, at, length);
}

/** Room for `length` bytes (at most the pool size) in the pool, for one copy of many messages. @internal */
export function poolSpace(length: number): { buffer: ArrayBuffer; bytes: Uint8Array; offset: number } {
  if (used + length > POOL_BYTES) {
    pool = newPool();
    pool8 = new Uint8Array(pool);
    pool32 = new Int32Array(pool);
    used = 0;
  }
  const offset = used;
  used = (offset + length + 7) & ~7;
  return { buffer: pool, bytes: pool8, offset };
}
