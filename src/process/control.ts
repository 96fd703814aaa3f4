/**
 * The control channel between a parent and a child it spawned: one Unix
 * socket pair on the child's fd 3, framed by StreamChannel, encoded with the
 * `structured` codec.
 *
 * The library's own messages (hello, started, ready, error, shutdown, ping) travel
 * as frames of the reserved type {@link SYSTEM_TYPE}; they are taken out
 * before the inbox, so user code sees only its own messages and may use every
 * other type. `close()` / `destroy()` by user code end only its view: the
 * socket stays open for the library until the child exits.
 *
 * @internal
 */
import { writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { deserialize, serialize } from 'node:v8';
import type { Wait } from '../channel/base-channel.js';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../channel/base-channel.js';
import { structured, type Codec } from '../channel/codec.js';
import { header, type Frame } from '../channel/framing.js';
import { ClosedError, rangeError } from '../errors.js';
import type { ChannelDescriptor } from './transports.js';
import { SocketPairChannel } from './socket-pair-channel.js';

/** Frame type of library messages; user messages may use 1 .. SYSTEM_TYPE - 1. @internal */
export const SYSTEM_TYPE = 0x7fffffff;

/** The descriptor number of the control socket in the child. @internal */
export const CONTROL_FD = 3;

/** An error as it crosses the control channel. @internal */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** code, errno, syscall, path, permission, resource... when they are strings or numbers. */
  props: Record<string, string | number>;
}

/** @internal */
export type SystemMessage =
  | { kind: 'hello'; name: string; channels: Record<string, ChannelDescriptor>; exitWithParent: boolean; fds: number[] }
  | { kind: 'started' }
  | { kind: 'ready'; value: unknown }
  | { kind: 'error'; error: SerializedError; origin: string; phase: 'load' | 'run' }
  | { kind: 'shutdown'; timeout: number }
  | { kind: 'ping'; seq: number }
  | { kind: 'pong'; seq: number };

/** @internal */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const props: Record<string, string | number> = {};
    for (const key of Object.keys(err)) {
      const v = (err as unknown as Record<string, unknown>)[key];
      if (typeof v === 'string' || typeof v === 'number') props[key] = v;
    }
    return { name: err.name, message: err.message, stack: err.stack, props };
  }
  let message: string;
  try {
    message = String(err);
  } catch {
    message = 'a value that cannot be shown';
  }
  return { name: 'Error', message: `non-error thrown: ${message}`, props: {} };
}

/** Rebuilds an Error from its serialized form (in the parent). @internal */
export function deserializeError(s: SerializedError): Error {
  const e = new Error(String(s?.message));
  Object.defineProperty(e, 'name', { value: String(s?.name ?? 'Error'), configurable: true, writable: true, enumerable: false });
  if (typeof s?.stack === 'string') e.stack = s.stack;
  if (s?.props !== null && typeof s?.props === 'object') {
    for (const [k, v] of Object.entries(s.props)) {
      if ((typeof v === 'string' || typeof v === 'number') && k !== '__proto__' && !(k in Error.prototype)) (e as unknown as Record<string, unknown>)[k] = v;
    }
  }
  return e;
}

/** @internal */
export class ControlChannel extends SocketPairChannel<unknown> {
  readonly #onSystem: (message: SystemMessage) => void;
  readonly #socket: Socket;
  #transportClosing = false;

  /** @internal */
  constructor(socket: Socket, label: string, onSystem: (message: SystemMessage) => void, user?: { codec?: Codec<unknown>; maxMessageSize?: number }) {
    // `user` sets the codec and size of user messages (library messages are
    // always v8-serialized); spawn() keeps the defaults.
    super({ socket, codec: user?.codec ?? (structured as Codec<unknown>), maxMessageSize: user?.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE, label });
    this.#socket = socket;
    this.#onSystem = onSystem;
  }

  /** @internal */
  protected override _deliver(frame: Frame): void {
    if (frame.type === SYSTEM_TYPE) {
      // The peer may be a sandboxed, untrusted process: a malformed library
      // message is dropped, it must not throw into the stream's 'data' handler.
      try {
        const message = deserialize(frame.payload) as SystemMessage;
        if (message !== null && typeof message === 'object' && typeof message.kind === 'string') this.#onSystem(message);
      } catch {
        // dropped
      }
      return;
    }
    // A view closed by its user takes nothing more; the library's traffic goes on.
    if (this.closed) return;
    super._deliver(frame);
  }

  /** @internal */
  protected override _send(frame: Frame, wait: Wait): Promise<void> {
    if (frame.type === SYSTEM_TYPE) throw rangeError(`The value of "options.type" is out of range. Type ${SYSTEM_TYPE} is reserved on the control channel; use 1 to ${SYSTEM_TYPE - 1}`);
    return super._send(frame, wait);
  }

  /** @internal */
  protected override _trySend(frame: Frame): boolean {
    if (frame.type === SYSTEM_TYPE) throw rangeError(`The value of "options.type" is out of range. Type ${SYSTEM_TYPE} is reserved on the control channel; use 1 to ${SYSTEM_TYPE - 1}`);
    return super._trySend(frame);
  }

  /** @internal */
  protected override _close(): Promise<void> {
    if (this.#transportClosing) return super._close();
    this._failReceivers(new ClosedError(`${this.label} is closed`));
    return Promise.resolve();
  }

  /** @internal */
  protected override _destroy(err: Error | undefined): void {
    if (this.#transportClosing) return super._destroy(err);
    this._failReceivers(err ?? new ClosedError(`${this.label} was destroyed`));
  }

  /**
   * Sends a library message; false when the socket is gone. Never throws for
   * a closed peer: the caller learns about that from the process's exit.
   * @internal
   */
  sendSystem(message: SystemMessage): boolean {
    const frame: Frame = { payload: serialize(message), type: SYSTEM_TYPE, priority: 0 };
    try {
      if (super._trySend(frame)) return true;
      super._send(frame, { deadline: Infinity, timeout: Infinity, signal: undefined, what: 'room for a control message' }).catch(() => {});
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Writes a library message now, synchronously, for a process that is about
   * to die (uncaught exception, `process.exit()` right after `ready()`).
   * Only when nothing is queued on the socket, so that no frame is cut;
   * otherwise queues it like `sendSystem`.
   * @internal
   */
  sendSystemNow(message: SystemMessage, fd: number): void {
    const payload = serialize(message);
    if (this.#socket.destroyed) return;
    if (this.#socket.writableLength > 0) {
      this.sendSystem(message);
      return;
    }
    const frame = Buffer.concat([header(payload.length, SYSTEM_TYPE, 0), payload]);
    let written = 0;
    try {
      written = writeSync(fd, frame);
    } catch {
      // EAGAIN (the socket buffer is full) or EPIPE: the socket's queue takes it.
    }
    // The rest of a partial write goes first in the socket's queue, so the frame stays whole.
    if (written < frame.length) this.#socket.write(frame.subarray(written));
  }

  /** Closes the socket itself (the view included). @internal */
  closeTransport(): Promise<void> {
    this.#transportClosing = true;
    return this.closed ? super._close() : this.close();
  }

  /** Destroys the socket itself. @internal */
  destroyTransport(): void {
    this.#transportClosing = true;
    if (this.closed) super._destroy(undefined);
    else this.destroy();
  }
}
