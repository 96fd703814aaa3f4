/**
 * A channel over a byte stream (pipe, FIFO, Unix or TCP socket): frames are
 * length-prefixed (framing.ts) and small frames are coalesced so that many
 * messages cost one write(2).
 *
 * Writes: frames below COALESCE_LIMIT are copied into a batch that is written
 * when it fills or at the end of the current event-loop turn; larger frames
 * go out as header + payload with writev and no copy, and their `send`
 * resolves once the kernel took the bytes (so the caller may reuse its buffer).
 * When the stream's buffer is full, `send` waits for 'drain' (backpressure).
 *
 * Reads: every chunk goes through a FrameParser; a malformed frame destroys
 * this connection with ERR_MULTIPROC_PROTOCOL (other connections go on), a
 * stream that ends inside a frame reports the cut as a protocol error after
 * the whole messages before it.
 *
 * Raw mode (`raw: true`) speaks plain bytes to programs that know no framing
 * (a shell's `echo > fifo`): each chunk read is one message, each message is
 * written as is, and type and priority are not carried.
 *
 * @internal
 */
import type { Duplex } from 'node:stream';
import { ClosedError, ProtocolError } from '../errors.js';
import { InboxChannel, waitFor, type BaseChannelInit, type Wait } from './base-channel.js';
import { FRAME_HEADER, FrameParser, freshPayload, header, writeHeader, type Frame } from './framing.js';

const COALESCE_LIMIT = 16 * 1024;
const EMPTY = new Uint8Array(0);
const BATCH_SIZE = 64 * 1024;

/** @internal */
export interface StreamChannelInit<T> extends BaseChannelInit<T> {
  stream: Duplex;
  /** No framing: a chunk read is a message, a message is written as is. */
  raw?: boolean;
  /**
   * Largest write of coalesced small frames (default 64 KiB). A transport
   * whose writes must stay atomic (a FIFO shared by writers: PIPE_BUF) lowers
   * it; frames are never split across writes.
   */
  batchSize?: number;
  /**
   * read(2) into a view (bytes, 0 at the end, -1 when nothing is ready): lets
   * large payloads be read straight into their buffer. Given by transports
   * that load the addon; the addon-free child side goes without.
   */
  readInto?: (fd: number, view: Uint8Array) => number;
  /** writev(2) of two views (bytes written, -1 when nothing could be): lets a large frame skip the stream's queue. */
  writeFrom?: (fd: number, head: Uint8Array, body: Uint8Array) => number;
}

/** @internal */
export class StreamChannel<T> extends InboxChannel<T> {
  /** @internal */ protected readonly stream: Duplex;
  readonly #parser: FrameParser;
  /** The frames of the read being handled, before they are delivered. */
  readonly #frames: Frame[] = [];
  // The batch is [#batchStart, #batchUsed) of a slab that later batches
  // continue in: a written batch is never overwritten (the stream may still
  // hold it), and a single send does not cost a fresh 64 KiB allocation.
  #batch: Buffer | undefined;
  #batchStart = 0;
  #batchUsed = 0;
  #flushScheduled = false;
  #ended = false;
  #error: Error | undefined;
  readonly #raw: boolean;
  readonly #batchSize: number;
  readonly #readInto: ((fd: number, view: Uint8Array) => number) | undefined;
  readonly #writeFrom: ((fd: number, head: Uint8Array, body: Uint8Array) => number) | undefined;

