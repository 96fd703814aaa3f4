/**
 * ShmRing: a lock-free ring of variable-size messages in a POSIX shared
 * memory segment; the fastest channel between processes on one host.
 *
 * Design (details in src/ring/):
 * - SPSC: a byte ring with a head and a tail index (src/ring/spsc.ts).
 *   MPMC: fixed slots with per-slot sequence words, records spanning
 *   consecutive slots (src/ring/mpmc.ts).
 * - A message is published by a sequentially consistent store after its
 *   bytes are written, so a reader never sees a torn one.
 * - An idle async receiver first looks at the ring once per event-loop turn
 *   for an adaptive budget (20 µs to 1 ms: the loop keeps running), then parks
 *   on its event loop's doorbell (src/native/bell.cc), which the next sender
 *   rings with one datagram. Async senders waiting for room poll the same
 *   way, then sleep on a futex word through the addon's futex service. With
 *   options.spinUs a handle's async waits spin on the ring first (bounded,
 *   adaptive, after the pending microtasks). The `*Sync` forms spin briefly
 *   and then sleep in futex(2). A sender makes a system call only when a
 *   receiver announced that it sleeps.
 * - The ring is FIFO. `receive({ type })` and priorities are served by moving
 *   the records that are ready into a small inbox local to this handle and
 *   choosing there (System V rule). Priorities only take effect once a sender
 *   used one (a flag in the ring), so plain FIFO traffic never pays for them.
 *   In an MPMC ring, messages moved into one handle's inbox are that handle's.
 * - Closing the last sender marks the ring closed: receivers get what is
 *   queued, then `ERR_MULTIPROC_CLOSED` (`for await` ends). A sender that
 *   dies counts as closing; if it died while writing a message, the receiver
 *   that reaches it gets one `ERR_MULTIPROC_PEER_CLOSED` first.
 */
import { native } from '../../binding/native.js';
import {
  AbortError,
  ClosedError,
  IncompatibleError,
  MessageTooLargeError,
  PeerClosedError,
  TimeoutError,
  rangeError,
  typeError,
  validateInteger,
  validateOneOf,
  validateOptions,
  validateSignal,
  validateString,
  validateTimeout,
} from '../../errors.js';
import { SharedMemory, type CreationMode } from '../../shm/shared-memory.js';
import { bellToken } from '../../sync/bell.js';
import { PendingWaits } from '../../sync/pending-waits.js';
import { driveSync, timeoutError, type DriveOptions, type WaitLoop } from '../../sync/wait.js';
import { RingEngine } from '../../ring/engine.js';
import { intoArgs, tooSmall } from '../into.js';
import { DOUBLE_FIELD } from '../stamp.js';
import {
  ABANDONED,
  FLAG_PRIORITY_USED,
  geometry,
  H_CAPACITY,
  H_CREATOR,
  H_DATA,
  H_FLAGS,
  H_MAGIC,
  H_MAX_MESSAGE,
  H_MODE,
  H_READY,
  H_RECEIVERS,
  H_SENDERS,
  H_SEQ,
  H_SLOT,
  H_SLOTS,
  H_VERSION,
  MAGIC,
  MAX_CAPACITY,
  MAX_PARTIES,
  MAX_SLOTS,
  MIN_CAPACITY,
  Mode,
  R_EPOCH,
  R_WAITING,
  WAIT_FUTEX,
  RECORD_HEADER,
  VERSION,
  W_EPOCH,
  W_WAITING,
  type Geometry,
} from '../../ring/layout.js';
import { copyOut } from '../../ring/copy-out.js';
import { MpmcEngine } from '../../ring/mpmc.js';
import { SpscEngine } from '../../ring/spsc.js';
import { selectFrame, validateMaxMessageSize } from '../base-channel.js';
import type { ChannelOptions } from '../base-channel.js';
import type { BytesReceiver, Channel, ChannelStats, ChannelTraits, Message, ReceiveIntoOptions, ReceiveOptions, SendOptions } from '../channel.js';
import { codecs, decodeStructuredRange, resolveCodec, type Codec, type CodecOption } from '../codec.js';
import type { Frame } from '../framing.js';
import { copyInto, copyOf } from '../../shm/copy.js';
import { stampNow } from '../stamp.js';

/** `'spsc'`: one sender and one receiver at a time; `'mpmc'`: up to 64 of each. */
export type ShmRingMode = 'spsc' | 'mpmc';

/** What a handle does; fixes it at open time instead of at the first call. */
export type ShmRingRole = 'sender' | 'receiver';

/** Options of {@link ShmRing.create}. */
export interface ShmRingCreateOptions<T> extends ChannelOptions<T> {
  /** Bytes of message storage, a power of two from 4096 to 2^30. Default 1 MiB. */
  capacity?: number;
  /** Default `'spsc'`. */
  mode?: ShmRingMode;
  /** MPMC: slot size in bytes, a power of two from 32 to 65536 (a record takes whole slots). Default 64. */
  slotSize?: number;
  /** MPMC: most senders attached at once, 1 to 64. Default 64. */
  maxSenders?: number;
  /** MPMC: most receivers attached at once, 1 to 64. Default 64. */
  maxReceivers?: number;
  /** Register this handle as sender or receiver now (else at its first send or receive). */
  role?: ShmRingRole;
  /** Permission bits of the segment. Default `0o600`. */
  permissions?: number;
  /**
   * `'create'` (default), `'openOrCreate'` (an existing ring's parameters win;
   * `mode`, `capacity` and `maxMessageSize`, when given, must match them) or
   * `'purgeAndCreate'`.
   */
  creation?: Exclude<CreationMode, 'open'>;
  /** See {@link ShmRingOpenOptions.spinUs}. */
  spinUs?: number;
}

/** Options of {@link ShmRing.open}. */
export interface ShmRingOpenOptions<T> {
  /** 'raw' | 'json' | 'structured' | 'msgpack' or a custom codec. Default 'structured'. Both ends must agree. */
  codec?: CodecOption<T>;
  /** Register this handle as sender or receiver now (else at its first send or receive). */
  role?: ShmRingRole;
  /**
   * Microseconds, 0 to 1000, that an async wait of this handle (`receive`,
   * or `send` waiting for room) may spin, blocking the event loop, before it
   * polls once per event-loop turn and then parks. Default 0: async waits
   * never block the loop. A peer that answers within microseconds (a busy
   * RPC server, a ping-pong) then costs no event-loop turn per message. The
   * spin is adaptive: after one that found nothing, the handle stops
   * spinning until a wait is again answered within `spinUs`, so a slow or
   * idle peer costs at most one spin.
   */
  spinUs?: number;
}

/** Options of the `*Sync` waits. */
export interface ShmRingSyncOptions {
  /** Milliseconds before `ERR_MULTIPROC_TIMEOUT`. Default: no limit. */
  timeout?: number;
}

/** Options of {@link ShmRing.commit}. */
export interface ShmRingCommitOptions {
  /** Bytes actually written, at most the reserved length. Default: the reserved length. */
  length?: number;
  /** Message type (default 1). */
  type?: number;
  /** Priority (default 0). */
  priority?: number;
}

const traits: ChannelTraits = Object.freeze({
  mechanism: 'shm-ring',
  medium: 'memory',
  unit: 'message',
  direction: 'one-way',
  scope: 'same-host',
  use: 'the highest rate between processes on one host: a lock-free ring in shared memory, zero-copy if you like',
});

const NONE: unique symbol = Symbol('none');
const NAME_RE = /^[A-Za-z0-9_.-]{1,200}$/;
const DUPLEX_NAME_RE = /^[A-Za-z0-9_.-]{1,198}$/;
const READY_WAIT_MS = 2000;
const RECEIVE_KEYS = ['type', 'timeout', 'signal'] as const;
const TRY_SEND_KEYS = ['type', 'priority'] as const;
const SEND_KEYS = ['type', 'priority', 'timeout', 'signal'] as const;
/** Liveness checks while waiting: senders that may have died, receivers that may hold slots. */
const IDLE_SLICE_MS = 1000;
const BLOCKED_SLICE_MS = 100;
/** Spin budgets of blocking waits before sleeping, in ms: adapted per handle between these bounds (async waits poll instead). */
const SPIN_MIN_MS = 0.002;
const SPIN_MAX_SYNC_MS = 1;
/** Budgets of polling once per event-loop turn before parking, in ms (the event loop keeps running), and how often a miss-prone handle probes with the largest. */
const POLL_MIN_MS = 0.02;
const POLL_MAX_MS = 1;
const POLL_PROBE_EVERY = 8;
/** Microtask hops an async spin (options.spinUs) waits for, so the code that reacts to the last message runs first. */
const SPIN_AFTER_HOPS = 4;
const RESOLVED = Promise.resolve();
/**
 * Most messages a handle's inbox takes from the ring (besides at most
 * `capacity` bytes): beyond, records stay in the ring, so it fills and
 * senders wait, and choosing in the inbox stays cheap.
 */
