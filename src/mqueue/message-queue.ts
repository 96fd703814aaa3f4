/**
 * MessageQueue: the seeds' message queue, as a Channel. One class, three
 * backends (one file each):
 *
 * - `posix.ts`: the kernel's POSIX queue (mq_open), polled by the event loop;
 * - `sysv.ts`: the kernel's System V queue (msgget), woken by doorbells;
 * - `shm.ts` + `shm-store.ts`: our own queue in shared memory, robust mutex
 *   and doorbells, no kernel limits.
 *
 * This file holds what they share: options, ownership, and close/destroy of
 * pending operations. Each waiting operation gets its own AbortController,
 * fired by the caller's signal or by close/destroy, so backends only ever
 * see one signal.
 */
import { BaseChannel, checkAborted, makeWait, selectFrame, validateMaxMessageSize, type ChannelOptions, type TypeSelector, type Wait } from '../channel/base-channel.js';
import type { BytesReceiver, Channel, ChannelStats, ChannelTraits, ReceiveIntoOptions } from '../channel/channel.js';
import { intoArgs, isDetached, tooSmall } from '../channel/into.js';
import { resolveCodec } from '../channel/codec.js';
import type { Frame } from '../channel/framing.js';
import { native } from '../binding/native.js';
import { onAbort } from '../abort.js';
import {
  AbortError,
  ClosedError,
  rangeError,
  typeError,
  validateInteger,
  validateOneOf,
  validateOptions,
  validateSignal,
  validateTimeout,
} from '../errors.js';
import type { CreationMode } from '../shm/shared-memory.js';
import { normalizeQueueName, type Backend, type MessageQueueBackend, type MessageQueueStat } from './backend.js';
import { readLimits, type MessageQueueLimits } from './limits.js';
import { PosixBackend } from './posix.js';
import { ShmBackend } from './shm.js';
import { DEFAULT_POLL_INTERVAL, SysvBackend } from './sysv.js';
import { sysvKey } from './sysv-key.js';

export type { MessageQueueBackend, MessageQueueStat } from './backend.js';
export type { MessageQueueLimits } from './limits.js';

/** Options of {@link MessageQueue.open}. */
export interface MessageQueueOpenOptions<T> extends Pick<ChannelOptions<T>, 'codec'> {
  /** Which kind of queue to open. Default `'shm'`. */
  backend?: MessageQueueBackend;
  /**
   * `sysv` only: how often (ms) waiters re-check the queue for messages (or
   * room) from programs that do not ring multiproc's doorbell. Default 100;
   * `Infinity` relies on doorbells alone.
   */
  pollInterval?: number;
}

/** Options of {@link MessageQueue.create}. */
export interface MessageQueueCreateOptions<T> extends MessageQueueOpenOptions<T> {
  /**
   * Largest payload of one message, in bytes. Defaults: `posix` the kernel's
   * msgsize_default less the 8-byte header (8184); `sysv` kernel.msgmax
   * (8192); `shm` `capacityBytes`.
   */
  maxMessageSize?: number;
  /**
   * Capacity in messages. `posix`: mq_maxmsg (default fs.mqueue.msg_default,
   * at most fs.mqueue.msg_max unless privileged); `shm`: default 1024;
   * not for `sysv`, whose queues are bounded in bytes only.
   */
  capacity?: number;
  /**
   * Capacity in payload bytes. `sysv`: msg_qbytes (default kernel.msgmnb,
   * 16384); `shm`: default max(1 MiB, maxMessageSize); not for `posix`,
   * whose capacity is capacity x maxMessageSize.
   */
  capacityBytes?: number;
  /** Permission bits. Default `0o600`. */
  mode?: number;
  /**
   * - `'create'` (default): fail with EEXIST if the queue exists.
   * - `'open'`: open an existing queue (the other options are ignored).
   * - `'openOrCreate'`: open if it exists (ignoring the capacity options), else create.
   * - `'purgeAndCreate'`: remove an existing queue of that name, then create.
   */
  creation?: CreationMode;
}

