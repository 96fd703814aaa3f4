/**
 * What every transport shares (after CPython's connection.py: one base class
 * holds the checks; transports override only how frames move).
 *
 * Subclasses implement `_send`, `_trySend`, `_receive`, `_close`, `_destroy`.
 * Push-based transports (streams, sockets) extend {@link InboxChannel}
 * instead, which implements `_receive` over a local inbox.
 */
import { AbortError, ClosedError, MessageTooLargeError, TimeoutError, rangeError, typeError, validateInteger, validateOptions, validateSignal, validateTimeout } from '../errors.js';
import type { ChannelStats, ChannelTraits, Message, ReceiveIntoOptions, ReceiveOptions, SendOptions } from './channel.js';
import { raw, type Codec } from './codec.js';
import type { Frame } from './framing.js';
import { onAbort } from '../abort.js';
import { setLongTimeout, type LongTimeout } from '../long-timeout.js';
import { DOUBLE_FIELD, stampNow } from './stamp.js';
import { intoArgs, tooSmall } from './into.js';

/** Default `maxMessageSize`: 64 MiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;

/** A deadline and a signal, carried through a transport's wait. @internal */
export interface Wait {
  /** performance.now() deadline, or Infinity. */
  deadline: number;
  timeout: number;
  signal: AbortSignal | undefined;
  what: string;
}

/** A Wait from `timeout` (ms, Infinity for none) and `signal`. @internal */
export function makeWait(timeout: number, signal: AbortSignal | undefined, what: string): Wait {
  return { deadline: timeout === Infinity ? Infinity : performance.now() + timeout, timeout, signal, what };
}

/** The type selector of a receive, by the System V rule. @internal */
export type TypeSelector = number;

/** @internal */
export interface BaseChannelInit<T> {
  traits: ChannelTraits;
  codec: Codec<T>;
  maxMessageSize: number;
  /** "pipe (fd 3)", "fifo '/tmp/x'": used in messages. */
  label: string;
  canSend: boolean;
  canReceive: boolean;
}

/** Common options of channel constructors. */
export interface ChannelOptions<T> {
  /** 'raw' | 'json' | 'structured' | 'msgpack' or a custom {@link Codec}. */
  codec?: import('./codec.js').CodecOption<T>;
  /** Largest encoded message, in bytes. Default 64 MiB (transports may lower it to their kernel's limit). */
  maxMessageSize?: number;
}

/** Checks `maxMessageSize`. @internal */
export function validateMaxMessageSize(value: unknown, limit = 2 ** 31 - 1): number {
  if (value === undefined) return Math.min(DEFAULT_MAX_MESSAGE_SIZE, limit);
  return validateInteger(value, 'options.maxMessageSize', 1, limit);
}

/**
 * Throws when `options.signal` is aborted: the check before a first attempt.
 * The deadline counts only once there is something to wait for, so that
 * `timeout: 0` means "only if it can be done now". @internal
 */
export function checkAborted(wait: Wait): void {
  if (wait.signal?.aborted) throw new AbortError(undefined, { cause: wait.signal.reason });
}

/** Throws when `options.signal` is aborted or the deadline has passed (between attempts). @internal */
export function checkWait(wait: Wait): void {
  if (wait.signal?.aborted) throw new AbortError(undefined, { cause: wait.signal.reason });
  if (wait.deadline !== Infinity && performance.now() >= wait.deadline) {
    throw new TimeoutError(`timed out after ${wait.timeout} ms waiting for ${wait.what}`, wait.timeout);
  }
}

/**
 * Waits for `register(done)` to call `done`, bounded by `wait`. `register`
 * returns a cancel function. Resolves with what `done` was given.
 * @internal
 */
export function waitFor<R>(wait: Wait, register: (resolve: (value: R) => void, reject: (err: unknown) => void) => () => void): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    let timer: LongTimeout | undefined;
    let cancel: (() => void) | undefined;
    let settled = false;
    let offAbort: (() => void) | undefined;
    const finish = (): void => {
      settled = true;
      timer?.clear();
      offAbort?.();
    };
    const aborted = (): void => {
      if (settled) return;
      finish();
      cancel?.();
      reject(new AbortError(undefined, { cause: wait.signal?.reason }));
    };
    if (wait.signal?.aborted) return aborted();
    cancel = register(
      (v) => {
        if (settled) return;
        finish();
        resolve(v);
      },
      (e) => {
        if (settled) return;
        finish();
        reject(e);
      },
    );
    if (settled) return;
    if (wait.deadline !== Infinity) {
      timer = setLongTimeout(() => {
        if (settled) return;
        finish();
        cancel?.();
        reject(new TimeoutError(`timed out after ${wait.timeout} ms waiting for ${wait.what}`, wait.timeout));
      }, Math.max(0, Math.ceil(wait.deadline - performance.now())));
    }
    if (wait.signal !== undefined) offAbort = onAbort(wait.signal, aborted);
  });
}

