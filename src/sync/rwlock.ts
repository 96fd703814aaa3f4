/**
 * A readers-writer lock shared by processes and threads.
 */
import { NotOwnerError } from '../errors.js';
import type { SharedMemory } from '../shm/shared-memory.js';
import { PendingWaits } from './pending-waits.js';
import { createNamed, Kind, openNamed, Placed, placeIn, type NamedCreateOptions, type Placement, type WaitOptions, type WaitSyncOptions } from './placement.js';
import { Primitive } from './primitive.js';
import { driveSync, wake, type WaitLoop } from './wait.js';

// Word indexes inside the lock.
const STATE = 0; // futex word: readers holding (bits 0-29) | WRITER
const STATE_WAITERS = 1; // threads sleeping on STATE
const WRITERS_QUEUED = 2; // futex word: writers waiting; readers stay out while it is not 0
const GATE_WAITERS = 3; // readers sleeping on WRITERS_QUEUED

const WRITER = 0x40000000;
const READERS = 0x3fffffff;

/** Which side of an {@link RWLock} a guard holds. */
export type RWLockMode = 'read' | 'write';

/**
 * Proof of holding an {@link RWLock} for reading or writing. Release it once,
 * with `release()` or by leaving a `using` block.
 */
export class RWLockGuard {
  readonly #lock: RWLock;
  #released = false;
  /** `'read'` (shared) or `'write'` (exclusive). */
  readonly mode: RWLockMode;

  /** @internal */
  constructor(lock: RWLock, mode: RWLockMode) {
    this.#lock = lock;
    this.mode = mode;
  }

  /** Releases the lock. Idempotent for this guard. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.mode === 'read') this.#lock.releaseRead();
    else this.#lock.releaseWrite();
  }

  /** Same as `release()`. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * A readers-writer lock between processes and threads: many readers at a
 * time, or one writer alone.
 *
 * Writer-preferring: once a writer waits, new readers wait behind it, so a
 * steady stream of readers cannot starve writers. Hence a thread that holds a
 * read lock must not ask for it again while a writer may be waiting (it would
 * wait for the writer, which waits for it). Not re-entrant for writers
 * either. Holds are not owned by a thread (any thread may release) and are
 * not given back if their process dies.
 *
 * Lives in shared memory: by name (`RWLock.create` / `RWLock.open`) or inside
 * a {@link SharedMemory} or SharedArrayBuffer at an offset
 * (`new RWLock(memory, offset)`, {@link RWLock.byteLength} bytes, 8-byte
 * aligned; zeroed memory is an unlocked lock).
 *
 * @example
 * ```ts
 * const lock = RWLock.create('table');
 * {
 *   using read = await lock.acquireRead({ timeout: 1000 });
 *   // ...many readers here at once...
 * }
 * {
 *   using write = await lock.acquireWrite({ timeout: 1000 });
 *   // ...alone here...
 * }
 * ```
 */
export class RWLock extends Primitive {
  /** Bytes a lock occupies when placed in caller memory. */
  static readonly byteLength = 32;
  /** Required alignment of its offset. */
  static readonly alignment = 8;

  readonly #waits = new PendingWaits();

  /**
   * Uses the lock at `offset` in `memory`. Zeroed memory is an unlocked lock.
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE`.
   */
  constructor(memory: SharedMemory | SharedArrayBuffer, offset = 0) {
    super(memory instanceof Placed ? memory.placement : placeIn(Kind.RWLock, memory, offset, RWLock.byteLength, RWLock.alignment, []));
  }

  /** Creates a named lock, unlocked (segment `/mp.rwlock.<name>`). Errors: as {@link SharedMemory.create}. */
  static create(name: string, options?: NamedCreateOptions): RWLock {
    return RWLock.#from(createNamed(Kind.RWLock, name, RWLock.byteLength, [], options));
  }

  /** Opens a named lock. Errors: `ENOENT`, `EACCES`, `ERR_MULTIPROC_INCOMPATIBLE`. */
  static open(name: string): RWLock {
    return RWLock.#from(openNamed(Kind.RWLock, name));
  }

