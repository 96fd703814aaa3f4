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
const SEQ = 0; // futex word: bumped by every notify
const STATE = 2; // 64-bit, byte 8: waiters in the low half, undelivered wake-ups ("tokens") in the high half

const LOW = 0xffffffffn;
const ONE_TOKEN = 1n << 32n;

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
 * `notify(n)` lets at most `n` of the threads waiting at that moment return.
 * As with every condition variable, check your predicate in a loop around
 * `wait`: another thread may have changed the state before the woken one
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

  /** How many threads are waiting (and not yet notified) right now, in every process. */
  get waiting(): number {
    this.checkOpen();
    const s = Atomics.load(this.#state, 0);
    return Number(s & LOW) - Number(s >> 32n);
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
   * Lets up to `n` (default 1) of the threads waiting right now return, in
   * any process. Does nothing when nobody waits. Holding the mutex while
   * calling it is usual but not required.
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE` (n not an integer >= 0), `ERR_MULTIPROC_CLOSED`.
   */
  notify(n = 1): void {
    this.checkOpen();
    this.#notify(validateInteger(n, 'n', 0));
  }

  /** Lets every thread waiting right now return. Errors: `ERR_MULTIPROC_CLOSED`. */
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

  #notify(n: number): void {
    let s = Atomics.load(this.#state, 0);
    for (;;) {
      const waiters = Number(s & LOW);
      const tokens = Number(s >> 32n);
      const k = Math.min(n, waiters - tokens);
      if (k <= 0) return;
      const seen = Atomics.compareExchange(this.#state, 0, s, s + BigInt(k) * ONE_TOKEN);
      if (seen === s) break;
      s = seen;
    }
    Atomics.add(this.i32, this.index + SEQ, 1);
    // Wake all: tokens, not wakes, decide who returns, and a wake of one can
    // be lost on an async waiter that is just giving up.
    wake(this.buffer, this.offset + SEQ * 4);
  }

  /** Takes a token and leaves the waiters in one step. */
  #consume(): boolean {
    let s = Atomics.load(this.#state, 0);
    while (s >> 32n !== 0n) {
      const seen = Atomics.compareExchange(this.#state, 0, s, s - ONE_TOKEN - 1n);
      if (seen === s) return true;
      s = seen;
    }
    return false;
  }

  /** Leaves the waiters without a token; a token left for nobody is dropped. */
  #depart(): void {
    let s = Atomics.load(this.#state, 0);
    for (;;) {
      const waiters = (s & LOW) - 1n;
      const tokens = s >> 32n < waiters ? s >> 32n : waiters;
      const seen = Atomics.compareExchange(this.#state, 0, s, (tokens << 32n) | waiters);
      if (seen === s) return;
      s = seen;
    }
  }

  *#loop(mutex: Mutex, state: { released: boolean }): WaitLoop<void> {
    // Count ourselves before releasing the mutex, so a notify made under the
    // mutex after our release includes us.
    Atomics.add(this.#state, 0, 1n);
    let consumed = false;
    try {
      mutex.release();
      state.released = true;
      for (;;) {
        // Read SEQ before looking for a token: a notify that adds a token
        // after our look also bumps SEQ, so our sleep on the old value ends.
        const seq = Atomics.load(this.i32, this.index + SEQ);
        if (this.#consume()) {
          consumed = true;
          return;
        }
        yield { offset: this.offset + SEQ * 4, expected: seq };
      }
    } finally {
      if (!consumed) this.#depart();
    }
  }
}

function checkMutex(mutex: unknown): void {
  if (!(mutex instanceof Mutex)) {
    throw typeError('ERR_INVALID_ARG_TYPE', 'The "mutex" argument must be an instance of Mutex');
  }
}
