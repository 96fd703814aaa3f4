/**
 * A StreamChannel over one end of a Unix socket pair that a parent handed to
 * its child at spawn (an extra stdio descriptor: libuv creates a socketpair
 * for every 'pipe' entry past stdio 0-2).
 *
 * The socket is unref'd except while a receive waits: a child whose module has
 * finished exits on its own, as one with no open handles would, while a child
 * that awaits a message (or iterates a channel) stays alive for it.
 *
 * @internal
 */
import { Socket } from 'node:net';
import type { ChannelTraits } from '../channel/channel.js';
import { StreamChannel, type StreamChannelInit } from '../channel/stream-channel.js';
import type { TypeSelector, Wait } from '../channel/base-channel.js';
import type { Codec } from '../channel/codec.js';
import type { Frame } from '../channel/framing.js';

/** @internal */
export const socketPairTraits: ChannelTraits = {
  mechanism: 'socketpair',
  medium: 'socket',
  unit: 'stream',
  direction: 'two-way',
  scope: 'same-host',
  use: 'parent-child channels created at spawn: the control channel and named stream channels',
};

/** @internal */
export interface SocketPairChannelInit<T> {
  socket: Socket;
  codec: Codec<T>;
  maxMessageSize: number;
  label: string;
  /** Direct reads and writes of large frames (the parent side, which has the addon; see StreamChannelInit). */
  readInto?: StreamChannelInit<T>['readInto'];
  writeFrom?: StreamChannelInit<T>['writeFrom'];
}

/** Opens the socket a parent passed as descriptor `fd`. @internal */
export function socketFromFd(fd: number): Socket {
  return new Socket({ fd, readable: true, writable: true });
}

/** @internal */
export class SocketPairChannel<T> extends StreamChannel<T> {
  readonly #socket: Socket;
  #waiting = 0;

  /** @internal */
  constructor(init: SocketPairChannelInit<T>) {
    super({
      stream: init.socket,
      traits: socketPairTraits,
      codec: init.codec,
      maxMessageSize: init.maxMessageSize,
      label: init.label,
      canSend: true,
      canReceive: true,
      ...(init.readInto === undefined ? {} : { readInto: init.readInto }),
      ...(init.writeFrom === undefined ? {} : { writeFrom: init.writeFrom }),
    });
    this.#socket = init.socket;
    this.#socket.unref();
  }

  /** @internal */
  protected override _receive(selector: TypeSelector, wait: Wait): Promise<Frame> {
    const p = super._receive(selector, wait);
    if (this.#waiting++ === 0) this.#socket.ref();
    const done = (): void => {
      if (--this.#waiting === 0) this.#socket.unref();
    };
    p.then(done, done);
    return p;
  }

  /**
   * Resolves once everything sent so far has been handed to the kernel (or
   * the socket is gone), or after `timeout` ms. For a process about to exit.
   * @internal
   */
  async flushed(timeout: number): Promise<void> {
    const deadline = performance.now() + timeout;
    // The coalescing batch goes out on the next setImmediate.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (!this.#socket.destroyed && this.#socket.writableLength > 0 && performance.now() < deadline) {
      await new Promise<void>((resolve) => setTimeout(resolve, 5));
    }
  }
}