  static #from(placement: Placement): RWLock {
    return new RWLock(new Placed(placement) as unknown as SharedArrayBuffer);
  }

  /** How many readers hold the lock right now, in every process (a snapshot). */
  get readers(): number {
    this.checkOpen();
    return Atomics.load(this.i32, this.index + STATE) & READERS;
  }

  /** True while a writer holds the lock (a snapshot). */
  get writeLocked(): boolean {
    this.checkOpen();
    return (Atomics.load(this.i32, this.index + STATE) & WRITER) !== 0;
  }

  /**
   * Takes a read lock if no writer holds the lock or waits for it, without waiting.
   * @returns a guard, or `null`. Errors: `ERR_MULTIPROC_CLOSED`.
   */
  tryAcquireRead(): RWLockGuard | null {
    this.checkOpen();
    if (Atomics.load(this.i32, this.index + WRITERS_QUEUED) > 0) return null;
    return this.#tryRead() === true ? new RWLockGuard(this, 'read') : null;
  }

  /**
   * Waits for a read lock without blocking the event loop.
   * Errors: `ERR_MULTIPROC_TIMEOUT`, `ABORT_ERR`, `ERR_MULTIPROC_CLOSED`
   * (also when closed while waiting), argument errors.
   */
  async acquireRead(options?: WaitOptions): Promise<RWLockGuard> {
    const opts = this.waitOptions(options, true);
    await this.#waits.drive(this.buffer, this.#readLoop(), opts);
    return new RWLockGuard(this, 'read');
  }

