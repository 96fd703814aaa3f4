/**
 * A robust mutex shared by processes and threads.
 */
import { LockFlags, LockResult, native } from '../binding/native.js';
import { AbortError, ClosedError, DeadlockError, NotOwnerError } from '../errors.js';
import { setLongTimeout, type LongTimeout } from '../long-timeout.js';
import type { SharedMemory } from '../shm/shared-memory.js';
import { createNamed, Kind, openNamed, Placed, placeIn, type NamedCreateOptions, type Placement, type WaitOptions, type WaitSyncOptions } from './placement.js';
import { PendingWaits } from './pending-waits.js';
import { Primitive } from './primitive.js';
import { SYNC_SLICE_MS, timeoutError, type DriveOptions, type WaitLoop } from './wait.js';

// Module-level bindings: a property load on the addon's large exports object
// costs more than the lock itself.
const { mutexTryLock, mutexUnlock } = native;
const TID_MASK = 0x3fffffff;
const heldBuffers: SharedArrayBuffer[] = [];
const WAITERS = 0x80000000 | 0;
/** Spins of the blocking path before it sleeps (see mutex.cc): about a microsecond. */
const SYNC_SPINS = 40;
/** Checks of the lock word by an async acquire before it parks. */
const ASYNC_SPINS = 100;
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
 * - A thread that blocks (`acquireSync`) on a mutex it already holds, even
 *   through another handle, gets a {@link DeadlockError} instead of hanging;
 *   async tasks of the holding thread queue behind it.
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

  readonly #waits = new PendingWaits();

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
   * @returns a guard, or `null` when the lock is held (by any thread, this one included).
   * Errors: `ERR_MULTIPROC_CLOSED`.
   */
  tryAcquire(): MutexGuard | null {
    this.checkOpen();
    const r = mutexTryLock(this.buffer, this.offset, 0);
    if (r === LockResult.Acquired) return this.#held(false);
    if (r === LockResult.AcquiredOwnerDied) return this.#held(true);
    return null;
  }

  /**
   * Waits for the lock without blocking the event loop.
   *
   * The lock belongs to a thread, not to a promise chain: when another task of
   * this same thread holds it, this call waits for that task's release (a
   * task waiting on a lock it holds itself ends by its timeout).
   *
   * Errors: `ERR_MULTIPROC_TIMEOUT`, `ABORT_ERR`, `ERR_MULTIPROC_CLOSED`
   * (also when closed while waiting), argument errors.
   */
  async acquire(options?: WaitOptions): Promise<MutexGuard> {
    const opts = this.waitOptions(options, true);
    let r = mutexTryLock(this.buffer, this.offset, LockFlags.NoSleep);
    // Spin a little (a microsecond or two) before parking: a holder on the
    // other CPU often releases within that, and parking costs a round of
    // thread wake-ups. Bounded, so the event loop is not held up.
    for (let i = 0; r === LockResult.WaitWord && i < ASYNC_SPINS; i++) {
      if ((Atomics.load(this.i32, this.index) & TID_MASK) === 0) r = mutexTryLock(this.buffer, this.offset, LockFlags.NoSleep);
    }
    if (r === LockResult.Acquired) return this.#held(false);
    if (r === LockResult.WaitWord) r = mutexTryLock(this.buffer, this.offset, 0);
    if (r === LockResult.Acquired) return this.#held(false);
    const deadline = opts.timeout === Infinity ? Infinity : performance.now() + opts.timeout;
    for (;;) {
      // Closed between two waits: the memory may be gone (a free lock on zero pages).
      this.checkOpen();
      if (r === LockResult.Deadlock) {
        await localRelease(this.buffer, this.offset, deadline, opts, this.#waits);
        this.checkOpen();
      } else {
        r = await this.#waits.drive(this.buffer, this.#loop(r), { ...opts, deadline });
        if (r !== LockResult.Deadlock) return this.#held(r === LockResult.AcquiredOwnerDied);
        continue;
      }
      r = mutexTryLock(this.buffer, this.offset, 0);
      if (r === LockResult.Acquired || r === LockResult.AcquiredOwnerDied) return this.#held(r === LockResult.AcquiredOwnerDied);
    }
  }

  /**
   * Waits for the lock, blocking this thread (spins briefly first). Meant for
   * worker threads; on the main thread it stalls the event loop.
   * Errors: `ERR_MULTIPROC_TIMEOUT`, `ERR_MULTIPROC_DEADLOCK` (this thread
   * holds the lock), `ERR_MULTIPROC_CLOSED`, argument errors.
   */
  acquireSync(options?: WaitSyncOptions): MutexGuard {
    // A free lock needs no option parsing: try first (the checks still run on the slow path).
    if (options === undefined && !this.closed) {
      const fast = mutexTryLock(this.buffer, this.offset, LockFlags.NoSleep);
      if (fast === LockResult.Acquired || fast === LockResult.AcquiredOwnerDied) return this.#held(fast === LockResult.AcquiredOwnerDied);
    }
    const opts = this.waitOptions(options, false);
    const deadline = opts.timeout === Infinity ? Infinity : performance.now() + opts.timeout;
    for (;;) {
      // In slices: a thread asleep in the kernel could not be terminated (see SYNC_SLICE_MS).
      const left = deadline === Infinity ? SYNC_SLICE_MS : Math.max(0, Math.ceil(deadline - performance.now()));
      const r = native.mutexLock(this.buffer, this.offset, Math.min(left, SYNC_SLICE_MS), SYNC_SPINS);
      if (r === LockResult.Acquired || r === LockResult.AcquiredOwnerDied) return this.#held(r === LockResult.AcquiredOwnerDied);
      if (r === LockResult.Deadlock) throw this.#deadlock();
      if (deadline !== Infinity && performance.now() >= deadline) throw timeoutError(opts);
    }
  }

  /**
   * Releases the lock held by this thread. Prefer `guard.release()`.
   * Errors: `ERR_MULTIPROC_NOT_OWNER` when this thread does not hold it.
   */
  release(): void {
    if (mutexUnlock(this.buffer, this.offset) !== 0) {
      throw new NotOwnerError(`${this.label} is not held by this thread: release it on the thread that acquired it, once`);
    }
    const i = heldBuffers.lastIndexOf(this.buffer);
    if (i === heldBuffers.length - 1) heldBuffers.pop();
    else if (i >= 0) heldBuffers.splice(i, 1);
    if (localWaiting > 0) notifyLocal(this.buffer, this.offset);
  }

  /**
   * Closes this handle: unmaps a named mutex's segment (removing the name if
   * this handle created it). Pending `acquire` calls of this handle reject
   * with `ERR_MULTIPROC_CLOSED`. Idempotent.
   */
  override close(): void {
    // First, while the memory is still mapped: waiters give up their turn there.
    this.#waits.closeAll();
    super.close();
  }

  /** True when some thread (in any process) holds the lock right now. */
  get locked(): boolean {
    this.checkOpen();
    return (Atomics.load(this.i32, this.index) & TID_MASK) !== 0;
  }

  // While a lock is held its memory must stay mapped: the thread's robust
  // list points into it. This stack keeps the buffer reachable even if the
  // caller drops every reference to the mutex and its guard.
  #held(ownerDied: boolean): MutexGuard {
    heldBuffers.push(this.buffer);
    return new MutexGuard(this, ownerDied);
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
        // Another task of this thread took it meanwhile: acquire() waits for its release.
        if (r === LockResult.Deadlock) return r;
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
        r = mutexTryLock(this.buffer, this.offset, flags);
      }
    } finally {
      if (!acquired) native.mutexGiveUp(this.buffer, this.offset);
    }
  }
}

