/**
 * What both ring engines share: the segment's words, the sender and receiver
 * tables (who is attached, and whether they are still alive), the wake-ups,
 * and the "every sender closed" state.
 *
 * Parties. Each handle that sends (or receives) takes an entry in the sender
 * (receiver) table: a token, its pid and thread id. The token changes with
 * every registration, so a compare-and-swap on it cannot confuse a dead
 * party with a newer one in the same entry. A party that finds an entry
 * whose thread is gone (/proc/<pid>/task/<tid>) takes the entry over (a
 * negative token naming the claiming thread, so that a claimer that dies
 * there leaves an entry others can take back too) and cleans up after it: an MPMC claim it left behind becomes an
 * ABANDONED record, so readers report one lost message instead of waiting
 * forever; an SPSC sender that died while writing is reported the same way.
 * Liveness is checked only on slow paths (a wait that ran a slice, a
 * registration), never per message. The check assumes one pid namespace.
 *
 * Sleeping. A waiting receiver raises a bit of R_WAITING, looks at the ring
 * once more and sleeps: a blocking receiver on the R_EPOCH word (futex,
 * WAIT_FUTEX), an async one on its event loop's doorbell (WAIT_BELL), whose
 * id and token it armed in its entry. A sender that published a record looks
 * at R_WAITING (one load) and only when it is raised clears it, bumps
 * R_EPOCH, calls futex wake and/or rings each armed doorbell once: the fast
 * path makes no system call, and a burst of messages costs at most one wake
 * per time a receiver went to sleep. A doorbell wakes the event loop
 * directly (one wake-up), where a futex needs a thread and then the loop.
 * "Not full" works with W_WAITING/W_EPOCH and futexes only.
 * Both sides use sequentially consistent Atomics, so either the sender sees
 * the flag or the receiver sees the record (Dekker).
 *
 * @internal
 */
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { native } from '../binding/native.js';
import { BusyError } from '../errors.js';
import {
  C_LAST_PID,
  BELL_UNREACHABLE,
  E_ARMED,
  E_BELL,
  E_BELL_TOKEN,
  E_PID,
  E_TID,
  E_TOKEN,
  entryIndex,
  H_STATE,
  H_TOKENS,
  P_LAST_PID,
  R_EPOCH,
  R_WAITING,
  STATE_CLOSED,
  W_EPOCH,
  W_WAITING,
  WAIT_BELL,
  WAIT_FUTEX,
  Mode,
  type Geometry,
} from './layout.js';
import { bellId, ringBell } from '../sync/bell.js';

const { futexWake } = native;
const { ECONNREFUSED } = constants.errno;
const { tid: ownTid } = native.threadInfo();
/**
 * The token of an entry this thread is claiming (registering, or cleaning up
 * after a dead party): negative, so no live party has it, and naming the
 * claimer, so that a claim whose thread died can be taken back.
 */
const CLAIM = -ownTid;

/** True while the thread that put claim `tok` (< 0) in an entry lives. */
function claimerAlive(tok: number): boolean {
  // A thread's id is also a directory of /proc: its process is not needed.
  return threadAlive(-tok, -tok);
}

/**
 * True unless thread `tid` of process `pid` is certainly gone (or a zombie).
 * @internal
 */
export function threadAlive(pid: number, tid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
  } catch (err) {
    const code = (err as { code?: string }).code;
    return !(code === 'ENOENT' || code === 'ESRCH');
  }
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state !== 'Z' && state !== 'X' && state !== 'x';
}

/** A sender found dead: its pid, and whether it died in the middle of a message. @internal */
export interface DeadSender {
  pid: number;
  lost: boolean;
}

/** @internal */
export abstract class RingEngine {
  readonly buffer: SharedArrayBuffer;
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  readonly geometry: Geometry;
  readonly label: string;
  /** Int32 index of this handle's sender / receiver entry, or -1. */
  sender = -1;
  receiver = -1;
  senderSlot = -1;
  receiverSlot = -1;