  /** @internal */
  constructor(init: StreamChannelInit<T>) {
    super(init);
    this.stream = init.stream;
    // A large payload may go straight into the target of a waiting
    // receiveInto, when no frame of this read is still to be delivered before it.
    this.#parser = new FrameParser(init.maxMessageSize, (length) => (this.#frames.length === 0 ? this._directTarget(length) : undefined) ?? freshPayload(length));
    this.#raw = init.raw === true;
    this.#batchSize = init.batchSize ?? BATCH_SIZE;
    this.#readInto = init.readInto;
    this.#writeFrom = init.writeFrom;
    // Every read fills a fresh buffer that nothing else writes: raw payloads
    // can be handed out as views of it.
    this._ownPayloads();
    if (init.canReceive && this.#raw) {
      this.stream.on('data', (chunk: Buffer) => this._deliver({ payload: chunk, type: 1, priority: 0 }));
      this.stream.on('end', () => {
        this.#ended = true;
        this._end();
      });
    } else if (init.canReceive) {
      const frames = this.#frames;
      // Emptied after each read's frames are delivered (the parser's
      // allocate hook looks at it).
      this.stream.on('data', (chunk: Buffer) => {
        try {
          this.#parser.push(chunk, frames);
        } catch (err) {
          for (const f of frames) this._deliver(f);
          frames.length = 0;
          this.#fail(err as Error);
          return;
        }
        const failed = this.#readAhead(frames);
        for (const f of frames) this._deliver(f);
        frames.length = 0;
        if (failed !== undefined) this.#fail(failed);
      });
      this.stream.on('end', () => {
        this.#ended = true;
        if (this.#parser.partial) {
          this._end(new ProtocolError(`${this.label}: the peer closed in the middle of a message (${this.#parser.buffered} bytes of an unfinished frame)`));
        } else {
          this._end();
        }
      });
    }
    this.stream.on('error', (err: Error) => this.#fail(this.#streamError(err)));
    this.stream.on('close', () => {
      if (!this.#ended) {
        this.#ended = true;
        this._end(this.#error);
      }
    });
  }

  /**
   * A peer that died with unread data makes the kernel reset the connection
   * (or, on a pipe, refuse the write): to this end that is the peer closing,
   * abruptly.
   */
  #streamError(err: Error & { code?: string }): Error {
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
      return new ClosedError(`${this.label}: the peer closed the connection abruptly (${err.code})`, { cause: err });
    }
    return err;
  }

  /**
   * A large payload is being assembled: read the rest of it straight from
   * the descriptor into its buffer while the kernel has bytes, instead of
   * waiting for the stream's next 64 KiB chunk (one callback, one
   * allocation and one copy each). The stream's own reads are
   * level-triggered, so they simply find less. The end of the stream is
   * left for them to report; a read error is returned, to close the channel.
   */
  #readAhead(frames: Frame[]): Error | undefined {
    const readInto = this.#readInto;
    if (readInto === undefined || this.#parser.directSpace() === undefined) return undefined;
    const fd = this.#fd();
    // Chunks the stream read earlier and still holds (it was paused) come
    // before anything the descriptor has now.
    if (fd < 0 || this.stream.isPaused() || this.stream.readableLength > 0) return undefined;
    for (let space = this.#parser.directSpace(); space !== undefined; space = this.#parser.directSpace()) {
      let n: number;
      try {
        n = readInto(fd, space);
      } catch (err) {
        return this.#streamError(err as Error);
      }
      if (n <= 0) return undefined;
      this.#parser.directFilled(n, frames);
    }
    return undefined;
  }

  /** @internal */
  protected override _directTargetLost(): void {
    this.#parser.relocateDirect();
  }

  /**
   * Called before a large frame (`bytes` with its header) is written: a
   * transport may make its kernel buffer hold it, so that one write takes it.
   * @internal
   */
  protected _beforeLargeWrite(_bytes: number): void {}

  /** The stream's descriptor, or -1. @internal */
  protected _fd(): number {
    return this.#fd();
  }

  /** The stream's descriptor, or -1. */
  #fd(): number {
    const fd = (this.stream as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
    return typeof fd === 'number' && fd >= 0 ? fd : -1;
  }