const backends: readonly MessageQueueBackend[] = ['posix', 'sysv', 'shm'];

/** What a waiting receive returns when it was woken to look at the held message (see #offerHeld). */
const RECHECK: unique symbol = Symbol('recheck');

/** A waiting operation of this handle. */
interface Pending {
  running: Promise<unknown>;
  /** A receive's selector (undefined for a send). */
  selector: TypeSelector | undefined;
  /** Woken to look at the held message. */
  recheck: boolean;
}
const creationModes: readonly CreationMode[] = ['create', 'open', 'openOrCreate', 'purgeAndCreate'];
const OPEN_KEYS = ['backend', 'codec', 'pollInterval'] as const;
const CREATE_KEYS = [...OPEN_KEYS, 'maxMessageSize', 'capacity', 'capacityBytes', 'mode', 'creation'] as const;

const uses: Record<MessageQueueBackend, string> = {
  posix:
    'Kernel queue any mq_open program can share (visible in /dev/mqueue); native priorities; small default limits (10 messages of 8 KiB); type selection is per process',
  sysv: 'Kernel queue visible to ipcs; native selection by type; small byte limit (16 KiB by default); kept until removed',
  shm: 'Fastest queue between processes on one host: types, priorities, any capacity, survives a crashed peer',
};

function traitsOf(kind: MessageQueueBackend): ChannelTraits {
  return { mechanism: `mqueue-${kind}`, medium: 'memory', unit: 'message', direction: 'two-way', scope: 'same-host', use: uses[kind] };
}

function pollIntervalOf(value: unknown, kind: MessageQueueBackend): number {
  if (value === undefined) return DEFAULT_POLL_INTERVAL;
  if (kind !== 'sysv') {
    throw typeError('ERR_INVALID_ARG_VALUE', `The option 'pollInterval' applies to the 'sysv' backend only (the '${kind}' backend never polls)`);
  }
  if (value === Infinity) return Infinity;
  return validateInteger(value, 'options.pollInterval', 1, 2 ** 31 - 1);
}

/**
 * A message queue between processes: kernel managed (`posix`, `sysv`) or in
 * shared memory (`shm`), with message boundaries, types a receiver selects
 * by (System V rule), priorities and `msqid_ds`-style statistics. It is a
 * two-way {@link Channel}: every handle may send and receive, and any number
 * of processes may open the same queue (many producers, many consumers; each
 * message is received once).
 *
 * The creator owns the name: its `close()` removes the queue unless it
 * called {@link MessageQueue.disown}; an opener's `close()` only lets go.
 *
 * @example
 * ```ts
 * const q = MessageQueue.create<string>('jobs', { backend: 'shm', codec: 'json' });
 * await q.send('urgent', { priority: 9 });
 * await q.send('report', { type: 2 });
 * console.log(await q.receive());              // 'urgent'
 * console.log(await q.receive({ type: 2 }));   // 'report'
 * await q.close();                             // removes the queue
 * ```
 */
export class MessageQueue<T = unknown> extends BaseChannel<T> implements Channel<T>, BytesReceiver {
  readonly #backend: Backend;
  /**
   * A message a receiveInto took from the queue but could not fit: this
   * handle's, first in line (the kernel queues cannot peek or put back).
   */
  #held: Frame | undefined;
  /** Waiting operations in arrival order, each aborted by close/destroy through its controller. */
  readonly #waiting = new Map<AbortController, Pending>();
  #closeError: Error | undefined;

  private constructor(backend: Backend, codec: import('../channel/codec.js').Codec<T>) {
    super({ traits: traitsOf(backend.kind), codec, maxMessageSize: backend.maxMessageSize, label: backend.label, canSend: true, canReceive: true });
    this.#backend = backend;
  }

