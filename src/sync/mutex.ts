/**
 * A robust mutex shared by processes and threads.
 */
import { LockFlags, LockResult, native } from '../binding/native.js';
import { DeadlockError, NotOwnerError } from '../errors.js';
import type { SharedMemory } from '../shm/shared-memory.js';
import { createNamed, Kind, openNamed, Placed, placeIn, type NamedCreateOptions, type Placement, type WaitOptions, type WaitSyncOptions } from './placement.js';
import { Primitive } from './primitive.js';
import { driveAsync, timeoutError, type WaitLoop } from './wait.js';

const TID_MASK = 0x3fffffff;
const WAITERS = 0x80000000 | 0;
/** Spins of the blocking path before it sleeps (see mutex.cc). */
const SYNC_SPINS = 200;
/** How long a waiter waits before it may reserve the lock (anti-starvation), ms. */
const STARVING_MS = 1;

/**
 * Proof of holding a {@link Mutex}. Release it once, with `release()` or by
 * leaving a `using` block.
 */
export class MutexGuard {
  readonly #mutex: Mutex;
  #released = false;
  /**
   * True when the previous holder died while holding the lock (a process
   * killed, a worker terminated). The data it protected may be half-updated:
   * repair it before releasing.
   */
  readonly ownerDied: boolean;

  /** @internal */
  constructor(mutex: Mutex, ownerDied: boolean) {
    this.#mutex = mutex;
    this.ownerDied = ownerDied;
  }

  /** Releases the lock. Idempotent for this guard. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#mutex.release();
  }

  /** Same as `release()`. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * A mutual-exclusion lock between processes and threads, living in shared
 * memory: by name (`Mutex.create` / `Mutex.open`) or inside a
 * {@link SharedMemory} at an offset (`new Mutex(shm, offset)`,
 * {@link Mutex.byteLength} bytes, 8-byte aligned, zeroed memory is an
 * unlocked mutex).
 *
 * - Robust: if a holder dies, even by SIGKILL, the kernel marks the lock and
 *   wakes a waiter; the next acquirer gets it with `guard.ownerDied === true`.
 * - Fair enough: a waiter that has waited over a millisecond reserves the lock
 *   for itself, so a busy holder cannot keep taking it back.
 * - A thread that tries to take a mutex it already holds gets a
 *   {@link DeadlockError} instead of hanging.
 *
 * The lock belongs to the thread that acquired it; release it on that thread.
 *
 * @example
 * ```ts
 * const m = Mutex.create('jobs');
 * {
 *   using guard = await m.acquire({ timeout: 1000 });
 *   // ...critical section...
 * }
 * ```
 */
export class Mutex extends Primitive {
  /** Bytes a mutex occupies when placed in caller memory. */
  static readonly byteLength = 64;
  /** Required alignment of its offset. */
  static readonly alignment = 8;

  /**
   * Uses the mutex at `offset` in `memory`. Zeroed memory is an unlocked mutex.
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE`.
   */
  constructor(memory: SharedMemory | SharedArrayBuffer, offset = 0) {
    super(memory instanceof Placed ? memory.placement : placeIn(Kind.Mutex, memory, offset, Mutex.byteLength, Mutex.alignment, []));
  }

  /** Creates a named mutex (segment `/mp.mutex.<name>`). Errors: as {@link SharedMemory.create}. */
  static create(name: string, options?: NamedCreateOptions): Mutex {
    return Mutex.#from(createNamed(Kind.Mutex, name, Mutex.byteLength, [], options));
  }

  /** Opens a named mutex. Errors: `ENOENT`, `EACCES`, `ERR_MULTIPROC_INCOMPATIBLE`. */
  static open(name: string): Mutex {
    return Mutex.#from(openNamed(Kind.Mutex, name));
  }

  static #from(placement: Placement): Mutex {
    return new Mutex(new Placed(placement) as unknown as SharedArrayBuffer);
  }

  /** Whether the kernel's robust-futex list is available on this thread (owner-death detection). */
  static get robust(): boolean {
    return native.threadInfo().robust;
  }