/** A receive waiting for a frame. */
interface FrameWaiter {
  selector: TypeSelector;
  resolve: (f: Frame) => void;
  reject: (e: unknown) => void;
  /** receiveInto: the room its message may take (the target from its offset), and that offset. */
  into?: Uint8Array;
  at?: number;
  /** receiveInto: the transport is reading the next payload straight into `into` (see _directTarget). */
  claimed?: boolean;
}

/**
 * {@link waitFor} as one of a queue of waiters: the entry `make` builds goes
 * at the end of `queue`, and leaves it when the wait ends without it (timeout,
 * abort).
 * @internal
 */
export function waitInQueue<R, E>(wait: Wait, queue: E[], make: (resolve: (value: R) => void, reject: (err: unknown) => void) => E): Promise<R> {
  return waitFor<R>(wait, (resolve, reject) => {
    const entry = make(resolve, reject);
    queue.push(entry);
    return () => {
      const k = queue.indexOf(entry);
      if (k >= 0) queue.splice(k, 1);
    };
  });
}

/**
 * Index of the frame a receive with `selector` takes, or -1. Highest priority
 * first; for a negative selector, lowest type first; then arrival order.
 * @internal
 */
export function selectFrame(frames: readonly Frame[], selector: TypeSelector): number {
  let best = -1;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i]!;
    if (selector > 0 && f.type !== selector) continue;
    if (selector < 0 && f.type > -selector) continue;
    if (best < 0) {
      best = i;
      continue;
    }
    const b = frames[best]!;
    if (selector < 0 && f.type !== b.type) {
      if (f.type < b.type) best = i;
      continue;
    }
    if (f.priority > b.priority) best = i;
  }
  return best;
}

/** @internal */
/** A channel's totals and stamps, as doubles from the start (see DOUBLE_FIELD). */
function newCounters(): { messagesSent: number; messagesReceived: number; bytesSent: number; bytesReceived: number; lastSendMs: number; lastReceiveMs: number } {
  // Date.now() numbers for the stamps: a Date per message costs an allocation on the hot path.
  const c = { messagesSent: DOUBLE_FIELD, messagesReceived: DOUBLE_FIELD, bytesSent: DOUBLE_FIELD, bytesReceived: DOUBLE_FIELD, lastSendMs: DOUBLE_FIELD, lastReceiveMs: DOUBLE_FIELD };
  c.messagesSent = c.messagesReceived = c.bytesSent = c.bytesReceived = c.lastSendMs = c.lastReceiveMs = 0;
  return c;
}

export abstract class BaseChannel<T> {
  readonly traits: ChannelTraits;
  readonly maxMessageSize: number;
  /** @internal */ protected readonly codec: Codec<T>;
  /** @internal */ protected readonly label: string;
  readonly #canSend: boolean;
  readonly #canReceive: boolean;
  #closing: Promise<void> | undefined;
  #closed = false;
  /** The raw codec and payloads this channel owns: hand them out without the codec's copy. */
  #rawViews = false;
  /** @internal */ protected readonly counters = newCounters();

  /** @internal */
  protected constructor(init: BaseChannelInit<T>) {
    this.traits = init.traits;
    this.codec = init.codec;
    this.maxMessageSize = init.maxMessageSize;
    this.label = init.label;
    this.#canSend = init.canSend;
    this.#canReceive = init.canReceive;
  }

  /** True once `close()` or `destroy()` was called. */
  get closed(): boolean {
    return this.#closed || this.#closing !== undefined;
  }

  // --- transport hooks --------------------------------------------------