  /**
   * Creates a queue (or, per `options.creation`, opens one).
   *
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`
   * (bad options, or a size beyond a kernel limit that is checked up front:
   * `sysv` maxMessageSize above kernel.msgmax); system errors `EEXIST`,
   * `ENOENT`, `EACCES`, and kernel limits with the limit named in the message
   * and in `err.limit`: `posix` `EINVAL` (fs.mqueue.msg_max,
   * fs.mqueue.msgsize_max), `EMFILE` (RLIMIT_MSGQUEUE), `ENOSPC`
   * (fs.mqueue.queues_max); `sysv` `EEXIST` (key), `ENOSPC` (kernel.msgmni),
   * `EPERM` (kernel.msgmnb); `ERR_MULTIPROC_SIZE_MISMATCH`,
   * `ERR_MULTIPROC_INCOMPATIBLE` for a name that holds something else.
   */
  static create<T = unknown>(name: string, options?: MessageQueueCreateOptions<T>): MessageQueue<T> {
    const queueName = normalizeQueueName(name);
    const opts = validateOptions<MessageQueueCreateOptions<T>>(options, 'options', CREATE_KEYS);
    const kind = opts.backend === undefined ? 'shm' : validateOneOf(opts.backend, 'options.backend', backends);
    const codec = resolveCodec<T>(opts.codec, 'structured');
    const creation = opts.creation === undefined ? 'create' : validateOneOf(opts.creation, 'options.creation', creationModes);
    const mode = opts.mode === undefined ? 0o600 : validateInteger(opts.mode, 'options.mode', 0, 0o777);
    const pollInterval = pollIntervalOf(opts.pollInterval, kind);
    const capacity = opts.capacity === undefined ? undefined : validateInteger(opts.capacity, 'options.capacity', 1, 2 ** 24);
    const capacityBytes = opts.capacityBytes === undefined ? undefined : validateInteger(opts.capacityBytes, 'options.capacityBytes', 1, 2 ** 31 - 1);
    const requestedMax = opts.maxMessageSize === undefined ? undefined : validateMaxMessageSize(opts.maxMessageSize);
    let backend: Backend;
    if (kind === 'posix') {
      if (capacityBytes !== undefined) {
        throw typeError('ERR_INVALID_ARG_VALUE', "The option 'capacityBytes' does not apply to the 'posix' backend: its capacity is 'capacity' messages of 'maxMessageSize' bytes");
      }
      const l = readLimits(native.MQ_PRIO_MAX).posix;
      backend = new PosixBackend(queueName, {
        creation,
        mode,
        capacity: capacity ?? 0,
        maxMessageSize: requestedMax ?? 0,
        defaults: { capacity: l.msgDefault ?? 10, maxMessageSize: (l.msgsizeDefault ?? 8192) - native.MQ_HEADER },
      });
    } else if (kind === 'sysv') {
      if (capacity !== undefined) {
        throw typeError('ERR_INVALID_ARG_VALUE', "The option 'capacity' does not apply to the 'sysv' backend: System V queues are bounded in bytes ('capacityBytes', msg_qbytes)");
      }
      const l = readLimits(0).sysv;
      const msgmax = l.msgmax ?? 8192;
      const maxMessageSize = requestedMax ?? msgmax;
      if (maxMessageSize > msgmax) {
        throw rangeError(
          `maxMessageSize ${maxMessageSize} exceeds the kernel's System V limit kernel.msgmax = ${msgmax} (/proc/sys/kernel/msgmax); ` +
            `raise it as root with \`sysctl -w kernel.msgmax=${maxMessageSize}\`, or send less`,
        );
      }
      if (capacityBytes !== undefined && capacityBytes < maxMessageSize) {
        throw rangeError(`capacityBytes ${capacityBytes} is below maxMessageSize ${maxMessageSize}: the largest message could never be queued`);
      }
      backend = new SysvBackend(queueName, { creation, mode, capacityBytes: capacityBytes ?? 0, maxMessageSize, pollInterval });
    } else {
      const bytes = capacityBytes ?? Math.max(1024 * 1024, requestedMax ?? 0);
      const maxMessageSize = requestedMax ?? bytes;
      if (maxMessageSize > bytes) {
        throw rangeError(`maxMessageSize ${maxMessageSize} exceeds capacityBytes ${bytes}: the largest message could never be queued`);
      }
      backend = new ShmBackend(queueName, { creation, mode, capacity: capacity ?? 1024, capacityBytes: bytes, maxMessageSize });
    }
    return new MessageQueue<T>(backend, codec);
  }

