/**
 * The `sysv` backend: a kernel System V queue (msgget), visible to `ipcs -q`.
 *
 * - Names become keys by hashing (FNV-1a, 32 bits, of the name without its
 *   leading '/'; 0, which is IPC_PRIVATE, becomes 1): `sysvKey(name)`. The
 *   creator makes the queue with IPC_CREAT | IPC_EXCL, so a collision or a
 *   leftover is reported, never silently shared.
 * - Each queue has a small control segment in shared memory,
 *   `/mp.sysvq.<name>`, holding the queue id and key, two doorbells and the
 *   bitmap of priorities in use (see sysv_msg.cc). Openers find the queue
 *   through it.
 * - Waiting: System V queues have no descriptor to poll. Every multiproc
 *   sender rings the "not empty" doorbell after msgsnd and every receiver
 *   rings "not full" after msgrcv; waiters sleep on the doorbell through the
 *   addon's futex service (no thread per queue) and retry with IPC_NOWAIT.
 *   Programs that are not multiproc do not ring, so waiters also retry every
 *   `pollInterval` ms (default 100).
 * - Priorities (0..32767) are folded into the kernel's message type:
 *   mtype = type * 32768 + (32767 - priority). Receives of a type probe,
 *   and receives without one choose between arrival order and a scan by,
 *   the priorities recorded in the control segment's bitmap (and 0), which
 *   every sender sets before msgsnd; a program that is not multiproc must
 *   set it too (the layout is documented for it): finding unrecorded ones
 *   would cost a pass over the queue per receive.
 * - The creator removes the queue (IPC_RMID) on close; System V removal is
 *   immediate, so other handles then fail with ERR_MULTIPROC_CLOSED.
 *
 * @internal
 */
import { native } from '../binding/native.js';
import { ClosedError, IncompatibleError, ProtocolError, TimeoutError, systemError } from '../errors.js';
import type { Wait } from '../channel/base-channel.js';
import type { Frame } from '../channel/framing.js';
import { SharedMemory, type CreationMode } from '../shm/shared-memory.js';
import { arm, ring, sleep, type Backend, type MessageQueueStat } from './backend.js';
import { sysvError } from './limits.js';
import { sysvKey } from './sysv-key.js';
import { recordCreated, recordDisowned, recordOpened, recordRemoved, recordUnlinked, releaseHold, type Hold } from '../resources/registry.js';

const MAGIC = 0x5653504d; // 'MPSV'
const VERSION = 1;
// Control segment, 32-bit word indices.
const W_MAGIC = 0;
const W_VERSION = 1;
const W_READY = 2;
const W_REMOVED = 3;
const W_ID = 4;
const W_KEY = 5;
const W_NOT_EMPTY = 6;
const W_NOT_FULL = 7;
const W_MAX_MSG = 8;
const W_CREATOR = 9;
/** Byte offset of the priority bitmap: 32 summary words, then 1024 words. */
const BITMAP = 64;
const SUMMARY_W = BITMAP / 4;
const WORDS_W = SUMMARY_W + 32;
const SEGMENT_SIZE = BITMAP + native.MSG_BITMAP_BYTES;

/** Default of `pollInterval`, ms. */
export const DEFAULT_POLL_INTERVAL = 100;

/** @internal */
export interface SysvParams {
  creation: CreationMode;
  mode: number;
  /** msg_qbytes, or 0 for the kernel default (msgmnb). */
  capacityBytes: number;
  maxMessageSize: number;
  pollInterval: number;
}

function gone(message: string): Error {
  const e = new Error(`ENOENT: ${message}`) as Error & { code: string; errno: number; syscall: string };
  e.code = 'ENOENT';
  e.errno = -2;
  e.syscall = 'msgget';
  return e;
}

/** @internal */
export class SysvBackend implements Backend {
  readonly kind = 'sysv' as const;
  readonly name: string;
  readonly label: string;
  readonly maxMessageSize: number;
  readonly minPriority = 0;
  readonly maxPriority = native.MSG_PRIORITIES - 1;
  readonly key: number;
  readonly id: number;
  readonly #pollInterval: number;
  readonly #shm: SharedMemory;
  readonly #i32: Int32Array;
  readonly #buffer: SharedArrayBuffer;
  readonly #out = new Float64Array(new ArrayBuffer(24));
  readonly #statOut = new Float64Array(new ArrayBuffer(96));
  #owner: boolean;
  #closed = false;
  /** This process's lock on the kernel queue's registry record (the control segment has its own). */
  #hold: Hold | undefined;