  /**
   * Writes as much of a large frame as the kernel takes now, straight from
   * the caller's memory, when nothing waits in the stream's queue (so the
   * order holds): often all of it, and then no copy and no write request.
   * Returns the bytes written (header included), 0 when it did not try or
   * the kernel took nothing. Errors are left to the stream's own write of
   * the rest, which reports them.
   */
  #writeDirect(head: Uint8Array, payload: Uint8Array): number {
    const writeFrom = this.#writeFrom;
    if (writeFrom === undefined || this.stream.writableLength !== 0 || this.stream.writableCorked !== 0) return 0;
    const fd = this.#fd();
    if (fd < 0) return 0;
    try {
      return Math.max(0, writeFrom(fd, head, payload));
    } catch {
      return 0;
    }
  }

  /** The large-frame write: what the kernel takes now goes directly, the rest through the stream. */
  #writeLarge(frame: Frame, copyRest: boolean, done?: (err?: Error | null) => void): boolean {
    this.#flush();
    const head = this.#raw ? EMPTY : header(frame.payload.length, frame.type, frame.priority);
    this._beforeLargeWrite(head.length + frame.payload.length);
    const wrote = this.#writeDirect(head, frame.payload);
    if (wrote === head.length + frame.payload.length) return true;
    const rest = frame.payload.subarray(Math.max(0, wrote - head.length));
    this.stream.cork();
    if (wrote < head.length) this.stream.write(head.subarray(wrote));
    // Without a completion to wait for, copy: the caller may reuse its buffer at once.
    this.stream.write(copyRest ? Buffer.from(rest) : rest, done);
    this.stream.uncork();
    return false;
  }

  #fail(err: Error): void {
    if (this.#error !== undefined) return;
    this.#error = err;
    this.#ended = true;
    this._end(err);
    this.stream.destroy();
  }

  /** @internal */
  protected _pause(): void {
    this.stream.pause();
  }

  /** @internal */
  protected _resume(): void {
    this.stream.resume();
  }

  #checkWritable(): void {
    if (this.#error !== undefined) throw this.#error;
    if (this.stream.destroyed || this.stream.writableEnded) throw new ClosedError(`${this.label}: the stream is closed`);
  }

  /** Appends a small frame to the batch; flushes when full. */
  #append(frame: Frame): void {
    const head = this.#raw ? 0 : FRAME_HEADER;
    const need = head + frame.payload.length;
    if (this.#batch !== undefined && (this.#batchUsed + need > this.#batch.length || this.#batchUsed - this.#batchStart + need > this.#batchSize)) {
      this.#flush();
      if (this.#batchUsed + need > this.#batch.length) this.#batch = undefined;
    }
    if (this.#batch === undefined) {
      this.#batch = Buffer.allocUnsafe(Math.max(BATCH_SIZE, this.#batchSize, need));
      this.#batchStart = 0;
      this.#batchUsed = 0;
    }
    if (!this.#raw) writeHeader(this.#batch, this.#batchUsed, frame.payload.length, frame.type, frame.priority);
    this.#batch.set(frame.payload, this.#batchUsed + head);
    this.#batchUsed += need;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // After the current burst of sends (the microtask queue drains first),
      // before the loop polls for I/O: coalesces a burst, adds no latency to one send.
      process.nextTick(this.#flushTick);
    }
  }

  readonly #flushTick = (): void => this.#flush();

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#batch === undefined || this.#batchUsed === this.#batchStart) return;
    const data = this.#batch.subarray(this.#batchStart, this.#batchUsed);
    this.#batchStart = this.#batchUsed;
    if (!this.stream.destroyed) this.stream.write(data);
  }

  #room(): boolean {
    return !this.stream.writableNeedDrain;
  }

  // Sends waiting for room, in order. One 'drain' and one 'close' listener
  // serve them all: a listener each made Node warn of a leak past ten.
  readonly #drainWaiters = new Set<{ resolve: () => void; reject: (err: Error) => void }>();
  #drainListening = false;

  #waitDrain(wait: Wait): Promise<void> {
    if (!this.#drainListening) {
      this.#drainListening = true;
      const settle = (err: Error | undefined): void => {
        const waiters = [...this.#drainWaiters];
        this.#drainWaiters.clear();
        for (const w of waiters) (err === undefined ? w.resolve() : w.reject(err));
      };
      this.stream.on('drain', () => settle(undefined));
      this.stream.on('close', () => settle(this.#error ?? new ClosedError(`${this.label}: the stream closed while a send waited for room`)));
    }
    return waitFor<void>(wait, (resolve, reject) => {
      const w = { resolve, reject };
      this.#drainWaiters.add(w);
      return () => this.#drainWaiters.delete(w);
    });
  }

  /** @internal */
  protected async _send(frame: Frame, wait: Wait): Promise<void> {
    this.#checkWritable();
    while (!this.#room()) {
      await this.#waitDrain(wait);
      this.#checkWritable();
    }
    if (frame.payload.length < COALESCE_LIMIT) {
      this.#append(frame);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      if (this.#writeLarge(frame, false, (err) => (err ? reject(this.#error ?? this.#streamError(err)) : resolve()))) resolve();
    });
  }

  /** @internal */
  protected _trySend(frame: Frame): boolean {
    this.#checkWritable();
    if (!this.#room()) return false;
    if (frame.payload.length < COALESCE_LIMIT) {
      this.#append(frame);
    } else {
      this.#writeLarge(frame, true);
    }
    return true;
  }

  /** @internal */
  protected async _close(): Promise<void> {
    this.#flush();
    this._failReceivers(new ClosedError(`${this.label} is closed`));
    if (this.stream.destroyed) return;
    await new Promise<void>((resolve) => {
      const done = (): void => resolve();
      this.stream.once('close', done);
      if (this.stream.writable) {
        this.stream.end(() => this.stream.destroy());
      } else {
        this.stream.destroy();
      }
    });
  }

  /** @internal */
  protected _destroy(err: Error | undefined): void {
    this.#batch = undefined;
    this._failReceivers(err ?? new ClosedError(`${this.label} was destroyed`));
    this.stream.destroy();
  }
}