  /**
   * Opens an existing queue; its capacity and maxMessageSize are the creator's.
   *
   * Errors: `ENOENT` (no such queue), `EACCES`, `ERR_MULTIPROC_INCOMPATIBLE`
   * (the name holds something else), argument errors.
   */
  static open<T = unknown>(name: string, options?: MessageQueueOpenOptions<T>): MessageQueue<T> {
    const opts = validateOptions<MessageQueueOpenOptions<T>>(options, 'options', OPEN_KEYS);
    return MessageQueue.create<T>(name, { ...opts, creation: 'open' });
  }

  /**
   * The System V key a queue name maps to (FNV-1a of the name without its
   * leading '/', as a signed 32-bit integer, never 0), for programs that
   * `msgget(key, 0)` the same queue.
   */
  static sysvKey(name: string): number {
    return sysvKey(normalizeQueueName(name));
  }

  /** The kernel's message-queue limits on this machine, read from /proc. */
  static limits(): MessageQueueLimits {
    return readLimits(native.MQ_PRIO_MAX);
  }

  /** The queue's name, without a leading '/'. */
  get name(): string {
    return this.#backend.name;
  }

  /** Which backend holds the queue. */
  get backend(): MessageQueueBackend {
    return this.#backend.kind;
  }

  /** True when this handle created the queue and will remove it on close. */
  get owner(): boolean {
    return this.#backend.owner;
  }

  /** Lowest priority `send` accepts: 0 for the kernel queues, -2^31 for `shm`. */
  get minPriority(): number {
    return this.#backend.minPriority;
  }

  /** Highest priority `send` accepts: 32767 for the kernel queues (MQ_PRIO_MAX - 1), 2^31 - 1 for `shm`. */
  get maxPriority(): number {
    return this.#backend.maxPriority;
  }

  /** Gives up ownership: `close()` will leave the queue for others (or for `unlink()`). */
  disown(): void {
    this.#backend.disown();
  }

  /**
   * Removes the queue's name now (`sysv`: the queue itself, at once). POSIX
   * and `shm` queues live on for handles that have them open. Anyone may unlink.
   *
   * Errors: `ENOENT` (already removed), `EACCES`, `EPERM`, `ERR_MULTIPROC_CLOSED`.
   */
  unlink(): void {
    this.#checkOpen();
    this.#backend.unlink();
  }

  /**
   * The queue's state, `msqid_ds` style (see {@link MessageQueueStat}).
   * Errors: `ERR_MULTIPROC_CLOSED` (closed, or a `sysv` queue that was removed).
   */
  stat(): MessageQueueStat {
    this.#checkOpen();
    return this.#backend.stat();
  }

  // --- transport hooks --------------------------------------------------