  constructor(name: string, p: SysvParams) {
    this.name = name;
    this.label = `message queue '${name}' (sysv)`;
    this.key = sysvKey(name);
    this.#pollInterval = p.pollInterval;
    const segName = `/mp.sysvq.${name}`;
    let shm: SharedMemory | undefined;
    if (p.creation !== 'open') {
      if (p.creation === 'purgeAndCreate') this.#purge(segName);
      try {
        shm = SharedMemory.create(segName, SEGMENT_SIZE, { mode: p.mode });
      } catch (err) {
        if (p.creation !== 'openOrCreate' || (err as { code?: string }).code !== 'EEXIST') throw err;
      }
    }
    if (shm === undefined) {
      // Held before the open: no sweep removes the queue under us.
      this.#hold = recordOpened('msg', name);
      try {
        shm = SharedMemory.open(segName);
      } catch (err) {
        releaseHold(this.#hold);
        throw err;
      }
      this.#shm = shm;
      this.#buffer = shm.buffer;
      this.#i32 = new Int32Array(this.#buffer);
      this.#owner = false;
      try {
        this.#attach(segName);
      } catch (err) {
        shm.close();
        releaseHold(this.#hold);
        throw err;
      }
      this.id = this.#i32[W_ID]!;
      this.maxMessageSize = this.#i32[W_MAX_MSG]!;
      return;
    }
    this.#shm = shm;
    this.#buffer = shm.buffer;
    this.#i32 = new Int32Array(this.#buffer);
    this.#owner = true;
    let id: number;
    try {
      id = native.msgGet(this.key, native.IPC_CREAT | native.IPC_EXCL | (p.mode & 0o777));
    } catch (err) {
      shm.close();
      throw sysvError(err, name, this.key);
    }
    if (p.capacityBytes > 0) {
      try {
        native.msgSetQbytes(id, p.capacityBytes);
      } catch (err) {
        native.msgRemove(id);
        shm.close();
        throw sysvError(err, name, this.key, p.capacityBytes);
      }
    }
    this.id = id;
    this.maxMessageSize = p.maxMessageSize;
    this.#hold = recordCreated('msg', name, { id, key: this.key, ...(p.capacityBytes > 0 ? { size: p.capacityBytes } : {}) });
    const i = this.#i32;
    i[W_ID] = id;
    i[W_KEY] = this.key;
    i[W_MAX_MSG] = p.maxMessageSize;
    i[W_CREATOR] = process.pid;
    i[WORDS_W] = 1; // priority 0: always probed
    i[SUMMARY_W] = 1;
    i[W_MAGIC] = MAGIC;
    i[W_VERSION] = VERSION;
    Atomics.store(i, W_READY, 1);
    native.futexWake(this.#buffer, W_READY * 4, -1);
  }

  #purge(segName: string): void {
    try {
      native.msgRemove(native.msgGet(this.key, 0));
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw sysvError(err, this.name, this.key);
    }
    try {
      native.shmUnlink(segName);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw systemError(err, 'shared memory', segName);
    }
  }

  #attach(segName: string): void {
    const i = this.#i32;
    if (Atomics.load(i, W_READY) === 0) {
      native.futexWait(this.#buffer, W_READY * 4, 0, 2000);
      if (Atomics.load(i, W_READY) === 0) throw new TimeoutError(`${this.label} was never initialized by its creator`, 2000);
    }
    if (i[W_MAGIC] !== MAGIC || i[W_VERSION] !== VERSION) {
      throw new IncompatibleError(`'${segName}' is not the control segment of a System V message queue of layout ${VERSION}`);
    }
    if (Atomics.load(i, W_REMOVED) !== 0) throw gone(`${this.label} was removed`);
    try {
      native.msgStat(i[W_ID]!, this.#statOut);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'EINVAL' || code === 'EIDRM') throw gone(`${this.label} no longer exists (its creator died without removing the name?)`);
      throw systemError(err, 'System V message queue', this.name);
    }
    if (this.#statOut[0] !== i[W_KEY]) throw gone(`${this.label}: queue id ${i[W_ID]} now belongs to another queue`);
  }

  get owner(): boolean {
    return this.#owner;
  }

  get closed(): boolean {
    return this.#closed;
  }

  disown(): void {
    if (this.#owner) recordDisowned(this.#hold);
    this.#owner = false;
    this.#shm.disown();
  }

  // --- messages -----------------------------------------------------------

  trySend(frame: Frame): boolean {
    this.#check();
    const p = frame.priority;
    if (p !== 0) {
      const w = p >> 5;
      const bit = 1 << (p & 31);
      // Recorded before msgsnd: a receiver that sees the message sees the bit.
      if ((Atomics.load(this.#i32, WORDS_W + w) & bit) === 0) {
        Atomics.or(this.#i32, WORDS_W + w, bit);
        Atomics.or(this.#i32, SUMMARY_W + (w >> 5), 1 << (w & 31));
      }
    }
    let ok: boolean;
    try {
      ok = native.msgSend(this.id, frame.type, p, frame.payload);
    } catch (err) {
      throw this.#error(err);
    }
    if (ok) ring(this.#i32, W_NOT_EMPTY);
    return ok;
  }

  async send(frame: Frame, wait: Wait): Promise<void> {
    for (;;) {
      const armed = arm(this.#i32, W_NOT_FULL);
      if (this.trySend(frame)) return;
      await sleep(this.#i32, W_NOT_FULL, armed, wait, this.#pollInterval);
    }
  }

  tryReceive(selector: number): Frame | undefined {
    this.#check();
    let payload: Buffer | null;
    try {
      payload = native.msgReceive(this.id, selector, this.maxMessageSize, this.#buffer, BITMAP, this.#out);
    } catch (err) {
      throw this.#error(err);
    }
    if (payload === null) return undefined;
    ring(this.#i32, W_NOT_FULL);
    const type = this.#out[0]!;
    if (type === 0) {
      throw new ProtocolError(
        `${this.label}: received a message of mtype ${this.#out[2]}, which does not encode a type and a priority ` +
          '(mtype = type * 32768 + 32767 - priority); it was dropped',
      );
    }
    if (payload.length > this.maxMessageSize) {
      throw new ProtocolError(`${this.label}: received a ${payload.length}-byte message; the queue's maxMessageSize is ${this.maxMessageSize}; it was dropped`);
    }
    return { payload, type, priority: this.#out[1]! };
  }

  async receive(selector: number, wait: Wait): Promise<Frame> {
    for (;;) {
      const armed = arm(this.#i32, W_NOT_EMPTY);
      const f = this.tryReceive(selector);
      if (f !== undefined) return f;
      await sleep(this.#i32, W_NOT_EMPTY, armed, wait, this.#pollInterval);
    }
  }

  #error(err: unknown): unknown {
    const code = (err as { code?: string }).code;
    if (code === 'EIDRM' || code === 'EINVAL' || Atomics.load(this.#i32, W_REMOVED) !== 0) {
      return new ClosedError(`${this.label} was removed`);
    }
    return systemError(err, 'System V message queue', this.name);
  }

  // --- state and lifetime -----------------------------------------------------

  stat(): MessageQueueStat {
    this.#check();
    try {
      native.msgStat(this.id, this.#statOut);
    } catch (err) {
      throw this.#error(err);
    }
    return sysvStat(this.#statOut, this.name, this.maxMessageSize, this.key, this.id);
  }

  #remove(): void {
    Atomics.store(this.#i32, W_REMOVED, 1);
    try {
      native.msgRemove(this.id);
    } finally {
      // Sleepers of other handles wake up and find the queue gone.
      ring(this.#i32, W_NOT_EMPTY);
      ring(this.#i32, W_NOT_FULL);
    }
  }

  unlink(): void {
    this.#owner = false;
    try {
      this.#remove();
    } catch (err) {
      throw sysvError(err, this.name, this.key);
    }
    if (this.#hold !== undefined) {
      recordRemoved(this.#hold);
      this.#hold = undefined;
    } else {
      recordUnlinked('msg', this.name);
    }
    this.#shm.unlink();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const hold = this.#hold;
    this.#hold = undefined;
    if (this.#owner) {
      try {
        this.#remove();
      } catch {
        // removed by someone else already: the goal is reached
      }
      recordRemoved(hold);
    } else {
      releaseHold(hold);
    }
    this.#shm.close();
  }

  #check(): void {
    if (this.#closed) throw new ClosedError(`${this.label} is closed`);
    if (Atomics.load(this.#i32, W_REMOVED) !== 0) throw new ClosedError(`${this.label} was removed`);
  }
}

/**
 * A queue's `stat()` from what `native.msgStat` wrote to `s` (key, mode,
 * uid, messages, bytes, byte capacity, last sender and receiver, their times
 * and the change time, in seconds). For the queue handle, and for `multiproc resources`.
 * @internal
 */
export function sysvStat(s: Float64Array, name: string, maxMessageSize: number, key: number, id: number): MessageQueueStat {
  const date = (sec: number): Date | null => (sec > 0 ? new Date(sec * 1000) : null);
  return {
    backend: 'sysv',
    name,
    messages: s[3]!,
    bytes: s[4]!,
    capacityMessages: null,
    capacityBytes: s[5]!,
    maxMessageSize,
    lastSendPid: s[6]! || null,
    lastReceivePid: s[7]! || null,
    lastSendTime: date(s[8]!),
    lastReceiveTime: date(s[9]!),
    changeTime: date(s[10]!),
    mode: s[1]!,
    key,
    id,
  };
}