  constructor(buffer: SharedArrayBuffer, geometry: Geometry, label: string) {
    this.buffer = buffer;
    this.i32 = new Int32Array(buffer);
    this.u8 = new Uint8Array(buffer);
    this.geometry = geometry;
    this.label = label;
  }

  // --- per-mode operations ----------------------------------------------

  /** Reserves room for a `length`-byte payload; its byte offset, or -1 when full. */
  abstract reserve(length: number): number;
  /** Publishes the reservation with its final length (at most the reserved one). */
  abstract commit(length: number, type: number, priority: number): void;
  /** Gives the reservation up. */
  abstract discard(): void;
  /** True when a reservation of `length` bytes would succeed now (a hint under contention). */
  abstract hasRoom(length: number): boolean;
  /** Takes the next record; its header's byte offset, or -1 when none is ready. */
  abstract claim(): number;
  /** Frees the record taken by `claim`. */
  abstract release(): void;
  /** True when a record is ready at the head. */
  abstract ready(): boolean;
  /** True when nothing is reserved or queued. */
  abstract empty(): boolean;
  /** The sender entry (0-based) whose unfinished claim holds up the head, or -1. */
  abstract blockedBy(): number;
  /** Called after this handle registered as sender / receiver. */
  abstract attachSender(): void;
  abstract attachReceiver(): void;
  /** Cleans up after dead sender `j` (entry held by this thread's claim). */
  protected abstract cleanupSender(j: number, e: number): DeadSender;
  /** Cleans up after dead receiver `j` (entry held by this thread's claim). */
  protected abstract cleanupReceiver(j: number, e: number): void;
  /** What a new sender does about a predecessor that died mid-message (SPSC: report it in the ring). */
  protected abstract afterTakeover(dead: DeadSender): void;
  /** Publishes what this receiver consumed, if it batches that (SPSC). */
  flush(): void {}
  /** Queued messages and payload bytes, for stats. */
  abstract queued(): { messages: number; bytes: number };

  // --- parties ----------------------------------------------------------