  /** @internal */
  protected override _stats(): Partial<ChannelStats> {
    if (this.closed || this.#backend.closed) return {};
    let s: MessageQueueStat;
    try {
      s = this.#backend.stat();
    } catch {
      return {};
    }
    const out: Partial<ChannelStats> = {
      messagesQueued: s.messages,
      bytesQueued: s.bytes,
      capacityBytes: s.capacityBytes,
      capacityMessages: s.capacityMessages,
    };
    if (s.lastSendPid !== null) out.lastSendPid = s.lastSendPid;
    if (s.lastReceivePid !== null) out.lastReceivePid = s.lastReceivePid;
    if (s.lastSendTime !== null) out.lastSendTime = s.lastSendTime;
    if (s.lastReceiveTime !== null) out.lastReceiveTime = s.lastReceiveTime;
    return out;
  }

  /** What the backends cannot check the same way, before any of them is called. */
  #checkFrame(frame: Frame): void {
    const b = this.#backend;
    if (frame.priority < b.minPriority || frame.priority > b.maxPriority) {
      throw rangeError(
        `The value of "options.priority" is out of range for a '${b.kind}' message queue. It must be an integer >= ${b.minPriority} and <= ${b.maxPriority}. Received ${frame.priority}`,
      );
    }
    // The kernel queues would send it as an empty message, and shm could not copy it.
    if (isDetached(frame.payload)) {
      throw typeError('ERR_INVALID_ARG_VALUE', 'The message is a view of a detached ArrayBuffer (it was transferred): it has no bytes to send');
    }
  }

