/**
 * A condition variable shared by processes and threads.
 */
import { typeError, validateInteger } from '../errors.js';
import type { SharedMemory } from '../shm/shared-memory.js';
import { Mutex } from './mutex.js';
import { PendingWaits } from './pending-waits.js';
import { createNamed, Kind, openNamed, Placed, placeIn, type NamedCreateOptions, type Placement, type WaitOptions, type WaitSyncOptions } from './placement.js';
import { Primitive } from './primitive.js';
import { driveSync, wake, type WaitLoop } from './wait.js';

// Word indexes inside the condition.
const SEQ = 0; // futex word: bumped whenever a waiter's ticket may have been passed
const STATE = 2; // 64-bit at byte 8, see below

// The state word hands out tickets. Bits 0-31: the next ticket to wake (W,
// wrapping); bits 32-51: tickets handed out and not yet woken (P), so the
// next ticket is W + P; bits 52-63: an upper bound on how many of those P
// belong to waiters that left (timeout, abort, close) (D). A waiter returns
// once its ticket is passed. notify(n) passes the n oldest tickets, plus D so
// that a ticket left behind cannot swallow the wake of a waiting thread.
// Tickets are taken under the mutex, so a notify passes only tickets of
// threads already waiting: a later waiter cannot take a notify meant for them.
const P_MAX = 0xfffff;
const D_MAX = 0xfff;

interface State {
  w: number;
  p: number;
  d: number;
}

function unpack(s: bigint): State {
  const hi = Number(s >> 32n);
  return { w: Number(s & 0xffffffffn), p: hi & P_MAX, d: hi >>> 20 };
}

/** Packs a state; when every unwoken ticket may be a departed one, passes them all. */
function pack(w: number, p: number, d: number): { s: bigint; passedAll: boolean } {
  if (d > p) d = p;
  let passedAll = false;
  if (p > 0 && d === p) {
    w += p;
    p = 0;
    d = 0;
    passedAll = true;
  }
  return { s: BigInt(w >>> 0) | (BigInt(p) << 32n) | (BigInt(d) << 52n), passedAll };
}

/** Whether `ticket` has been passed (its waiter may return). */
function passed(ticket: number, st: State): boolean {
  return ((ticket - st.w) >>> 0) >= st.p;
}

/**
 * A condition variable between processes and threads, used with a
 * {@link Mutex}: `wait(mutex)` releases the mutex, sleeps until
 * `notify()`/`notifyAll()`, and takes the mutex back before it returns or
 * throws.
 *
 * Lives in shared memory: by name (`Condition.create` / `Condition.open`) or
 * inside a {@link SharedMemory} or SharedArrayBuffer at an offset
 * (`new Condition(memory, offset)`, {@link Condition.byteLength} bytes,
 * 8-byte aligned; zeroed memory is a condition nobody waits on).
 *
 * `notify(n)` wakes at most `n` of the threads waiting at that moment (the
 * longest-waiting ones), `notifyAll()` all of them; a thread that starts
 * waiting after a notify, the notifier included, is not woken by it, and a
 * notify when nobody waits is lost. No wake-up is lost: a wait that gives up
 * just as a notify reached it passes the notify on. Spurious wake-ups are
 * possible (rarely), so check your predicate in a loop around `wait`, which
 * is needed anyway: another thread may change the state before the woken one
 * takes the mutex back.
 *
 * Several async tasks of one thread may wait at once: the mutex belongs to
 * the thread, and its async acquirers queue behind each other.
 *
 * @example
 * ```ts
 * using guard = await mutex.acquire();
 * while (queue.length === 0) await notEmpty.wait(mutex, { timeout: 5000 });
 * const item = queue.shift();
 * ```
 */
export class Condition extends Primitive {
  /** Bytes a condition occupies when placed in caller memory. */
  static readonly byteLength = 32;
  /** Required alignment of its offset. */
  static readonly alignment = 8;

  readonly #waits = new PendingWaits();
  readonly #state: BigUint64Array;

  /**
   * Uses the condition at `offset` in `memory`. Zeroed memory is a condition
   * nobody waits on. Errors: `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE`.
   */
  constructor(memory: SharedMemory | SharedArrayBuffer, offset = 0) {
    super(memory instanceof Placed ? memory.placement : placeIn(Kind.Condition, memory, offset, Condition.byteLength, Condition.alignment, []));
    this.#state = new BigUint64Array(this.buffer, this.offset + STATE * 4, 1);
  }

  /** Creates a named condition (segment `/mp.condition.<name>`). Errors: as {@link SharedMemory.create}. */
  static create(name: string, options?: NamedCreateOptions): Condition {
    return Condition.#from(createNamed(Kind.Condition, name, Condition.byteLength, [], options));
  }

  /** Opens a named condition. Errors: `ENOENT`, `EACCES`, `ERR_MULTIPROC_INCOMPATIBLE`. */
  static open(name: string): Condition {
    return Condition.#from(openNamed(Kind.Condition, name));
  }

