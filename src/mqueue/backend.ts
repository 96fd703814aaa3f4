/**
 * What the three message-queue backends share: the interface MessageQueue
 * drives, queue names, and the doorbells that let the System V and
 * shared-memory backends wait without a descriptor to poll.
 *
 * @internal
 */
import { native } from '../binding/native.js';
import { typeError, validateString } from '../errors.js';
import type { Wait } from '../channel/base-channel.js';
import type { Frame } from '../channel/framing.js';
import { driveAsync, type WaitLoop, type WaitRequest } from '../sync/wait.js';

/** Which kernel object (or our own shared-memory structure) holds the messages. */
export type MessageQueueBackend = 'posix' | 'sysv' | 'shm';

/**
 * The queue's state in the spirit of System V `msqid_ds`. Fields a backend
 * cannot know are `null`.
 */
export interface MessageQueueStat {
  backend: MessageQueueBackend;
  /** The queue's name (without a leading '/'). */
  name: string;
  /** Messages in the queue (msg_qnum / mq_curmsgs). POSIX: plus those this handle set aside for type selection. */
  messages: number;
  /** Payload bytes in the queue (msg_cbytes), or null when the kernel does not say. */
  bytes: number | null;
  /** Capacity in messages (mq_maxmsg), or null (System V bounds bytes only). */
  capacityMessages: number | null;
  /** Capacity in bytes (msg_qbytes), or null. */
  capacityBytes: number | null;
  /** Largest payload one message may carry. */
  maxMessageSize: number;
  /** Pid of the last sender (msg_lspid), or null. */
  lastSendPid: number | null;
  /** Pid of the last receiver (msg_lrpid), or null. */
  lastReceivePid: number | null;
  /** msg_stime, or null. */
  lastSendTime: Date | null;
  /** msg_rtime, or null. */
  lastReceiveTime: Date | null;
  /** msg_ctime: creation (or last change of its settings), or null. */
  changeTime: Date | null;
  /** Permission bits, or null. */
  mode: number | null;
  /** System V only: the IPC key and the queue id (as `ipcs -q` shows them). */
  key?: number;
  id?: number;
  /** Shared memory only: recoveries after a process died holding the queue's lock, and messages lost in them. */
  repairs?: number;
  lost?: number;
}

/** What MessageQueue asks of a backend. @internal */
export interface Backend {
  readonly kind: MessageQueueBackend;
  readonly name: string;
  readonly label: string;
  /** Largest payload. */
  readonly maxMessageSize: number;
  readonly minPriority: number;
  readonly maxPriority: number;
  readonly owner: boolean;
  readonly closed: boolean;
  disown(): void;
  /** Sends if there is room right now. */
  trySend(frame: Frame): boolean;
  /** Sends, waiting for room; `wait.signal` (which close also fires) aborts. */
  send(frame: Frame, wait: Wait): Promise<void>;
  /** Takes a message if one matches right now. */
  tryReceive(selector: number): Frame | undefined;
  /** Takes a message, waiting for one that matches. */
  receive(selector: number, wait: Wait): Promise<Frame>;
  stat(): MessageQueueStat;
  /** Removes the name (and, System V, the queue). */
  unlink(): void;
  /** Releases this handle; an owner removes the queue. `graceful`: may still send (POSIX returns set-aside messages). */
  close(graceful: boolean): void;
}

const NAME_RE = /^[A-Za-z0-9_.-]{1,200}$/;

/** 'jobs' and '/jobs' name the same queue; returns 'jobs'. @internal */
export function normalizeQueueName(name: unknown): string {
  validateString(name, 'name');
  const n = (name as string).startsWith('/') ? (name as string).slice(1) : (name as string);
  if (!NAME_RE.test(n) || n === '.' || n === '..') {
    throw typeError(
      'ERR_INVALID_ARG_VALUE',
      `The argument 'name' is not a valid message-queue name: '${name as string}'. Use 1 to 200 characters of A-Z, a-z, 0-9, '_', '.', '-' (one leading '/' is allowed)`,
    );
  }
  return n;
}

// --- doorbells ------------------------------------------------------------
//
// A doorbell is an event count in one 32-bit word of shared memory: it goes
// up by 2 at every ring, and bit 0 says "someone may be asleep on it". A
// waiter arms the bell (sets bit 0) and remembers the value BEFORE it
// re-checks the queue; if the check fails it sleeps until the word differs
// from that value. A ringer changes the queue, then adds 2, and only when
// bit 0 was set clears it and wakes every sleeper. No wake is lost: either
// the ring came before the waiter's re-check (which then sees the change) or
// the word differs from the remembered value (the futex wait returns at once,
// or the ringer saw bit 0 and wakes it). A waiter that dies leaves bit 0 set,
// which costs one needless wake at the next ring and then clears itself.

/** Rings the bell at `index` of `i32`. @internal */
export function ring(i32: Int32Array, index: number): void {
  const old = Atomics.add(i32, index, 2);
  if ((old & 1) !== 0) {
    Atomics.and(i32, index, ~1);
    native.futexWake(i32.buffer as SharedArrayBuffer, i32.byteOffset + index * 4, -1);
  }
}

/** Arms the bell; returns the value to sleep on. @internal */
export function arm(i32: Int32Array, index: number): number {
  for (;;) {
    const v = Atomics.load(i32, index);
    if ((v & 1) !== 0) return v;
    if (Atomics.compareExchange(i32, index, v, v | 1) === v) return v | 1;
  }
}

function* once(req: WaitRequest): WaitLoop<void> {
  yield req;
}

/**
 * Sleeps until the bell word differs from `armed`, at most `slice` ms (then
 * resolves anyway), bounded by `wait`'s deadline and signal. Takes no thread:
 * the addon's futex service watches the word.
 * @internal
 */
export function sleep(i32: Int32Array, index: number, armed: number, wait: Wait, slice?: number): Promise<void> {
  const req: WaitRequest = { offset: i32.byteOffset + index * 4, expected: armed };
  if (slice !== undefined && slice !== Infinity) req.slice = slice;
  return driveAsync(i32.buffer as SharedArrayBuffer, once(req), {
    timeout: wait.timeout,
    signal: wait.signal,
    what: wait.what,
    deadline: wait.deadline,
  });
}