  /** @internal */
  protected _trySend(frame: Frame): boolean {
    this.#checkFrame(frame);
    if (this.#closeError !== undefined) throw this.#closeError;
    return this.#backend.trySend(frame);
  }

  /** @internal */
  protected async _send(frame: Frame, wait: Wait): Promise<void> {
    this.#checkFrame(frame);
    if (this.#closeError !== undefined) throw this.#closeError;
    if (this.#backend.trySend(frame)) return;
    await this.#waitingOp(wait, (w) => this.#backend.send(frame, w));
  }

  /** @internal */
  protected _tryReceive(selector: TypeSelector): Frame | undefined {
    if (this.#closeError !== undefined) throw this.#closeError;
    return this.#takeHeld(selector) ?? this.#backend.tryReceive(selector);
  }

  /** @internal */
  protected async _receive(selector: TypeSelector, wait: Wait): Promise<Frame> {
    for (;;) {
      if (this.#closeError !== undefined) throw this.#closeError;
      const f = this.#takeHeld(selector) ?? this.#backend.tryReceive(selector);
      if (f !== undefined) return f;
      const r = await this.#waitingOp(wait, (w) => this.#backend.receive(selector, w), selector);
      if (r !== RECHECK) return r;
    }
  }

  /** The held message, if `selector` chooses it (then it is no longer held). */
  #takeHeld(selector: TypeSelector): Frame | undefined {
    const held = this.#held;
    if (held === undefined || selectFrame([held], selector) < 0) return undefined;
    this.#held = undefined;
    return held;
  }

  /**
   * Copies the next message's bytes (the encoded payload, as the `raw` codec
   * gives them; no type selection: the order of `receive()`) into `target`
   * from `offset` (default 0) and returns how many there were, or
   * `undefined` when none is here. No buffer per message on the caller's side.
   * Errors: as {@link MessageQueue.tryReceive}; `ERR_MULTIPROC_MESSAGE_TOO_LARGE`
   * when the message does not fit: it stays this handle's, first in line for
   * its next receive that selects it, one already waiting included (the
   * error's `size` is its length);
   * `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE` (`offset`).
   */
  tryReceiveInto(target: ArrayBufferView, offset?: number): number | undefined {
    const { into, at } = intoArgs(target, offset);
    this._checkReceiving();
    const frame = this._tryReceive(0);
    return frame === undefined ? undefined : this.#copyInto(frame, into, at);
  }

  /**
   * Like {@link MessageQueue.tryReceiveInto}, waiting for a message.
   * Errors: also as {@link MessageQueue.receive} (`ERR_MULTIPROC_TIMEOUT`, `ABORT_ERR`).
   */
  async receiveInto(target: ArrayBufferView, options?: ReceiveIntoOptions): Promise<number> {
    const opts = validateOptions<ReceiveIntoOptions>(options, 'options', ['offset', 'timeout', 'signal']);
    const { into, at } = intoArgs(target, opts.offset);
    const wait = makeWait(validateTimeout(opts.timeout), validateSignal(opts.signal), `a message on ${this.label}`);
    this._checkReceiving();
    // The deadline counts after a first attempt (see send).
    checkAborted(wait);
    return this.#copyInto(await this._receive(0, wait), into, at);
  }

  #copyInto(frame: Frame, into: Uint8Array, at: number): number {
    const p = frame.payload;
    if (p.length > into.length - at) {
      this.#held = frame;
      this.#offerHeld();
      throw tooSmall(this.label, p.length, into.length - at, at);
    }
    into.set(p, at);
    this._countReceived(p.length);
    return p.length;
  }

  /**
   * Runs `op` with a signal that the caller's signal and close/destroy both
   * fire. A receive (given its `selector`) resolves with RECHECK when it was
   * woken to look at the held message instead.
   */
  async #waitingOp<R>(wait: Wait, op: (w: Wait) => Promise<R>, selector?: TypeSelector): Promise<R | typeof RECHECK> {
    const user = wait.signal;
    if (user?.aborted) throw new AbortError(undefined, { cause: user.reason });
    const ctl = new AbortController();
    // One listener on the caller's signal however many operations share it.
    const off = user === undefined ? undefined : onAbort(user, () => ctl.abort(user.reason));
    const running = op({ deadline: wait.deadline, timeout: wait.timeout, signal: ctl.signal, what: wait.what });
    const pending: Pending = { running, selector, recheck: false };
    this.#waiting.set(ctl, pending);
    let rechecking = false;
    try {
      return await running;
    } catch (err) {
      if (this.#closeError !== undefined && user?.aborted !== true) throw this.#closeError;
      if (pending.recheck && err instanceof AbortError && user?.aborted !== true) {
        rechecking = true;
        return RECHECK;
      }
      throw err;
    } finally {
      this.#waiting.delete(ctl);
      off?.();
      // Woken for the held message but ended otherwise (it took one from the
      // queue meanwhile, or timed out): the offer goes to the next in line.
      if (pending.recheck && !rechecking) this.#offerHeld();
    }
  }

  /**
   * Wakes the first waiting receive of this handle that selects the held
   * message, to take it: a receive asleep in the backend only watches the
   * queue, and would sleep on while the message waits here.
   */
  #offerHeld(): void {
    const held = this.#held;
    if (held === undefined) return;
    for (const [ctl, p] of this.#waiting) {
      if (p.selector === undefined || selectFrame([held], p.selector) < 0) continue;
      if (!p.recheck) {
        p.recheck = true;
        ctl.abort(RECHECK);
      }
      return;
    }
  }

  #abortWaiting(err: Error): Promise<unknown>[] {
    this.#closeError ??= err;
    const running = [...this.#waiting.values()].map((p) => p.running);
    for (const ctl of [...this.#waiting.keys()]) ctl.abort();
    return running;
  }

  /** @internal */
  protected async _close(): Promise<void> {
    const running = this.#abortWaiting(new ClosedError(`${this.label} is closed`));
    // Let aborted operations unwind before the handle's resources go.
    await Promise.allSettled(running);
    this.#returnHeld();
    this.#backend.close(true);
  }

  /** @internal */
  protected _destroy(err: Error | undefined): void {
    this.#abortWaiting(err ?? new ClosedError(`${this.label} was destroyed`));
    this.#returnHeld();
    this.#backend.close(false);
  }

  /**
   * A handle that closes while it holds a message (see #held) puts it back in
   * the queue, behind those of its priority, rather than drop it. Best
   * effort: a full queue refuses it.
   */
  #returnHeld(): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    try {
      this.#backend.trySend(held);
    } catch {
      // the queue is gone or refuses it
    }
  }

  #checkOpen(): void {
    if (this.closed || this.#backend.closed) throw new ClosedError(`${this.label} is closed`);
  }
}