const INBOX_MAX_FRAMES = 1024;
/** A poll turn longer than this (ms) ends the polling. */
const POLL_TURN_MAX_MS = 0.5;

/** One direction's polling budget (ms), the waits in a row that found nothing, and whether its waits spin first (options.spinUs). */
interface PollState {
  budget: number;
  misses: number;
  hot: boolean;
}

function pollState(): PollState {
  const st: PollState = { budget: DOUBLE_FIELD, misses: 0, hot: true };
  st.budget = POLL_MAX_MS;
  return st;
}

/** options.spinUs in ms. */
function spinOption(value: unknown): number {
  return value === undefined ? 0 : validateInteger(value, 'options.spinUs', 0, 1000) / 1000;
}

/** Calls `check` until it is true or `ms` pass; true when it became true. */
function spin(check: () => boolean, ms: number): boolean {
  const end = performance.now() + ms;
  for (let n = 1; ; n++) {
    if (check()) return true;
    // performance.now() costs about as much as a few checks: look at the clock every 16.
    if ((n & 15) === 0 && performance.now() >= end) return false;
  }
}

function segmentName(name: unknown): string {
  validateString(name, 'name');
  if (!NAME_RE.test(name as string)) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The argument 'name' must be 1 to 200 characters of A-Z, a-z, 0-9, '_', '.', '-'. Received '${String(name)}'`);
  }
  return `/mp.ring.${name as string}`;
}

/** A duplex's name: as a ring's, with room for the '.0' and '.1' of its two rings. */
function duplexName(name: unknown): string {
  validateString(name, 'name');
  if (!DUPLEX_NAME_RE.test(name as string)) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The argument 'name' must be 1 to 198 characters of A-Z, a-z, 0-9, '_', '.', '-'. Received '${String(name)}'`);
  }
  return name as string;
}

function powerOfTwo(value: unknown, what: string, min: number, max: number): number {
  const n = validateInteger(value, what, min, max);
  if ((n & (n - 1)) !== 0) throw rangeError(`The value of "${what}" must be a power of two. Received ${n}`);
  return n;
}

function invalidState(message: string): TypeError {
  return typeError('ERR_INVALID_STATE', message);
}

function lostError(label: string, pid: number): PeerClosedError {
  return new PeerClosedError(`${label}: a sender (pid ${pid}) died while writing a message; that message is lost`, pid > 0 ? pid : undefined);
}

/**
 * A one-way channel through a lock-free ring in shared memory.
 *
 * One process creates the ring by name and owns it (its `close()` removes
 * the name); others open it. Each handle can send and receive; it registers
 * as a sender at its first send (or reservation) and as a receiver at its
 * first receive, or at open time with `role`. An SPSC ring admits one live
 * sender and one live receiver; an MPMC ring up to 64 of each.
 *
 * Besides the {@link Channel} contract, a ring offers:
 * - `tryReceive()`: a receive that never waits (the fastest path);
 * - zero-copy: `tryReserve(n)`/`reserve(n)` lend a view of the ring to write
 *   into, `commit()` publishes it; `tryReceiveView()`/`receiveView()` lend a
 *   view of a message in place, `release()` gives it back;
 * - blocking forms for worker threads: `sendSync`, `receiveSync`,
 *   `reserveSync`, `receiveViewSync`.
 *
 * Two-way traffic needs two rings; {@link ShmRing.createDuplex} makes the pair.
 *
 * @example
 * ```ts
 * // process A
 * const ring = ShmRing.create('frames', { capacity: 1 << 22, codec: 'raw' });
 * for await (const frame of ring) handle(frame);
 * // process B
 * const tx = ShmRing.open('frames', { codec: 'raw' });
 * if (!tx.trySend(bytes)) await tx.send(bytes);
 * await tx.close();
 * ```
 */
export class ShmRing<T = unknown> implements Channel<T>, BytesReceiver {
  readonly traits: ChannelTraits = traits;
  /** Largest payload in bytes (set by the ring's creator). */
  readonly maxMessageSize: number;
  readonly #name: string;
  readonly #label: string;
  readonly #shm: SharedMemory;
  readonly #engine: RingEngine;
  readonly #buffer: SharedArrayBuffer;
  readonly #i32: Int32Array;
  readonly #u8: Uint8Array;
  readonly #geometry: Geometry;
  readonly #codec: Codec<T>;
  readonly #decodeView: (offset: number, length: number) => T;
  readonly #role: ShmRingRole | undefined;
  readonly #waits = new PendingWaits();
  #closed = false;
  #closing: Promise<void> | undefined;
  #inbox: Frame[] = [];
  /** Payload bytes in #inbox. */
  #inboxBytes = 0;
  #pendingError: Error | undefined;
  #priorityFlagged = false;
  #reservation = -1;
  #reservedLength = 0;
  #view = false;
  #receiveSpin = 0.02;
  #sendSpin = 0.02;
  /** Async waits' spin budget in ms (options.spinUs); 0: none. */
  #asyncSpin = DOUBLE_FIELD;
  /** A record this handle may take is ready (one beyond a full inbox is not: #drain leaves it in the ring). */
  readonly #ready = (): boolean => (this.#engine.ready() && (!this.#inboxFull() || this.#engine.sendersClosed())) || this.#closed;
  // The last message taken, for receiveMessage without an allocation in receive.
  #type = 0;
  #priority = 0;
  #size = 0;
  // Totals and stamps outgrow small integers: doubles from the start (DOUBLE_FIELD), set to 0 below.
  #messagesSent = DOUBLE_FIELD;
  #messagesReceived = DOUBLE_FIELD;
  #bytesSent = DOUBLE_FIELD;
  #bytesReceived = DOUBLE_FIELD;
  #lastSendMs = DOUBLE_FIELD;
  #lastReceiveMs = DOUBLE_FIELD;

  private constructor(name: string, shm: SharedMemory, g: Geometry, maxMessageSize: number, codec: Codec<T>, role: ShmRingRole | undefined) {
    this.#messagesSent = this.#messagesReceived = this.#bytesSent = this.#bytesReceived = 0;
    this.#lastSendMs = this.#lastReceiveMs = this.#asyncSpin = 0;
    this.#name = name;
    this.#label = `shm-ring '${name}'`;
    this.#dataDrive = { timeout: Infinity, what: `a message on ${this.#label}`, deadline: Infinity };
    this.#roomDrive = { timeout: Infinity, what: `room in ${this.#label}`, deadline: Infinity };
    this.#shm = shm;
    this.#geometry = g;
    this.#buffer = shm.buffer;
    this.#i32 = new Int32Array(this.#buffer);
    this.#u8 = new Uint8Array(this.#buffer);
    this.maxMessageSize = maxMessageSize;
    this.#codec = codec;
    this.#role = role;
    this.#engine = g.mode === Mode.Spsc ? new SpscEngine(this.#buffer, g, this.#label) : new MpmcEngine(this.#buffer, g, this.#label);
    const u8 = this.#u8;
    const i32 = this.#i32;
    if (codec === (codecs.raw as unknown as Codec<T>)) {
      const spsc = this.#engine instanceof SpscEngine ? this.#engine : undefined;
      this.#decodeView = spsc === undefined ? (o, n) => copyOut(u8, i32, o, n) as unknown as T : (o, n) => (spsc.copyPayload(n) ?? copyOut(u8, i32, o, n)) as unknown as T;
    } else if (codec === (codecs.structured as unknown as Codec<T>)) {
      // Never keeps a view of its input; the fast format decodes in place.
      this.#decodeView = (o, n) => decodeStructuredRange(u8, o, o + n) as T;
    } else if (codec === (codecs.json as unknown as Codec<T>)) {
      // Never keeps a view of its input.
      this.#decodeView = (o, n) => codec.decode(u8.subarray(o, o + n));
    } else {
      // Others may return views into their input (msgpack does for binary data): give them a copy.
      this.#decodeView = (o, n) => codec.decode(u8.slice(o, o + n));
    }
  }