  /** Sends one encoded frame, waiting for room. @internal */
  protected abstract _send(frame: Frame, wait: Wait): Promise<void>;
  /** Sends one encoded frame if there is room. @internal */
  protected abstract _trySend(frame: Frame): boolean;
  /** Receives the frame chosen by `selector`. Rejects with ClosedError when nothing more can come. @internal */
  protected abstract _receive(selector: TypeSelector, wait: Wait): Promise<Frame>;
  /** Graceful close. @internal */
  protected abstract _close(): Promise<void>;
  /** Immediate close. @internal */
  protected abstract _destroy(err: Error | undefined): void;
  /**
   * Declares that the payloads this transport delivers are memory nobody
   * else writes (a fresh read buffer, never reused): with the raw codec,
   * receive then returns them as they are instead of copying. @internal
   */
  protected _ownPayloads(): void {
    this.#rawViews = this.codec === (raw as unknown as Codec<T>);
  }
  /**
   * The frame `selector` chooses if one is here now, else undefined; throws
   * what a receive would reject with once nothing more can come. @internal
   */
  protected abstract _tryReceive(selector: TypeSelector): Frame | undefined;
  /** The next frame if one is ready now for a plain FIFO receive, else undefined (no waiting). @internal */
  protected _takeReady(): Frame | undefined {
    return undefined;
  }
  /** Transport-specific stats (queued, capacity, pids); the base adds totals. @internal */
  protected _stats(): Partial<ChannelStats> {
    return {};
  }

  // --- the contract -----------------------------------------------------

  /** @see Sender.send */
  async send(message: T, options?: SendOptions): Promise<void> {
    const opts = validateOptions<SendOptions>(options, 'options', ['type', 'priority', 'timeout', 'signal']);
    const frame = this.#encode(message, opts.type, opts.priority);
    const timeout = validateTimeout(opts.timeout);
    const wait = makeWait(timeout, validateSignal(opts.signal), `room in ${this.label}`);
    checkAborted(wait);
    await this._send(frame, wait);
    this.#sent(frame);
  }

  /** @see Sender.trySend */
  trySend(message: T, options?: Omit<SendOptions, 'timeout' | 'signal'>): boolean {
    let frame: Frame;
    if (options === undefined) {
      frame = this.#encode(message, undefined, undefined);
    } else {
      const opts = validateOptions<SendOptions>(options, 'options', ['type', 'priority']);
      frame = this.#encode(message, opts.type, opts.priority);
    }
    if (!this._trySend(frame)) return false;
    this.#sent(frame);
    return true;
  }

  /** @see Receiver.receive */
  async receive(options?: ReceiveOptions): Promise<T> {
    // A frame already in hand needs no wait object, no timer and no second promise.
    if (options === undefined && this.#canReceive && !this.#closed) {
      const frame = this._takeReady();
      if (frame !== undefined) return this.#decode(frame);
    }
    return (await this.receiveMessage(options)).data;
  }

  /** @see Receiver.tryReceive */
  tryReceive(options?: Pick<ReceiveOptions, 'type'>): T | undefined {
    let selector = 0;
    if (options !== undefined) {
      const opts = validateOptions<ReceiveOptions>(options, 'options', ['type']);
      if (opts.type !== undefined) selector = validateInteger(opts.type, 'options.type', -(2 ** 31 - 1), 2 ** 31 - 1);
    }
    this._checkReceiving();
    const frame = this._tryReceive(selector);
    return frame === undefined ? undefined : this.#decode(frame);
  }

  /** @see Receiver.receiveMessage */
  async receiveMessage(options?: ReceiveOptions): Promise<Message<T>> {
    const opts = validateOptions<ReceiveOptions>(options, 'options', ['type', 'timeout', 'signal']);
    const selector = opts.type === undefined ? 0 : validateInteger(opts.type, 'options.type', -(2 ** 31 - 1), 2 ** 31 - 1);
    const timeout = validateTimeout(opts.timeout);
    const wait = makeWait(timeout, validateSignal(opts.signal), `a message on ${this.label}`);
    this._checkReceiving();
    checkAborted(wait);
    const frame = await this._receive(selector, wait);
    const data = this.#decode(frame);
    return { data, type: frame.type, priority: frame.priority, size: frame.payload.length };
  }

