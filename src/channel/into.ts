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
  if (target.byteLength === 0 && isDetached(target)) {
    throw typeError('ERR_INVALID_ARG_VALUE', 'The "target" argument is detached: its ArrayBuffer was transferred');
  }
  const into = target instanceof Uint8Array ? target : new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
  return { into, at: offset === undefined ? 0 : validateInteger(offset, 'offset', 0, into.length) };
}

const EMPTY = new Uint8Array(0);

/** Whether an empty view's buffer is detached (no `ArrayBuffer.prototype.detached` before Node 22): writing nothing into it throws then. */
function isDetached(view: ArrayBufferView): boolean {
  try {
    new Uint8Array(view.buffer, view.byteOffset, 0).set(EMPTY);
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
