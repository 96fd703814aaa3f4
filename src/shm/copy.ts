/**
 * Byte copies to and from shared memory.
 *
 * V8 copies into or out of a SharedArrayBuffer word by word with relaxed
 * atomics; on large payloads the addon's memcpy is about twice as fast. The
 * protocols around these copies (ring counters, queue locks) already order
 * the bytes, so a plain memcpy is what they need.
 *
 * @internal
 */
import { native } from '../binding/native.js';

/** From this many bytes on, the addon copies; below, a native call costs more than it saves. */
export const NATIVE_COPY_MIN = 16 * 1024;

/** Copies all of `src` into `dst` at `offset` (the caller checked the room). @internal */
export function copyInto(dst: Uint8Array, offset: number, src: Uint8Array): void {
  if (src.length >= NATIVE_COPY_MIN) native.copyBytes(dst, offset, src, 0, src.length);
  else dst.set(src, offset);
}

/** A copy the caller owns, in a buffer of its own, of `length` bytes of `src` at `offset`. @internal */
export function copyOf(src: Uint8Array, offset: number, length: number): Uint8Array {
  // Uninitialized memory: slice() would zero it first, a second pass over every
  // byte. Not from Node's Buffer pool: the copy's .buffer is the message alone.
  const b = Buffer.allocUnsafeSlow(length);
  if (length >= NATIVE_COPY_MIN) native.copyBytes(b, 0, src, offset, length);
  else b.set(src.subarray(offset, offset + length));
  return new Uint8Array(b.buffer, b.byteOffset, length);
}