  /** Throws unless this end may receive now (ERR_INVALID_STATE on a sending end, ERR_MULTIPROC_CLOSED once closed). @internal */
  protected _checkReceiving(): void {
    if (!this.#canReceive) throw typeError('ERR_INVALID_STATE', `${this.label} is the sending end of a one-way channel; receive on the other end`);
    if (this.#closed) throw new ClosedError(`${this.label} is closed`);
  }

  /** Counts a received message of `bytes` in the stats. @internal */
  protected _countReceived(bytes: number): void {
    const c = this.counters;
    c.messagesReceived++;
    c.bytesReceived += bytes;
    c.lastReceiveMs = stampNow();
  }

  #decode(frame: Frame): T {
    const data = this.#rawViews ? (frame.payload as unknown as T) : this.codec.decode(frame.payload);
    this._countReceived(frame.payload.length);
    return data;
  }

  /** Receives until the channel closes (then the loop ends). */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      let m: T;
      try {
        m = await this.receive();
      } catch (err) {
        if (err instanceof ClosedError) return;
        throw err;
      }
      yield m;
    }
  }

  /** @see Sender.stats */
  stats(): ChannelStats {
    const t = this._stats();
    return {
      messagesQueued: t.messagesQueued ?? null,
      bytesQueued: t.bytesQueued ?? null,
      capacityBytes: t.capacityBytes ?? null,
      capacityMessages: t.capacityMessages ?? null,
      lastSendPid: t.lastSendPid ?? (this.counters.messagesSent > 0 ? process.pid : null),
      lastReceivePid: t.lastReceivePid ?? (this.counters.messagesReceived > 0 ? process.pid : null),
      lastSendTime: t.lastSendTime ?? (this.counters.messagesSent > 0 ? new Date(this.counters.lastSendMs) : null),
      lastReceiveTime: t.lastReceiveTime ?? (this.counters.messagesReceived > 0 ? new Date(this.counters.lastReceiveMs) : null),
      messagesSent: this.counters.messagesSent,
      messagesReceived: this.counters.messagesReceived,
      bytesSent: this.counters.bytesSent,
      bytesReceived: this.counters.bytesReceived,
    };
  }

  /** Graceful close; idempotent (a second call returns the same promise). */
  close(): Promise<void> {
    this.#closing ??= this._close().finally(() => {
      this.#closed = true;
    });
    return this.#closing;
  }

  /** Immediate close; idempotent. */
  destroy(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing ??= Promise.resolve();
    this._destroy(err);
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #encode(message: T, optType: unknown, optPriority: unknown): Frame {
    if (!this.#canSend) throw typeError('ERR_INVALID_STATE', `${this.label} is the receiving end of a one-way channel; send on the other end`);
    const type = optType === undefined ? 1 : validateInteger(optType, 'options.type', 1, 2 ** 31 - 1);
    const priority = optPriority === undefined ? 0 : validateInteger(optPriority, 'options.priority', -(2 ** 31), 2 ** 31 - 1);
    if (this.closed) throw new ClosedError(`${this.label} is closed`);
    const payload = this.codec.encode(message);
    if (payload.length > this.maxMessageSize) {
      throw new MessageTooLargeError(
        `a ${payload.length}-byte message does not fit ${this.label}: its maxMessageSize is ${this.maxMessageSize} bytes (raise it, or send the data through SharedMemory and a small message)`,
        payload.length,
        this.maxMessageSize,
      );
    }
    return { payload, type, priority };
  }

  #sent(frame: Frame): void {
    const c = this.counters;
    c.messagesSent++;
    c.bytesSent += frame.payload.length;
    c.lastSendMs = stampNow();
  }
}

/**
 * A channel whose frames arrive by events (streams, sockets, FIFOs): they go
 * into a local inbox, from which receives pick by type and priority.
 * Subclasses call `_deliver(frame)` per frame, `_end(err?)` when the peer is
 * gone, and implement `_pause`/`_resume` for flow control.
 * @internal
 */
export abstract class InboxChannel<T> extends BaseChannel<T> {
  // A deque: frames live in #inbox from #head on. Most receives take the
  // oldest frame, so that path must not be O(n).
  #inbox: Frame[] = [];
  #head = 0;
  #inboxBytes = 0;
  /** Frames in the inbox with a nonzero priority: while 0, FIFO order is the answer. */
  #prioritized = 0;
  #waiters: FrameWaiter[] = [];
  #ended: Error | undefined;
  #paused = false;
  /** Inbox size above which the transport stops reading. @internal */
  protected highWaterMark = 4 * 1024 * 1024;

  /** Stop reading from the transport (inbox full). @internal */
  protected abstract _pause(): void;
  /** Start reading again. @internal */
  protected abstract _resume(): void;