  /**
   * Creates a ring named `name` (segment `/mp.ring.<name>`); this handle owns it.
   *
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`
   * (bad name or options; `capacity` not a power of two; `maxMessageSize`
   * above `capacity - 16`); system errors of {@link SharedMemory.create}
   * (`EEXIST`, `EACCES`, `ENOSPC`); with `creation: 'openOrCreate'`, those of
   * {@link ShmRing.open}, and `ERR_MULTIPROC_INCOMPATIBLE` when `mode`,
   * `capacity` or `maxMessageSize` were given and the existing ring differs;
   * `ERR_MULTIPROC_BUSY` when `role` cannot be taken.
   */
  static create<T = unknown>(name: string, options?: ShmRingCreateOptions<T>): ShmRing<T> {
    const segName = segmentName(name);
    const opts = validateOptions<ShmRingCreateOptions<T>>(options, 'options', [
      'capacity',
      'mode',
      'slotSize',
      'maxSenders',
      'maxReceivers',
      'role',
      'permissions',
      'creation',
      'codec',
      'maxMessageSize',
      'spinUs',
    ]);
    const spinMs = spinOption(opts.spinUs);
    const capacity = opts.capacity === undefined ? 1 << 20 : powerOfTwo(opts.capacity, 'options.capacity', MIN_CAPACITY, MAX_CAPACITY);
    const mode = opts.mode === undefined ? Mode.Spsc : validateOneOf(opts.mode, 'options.mode', ['spsc', 'mpmc'] as const) === 'spsc' ? Mode.Spsc : Mode.Mpmc;
    let slotSize = 16;
    let senders = 1;
    let receivers = 1;
    if (mode === Mode.Mpmc) {
      slotSize = opts.slotSize === undefined ? 64 : powerOfTwo(opts.slotSize, 'options.slotSize', 32, 65536);
      if (capacity / slotSize < 2 || capacity / slotSize > MAX_SLOTS) {
        throw rangeError(`an MPMC ring needs 2 to ${MAX_SLOTS} slots; capacity ${capacity} / slotSize ${slotSize} gives ${capacity / slotSize}`);
      }
      senders = opts.maxSenders === undefined ? MAX_PARTIES : validateInteger(opts.maxSenders, 'options.maxSenders', 1, MAX_PARTIES);
      receivers = opts.maxReceivers === undefined ? MAX_PARTIES : validateInteger(opts.maxReceivers, 'options.maxReceivers', 1, MAX_PARTIES);
    } else {
      for (const k of ['slotSize', 'maxSenders', 'maxReceivers'] as const) {
        if (opts[k] !== undefined) throw typeError('ERR_INVALID_ARG_VALUE', `The option '${k}' only applies to mode 'mpmc'`);
      }
    }
    const maxMessageSize = validateMaxMessageSize(opts.maxMessageSize, capacity - RECORD_HEADER);
    const role = opts.role === undefined ? undefined : validateOneOf(opts.role, 'options.role', ['sender', 'receiver'] as const);
    const permissions = opts.permissions === undefined ? 0o600 : validateInteger(opts.permissions, 'options.permissions', 0, 0o777);
    const creation = opts.creation === undefined ? 'create' : validateOneOf(opts.creation, 'options.creation', ['create', 'openOrCreate', 'purgeAndCreate'] as const);
    const codec = resolveCodec<T>(opts.codec, 'structured');
    const g = geometry(mode, capacity, slotSize, senders, receivers);

    let shm: SharedMemory;
    try {
      shm = SharedMemory.create(segName, g.size, { mode: permissions, creation: creation === 'openOrCreate' ? 'create' : creation });
    } catch (err) {
      if (creation !== 'openOrCreate' || (err as { code?: string }).code !== 'EEXIST') throw err;
      // The existing ring's parameters win; only those given explicitly must agree.
      return ShmRing.#attach<T>(name as string, SharedMemory.open(segName), codec, role, spinMs, {
        ...(opts.mode === undefined ? {} : { mode }),
        ...(opts.capacity === undefined ? {} : { capacity }),
        ...(opts.maxMessageSize === undefined ? {} : { maxMessageSize }),
      });
    }
    try {
      const i32 = new Int32Array(shm.buffer);
      i32[H_MAGIC] = MAGIC;
      i32[H_VERSION] = VERSION;
      i32[H_MODE] = mode;
      i32[H_CAPACITY] = capacity;
      i32[H_SLOT] = slotSize;
      i32[H_SLOTS] = g.slots;
      i32[H_MAX_MESSAGE] = maxMessageSize;
      i32[H_SENDERS] = senders;
      i32[H_RECEIVERS] = receivers;
      i32[H_SEQ] = g.seqByte;
      i32[H_DATA] = g.dataByte;
      i32[H_CREATOR] = process.pid;
      if (mode === Mode.Mpmc) MpmcEngine.initialize(i32, g);
      Atomics.store(i32, H_READY, 1);
      native.futexWake(shm.buffer, H_READY * 4, -1);
      return new ShmRing<T>(name as string, shm, g, maxMessageSize, codec, role).#start(spinMs);
    } catch (err) {
      shm.close();
      throw err;
    }
  }

  /**
   * Opens an existing ring.
   *
   * Errors: `ENOENT` (no such ring), `EACCES`; `ERR_MULTIPROC_INCOMPATIBLE`
   * (the segment is not a ring of this layout version); `ERR_MULTIPROC_TIMEOUT`
   * (its creator never finished setting it up); `ERR_MULTIPROC_BUSY` when
   * `role` cannot be taken (SPSC ring with a live party in that role);
   * argument errors.
   */
  static open<T = unknown>(name: string, options?: ShmRingOpenOptions<T>): ShmRing<T> {
    const segName = segmentName(name);
    const opts = validateOptions<ShmRingOpenOptions<T>>(options, 'options', ['codec', 'role', 'spinUs']);
    const role = opts.role === undefined ? undefined : validateOneOf(opts.role, 'options.role', ['sender', 'receiver'] as const);
    const spinMs = spinOption(opts.spinUs);
    const codec = resolveCodec<T>(opts.codec, 'structured');
    return ShmRing.#attach<T>(name, SharedMemory.open(segName), codec, role, spinMs, {});
  }

  /**
   * Creates a pair of rings `<name>.0` and `<name>.1` and returns a two-way
   * channel over them: this end sends on `.0` and receives on `.1`. The other
   * process calls {@link ShmRing.openDuplex}. Options as {@link ShmRing.create}
   * (without `role`); errors as {@link ShmRing.create}.
   */
  static createDuplex<T = unknown>(name: string, options?: Omit<ShmRingCreateOptions<T>, 'role'>): ShmRingDuplex<T> {
    // Checked before anything is created: a bad name would otherwise give rings like 'undefined.0'.
    duplexName(name);
    validateOptions(options, 'options', ['capacity', 'mode', 'slotSize', 'maxSenders', 'maxReceivers', 'permissions', 'creation', 'codec', 'maxMessageSize', 'spinUs']);
    const tx = ShmRing.create<T>(`${name}.0`, { ...options, role: 'sender' });
    try {
      return new ShmRingDuplex<T>(tx, ShmRing.create<T>(`${name}.1`, { ...options, role: 'receiver' }));
    } catch (err) {
      tx.destroy();
      throw err;
    }
  }

  /** Opens the other end of {@link ShmRing.createDuplex}: sends on `.1`, receives on `.0`. Errors as {@link ShmRing.open}. */
  static openDuplex<T = unknown>(name: string, options?: Omit<ShmRingOpenOptions<T>, 'role'>): ShmRingDuplex<T> {
    duplexName(name);
    validateOptions(options, 'options', ['codec', 'spinUs']);
    const tx = ShmRing.open<T>(`${name}.1`, { ...options, role: 'sender' });
    try {
      return new ShmRingDuplex<T>(tx, ShmRing.open<T>(`${name}.0`, { ...options, role: 'receiver' }));
    } catch (err) {
      tx.destroy();
      throw err;
    }
  }

  static #attach<T>(
    name: string,
    shm: SharedMemory,
    codec: Codec<T>,
    role: ShmRingRole | undefined,
    spinMs: number,
    expect: { mode?: Mode; capacity?: number; maxMessageSize?: number },
  ): ShmRing<T> {
    try {
      const i32 = new Int32Array(shm.buffer);
      if (Atomics.load(i32, H_READY) === 0) {
        native.futexWait(shm.buffer, H_READY * 4, 0, READY_WAIT_MS);
        if (Atomics.load(i32, H_READY) === 0) throw new TimeoutError(`shm-ring '${name}' was never initialized by its creator`, READY_WAIT_MS);
      }
      if (i32[H_MAGIC] !== MAGIC || i32[H_VERSION] !== VERSION) {
        throw new IncompatibleError(`'${shm.name}' is not a shm-ring of layout ${VERSION}`);
      }
      const mode = i32[H_MODE] as Mode;
      const g = geometry(mode, i32[H_CAPACITY]!, i32[H_SLOT]!, i32[H_SENDERS]!, i32[H_RECEIVERS]!);
      if (g.size !== shm.size || g.seqByte !== i32[H_SEQ] || g.dataByte !== i32[H_DATA]) {
        throw new IncompatibleError(`shm-ring '${name}' has an inconsistent layout`);
      }
      const max = i32[H_MAX_MESSAGE]!;
      if ((expect.mode !== undefined && expect.mode !== mode) || (expect.capacity !== undefined && expect.capacity !== g.capacity) || (expect.maxMessageSize !== undefined && expect.maxMessageSize !== max)) {
        throw new IncompatibleError(`shm-ring '${name}' exists with mode ${mode === Mode.Spsc ? 'spsc' : 'mpmc'}, capacity ${g.capacity}, maxMessageSize ${max}`);
      }
      return new ShmRing<T>(name, shm, g, max, codec, role).#start(spinMs);
    } catch (err) {
      shm.close();
      throw err;
    }
  }

  #start(spinMs: number): this {
    this.#asyncSpin = spinMs;
    if (this.#role === 'sender') this.#engine.register(false);
    else if (this.#role === 'receiver') this.#engine.register(true);
    return this;
  }

  /** The ring's name, as given to `create`/`open`. */
  get name(): string {
    return this.#name;
  }

  /** `'spsc'` or `'mpmc'`. */
  get mode(): ShmRingMode {
    return this.#geometry.mode === Mode.Spsc ? 'spsc' : 'mpmc';
  }

  /** Bytes of message storage. */
  get capacity(): number {
    return this.#geometry.capacity;
  }

  /** True for the handle that created the ring and removes its name on close. */
  get owner(): boolean {
    return this.#shm.owner;
  }

  /** True once `close()` or `destroy()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  // --- sending ------------------------------------------------------------

  /** The last options object trySend checked: its type and priority as given, and as parsed. */
  #trySendParsed: { options: object; givenType: unknown; givenPriority: unknown; type: number; priority: number } | undefined;

  #sendOptions(options: unknown, keys: readonly string[]): { type: number; priority: number; opts: Partial<SendOptions> } {
    const opts = validateOptions<SendOptions>(options, 'options', keys);
    const type = opts.type === undefined ? 1 : validateInteger(opts.type, 'options.type', 1, 2 ** 31 - 1);
    const priority = opts.priority === undefined ? 0 : validateInteger(opts.priority, 'options.priority', -(2 ** 31), 2 ** 31 - 1);
    if (priority !== 0 && !this.#priorityFlagged && !this.#closed) {
      this.#priorityFlagged = true;
      Atomics.or(this.#i32, H_FLAGS, FLAG_PRIORITY_USED);
    }
    return { type, priority, opts };
  }

  #checkSend(): void {
    if (this.#closed) throw new ClosedError(`${this.#label} is closed`);
    if (this.#engine.sender < 0) {
      if (this.#role === 'receiver') throw invalidState(`${this.#label} was opened as a receiver; send on a handle opened as sender`);
      this.#engine.register(false);
    }
    if (this.#reservation >= 0) throw invalidState(`${this.#label} has a reservation open: commit() or discard() it first`);
  }

  /**
   * The message's bytes. With a codec that has `encodeTransient` (structured)
   * they may be the codec's scratch buffer: copy them before anything else
   * can encode (see send).
   */
  #encode(message: T): Uint8Array {
    const codec = this.#codec;
    const payload = codec.encodeTransient === undefined ? codec.encode(message) : codec.encodeTransient(message);
    if (payload.length > this.maxMessageSize) {
      throw new MessageTooLargeError(
        `a ${payload.length}-byte message does not fit ${this.#label}: its maxMessageSize is ${this.maxMessageSize} bytes`,
        payload.length,
        this.maxMessageSize,
      );
    }
    return payload;
  }

  #write(payload: Uint8Array, type: number, priority: number): boolean {
    const n = payload.length;
    const off = this.#engine.reserve(n);
    if (off < 0) return false;
    copyInto(this.#u8, off, payload);
    this.#engine.commit(n, type, priority);
    this.#sent(n);
    return true;
  }

  #sent(n: number): void {
    this.#messagesSent++;
    this.#bytesSent += n;
    this.#lastSendMs = stampNow();
  }

  /**
   * Sends one message without waiting: false when the ring has no room.
   * Errors: `ERR_MULTIPROC_MESSAGE_TOO_LARGE`, `ERR_MULTIPROC_CLOSED`,
   * `ERR_MULTIPROC_BUSY` (SPSC ring with another live sender),
   * `ERR_INVALID_STATE` (a reservation is open, or a receiver-only handle),
   * argument errors.
   */
  trySend(message: T, options?: Omit<SendOptions, 'timeout' | 'signal'>): boolean {
    let type = 1;
    let priority = 0;
    if (options !== undefined) {
      // A sender that passes the same options object every time (RPC) has it checked once.
      const c = this.#trySendParsed;
      const o = options as SendOptions;
      // Compared as given: an absent priority (undefined) parses to 0.
      if (c !== undefined && c.options === options && o.type === c.givenType && o.priority === c.givenPriority) {
        type = c.type;
        priority = c.priority;
      } else {
        ({ type, priority } = this.#sendOptions(options, TRY_SEND_KEYS));
        this.#trySendParsed = { options, givenType: o.type, givenPriority: o.priority, type, priority };
      }
    }
    this.#checkSend();
    return this.#write(this.#encode(message), type, priority);
  }

  /**
   * Sends one message, waiting for room without blocking the event loop.
   * Resolves once the message is in the ring.
   * Errors: as {@link ShmRing.trySend}, plus `ERR_MULTIPROC_TIMEOUT`,
   * `ABORT_ERR`, `ERR_MULTIPROC_CLOSED` (closed while waiting).
   */
  async send(message: T, options?: SendOptions): Promise<void> {
    let type = 1;
    let priority = 0;
    let drive: DriveOptions | undefined;
    if (options !== undefined) {
      const o = this.#sendOptions(options, SEND_KEYS);
      type = o.type;
      priority = o.priority;
      drive = this.#driveOptions(o.opts.timeout, o.opts.signal, `room in ${this.#label}`);
    }
    this.#checkSend();
    let payload = this.#encode(message);
    if (this.#write(payload, type, priority)) return;
    // Others may encode while this send waits.
    if (this.#codec.encodeTransient !== undefined) payload = payload.slice();
    drive ??= this.#roomDrive;
    for (;;) {
      await this.#awaitRoom(payload.length, drive);
      this.#checkSend();
      if (this.#write(payload, type, priority)) return;
      // Another sender took the room: the next wait does not spin (the loop gets a turn).
      this.#sendPoll.hot = false;
      this.#checkDrive(drive);
    }
  }

  /**
   * Sends one message, blocking this thread while the ring is full (meant
   * for worker threads). Errors: as {@link ShmRing.send}, without `ABORT_ERR`.
   */
  sendSync(message: T, options?: Omit<SendOptions, 'signal'>): void {
    const o = this.#sendOptions(options, ['type', 'priority', 'timeout']);
    const drive = this.#driveOptions(o.opts.timeout, undefined, `room in ${this.#label}`);
    this.#checkSend();
    const payload = this.#encode(message);
    if (this.#write(payload, o.type, o.priority)) return;
    for (;;) {
      driveSync(this.#buffer, this.#roomLoop(payload.length, true), drive);
      this.#checkSend();
      if (this.#write(payload, o.type, o.priority)) return;
      this.#checkDrive(drive);
    }
  }

  // The options of waits without a timeout or signal: nothing in them depends on the call.
  readonly #dataDrive: DriveOptions;
  readonly #roomDrive: DriveOptions;

  /**
   * After a wait that gave this call nothing (records of another type, room
   * another sender took): the wait itself may have returned at once, so the
   * deadline and the signal are checked here too.
   */
  #checkDrive(drive: DriveOptions | undefined): void {
    if (drive === undefined) return;
    const signal = drive.signal;
    if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason });
    if (performance.now() >= (drive.deadline ?? Infinity)) throw timeoutError(drive);
  }

  #driveOptions(timeout: unknown, signal: unknown, what: string): DriveOptions {
    const t = validateTimeout(timeout);
    const s = validateSignal(signal);
    // An aborted signal fails the call before anything, even one that could complete at once.
    if (s?.aborted === true) throw new AbortError(undefined, { cause: s.reason });
    return { timeout: t, signal: s, what, deadline: t === Infinity ? Infinity : performance.now() + t };
  }

  /**
   * Waits until a reservation of `length` bytes would (probably) succeed.
   * Blocking waits spin first; async ones have polled (#awaitRoom).
   */
  *#roomLoop(length: number, sync: boolean): WaitLoop<void> {
    const engine = this.#engine;
    const i32 = this.#i32;
    if (sync) {
      const budget = this.#sendSpin;
      if (spin(() => engine.hasRoom(length) || this.#closed, budget)) {
        this.#sendSpin = Math.min(SPIN_MAX_SYNC_MS, budget * 2);
        return;
      }
      this.#sendSpin = Math.max(SPIN_MIN_MS, budget / 2);
    }
    const mpmc = this.#geometry.mode === Mode.Mpmc;
    for (;;) {
      const epoch = Atomics.load(i32, W_EPOCH);
      Atomics.store(i32, W_WAITING, 1);
      if (engine.hasRoom(length) || this.#closed) return;
      const woken = yield { offset: W_EPOCH * 4, expected: epoch, ...(mpmc ? { slice: IDLE_SLICE_MS } : {}) };
      // A receiver that died while reading holds slots: free them.
      if (!woken && mpmc) engine.sweepReceivers();
    }
  }

  // --- zero-copy sending ----------------------------------------------------

  #checkLength(length: unknown): number {
    return validateInteger(length, 'length', 0, this.maxMessageSize);
  }

  #lend(length: number): Uint8Array | undefined {
    const off = this.#engine.reserve(length);
    if (off < 0) return undefined;
    this.#reservation = off;
    this.#reservedLength = length;
    return new Uint8Array(this.#buffer, off, length);
  }

  /**
   * Reserves room for a message of `length` bytes and returns a view of it
   * inside the ring, or `undefined` when there is no room now. Write the
   * message into the view, then {@link ShmRing.commit} (or
   * {@link ShmRing.discard}). One reservation per handle at a time; until it
   * is committed, receivers see nothing of it (SPSC: nothing after it either).
   *
   * Errors: `ERR_OUT_OF_RANGE` (`length` above `maxMessageSize`),
   * `ERR_INVALID_STATE` (a reservation is already open), and those of
   * {@link ShmRing.trySend}.
   */
  tryReserve(length: number): Uint8Array | undefined {
    const n = this.#checkLength(length);
    this.#checkSend();
    return this.#lend(n);
  }

  /**
   * Like {@link ShmRing.tryReserve}, waiting for room.
   * Errors: those of `tryReserve`, `ERR_MULTIPROC_TIMEOUT`, `ABORT_ERR`.
   */
  async reserve(length: number, options?: { timeout?: number; signal?: AbortSignal }): Promise<Uint8Array> {
    const n = this.#checkLength(length);
    const opts = validateOptions<{ timeout: number; signal: AbortSignal }>(options, 'options', ['timeout', 'signal']);
    const drive = this.#driveOptions(opts.timeout, opts.signal, `room in ${this.#label}`);
    this.#checkSend();
    for (let waited = false; ; waited = true) {
      const view = this.#lend(n);
      if (view !== undefined) return view;
      if (waited) {
        this.#sendPoll.hot = false;
        this.#checkDrive(drive);
      }
      await this.#awaitRoom(n, drive);
      this.#checkSend();
    }
  }

  /** Like {@link ShmRing.reserve}, blocking this thread. */
  reserveSync(length: number, options?: ShmRingSyncOptions): Uint8Array {
    const n = this.#checkLength(length);
    const opts = validateOptions<ShmRingSyncOptions>(options, 'options', ['timeout']);
    const drive = this.#driveOptions(opts.timeout, undefined, `room in ${this.#label}`);
    this.#checkSend();
    for (let waited = false; ; waited = true) {
      const view = this.#lend(n);
      if (view !== undefined) return view;
      if (waited) this.#checkDrive(drive);
      driveSync(this.#buffer, this.#roomLoop(n, true), drive);
      this.#checkSend();
    }
  }

  /**
   * Publishes the open reservation as one message (of `options.length`
   * bytes, default the reserved length). The view must not be used afterwards.
   * Errors: `ERR_INVALID_STATE` (no reservation open), `ERR_OUT_OF_RANGE`,
   * `ERR_MULTIPROC_CLOSED`, argument errors.
   */
  commit(options?: ShmRingCommitOptions): void {
    const opts = validateOptions<ShmRingCommitOptions>(options, 'options', ['length', 'type', 'priority']);
    if (this.#closed) throw new ClosedError(`${this.#label} is closed`);
    if (this.#reservation < 0) throw invalidState(`${this.#label} has no reservation to commit`);
    const length = opts.length === undefined ? this.#reservedLength : validateInteger(opts.length, 'options.length', 0, this.#reservedLength);
    const { type, priority } = this.#sendOptions({ type: opts.type, priority: opts.priority }, TRY_SEND_KEYS);
    this.#reservation = -1;
    this.#engine.commit(length, type, priority);
    this.#sent(length);
  }

  /** Gives up the open reservation (nothing is sent). Does nothing when none is open. */
  discard(): void {
    if (this.#reservation < 0 || this.#closed) return;
    this.#reservation = -1;
    this.#engine.discard();
  }

  // --- receiving ------------------------------------------------------------

  #checkReceive(): void {
    if (this.#closed) throw new ClosedError(`${this.#label} is closed`);
    if (this.#engine.receiver < 0) {
      if (this.#role === 'sender') throw invalidState(`${this.#label} was opened as a sender; receive on a handle opened as receiver`);
      this.#engine.register(true);
    }
    if (this.#view) throw invalidState(`${this.#label} has a received view open: release() it first`);
  }

  #received(n: number, type: number, priority: number): void {
    this.#type = type;
    this.#priority = priority;
    this.#size = n;
    this.#messagesReceived++;
    this.#bytesReceived += n;
    this.#lastReceiveMs = stampNow();
  }

  #priorityUsed(): boolean {
    // A plain load: the flag is sticky and only decides between two correct paths.
    return (this.#i32[H_FLAGS]! & FLAG_PRIORITY_USED) !== 0;
  }

  /** Nothing was ready: report a loss found meanwhile, else NONE. */
  #nothing(): typeof NONE {
    const err = this.#pendingError;
    if (err !== undefined) {
      this.#pendingError = undefined;
      throw err;
    }
    const engine = this.#engine;
    if (engine instanceof SpscEngine) {
      const lost = engine.takeLost();
      if (lost > 0) throw new PeerClosedError(`${this.#label}: the sender died while writing a message; ${lost === 1 ? 'that message is' : `${lost} messages are`} lost`);
    }
    return NONE;
  }

  /** Takes one message (FIFO fast path, or by selector through the inbox). */
  #take(selector: number): T | typeof NONE {
    // Fast path, FIFO or a positive type (RPC's case): the record at the head
    // is the one to take when it matches, so no copy into the inbox.
    if (selector >= 0 && this.#inbox.length === 0 && !this.#priorityUsed()) {
      const engine = this.#engine;
      const o = engine.claim();
      if (o < 0) return this.#nothing();
      const i32 = this.#i32;
      const x = o >> 2;
      const length = i32[x]!;
      const type = i32[x + 1]!;
      const priority = i32[x + 2]!;
      if (type === ABANDONED) {
        engine.release();
        throw lostError(this.#label, priority);
      }
      if (selector !== 0 && type !== selector) {
        this.#inbox.push({ payload: this.#u8.slice(o + RECORD_HEADER, o + RECORD_HEADER + length), type, priority });
        this.#inboxBytes += length;
        engine.release();
        return this.#takeFromInbox(selector);
      }
      let data: T;
      try {
        data = this.#decodeView(o + RECORD_HEADER, length);
      } finally {
        engine.release();
      }
      this.#received(length, type, priority);
      return data;
    }
    return this.#takeFromInbox(selector);
  }

  /** Moves what is ready into the inbox, then takes the message `selector` chooses there. */
  #takeFromInbox(selector: number): T | typeof NONE {
    this.#drain();
    const i = selectFrame(this.#inbox, selector);
    if (i < 0) return this.#nothing();
    const frame = i === 0 ? this.#inbox.shift()! : this.#inbox.splice(i, 1)[0]!;
    this.#inboxBytes -= frame.payload.length;
    const data = this.#codec === (codecs.raw as unknown as Codec<T>) ? (frame.payload as unknown as T) : this.#codec.decode(frame.payload);
    this.#received(frame.payload.length, frame.type, frame.priority);
    return data;
  }

  /** True when #drain moves no more records into the inbox while senders are attached. */
  #inboxFull(): boolean {
    return this.#inboxBytes >= this.#geometry.capacity || this.#inbox.length >= INBOX_MAX_FRAMES;
  }

  /**
   * Moves ready records into the inbox (copies), until it holds `capacity`
   * bytes or INBOX_MAX_FRAMES messages: the rest stay in the ring, which then
   * fills so that senders wait (back-pressure). Once every sender closed,
   * nothing more can come and all of them are moved. Stops at a lost
   * message, which is reported after the inbox.
   */
  #drain(): void {
    const engine = this.#engine;
    const i32 = this.#i32;
    for (;;) {
      if (this.#inboxFull() && !engine.sendersClosed()) return;
      const o = engine.claim();
      if (o < 0) return;
      const x = o >> 2;
      const length = i32[x]!;
      const type = i32[x + 1]!;
      const priority = i32[x + 2]!;
      if (type === ABANDONED) {
        engine.release();
        this.#pendingError ??= lostError(this.#label, priority);
        return;
      }
      const payload = this.#u8.slice(o + RECORD_HEADER, o + RECORD_HEADER + length);
      engine.release();
      this.#inbox.push({ payload, type, priority });
      this.#inboxBytes += length;
    }
  }

  /** Throws ClosedError when every sender closed and nothing is left for this handle. */
  #checkEnd(selector: number): void {
    const engine = this.#engine;
    // The flag first: records published before it are then visible to empty().
    if (!engine.sendersClosed() || !engine.empty()) return;
    if (selector === 0 ? this.#inbox.length > 0 : selectFrame(this.#inbox, selector) >= 0) return;
    throw new ClosedError(`${this.#label}: every sender closed the ring and no message is left`);
  }

  /** Spins (blocking) for the adaptive budget until a record is ready (or this handle closed); adapts the budget. */
  #spinData(): boolean {
    const budget = this.#receiveSpin;
    if (spin(this.#ready, budget)) {
      this.#receiveSpin = Math.min(SPIN_MAX_SYNC_MS, budget * 2);
      return true;
    }
    this.#receiveSpin = Math.max(SPIN_MIN_MS, budget / 2);
    return false;
  }

  /**
   * Waits until a record is ready at the head, the ring closed, or a loss is
   * found. Blocking waits spin first; async ones have polled (#awaitData).
   */
  *#dataLoop(sync: boolean): WaitLoop<void> {
    const engine = this.#engine;
    const i32 = this.#i32;
    if (sync && this.#spinData()) return;
    for (;;) {
      const epoch = Atomics.load(i32, R_EPOCH);
      // Async: park on the event loop's doorbell when there is one (one
      // wake-up, no thread); blocking, or without one: on the futex word.
      // A handle's receiver entry holds one doorbell: a second wait of the
      // same handle parked at once (two receives in flight) takes the futex
      // word instead of overwriting the first one's token, which would then
      // never be rung.
      const token = sync ? 0 : bellToken();
      const bell = !sync && !this.#bellParked && engine.arm(token);
      if (bell) this.#bellParked = true;
      else Atomics.or(i32, R_WAITING, WAIT_FUTEX);
      let woken: boolean;
      try {
        if (this.#ready() || (engine.sendersClosed() && engine.empty())) return;
        const slice = engine.blockedBy() >= 0 ? BLOCKED_SLICE_MS : IDLE_SLICE_MS;
        woken = yield bell ? { offset: R_EPOCH * 4, expected: epoch, slice, bell: token } : { offset: R_EPOCH * 4, expected: epoch, slice };
      } finally {
        if (bell) {
          engine.disarm();
          this.#bellParked = false;
        }
      }
      if (woken) continue;
      // A slice ran out: senders that died leave a claim at the head, a lost
      // message (SPSC), or no sender at all (the ring is then closed).
      const dead = engine.sweepSenders();
      if (dead.some((d) => d.lost) && engine instanceof SpscEngine) return;
      if (this.#pendingError !== undefined) return;
    }
  }

  /** A wait of this handle is parked on its receiver entry's doorbell. */
  #bellParked = false;

  /** The last options object parsed without a timeout, and its result: a receive loop (RPC) passes the same one every time. */
  #parsed: { options: object; keys: readonly string[]; type: unknown; signal: unknown; result: { selector: number; drive: DriveOptions } } | undefined;

  #receiveOptions(options: unknown, keys: readonly string[]): { selector: number; drive: DriveOptions } {
    const cached = this.#parsed;
    if (cached !== undefined && cached.options === options && cached.keys === keys) {
      const o = options as ReceiveOptions;
      if (o.type === cached.type && o.signal === cached.signal && o.timeout === undefined) {
        const signal = cached.result.drive.signal;
        if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason });
        return cached.result;
      }
    }
    const opts = validateOptions<ReceiveOptions>(options, 'options', keys);
    const selector = opts.type === undefined ? 0 : validateInteger(opts.type, 'options.type', -(2 ** 31 - 1), 2 ** 31 - 1);
    const result = { selector, drive: this.#driveOptions(opts.timeout, opts.signal, `a message on ${this.#label}`) };
    // Without a timeout nothing in the result depends on the time of the call.
    if (opts.timeout === undefined) this.#parsed = { options: options as object, keys, type: opts.type, signal: opts.signal, result };
    return result;
  }

  /**
   * Receives one message without waiting; `undefined` when none is ready
   * (use {@link ShmRing.tryReceiveMessage} if `undefined` is a valid message).
   * Errors: `ERR_MULTIPROC_CLOSED` (this handle closed, or every sender closed
   * and nothing is left), `ERR_MULTIPROC_PEER_CLOSED` (a sender died while
   * writing a message; that one is lost, the next call goes on),
   * `ERR_MULTIPROC_PROTOCOL` (corrupted ring), `ERR_MULTIPROC_BUSY` (SPSC ring
   * with another live receiver), `ERR_INVALID_STATE`, argument errors.
   */
  tryReceive(options?: Pick<ReceiveOptions, 'type'>): T | undefined {
    let selector = 0;
    if (options !== undefined) selector = this.#receiveOptions(options, ['type']).selector;
    this.#checkReceive();
    const r = this.#take(selector);
    if (r !== NONE) return r;
    this.#checkEnd(selector);
    return undefined;
  }

  /** Like {@link ShmRing.tryReceive}, with type, priority and size; `undefined` when none is ready. */
  tryReceiveMessage(options?: Pick<ReceiveOptions, 'type'>): Message<T> | undefined {
    let selector = 0;
    if (options !== undefined) selector = this.#receiveOptions(options, ['type']).selector;
    this.#checkReceive();
    const r = this.#take(selector);
    if (r !== NONE) return this.#message(r);
    this.#checkEnd(selector);
    return undefined;
  }

  /**
   * Receives one message, waiting without blocking the event loop.
   * Errors: those of {@link ShmRing.tryReceive}, `ERR_MULTIPROC_TIMEOUT`,
   * `ABORT_ERR`; `ERR_MULTIPROC_CLOSED` also when this handle is closed while waiting.
   */
  receive(options?: ReceiveOptions): Promise<T> {
    return this.#receive(options, false) as Promise<T>;
  }

  /** Like {@link ShmRing.receive}, with type, priority and size. */
  receiveMessage(options?: ReceiveOptions): Promise<Message<T>> {
    return this.#receive(options, true) as Promise<Message<T>>;
  }

  /** The message just taken, with its metadata: built at take time, before another call can take one. */
  #message(data: T): Message<T> {
    return { data, type: this.#type, priority: this.#priority, size: this.#size };
  }

  /** receive(), or receiveMessage() when `meta`. */
  #receive(options: ReceiveOptions | undefined, meta: boolean): Promise<T | Message<T>> {
    // Not async: a spinning receive settles the one promise #spinTake returns
    // (an async function would add three microtasks to every round trip).
    try {
      let selector = 0;
      let drive: DriveOptions | undefined;
      if (options !== undefined) ({ selector, drive } = this.#receiveOptions(options, RECEIVE_KEYS));
      this.#checkReceive();
      const r = this.#take(selector);
      if (r !== NONE) return Promise.resolve(meta ? this.#message(r) : r);
      this.#checkEnd(selector);
      if (this.#asyncSpin > 0 && this.#receivePoll.hot) return this.#spinTake(selector, drive, meta);
      return this.#receiveSlow(selector, drive, meta);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async #receiveSlow(selector: number, drive: DriveOptions | undefined, meta: boolean): Promise<T | Message<T>> {
    for (;;) {
      await this.#awaitData(drive);
      this.#checkReceive();
      const r = this.#take(selector);
      if (r !== NONE) return meta ? this.#message(r) : r;
      // Records came that this call cannot take: at most one spin per wait, so the loop gets its turns.
      this.#receivePoll.hot = false;
      this.#checkEnd(selector);
      this.#checkDrive(drive);
    }
  }

  /**
   * options.spinUs for receive(): the spin of #poll, taking the message in
   * the same microtask and settling one promise, without the layers of
   * #awaitData and #poll (about 1 µs of a round trip). When the spin found
   * nothing (spinning then stops, as in #poll) or nothing `selector` takes,
   * the receive goes on as #receiveSlow.
   */
  #spinTake(selector: number, drive: DriveOptions | undefined, meta: boolean): Promise<T | Message<T>> {
    return new Promise((resolve, reject) => {
      this.#spinSoon(this.#ready, this.#receivePoll, drive, (hit) => {
        try {
          this.#checkReceive();
          const r = hit ? this.#take(selector) : NONE;
          if (r !== NONE) return resolve(meta ? this.#message(r) : r);
          // A hit that gave this call nothing (records of another type): the
          // next wait goes through an event-loop turn, not another spin.
          this.#receivePoll.hot = false;
          this.#checkEnd(selector);
          resolve(this.#receiveSlow(selector, drive, meta));
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  /**
   * options.spinUs: spins until `ready` for at most spinUs (and the wait's
   * deadline), then calls `done` with whether it held. The spin starts after
   * the microtasks queued so far (and those they queue, a few hops deep), so
   * that what they send (the next call of a loop that receives ahead, as RPC
   * does) goes out first. A spin that finds nothing clears `st.hot`.
   */
  #spinSoon(ready: () => boolean, st: PollState, drive: DriveOptions | undefined, done: (hit: boolean) => void): void {
    const spinMs = this.#asyncSpin;
    let hops = SPIN_AFTER_HOPS;
    const turn = (): void => {
      // A resolved promise's then: a microtask without queueMicrotask's bookkeeping.
      if (--hops > 0) return void RESOLVED.then(turn);
      const hit = spin(ready, Math.min(spinMs, (drive?.deadline ?? Infinity) - performance.now()));
      if (!hit) st.hot = false;
      done(hit);
    };
    void RESOLVED.then(turn);
  }

  readonly #receivePoll = pollState();
  readonly #sendPoll = pollState();

  /**
   * Looks at the ring once per event-loop turn (setImmediate) until `ready`
   * holds, for an adaptive budget; true when it did. A busy peer answers
   * within microseconds, and then the wait costs no timer, no registration
   * and no wake-up, while the loop keeps serving everything else. Used by
   * receivers waiting for a record and by senders waiting for room (a full
   * ring drains as fast as the receiver copies).
   *
   * The budget follows how soon the condition came: at least a few times the
   * last wait that found it, halved by each wait that did not after the first
   * such in a row (one miss is often just the peer waking up from parking,
   * and shrinking then would make this side park too). When a peer answers
   * late (it parked too, or the CPUs are busy) polling only burns time, so the
   * budget stays small; every few misses one long poll checks whether the
   * peer got fast again (two parked peers would otherwise keep each other slow).
   *
   * With options.spinUs, a spin comes first while `st.hot` (#spinSoon): a
   * spin that finds nothing clears it, a wait answered within the spin
   * budget sets it again.
   */
  async #poll(ready: () => boolean, st: PollState, drive: DriveOptions | undefined): Promise<boolean> {
    const spinMs = this.#asyncSpin;
    const spinNow = spinMs > 0 && st.hot;
    const probe = st.misses >= POLL_PROBE_EVERY;
    const budget = probe ? POLL_MAX_MS : st.budget;
    const start = performance.now();
    // A wait with a timeout stops polling at its deadline.
    const end = Math.min(start + budget, drive?.deadline ?? Infinity);
    let last = start;
    const found = await new Promise<boolean>((resolve) => {
      const turn = (): void => {
        if (ready()) return resolve(true);
        const now = performance.now();
        // A turn that took long means this process lost its CPU (or the loop
        // is busy): polling would only take time from the peer. Park.
        if (now >= end || now - last > POLL_TURN_MAX_MS || drive?.signal?.aborted === true) return resolve(false);
        last = now;
        setImmediate(turn);
      };
      if (!spinNow) return setImmediate(turn);
      this.#spinSoon(ready, st, drive, (hit) => {
        if (hit) return resolve(true);
        last = performance.now();
        setImmediate(turn);
      });
    });
    if (found) {
      const took = performance.now() - start;
      st.misses = 0;
      st.budget = Math.min(POLL_MAX_MS, Math.max(st.budget, 4 * took));
      // Answered within the spin budget: spin again next time.
      if (took <= spinMs) st.hot = true;
      return true;
    }
    st.misses = probe ? 0 : st.misses + 1;
    // One miss is often the peer's own wake-up from parking: shrink from the second in a row.
    if (st.misses >= 2) st.budget = Math.max(POLL_MIN_MS, st.budget / 2);
    return false;
  }

  /**
   * Waits, without blocking the event loop, until a record may be ready
   * (or the ring closed, or a loss was found): polls (#poll), then parks on
   * the doorbell (or futex) until a sender rings.
   */
  async #awaitData(drive: DriveOptions | undefined): Promise<void> {
    if (await this.#poll(this.#ready, this.#receivePoll, drive)) return;
    drive ??= this.#dataDrive;
    await this.#waits.drive(this.#buffer, this.#dataLoop(false), drive);
  }

  /** Waits, without blocking the event loop, until `length` bytes may fit: polls, then parks on the futex. */
  async #awaitRoom(length: number, drive: DriveOptions): Promise<void> {
    const engine = this.#engine;
    if (await this.#poll(() => engine.hasRoom(length) || this.#closed, this.#sendPoll, drive)) return;
    await this.#waits.drive(this.#buffer, this.#roomLoop(length, false), drive);
  }

  /**
   * Receives one message, blocking this thread while the ring is empty
   * (meant for worker threads). Errors: as {@link ShmRing.receive}, without `ABORT_ERR`.
   */
  receiveSync(options?: Omit<ReceiveOptions, 'signal'>): T {
    const { selector, drive } = this.#receiveOptions(options, ['type', 'timeout']);
    this.#checkReceive();
    for (let waited = false; ; waited = true) {
      const r = this.#take(selector);
      if (r !== NONE) return r;
      this.#checkEnd(selector);
      if (waited) this.#checkDrive(drive);
      driveSync(this.#buffer, this.#dataLoop(true), drive);
      this.#checkReceive();
    }
  }

  /** Like {@link ShmRing.receiveSync}, with type, priority and size. */
  receiveMessageSync(options?: Omit<ReceiveOptions, 'signal'>): Message<T> {
    const data = this.receiveSync(options);
    return { data, type: this.#type, priority: this.#priority, size: this.#size };
  }

  // --- zero-copy receiving --------------------------------------------------

  /**
   * Claims the record at the head for a FIFO take and returns its offset,
   * or -1 when none is ready. A record a dead sender abandoned is released
   * and reported.
   */
  #claimHead(): number {
    const engine = this.#engine;
    const o = engine.claim();
    if (o < 0) {
      this.#nothing();
      return -1;
    }
    const x = o >> 2;
    if (this.#i32[x + 1] === ABANDONED) {
      const writer = this.#i32[x + 2]!;
      engine.release();
      throw lostError(this.#label, writer);
    }
    return o;
  }

  #takeView(): Message<Uint8Array> | undefined {
    if (this.#inbox.length > 0) {
      const f = this.#inbox.shift()!;
      this.#inboxBytes -= f.payload.length;
      this.#received(f.payload.length, f.type, f.priority);
      return { data: f.payload, type: f.type, priority: f.priority, size: f.payload.length };
    }
    const o = this.#claimHead();
    if (o < 0) return undefined;
    const i32 = this.#i32;
    const x = o >> 2;
    const length = i32[x]!;
    const type = i32[x + 1]!;
    const priority = i32[x + 2]!;
    this.#view = true;
    this.#received(length, type, priority);
    return { data: new Uint8Array(this.#buffer, o + RECORD_HEADER, length), type, priority, size: length };
  }

  /**
   * Lends the next message (FIFO, no type selection) as a view of the ring's
   * memory, without copying, or returns `undefined` when none is ready. The
   * view is valid until {@link ShmRing.release}; the space stays taken until
   * then (SPSC: the next message waits too). The codec is not used.
   * Errors: as {@link ShmRing.tryReceive}; `ERR_INVALID_STATE` when a view is already open.
   */
  tryReceiveView(): Message<Uint8Array> | undefined {
    this.#checkReceive();
    const m = this.#takeView();
    if (m === undefined) this.#checkEnd(0);
    return m;
  }

  /** Like {@link ShmRing.tryReceiveView}, waiting for a message. Errors: as {@link ShmRing.receive}. */
  async receiveView(options?: Omit<ReceiveOptions, 'type'>): Promise<Message<Uint8Array>> {
    const { drive } = this.#receiveOptions(options, ['timeout', 'signal']);
    this.#checkReceive();
    return this.#waitToTake(() => this.#takeView(), drive);
  }

  /** Like {@link ShmRing.receiveView}, blocking this thread. */
  receiveViewSync(options?: ShmRingSyncOptions): Message<Uint8Array> {
    const { drive } = this.#receiveOptions(options, ['timeout']);
    this.#checkReceive();
    return this.#waitToTakeSync(() => this.#takeView(), drive);
  }

  /** Calls `take` (FIFO, no selection) until it returns something, waiting for data in between. */
  async #waitToTake<R>(take: () => R | undefined, drive: DriveOptions): Promise<R> {
    for (let waited = false; ; waited = true) {
      const r = take();
      if (r !== undefined) return r;
      // A wait that gave this call nothing: at most one spin per wait, so the loop gets its turns.
      this.#checkEnd(0);
      if (waited) {
        this.#receivePoll.hot = false;
        this.#checkDrive(drive);
      }
      await this.#awaitData(drive);
      this.#checkReceive();
    }
  }

  /** As #waitToTake, blocking this thread. */
  #waitToTakeSync<R>(take: () => R | undefined, drive: DriveOptions): R {
    for (let waited = false; ; waited = true) {
      const r = take();
      if (r !== undefined) return r;
      this.#checkEnd(0);
      if (waited) this.#checkDrive(drive);
      driveSync(this.#buffer, this.#dataLoop(true), drive);
      this.#checkReceive();
    }
  }

  // --- receiving into the caller's memory ------------------------------------

  /**
   * Copies the next message (FIFO) into `into` at `at` and returns its
   * length, or undefined when none is ready. A message that does not fit is
   * left first in line and reported.
   */
  #takeInto(into: Uint8Array, at: number): number | undefined {
    const room = into.length - at;
    if (this.#inbox.length > 0) {
      const f = this.#inbox[0]!;
      if (f.payload.length > room) throw tooSmall(this.#label, f.payload.length, room, at);
      this.#inbox.shift();
      this.#inboxBytes -= f.payload.length;
      copyInto(into, at, f.payload);
      this.#received(f.payload.length, f.type, f.priority);
      return f.payload.length;
    }
    const o = this.#claimHead();
    if (o < 0) return undefined;
    const engine = this.#engine;
    const i32 = this.#i32;
    const x = o >> 2;
    const length = i32[x]!;
    const type = i32[x + 1]!;
    const priority = i32[x + 2]!;
    const start = o + RECORD_HEADER;
    if (length > room) {
      // Keep it, first in line, for a call with room (or another kind of receive).
      this.#inbox.unshift({ payload: copyOf(this.#u8, start, length), type, priority });
      this.#inboxBytes += length;
      engine.release();
      throw tooSmall(this.#label, length, room, at);
    }
    try {
      copyInto(into, at, this.#u8.subarray(start, start + length));
    } finally {
      engine.release();
    }
    this.#received(length, type, priority);
    return length;
  }

  /**
   * Copies the next message's bytes (FIFO, no type selection, no codec) into
   * `target` from `offset` (default 0) and returns how many there were, or
   * `undefined` when none is ready: a receive without an allocation, as
   * Python's `recv_bytes_into`. A large message is one memcpy out of the ring.
   * Errors: as {@link ShmRing.tryReceive}; `ERR_MULTIPROC_MESSAGE_TOO_LARGE`
   * when the message does not fit (it stays queued, first in line; the error's
   * `size` is its length), `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE`.
   */
  tryReceiveInto(target: ArrayBufferView, offset?: number): number | undefined {
    const { into, at } = intoArgs(target, offset);
    this.#checkReceive();
    const n = this.#takeInto(into, at);
    if (n === undefined) this.#checkEnd(0);
    return n;
  }

  /** Like {@link ShmRing.tryReceiveInto}, waiting for a message. Errors: also as {@link ShmRing.receive}. */
  async receiveInto(target: ArrayBufferView, options?: ReceiveIntoOptions): Promise<number> {
    const { drive } = this.#receiveOptions(options, ['offset', 'timeout', 'signal']);
    const { into, at } = intoArgs(target, options?.offset);
    this.#checkReceive();
    return this.#waitToTake(() => this.#takeInto(into, at), drive);
  }

  /** Like {@link ShmRing.receiveInto}, blocking this thread (meant for worker threads). */
  receiveIntoSync(target: ArrayBufferView, options?: { offset?: number; timeout?: number }): number {
    const { drive } = this.#receiveOptions(options, ['offset', 'timeout']);
    const { into, at } = intoArgs(target, options?.offset);
    this.#checkReceive();
    return this.#waitToTakeSync(() => this.#takeInto(into, at), drive);
  }

  /** Gives back the view lent by `receiveView`; its memory may be reused at once. Does nothing when none is open. */
  release(): void {
    if (!this.#view || this.#closed) return;
    this.#view = false;
    this.#engine.release();
  }

  /** Receives until every sender closed the ring (then the loop ends). */
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

  // --- stats and lifetime ---------------------------------------------------

  /**
   * Statistics. `messagesQueued` and `bytesQueued` cover the whole ring (all
   * handles, payload bytes); `lastSendPid`/`lastReceivePid` too. Times and
   * totals are this handle's (times are approximate within one event-loop turn).
   */
  stats(): ChannelStats {
    const open = !this.#closed;
    const q = open ? this.#engine.queued() : undefined;
    const pids = open ? this.#engine.lastPids() : undefined;
    return {
      messagesQueued: q === undefined ? null : q.messages + this.#inbox.length,
      bytesQueued: q === undefined ? null : q.bytes + this.#inboxBytes,
      capacityBytes: this.#geometry.capacity,
      capacityMessages: null,
      lastSendPid: pids?.send ?? (this.#messagesSent > 0 ? process.pid : null),
      lastReceivePid: pids?.receive ?? (this.#messagesReceived > 0 ? process.pid : null),
      lastSendTime: this.#messagesSent > 0 ? new Date(this.#lastSendMs) : null,
      lastReceiveTime: this.#messagesReceived > 0 ? new Date(this.#lastReceiveMs) : null,
      messagesSent: this.#messagesSent,
      messagesReceived: this.#messagesReceived,
      bytesSent: this.#bytesSent,
      bytesReceived: this.#bytesReceived,
    };
  }

  /**
   * Closes this handle: pending waits reject with `ERR_MULTIPROC_CLOSED`, an
   * open reservation is discarded and an open view released; a sender leaves
   * the ring (the last one marks it closed, so receivers end after the queued
   * messages); the segment is unmapped, and its name removed if this handle
   * created it (processes that have it open keep using it). Messages already
   * sent stay in the ring. Idempotent: a second call returns the same promise.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#shutdown();
      this.#closing = Promise.resolve();
    }
    return this.#closing;
  }

  /** Same as `close()`, synchronously; pending waits reject with `ERR_MULTIPROC_CLOSED`. Idempotent. */
  destroy(_err?: Error): void {
    this.#closing ??= Promise.resolve();
    this.#shutdown();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #shutdown(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waits.closeAll();
    const engine = this.#engine;
    if (this.#reservation >= 0) {
      this.#reservation = -1;
      engine.discard();
    }
    if (this.#view) {
      this.#view = false;
      engine.release();
    }
    engine.unregister(false);
    engine.unregister(true);
    this.#inbox = [];
    this.#inboxBytes = 0;
    this.#shm.close();
  }
}

/**
 * A two-way channel over two {@link ShmRing}s (see {@link ShmRing.createDuplex}).
 * Sending goes to one ring, receiving reads the other; closing closes both.
 */
export class ShmRingDuplex<T = unknown> implements Channel<T>, BytesReceiver {
  readonly traits: ChannelTraits = Object.freeze({ ...traits, direction: 'two-way' as const });
  /** The ring this end sends on. */
  readonly sender: ShmRing<T>;
  /** The ring this end receives from. */
  readonly receiver: ShmRing<T>;

  /** @internal */
  constructor(sender: ShmRing<T>, receiver: ShmRing<T>) {
    this.sender = sender;
    this.receiver = receiver;
  }

  get maxMessageSize(): number {
    return this.sender.maxMessageSize;
  }

  get closed(): boolean {
    return this.sender.closed;
  }

  /** @see ShmRing.send */
  send(message: T, options?: SendOptions): Promise<void> {
    return this.sender.send(message, options);
  }

  /** @see ShmRing.trySend */
  trySend(message: T, options?: Omit<SendOptions, 'timeout' | 'signal'>): boolean {
    return this.sender.trySend(message, options);
  }

  /** @see ShmRing.receive */
  receive(options?: ReceiveOptions): Promise<T> {
    return this.receiver.receive(options);
  }

  /** @see ShmRing.receiveMessage */
  receiveMessage(options?: ReceiveOptions): Promise<Message<T>> {
    return this.receiver.receiveMessage(options);
  }

  /** @see ShmRing.tryReceive */
  tryReceive(options?: Pick<ReceiveOptions, 'type'>): T | undefined {
    return this.receiver.tryReceive(options);
  }

  /** @see ShmRing.tryReceiveInto */
  tryReceiveInto(target: ArrayBufferView, offset?: number): number | undefined {
    return this.receiver.tryReceiveInto(target, offset);
  }

  /** @see ShmRing.receiveInto */
  receiveInto(target: ArrayBufferView, options?: ReceiveIntoOptions): Promise<number> {
    return this.receiver.receiveInto(target, options);
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this.receiver[Symbol.asyncIterator]();
  }

  /** Sending totals from the sending ring, receiving totals from the other. */
  stats(): ChannelStats {
    const s = this.sender.stats();
    const r = this.receiver.stats();
    return {
      ...r,
      lastSendPid: s.lastSendPid,
      lastSendTime: s.lastSendTime,
      messagesSent: s.messagesSent,
      bytesSent: s.bytesSent,
    };
  }

  /** Closes both rings. */
  async close(): Promise<void> {
    await Promise.all([this.sender.close(), this.receiver.close()]);
  }

  destroy(err?: Error): void {
    this.sender.destroy(err);
    this.receiver.destroy(err);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