  /**
   * Takes the lock if it is free, without waiting.
   * @returns a guard, or `null` when another thread holds the lock.
   * Errors: `ERR_MULTIPROC_DEADLOCK` (this thread holds it), `ERR_MULTIPROC_CLOSED`.
   */
  tryAcquire(): MutexGuard | null {
    this.checkOpen();
    const r = native.mutexTryLock(this.buffer, this.offset, 0);
    if (r === LockResult.Acquired) return new MutexGuard(this, false);
    if (r === LockResult.AcquiredOwnerDied) return new MutexGuard(this, true);
    if (r === LockResult.Deadlock) throw this.#deadlock();
    return null;
  }

  /**
   * Waits for the lock without blocking the event loop.
   * Errors: `ERR_MULTIPROC_TIMEOUT`, `ABORT_ERR`, `ERR_MULTIPROC_DEADLOCK`,
   * `ERR_MULTIPROC_CLOSED`, argument errors.
   */
  async acquire(options?: WaitOptions): Promise<MutexGuard> {
    const opts = this.waitOptions(options, true);
    const fast = native.mutexTryLock(this.buffer, this.offset, 0);
    if (fast === LockResult.Acquired) return new MutexGuard(this, false);
    const r = await driveAsync(this.buffer, this.#loop(fast), opts);
    return new MutexGuard(this, r === LockResult.AcquiredOwnerDied);
  }

  /**
   * Waits for the lock, blocking this thread (spins briefly first). Meant for
   * worker threads; on the main thread it stalls the event loop.
   * Errors: as {@link Mutex.acquire}, without `ABORT_ERR`.
   */
  acquireSync(options?: WaitSyncOptions): MutexGuard {
    const opts = this.waitOptions(options, false);
    const r = native.mutexLock(this.buffer, this.offset, opts.timeout === Infinity ? -1 : opts.timeout, SYNC_SPINS);
    if (r === LockResult.Acquired || r === LockResult.AcquiredOwnerDied) return new MutexGuard(this, r === LockResult.AcquiredOwnerDied);
    if (r === LockResult.Deadlock) throw this.#deadlock();
    throw timeoutError(opts);
  }

  /**
   * Releases the lock held by this thread. Prefer `guard.release()`.
   * Errors: `ERR_MULTIPROC_NOT_OWNER` when this thread does not hold it.
   */
  release(): void {
    if (native.mutexUnlock(this.buffer, this.offset) !== 0) {
      throw new NotOwnerError(`${this.label} is not held by this thread: release it on the thread that acquired it, once`);
    }
  }

  /** True when some thread (in any process) holds the lock right now. */
  get locked(): boolean {
    this.checkOpen();
    return (Atomics.load(this.i32, this.index) & TID_MASK) !== 0;
  }

  #deadlock(): DeadlockError {
    return new DeadlockError(`${this.label} is already held by this thread: waiting for it would never end`);
  }

  *#loop(first: LockResult): WaitLoop<LockResult> {
    const start = performance.now();
    let flags = 0;
    let r = first;
    let acquired = false;
    try {
      for (;;) {
        if (r === LockResult.Acquired || r === LockResult.AcquiredOwnerDied) {
          acquired = true;
          return r;
        }
        if (r === LockResult.Deadlock) throw this.#deadlock();
        if (r === LockResult.WaitHandoff) {
          const h = Atomics.load(this.i32, this.index + 1);
          // The slice bounds how long a reservation by a dead waiter can stall us.
          if (h !== 0) yield { offset: this.offset + 4, expected: h, slice: 50 };
          flags |= LockFlags.CheckHandoff;
        } else {
          const v = Atomics.load(this.i32, this.index);
          // Only a value with WAITERS set guarantees the holder's unlock wakes us.
          if ((v & TID_MASK) !== 0 && (v & WAITERS) !== 0) yield { offset: this.offset, expected: v };
          flags |= LockFlags.Woken;
        }
        if (performance.now() - start > STARVING_MS) flags |= LockFlags.Starving;
        r = native.mutexTryLock(this.buffer, this.offset, flags);
      }
    } finally {
      if (!acquired) native.mutexGiveUp(this.buffer, this.offset);
    }
  }
}