  /** Hands one arrived frame to a waiting receiver or the inbox. @internal */
  protected _deliver(frame: Frame): void {
    for (let i = 0; i < this.#waiters.length; i++) {
      const w = this.#waiters[i]!;
      if (selectFrame([frame], w.selector) === 0) {
        this.#waiters.splice(i, 1);
        if (w.into !== undefined && frame.payload.length > w.into.length) {
          // Too large for that target: refused there, and offered to the
          // receives waiting after it, else first in line (the inbox is
          // empty while a FIFO receive waits).
          w.reject(tooSmall(this.label, frame.payload.length, w.into.length, w.at!));
          i--;
          continue;
        }
        this._taken(frame);
        w.resolve(frame);
        return;
      }
    }
    this.#queue(frame);
  }

  /**
   * A frame was received: taken from the inbox, or handed straight to a
   * waiting receive, by any of the receive methods. @internal
   */
  protected _taken(_frame: Frame): void {}

  #queue(frame: Frame): void {
    this.#inbox.push(frame);
    this.#inboxBytes += frame.payload.length;
    if (frame.priority !== 0) this.#prioritized++;
    if (!this.#paused && this.#inboxBytes > this.highWaterMark) {
      this.#paused = true;
      this._pause();
    }
  }

  /** No more frames will arrive. `err` (a ProtocolError, say) goes to receivers once the inbox is drained. @internal */
  protected _end(err?: Error): void {
    if (this.#ended !== undefined) return;
    this.#ended = err ?? new ClosedError(`${this.label}: the peer closed the channel`);
    const waiters = this.#waiters;
    this.#waiters = [];
    if (waiters[0]?.claimed === true) this._directTargetLost();
    for (const w of waiters) w.reject(this.#ended);
  }

  /** Messages in the inbox. @internal */
  protected get inboxLength(): number {
    return this.#inbox.length - this.#head;
  }

  /** Index in #inbox of the frame `selector` chooses, or -1. */
  #find(selector: TypeSelector): number {
    const inbox = this.#inbox;
    if (this.#head === inbox.length) return -1;
    if (selector === 0 && this.#prioritized === 0) return this.#head;
    const k = selectFrame(this.#head === 0 ? inbox : inbox.slice(this.#head), selector);
    return k < 0 ? -1 : this.#head + k;
  }

  #take(selector: TypeSelector): Frame | undefined {
    const i = this.#find(selector);
    return i < 0 ? undefined : this.#removeAt(i);
  }

  #removeAt(i: number): Frame {
    const inbox = this.#inbox;
    const frame = inbox[i]!;
    if (i === this.#head) {
      inbox[i] = undefined as unknown as Frame;
      this.#head++;
      if (this.#head === inbox.length) {
        inbox.length = 0;
        this.#head = 0;
      } else if (this.#head > 1024 && this.#head * 2 > inbox.length) {
        inbox.splice(0, this.#head);
        this.#head = 0;
      }
    } else {
      inbox.splice(i, 1);
    }
    this.#inboxBytes -= frame.payload.length;
    if (frame.priority !== 0) this.#prioritized--;
    this._taken(frame);
    return frame;
  }

  /** @internal */
  protected get inboxBytes(): number {
    return this.#inboxBytes;
  }

  /** @internal */
  protected override _takeReady(): Frame | undefined {
    const frame = this.#take(0);
    if (frame !== undefined) this.#resumeIfDrained();
    return frame;
  }

  /** @internal */
  protected _tryReceive(selector: TypeSelector): Frame | undefined {
    const frame = this.#take(selector);
    if (frame !== undefined) {
      this.#resumeIfDrained();
      return frame;
    }
    this.#nothingHere();
    return undefined;
  }

  /** @internal */
  protected _receive(selector: TypeSelector, wait: Wait): Promise<Frame> {
    const frame = this.#take(selector);
    if (frame !== undefined) {
      this.#resumeIfDrained();
      return Promise.resolve(frame);
    }
    try {
      this.#nothingHere();
    } catch (err) {
      return Promise.reject(err);
    }
    return waitInQueue<Frame, FrameWaiter>(wait, this.#waiters, (resolve, reject) => ({ selector, resolve, reject }));
  }

  /**
   * Copies the next message's bytes (the one `receive()` would return; no
   * type selection, no codec) into `target` from `offset` (default 0) and
   * returns how many there were, or `undefined` when none is here: a receive
   * without an allocation per message, as Python's `recv_bytes_into`.
   * Errors: as {@link BaseChannel.tryReceive}; `ERR_MULTIPROC_MESSAGE_TOO_LARGE`
   * when the message does not fit (it stays queued, first in line; the
   * error's `size` is its length), `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE`.
   */
  tryReceiveInto(target: ArrayBufferView, offset?: number): number | undefined {
    const { into, at } = intoArgs(target, offset);
    this._checkReceiving();
    const frame = this.#takeInto(into, at);
    if (frame !== undefined) return this.#copyInto(frame, into, at);
    this.#nothingHere();
    return undefined;
  }

  /**
   * Like {@link InboxChannel.tryReceiveInto}, waiting for a message. A large
   * message that arrives while this waits is read by stream transports
   * straight into `target` (no buffer of its own, no copy).
   * Errors: also as {@link BaseChannel.receive} (`ERR_MULTIPROC_TIMEOUT`, `ABORT_ERR`).
   */
  async receiveInto(target: ArrayBufferView, options?: ReceiveIntoOptions): Promise<number> {
    const opts = validateOptions<ReceiveIntoOptions>(options, 'options', ['offset', 'timeout', 'signal']);
    const { into, at } = intoArgs(target, opts.offset);
    const timeout = validateTimeout(opts.timeout);
    const wait = makeWait(timeout, validateSignal(opts.signal), `a message on ${this.label}`);
    this._checkReceiving();
    checkAborted(wait);
    const ready = this.#takeInto(into, at);
    if (ready !== undefined) return this.#copyInto(ready, into, at);
    this.#nothingHere();
    const room = into.subarray(at);
    const frame = await waitFor<Frame>(wait, (resolve, reject) => {
      const entry: FrameWaiter = { selector: 0, resolve, reject, into: room, at };
      this.#waiters.push(entry);
      return () => {
        const k = this.#waiters.indexOf(entry);
        if (k >= 0) this.#waiters.splice(k, 1);
        // Timed out or aborted while a payload was being read into the
        // target: the rest must not land there once the call has returned.
        if (entry.claimed === true) this._directTargetLost();
      };
    });
    return this.#copyInto(frame, into, at);
  }

  /** Nothing matched: throws what ended the channel, else makes room so that a matching frame can still arrive. */
  #nothingHere(): void {
    if (this.#ended !== undefined) throw this.#ended;
    if (this.#paused) {
      this.#paused = false;
      this._resume();
    }
  }

  /** After a frame was taken: reading goes on once the inbox is half drained. */
  #resumeIfDrained(): void {
    if (this.#paused && this.#inboxBytes <= this.highWaterMark / 2) {
      this.#paused = false;
      this._resume();
    }
  }

  /** The frame receive() would take, if it fits `into` from `at`; throws (and keeps it) when it does not. */
  #takeInto(into: Uint8Array, at: number): Frame | undefined {
    const i = this.#find(0);
    if (i < 0) return undefined;
    const length = this.#inbox[i]!.payload.length;
    if (length > into.length - at) throw tooSmall(this.label, length, into.length - at, at);
    const frame = this.#removeAt(i);
    this.#resumeIfDrained();
    return frame;
  }

  #copyInto(frame: Frame, into: Uint8Array, at: number): number {
    const p = frame.payload;
    // A payload read straight into the target is there already.
    if (p.buffer !== into.buffer || p.byteOffset !== into.byteOffset + at) into.set(p, at);
    this._countReceived(p.length);
    return p.length;
  }

  /**
   * Where a payload of `length` bytes that starts arriving now may be read
   * straight into: the target of the receiveInto first in line, when nothing
   * is queued before it and it has room. The transport then owes it that
   * frame (it is delivered next) or a call to _directTargetLost.
   * @internal
   */
  protected _directTarget(length: number): Uint8Array | undefined {
    const w = this.#waiters[0];
    if (w === undefined || w.into === undefined || w.claimed === true || w.into.length < length || this.#head !== this.#inbox.length) return undefined;
    w.claimed = true;
    return w.into.subarray(0, length);
  }

  /** The receiveInto whose target a payload is being read into went away: move what was read elsewhere. @internal */
  protected _directTargetLost(): void {}

  /** Rejects pending receives (used by close/destroy). @internal */
  protected _failReceivers(err: Error): void {
    this._end(err);
  }
}

/** Throws a RangeError unless `n` fits the transport's own limit. @internal */
export function capMaxMessageSize(requested: number, kernelLimit: number, what: string): number {
  if (requested > kernelLimit) throw rangeError(`maxMessageSize ${requested} exceeds the ${what} limit of ${kernelLimit} bytes`);
  return requested;
}