  static #from(placement: Placement): Condition {
    return new Condition(new Placed(placement) as unknown as SharedArrayBuffer);
  }

  /** How many threads are waiting (and not yet notified) right now, in every process; just after a wait gave up while others waited, it may read low. */
  get waiting(): number {
    this.checkOpen();
    const st = unpack(Atomics.load(this.#state, 0));
    return st.p - st.d;
  }

  /**
   * Releases `mutex` (held by this thread), waits for a notify without
   * blocking the event loop, then takes `mutex` back. The mutex is held again
   * when the promise settles, whether it resolves or rejects (except when
   * `mutex` was not held in the first place).
   *
   * Errors: `ERR_MULTIPROC_TIMEOUT`, `ABORT_ERR`, `ERR_MULTIPROC_CLOSED`
   * (also when closed while waiting), `ERR_MULTIPROC_NOT_OWNER` (this thread
   * does not hold `mutex`), `ERR_INVALID_ARG_TYPE` (not a Mutex), argument errors.
   */
  async wait(mutex: Mutex, options?: WaitOptions): Promise<void> {
    const opts = this.waitOptions(options, true);
    checkMutex(mutex);
    const state = { released: false };
    try {
      await this.#waits.drive(this.buffer, this.#loop(mutex, state), opts);
    } finally {
      if (state.released) await mutex.acquire();
    }
  }

  /**
   * Like {@link Condition.wait}, blocking this thread. Meant for worker
   * threads; on the main thread it stalls the event loop.
   * Errors: as {@link Condition.wait}, without `ABORT_ERR`.
   */
  waitSync(mutex: Mutex, options?: WaitSyncOptions): void {
    const opts = this.waitOptions(options, false);
    checkMutex(mutex);
    const state = { released: false };
    try {
      driveSync(this.buffer, this.#loop(mutex, state), opts);
    } finally {
      if (state.released) mutex.acquireSync();
    }
  }

  /**
   * Wakes up to `n` (default 1) of the threads waiting right now, the
   * longest-waiting first, in any process. Does nothing when nobody waits;
   * threads that start waiting later are not woken by it. Holding the mutex
   * while calling it is usual but not required.
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE` (n not an integer >= 0), `ERR_MULTIPROC_CLOSED`.
   */
  notify(n = 1): void {
    this.checkOpen();
    this.#notify(validateInteger(n, 'n', 0));
  }

  /** Wakes every thread waiting right now (not later ones). Errors: `ERR_MULTIPROC_CLOSED`. */
  notifyAll(): void {
    this.checkOpen();
    this.#notify(Number.MAX_SAFE_INTEGER);
  }

  /**
   * Closes this handle: unmaps a named condition's segment (removing the name
   * if this handle created it). Pending `wait` calls of this handle reject
   * with `ERR_MULTIPROC_CLOSED` once they hold their mutex again. Idempotent.
   */
  override close(): void {
    this.#waits.closeAll();
    super.close();
  }

  /** Passes up to `n` of the oldest unwoken tickets (plus the ones that may have left). */
  #notify(n: number): void {
    if (n === 0) return;
    let s = Atomics.load(this.#state, 0);
    for (;;) {
      const { w, p, d } = unpack(s);
      if (p === 0) return;
      const k = Math.min(p, n + d);
      const next = pack(w + k, p - k, d).s;
      const seen = Atomics.compareExchange(this.#state, 0, s, next);
      if (seen === s) break;
      s = seen;
    }
    this.#signal();
  }

  /**
   * Tells every waiter to look at its ticket again. All are woken: tickets,
   * not futex wakes, decide who returns, and a wake of one could land on a
   * thread whose ticket was not passed.
   */
  #signal(): void {
    Atomics.add(this.i32, this.index + SEQ, 1);
    wake(this.buffer, this.offset + SEQ * 4);
  }

  /** Takes the next ticket. */
  #arrive(): number {
    let s = Atomics.load(this.#state, 0);
    for (;;) {
      let { w, p, d } = unpack(s);
      // Out of room for tickets: pass every one (spurious wake-ups are allowed).
      const full = p === P_MAX;
      if (full) {
        w += p;
        p = 0;
        d = 0;
      }
      const ticket = (w + p) >>> 0;
      const seen = Atomics.compareExchange(this.#state, 0, s, pack(w, p + 1, d).s);
      if (seen === s) {
        if (full) this.#signal();
        return ticket;
      }
      s = seen;
    }
  }

  /**
   * Gives up a ticket (timeout, abort, close). A ticket that was passed in
   * the meantime carries a notify this thread will not act on: it goes to the
   * next waiter, so no wake-up is lost.
   */
  #depart(ticket: number): void {
    let s = Atomics.load(this.#state, 0);
    for (;;) {
      const st = unpack(s);
      if (passed(ticket, st)) {
        this.#notify(1);
        return;
      }
      let { w, p, d } = st;
      let passedAll = false;
      if (((ticket - w) >>> 0) === p - 1) {
        p--; // the newest ticket: taken back exactly
      } else if (d < D_MAX) {
        d++;
      } else {
        // Too many holes to count: pass every ticket (spurious wake-ups are allowed).
        w += p;
        p = 0;
        d = 0;
        passedAll = true;
      }
      const next = pack(w, p, d);
      const seen = Atomics.compareExchange(this.#state, 0, s, next.s);
      if (seen === s) {
        if (passedAll || next.passedAll) this.#signal();
        return;
      }
      s = seen;
    }
  }

  *#loop(mutex: Mutex, state: { released: boolean }): WaitLoop<void> {
    // Take a ticket before releasing the mutex, so a notify made under the
    // mutex after our release includes us, and none made before does.
    const ticket = this.#arrive();
    let woken = false;
    try {
      mutex.release();
      state.released = true;
      for (;;) {
        // Read SEQ before the state: a notify that passes our ticket after
        // our look also bumps SEQ, so our sleep on the old value ends.
        const seq = Atomics.load(this.i32, this.index + SEQ);
        if (passed(ticket, unpack(Atomics.load(this.#state, 0)))) {
          woken = true;
          return;
        }
        yield { offset: this.offset + SEQ * 4, expected: seq };
      }
    } finally {
      if (!woken) this.#depart(ticket);
    }
  }
}

function checkMutex(mutex: unknown): void {
  if (!(mutex instanceof Mutex)) {
    throw typeError('ERR_INVALID_ARG_TYPE', 'The "mutex" argument must be an instance of Mutex');
  }
}