  /**
   * Waits for a read lock, blocking this thread. Meant for worker threads; on
   * the main thread it stalls the event loop.
   * Errors: `ERR_MULTIPROC_TIMEOUT`, `ERR_MULTIPROC_CLOSED`, argument errors.
   */
  acquireReadSync(options?: WaitSyncOptions): RWLockGuard {
    const opts = this.waitOptions(options, false);
    driveSync(this.buffer, this.#readLoop(), opts);
    return new RWLockGuard(this, 'read');
  }

  /**
   * Takes the write lock if nobody holds the lock, without waiting.
   * @returns a guard, or `null`. Errors: `ERR_MULTIPROC_CLOSED`.
   */
  tryAcquireWrite(): RWLockGuard | null {
    this.checkOpen();
    return Atomics.compareExchange(this.i32, this.index + STATE, 0, WRITER) === 0 ? new RWLockGuard(this, 'write') : null;
  }

  /**
   * Waits for the write lock without blocking the event loop. While it
   * waits, new readers wait too.
   * Errors: `ERR_MULTIPROC_TIMEOUT`, `ABORT_ERR`, `ERR_MULTIPROC_CLOSED`
   * (also when closed while waiting), argument errors.
   */
  async acquireWrite(options?: WaitOptions): Promise<RWLockGuard> {
    const opts = this.waitOptions(options, true);
    await this.#waits.drive(this.buffer, this.#writeLoop(), opts);
    return new RWLockGuard(this, 'write');
  }

  /**
   * Waits for the write lock, blocking this thread. Meant for worker threads;
   * on the main thread it stalls the event loop.
   * Errors: `ERR_MULTIPROC_TIMEOUT`, `ERR_MULTIPROC_CLOSED`, argument errors.
   */
  acquireWriteSync(options?: WaitSyncOptions): RWLockGuard {
    const opts = this.waitOptions(options, false);
    driveSync(this.buffer, this.#writeLoop(), opts);
    return new RWLockGuard(this, 'write');
  }

  /**
   * Releases one read lock. Prefer `guard.release()`.
   * Errors: `ERR_MULTIPROC_NOT_OWNER` when no reader holds the lock; `ERR_MULTIPROC_CLOSED`.
   */
  releaseRead(): void {
    this.checkOpen();
    const i = this.index + STATE;
    let s = Atomics.load(this.i32, i);
    for (;;) {
      if ((s & WRITER) !== 0 || (s & READERS) === 0) throw new NotOwnerError(`${this.label} is not read-locked: release each read lock once`);
      const seen = Atomics.compareExchange(this.i32, i, s, s - 1);
      if (seen === s) break;
      s = seen;
    }
    // Only writers sleep on STATE while readers hold it; they need the last reader.
    if (s === 1 && Atomics.load(this.i32, this.index + STATE_WAITERS) > 0) wake(this.buffer, this.offset + STATE * 4);
  }

  /**
   * Releases the write lock. Prefer `guard.release()`.
   * Errors: `ERR_MULTIPROC_NOT_OWNER` when no writer holds the lock; `ERR_MULTIPROC_CLOSED`.
   */
  releaseWrite(): void {
    this.checkOpen();
    if (Atomics.compareExchange(this.i32, this.index + STATE, WRITER, 0) !== WRITER) {
      throw new NotOwnerError(`${this.label} is not write-locked: release the write lock once`);
    }
    if (Atomics.load(this.i32, this.index + STATE_WAITERS) > 0) wake(this.buffer, this.offset + STATE * 4);
  }

  /**
   * Closes this handle: unmaps a named lock's segment (removing the name if
   * this handle created it). Pending acquisitions of this handle reject with
   * `ERR_MULTIPROC_CLOSED`. Idempotent.
   */
  override close(): void {
    this.#waits.closeAll();
    super.close();
  }

  /** true: taken; otherwise the STATE value (with WRITER set) that stopped us. */
  #tryRead(): true | number {
    const i = this.index + STATE;
    let s = Atomics.load(this.i32, i);
    while ((s & WRITER) === 0) {
      const seen = Atomics.compareExchange(this.i32, i, s, s + 1);
      if (seen === s) return true;
      s = seen;
    }
    return s;
  }

  *#readLoop(): WaitLoop<void> {
    let onState = false;
    let onGate = false;
    try {
      for (;;) {
        // Each sleep follows a registration and a fresh look, so the thread
        // that changes the word either sees the registration or we see the change.
        const queued = Atomics.load(this.i32, this.index + WRITERS_QUEUED);
        if (queued > 0) {
          if (!onGate) {
            Atomics.add(this.i32, this.index + GATE_WAITERS, 1);
            onGate = true;
            continue;
          }
          yield { offset: this.offset + WRITERS_QUEUED * 4, expected: queued };
          continue;
        }
        const r = this.#tryRead();
        if (r === true) return;
        if (!onState) {
          Atomics.add(this.i32, this.index + STATE_WAITERS, 1);
          onState = true;
          continue;
        }
        yield { offset: this.offset + STATE * 4, expected: r };
      }
    } finally {
      if (onState) Atomics.sub(this.i32, this.index + STATE_WAITERS, 1);
      if (onGate) Atomics.sub(this.i32, this.index + GATE_WAITERS, 1);
    }
  }

  *#writeLoop(): WaitLoop<void> {
    let queued = false;
    let onState = false;
    try {
      for (;;) {
        const s = Atomics.compareExchange(this.i32, this.index + STATE, 0, WRITER);
        if (s === 0) return;
        if (!queued) {
          Atomics.add(this.i32, this.index + WRITERS_QUEUED, 1);
          queued = true;
          continue;
        }
        if (!onState) {
          Atomics.add(this.i32, this.index + STATE_WAITERS, 1);
          onState = true;
          continue;
        }
        yield { offset: this.offset + STATE * 4, expected: s };
      }
    } finally {
      if (onState) Atomics.sub(this.i32, this.index + STATE_WAITERS, 1);
      if (queued) {
        // Leaving the queue (with the lock or without) may open the gate for readers.
        Atomics.sub(this.i32, this.index + WRITERS_QUEUED, 1);
        if (Atomics.load(this.i32, this.index + GATE_WAITERS) > 0) wake(this.buffer, this.offset + WRITERS_QUEUED * 4);
      }
    }
  }
}