  /** Registers this handle as a sender (or receiver). Errors: ERR_MULTIPROC_BUSY when the table is full of live parties. */
  register(receiver: boolean): void {
    const g = this.geometry;
    const count = receiver ? g.receivers : g.senders;
    const i32 = this.i32;
    let dead: DeadSender | undefined;
    let slot = -1;
    for (let pass = 0; pass < 2 && slot < 0; pass++) {
      for (let j = 0; j < count; j++) {
        const e = entryIndex(g, receiver, j);
        const tok = Atomics.load(i32, e + E_TOKEN);
        if (tok === 0) {
          if (Atomics.compareExchange(i32, e + E_TOKEN, 0, CLAIM) === 0) {
            slot = j;
            break;
          }
          continue;
        }
        // Second pass: take over an entry whose thread is gone (also one a
        // thread died claiming: its cleanup may not have run).
        if (pass === 1 && (tok > 0 ? !this.#alive(e, tok) : !claimerAlive(tok))) {
          if (Atomics.compareExchange(i32, e + E_TOKEN, tok, CLAIM) === tok) {
            if (receiver) this.cleanupReceiver(j, e);
            else dead = this.cleanupSender(j, e);
            slot = j;
            break;
          }
        }
      }
    }
    if (slot < 0) {
      const who = receiver ? 'receiver' : 'sender';
      throw new BusyError(
        g.mode === Mode.Spsc
          ? `${this.label} is single-${receiver ? 'consumer' : 'producer'} and already has a live ${who} (pid ${this.#pidOf(receiver, 0)}); use mode 'mpmc' for several`
          : `${this.label} already has ${count} live ${who}${count === 1 ? '' : 's'}, its maximum (max${receiver ? 'Receivers' : 'Senders'})`,
      );
    }
    const e = entryIndex(g, receiver, slot);
    for (let k = 1; k < 16; k++) Atomics.store(i32, e + k, 0);
    Atomics.store(i32, e + E_PID, process.pid);
    Atomics.store(i32, e + E_TID, ownTid);
    Atomics.store(i32, e + E_TOKEN, ((Atomics.add(i32, H_TOKENS, 1) & 0x3fffffff) + 1) | 0);
    if (receiver) {
      this.receiver = e;
      this.receiverSlot = slot;
      this.attachReceiver();
    } else {
      this.sender = e;
      this.senderSlot = slot;
      // A new sender reopens a ring whose senders had all closed.
      for (;;) {
        const s = Atomics.load(i32, H_STATE);
        if (Atomics.compareExchange(i32, H_STATE, s, ((s + 2) & ~STATE_CLOSED) | 0) === s) break;
      }
      this.attachSender();
      if (dead?.lost) this.afterTakeover(dead);
    }
  }

  /** Leaves the table. A sender that was the last one marks the ring closed and wakes receivers. */
  unregister(receiver: boolean): void {
    const e = receiver ? this.receiver : this.sender;
    if (e < 0) return;
    const i32 = this.i32;
    if (receiver) {
      this.flush();
      this.receiver = -1;
      Atomics.store(i32, e + E_TOKEN, 0);
      return;
    }
    this.sender = -1;
    const s = Atomics.load(i32, H_STATE);
    Atomics.store(i32, e + E_TOKEN, 0);
    this.#closeIfNoSenders(s);
  }

  /**
   * Looks for dead senders and cleans up after them. Returns those found;
   * when the last sender turns out dead, the ring is marked closed.
   */
  sweepSenders(): DeadSender[] {
    const s = Atomics.load(this.i32, H_STATE);
    const found = this.#sweep(false);
    if (found.length > 0) this.#closeIfNoSenders(s);
    return found;
  }

  /** Looks for dead receivers (MPMC: frees what they held). */
  sweepReceivers(): void {
    this.#sweep(true);
  }

  /** True when some sender entry is taken. */
  hasSenders(): boolean {
    const g = this.geometry;
    for (let j = 0; j < g.senders; j++) {
      const tok = Atomics.load(this.i32, entryIndex(g, false, j) + E_TOKEN);
      if (tok > 0 || (tok < 0 && claimerAlive(tok))) return true;
    }
    return false;
  }

  /** True when the live sender in entry `j` is still alive (or the entry moved on). */
  senderAlive(j: number): boolean {
    const e = entryIndex(this.geometry, false, j);
    const tok = Atomics.load(this.i32, e + E_TOKEN);
    return tok < 0 ? claimerAlive(tok) : tok > 0 && this.#alive(e, tok);
  }

  #sweep(receiver: boolean): DeadSender[] {
    const g = this.geometry;
    const count = receiver ? g.receivers : g.senders;
    const i32 = this.i32;
    const found: DeadSender[] = [];
    for (let j = 0; j < count; j++) {
      const e = entryIndex(g, receiver, j);
      const tok = Atomics.load(i32, e + E_TOKEN);
      if (tok === 0 || (tok > 0 ? this.#alive(e, tok) : claimerAlive(tok))) continue;
      if (Atomics.compareExchange(i32, e + E_TOKEN, tok, CLAIM) !== tok) continue;
      if (receiver) this.cleanupReceiver(j, e);
      else found.push(this.cleanupSender(j, e));
      Atomics.store(i32, e + E_TOKEN, 0);
    }
    return found;
  }

  #alive(e: number, tok: number): boolean {
    const pid = Atomics.load(this.i32, e + E_PID);
    const tid = Atomics.load(this.i32, e + E_TID);
    // The entry changed while we read it: someone else's business now.
    if (Atomics.load(this.i32, e + E_TOKEN) !== tok) return true;
    if (pid <= 0 || tid <= 0) return false;
    return threadAlive(pid, tid);
  }

  #pidOf(receiver: boolean, j: number): number {
    return Atomics.load(this.i32, entryIndex(this.geometry, receiver, j) + E_PID);
  }

