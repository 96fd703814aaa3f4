/**
 * The arguments of `receiveInto` / `tryReceiveInto`, shared by every channel
 * that has them: where a message's bytes go, and the error when they do not fit.
 * @internal
 */
import { MessageTooLargeError, describe, typeError, validateInteger } from '../errors.js';

/** `target` as bytes, and the offset in it; throws ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE. @internal */
export function intoArgs(target: unknown, offset: unknown): { into: Uint8Array; at: number } {
  if (!ArrayBuffer.isView(target)) {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "target" argument must be an instance of Buffer, TypedArray or DataView. Received ${describe(target)}`);
  }
  // A detached view reads as empty; only a write would throw, after the
  // message was taken (a zero-length one would be lost).
  if (isDetached(target)) {
    throw typeError('ERR_INVALID_ARG_VALUE', 'The "target" argument is detached: its ArrayBuffer was transferred');
  }
  const into = target instanceof Uint8Array ? target : new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
  return { into, at: offset === undefined ? 0 : validateInteger(offset, 'offset', 0, into.length) };
}

/**
 * True when `view` is over a detached (transferred) ArrayBuffer, which reads
 * as empty: a check for arguments, cheap unless the view is empty. @internal
 */
export function isDetached(view: ArrayBufferView): boolean {
  if (view.byteLength !== 0) return false;
  const b = view.buffer as ArrayBuffer & { detached?: boolean };
  if (typeof b.detached === 'boolean') return b.detached;
  // Without ArrayBuffer.prototype.detached (Node 20): slicing a detached buffer throws.
  try {
    b.slice(0, 0);
    return false;
  } catch {
    return true;
  }
}

/** The error of a message (`length` bytes) that does not fit the `room` bytes from offset `at`; it stays queued. @internal */
export function tooSmall(label: string, length: number, room: number, at: number): MessageTooLargeError {
  return new MessageTooLargeError(
    `the next message on ${label} has ${length} bytes, more than the ${room} bytes of the target from offset ${at}; it stays queued`,
    length,
    room,
  );
}