// Async acquirers whose own thread holds the lock wait here for that
// thread's release; the kernel is not involved because the waker is us.
const localWaiters = new Map<SharedArrayBuffer, Map<number, Array<() => void>>>();
let localWaiting = 0;

function notifyLocal(buffer: SharedArrayBuffer, offset: number): void {
  const byOffset = localWaiters.get(buffer);
  const list = byOffset?.get(offset);
  if (list === undefined) return;
  byOffset!.delete(offset);
  if (byOffset!.size === 0) localWaiters.delete(buffer);
  localWaiting -= list.length;
  for (const wake of list) wake();
}

function localRelease(buffer: SharedArrayBuffer, offset: number, deadline: number, opts: DriveOptions, waits: PendingWaits): Promise<void> {
  if (opts.signal?.aborted) return Promise.reject(new AbortError(undefined, { cause: opts.signal.reason }));
  if (deadline !== Infinity && performance.now() >= deadline) return Promise.reject(timeoutError(opts));
  return new Promise<void>((resolve, reject) => {
    let byOffset = localWaiters.get(buffer);
    if (byOffset === undefined) localWaiters.set(buffer, (byOffset = new Map()));
    let list = byOffset.get(offset);
    if (list === undefined) byOffset.set(offset, (list = []));
    let timer: LongTimeout | undefined;
    let untrack = (): void => {};
    const remove = (): void => {
      const i = list!.indexOf(wake);
      if (i >= 0) {
        list!.splice(i, 1);
        localWaiting--;
      }
      timer?.clear();
      opts.signal?.removeEventListener('abort', onAbort);
      untrack();
    };
    const wake = (): void => {
      timer?.clear();
      opts.signal?.removeEventListener('abort', onAbort);
      untrack();
      resolve();
    };
    const onAbort = (): void => {
      remove();
      reject(new AbortError(undefined, { cause: opts.signal?.reason }));
    };
    list.push(wake);
    localWaiting++;
    untrack = waits.track(() => {
      remove();
      reject(new ClosedError(`${opts.what} was closed while waiting`));
    });
    if (deadline !== Infinity) {
      timer = setLongTimeout(() => {
        remove();
        reject(timeoutError(opts));
      }, Math.max(0, Math.ceil(deadline - performance.now())));
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