  /** Marks the ring closed if no sender entry is taken and no sender registered since `s` was read. */
  #closeIfNoSenders(s: number): void {
    if (this.hasSenders()) return;
    if (Atomics.compareExchange(this.i32, H_STATE, s, s | STATE_CLOSED) === s) this.wakeReceivers(true);
  }

  /** True when every sender has closed (the state may change as soon as a new sender registers). */
  sendersClosed(): boolean {
    return (Atomics.load(this.i32, H_STATE) & STATE_CLOSED) !== 0;
  }

  // --- waking -----------------------------------------------------------

  /** Wakes sleeping receivers if any announced themselves (or always, with `force`). */
  wakeReceivers(force = false): void {
    const i32 = this.i32;
    const waiting = Atomics.exchange(i32, R_WAITING, 0);
    if (waiting === 0 && !force) return;
    Atomics.add(i32, R_EPOCH, 1);
    if ((waiting & WAIT_FUTEX) !== 0 || force) futexWake(this.buffer, R_EPOCH * 4, -1);
    if ((waiting & WAIT_BELL) !== 0 || force) this.#ringBells();
  }

  /** Rings the doorbell of every receiver that armed one (each arming is rung once). */
  #ringBells(): void {
    const g = this.geometry;
    const i32 = this.i32;
    for (let j = 0; j < g.receivers; j++) {
      const e = entryIndex(g, true, j);
      if (Atomics.load(i32, e + E_ARMED) === 0 || Atomics.exchange(i32, e + E_ARMED, 0) === 0) continue;
      const bell = Atomics.load(i32, e + E_BELL) - 1;
      // Refused: no such doorbell seen from here (the receiver is in another
      // network namespace, or gone). It then waits on the futex from its next
      // wait on (this one ends at its liveness slice).
      if (bell >= 0 && ringBell(bell, Atomics.load(i32, e + E_BELL_TOKEN)) === ECONNREFUSED) Atomics.store(i32, e + E_BELL, BELL_UNREACHABLE);
    }
  }

  /**
   * Arms this receiver's doorbell for one wait: the next sender to publish
   * rings it. False when doorbells are unavailable (wait on the futex then).
   * Check the ring again after arming, and {@link RingEngine.disarm} after
   * the wait.
   */
  arm(token: number): boolean {
    const e = this.receiver;
    const bell = bellId();
    const i32 = this.i32;
    if (e < 0 || bell < 0 || Atomics.load(i32, e + E_BELL) === BELL_UNREACHABLE) return false;
    Atomics.store(i32, e + E_BELL, bell + 1);
    Atomics.store(i32, e + E_BELL_TOKEN, token);
    Atomics.store(i32, e + E_ARMED, 1);
    Atomics.or(i32, R_WAITING, WAIT_BELL);
    return true;
  }

  /** Withdraws an armed doorbell (a sender may have taken it already: its datagram is then ignored). */
  disarm(): void {
    const e = this.receiver;
    if (e >= 0) Atomics.store(this.i32, e + E_ARMED, 0);
  }

  /** Wakes senders waiting for room, if any announced themselves. */
  wakeSenders(): void {
    const i32 = this.i32;
    if (Atomics.exchange(i32, W_WAITING, 0) !== 0) {
      Atomics.add(i32, W_EPOCH, 1);
      futexWake(this.buffer, W_EPOCH * 4, -1);
    }
  }

  /** Pid of the last sender / receiver seen by the ring, or null. */
  lastPids(): { send: number | null; receive: number | null } {
    const s = Atomics.load(this.i32, P_LAST_PID);
    const r = Atomics.load(this.i32, C_LAST_PID);
    return { send: s > 0 ? s : null, receive: r > 0 ? r : null };
  }
}
