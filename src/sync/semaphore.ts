/**
 * A counting semaphore shared by processes and threads.
 */
import { IncompatibleError, SemaphoreOverflowError, validateInteger, validateOptions } from '../errors.js';
import type { SharedMemory } from '../shm/shared-memory.js';
import { initOnce } from './init-once.js';
import { PendingWaits } from './pending-waits.js';
import { createNamed, Kind, openNamed, Placed, placeIn, type NamedCreateOptions, type Placement, type WaitOptions, type WaitSyncOptions } from './placement.js';
import { Primitive } from './primitive.js';
import { driveSync, wake, type WaitLoop } from './wait.js';

// Word indexes inside the semaphore.
const COUNT = 0;
const WAITERS = 1;
const MAX = 2;
const INIT = 3;

const MAX_VALUE = 0x7fffffff;

/** Parameters of a {@link Semaphore}, fixed when it is created. */
export interface SemaphoreParams {
  /** Permits available at the start. Default 0. */
  initial?: number;
  /**
   * Upper bound of the count: a `release()` that would exceed it throws
   * {@link SemaphoreOverflowError}. Default {@link Semaphore.MAX_VALUE}.
   */
  max?: number;
}

function semaphoreParams(params: unknown): { initial: number; max: number; maxGiven: boolean } {
  const p = validateOptions<SemaphoreParams>(params, 'params', ['initial', 'max']);
  const max = p.max === undefined ? MAX_VALUE : validateInteger(p.max, 'params.max', 1, MAX_VALUE);
  const initial = p.initial === undefined ? 0 : validateInteger(p.initial, 'params.initial', 0, max);
  return { initial, max, maxGiven: p.max !== undefined };
}

/**
 * One permit of a {@link Semaphore}. Give it back once, with `release()` or
 * by leaving a `using` block.
 */
export class SemaphoreGuard {
  readonly #semaphore: Semaphore;
  #released = false;

  /** @internal */
  constructor(semaphore: Semaphore) {
    this.#semaphore = semaphore;
  }

  /** Releases the permit. Idempotent for this guard. Errors: as {@link Semaphore.release}. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#semaphore.release();
  }

  /** Same as `release()`. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * A counting semaphore between processes and threads, living in shared
 * memory: by name (`Semaphore.create` / `Semaphore.open`) or inside a
 * {@link SharedMemory} or SharedArrayBuffer at an offset
 * (`new Semaphore(memory, offset, params)`, {@link Semaphore.byteLength}
 * bytes, 8-byte aligned, in zeroed memory).
 *
 * `acquire` takes a permit (waiting while the count is 0), `release` gives
 * one back. Permits are not owned: any thread may release. Permits held by a
 * process that dies are not given back.
 *
 * @example
 * ```ts
 * const slots = Semaphore.create('gpu', { initial: 2, max: 2 });
 * {
 *   using permit = await slots.acquire({ timeout: 5000 });
 *   // at most two processes run this at a time
 * }
 * ```
 */
export class Semaphore extends Primitive {
  /** Bytes a semaphore occupies when placed in caller memory. */
  static readonly byteLength = 32;
  /** Required alignment of its offset. */
  static readonly alignment = 8;
  /** The largest count (and bound) a semaphore can hold: 2^31 - 1. */
  static readonly MAX_VALUE = MAX_VALUE;

  readonly #waits = new PendingWaits();
  readonly #max: number;

  /**
   * Uses the semaphore at `offset` in `memory`. The first handle to find the
   * memory zeroed initializes it with `params`; later handles may omit them
   * (a different `max` is an error, `initial` is ignored).
   *
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`,
   * `ERR_OUT_OF_RANGE` (bad arguments, misaligned or out-of-bounds offset,
   * `initial > max`); `ERR_MULTIPROC_INCOMPATIBLE` (initialized with another
   * `max`, or its initialization word holds something else; placing it over
   * another primitive whose memory has 0 there is not detected).
   */
  constructor(memory: SharedMemory | SharedArrayBuffer, offset = 0, params?: SemaphoreParams) {
    let placement: Placement;
    let p: { initial: number; max: number; maxGiven: boolean };
    if (memory instanceof Placed) {
      placement = memory.placement;
      p = { initial: placement.params[0]!, max: placement.params[1]!, maxGiven: false };
    } else {
      p = semaphoreParams(params);
      placement = placeIn(Kind.Semaphore, memory, offset, Semaphore.byteLength, Semaphore.alignment, []);
    }
    super(placement);
    const i32 = this.i32;
    const base = this.index;
    initOnce(this.buffer, i32, base + INIT, this.label, () => {
      Atomics.store(i32, base + MAX, p.max);
      Atomics.store(i32, base + COUNT, p.initial);
    });
    this.#max = Atomics.load(i32, base + MAX);
    if (p.maxGiven && this.#max !== p.max) {
      throw new IncompatibleError(`${this.label} was initialized with max ${this.#max}, not ${p.max}`);
    }
  }

  /**
   * Creates a named semaphore (segment `/mp.semaphore.<name>`); `params` are
   * stored with it so that every opener agrees.
   *
   * Errors: as {@link SharedMemory.create}; `ERR_INVALID_ARG_TYPE`,
   * `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE` for bad `params`.
   */
  static create(name: string, params?: SemaphoreParams, options?: NamedCreateOptions): Semaphore {
    const p = semaphoreParams(params);
    return Semaphore.#from(createNamed(Kind.Semaphore, name, Semaphore.byteLength, [p.initial, p.max], options));
  }

  /** Opens a named semaphore. Errors: `ENOENT`, `EACCES`, `ERR_MULTIPROC_INCOMPATIBLE`. */
  static open(name: string): Semaphore {
    return Semaphore.#from(openNamed(Kind.Semaphore, name));
  }

  static #from(placement: Placement): Semaphore {
    try {
      return new Semaphore(new Placed(placement) as unknown as SharedArrayBuffer);
    } catch (err) {
      placement.segment?.close();
      throw err;
    }
  }

  /** The number of permits available right now (a snapshot). */
  get value(): number {
    this.checkOpen();
    return Atomics.load(this.i32, this.index + COUNT);
  }

  /** The bound of the count ({@link Semaphore.MAX_VALUE} when none was given). */
  get max(): number {
    return this.#max;
  }

  /**
   * Takes a permit if one is available, without waiting.
   * @returns a guard, or `null` when the count is 0.
   * Errors: `ERR_MULTIPROC_CLOSED`.
   */
  tryAcquire(): SemaphoreGuard | null {
    this.checkOpen();
    return this.#take() ? new SemaphoreGuard(this) : null;
  }

  /**
   * Waits for a permit without blocking the event loop.
   * Errors: `ERR_MULTIPROC_TIMEOUT`, `ABORT_ERR`, `ERR_MULTIPROC_CLOSED`
   * (also when closed while waiting), argument errors.
   */
  async acquire(options?: WaitOptions): Promise<SemaphoreGuard> {
    const opts = this.waitOptions(options, true);
    await this.#waits.drive(this.buffer, this.#loop(), opts);
    return new SemaphoreGuard(this);
  }

  /**
   * Waits for a permit, blocking this thread. Meant for worker threads; on
   * the main thread it stalls the event loop.
   * Errors: `ERR_MULTIPROC_TIMEOUT`, `ERR_MULTIPROC_CLOSED`, argument errors.
   */
  acquireSync(options?: WaitSyncOptions): SemaphoreGuard {
    const opts = this.waitOptions(options, false);
    driveSync(this.buffer, this.#loop(), opts);
    return new SemaphoreGuard(this);
  }

  /**
   * Gives back `n` permits (default 1) and wakes waiters. Prefer
   * `guard.release()` for a permit taken with `acquire`.
   *
   * Errors: `ERR_MULTIPROC_SEMAPHORE_OVERFLOW` when the count would exceed
   * {@link Semaphore.max} (nothing is released then); `ERR_INVALID_ARG_TYPE`,
   * `ERR_OUT_OF_RANGE` for a bad `n`; `ERR_MULTIPROC_CLOSED`.
   */
  release(n = 1): void {
    this.checkOpen();
    validateInteger(n, 'n', 1, MAX_VALUE);
    const i = this.index + COUNT;
    let c = Atomics.load(this.i32, i);
    for (;;) {
      if (c > this.#max - n) {
        throw new SemaphoreOverflowError(`releasing ${n} would raise ${this.label} to ${c + n}, above its max ${this.#max}`);
      }
      const seen = Atomics.compareExchange(this.i32, i, c, c + n);
      if (seen === c) break;
      c = seen;
    }
    // Wake everyone rather than n: a wake of one can land on an async waiter
    // that is just giving up and be lost. Those that find no permit sleep again.
    if (Atomics.load(this.i32, this.index + WAITERS) > 0) wake(this.buffer, this.offset + COUNT * 4);
  }

  /**
   * Closes this handle: unmaps a named semaphore's segment (removing the name
   * if this handle created it). Pending `acquire` calls of this handle reject
   * with `ERR_MULTIPROC_CLOSED`. Idempotent.
   */
  override close(): void {
    this.#waits.closeAll();
    super.close();
  }

  #take(): boolean {
    const i = this.index + COUNT;
    let c = Atomics.load(this.i32, i);
    while (c > 0) {
      const seen = Atomics.compareExchange(this.i32, i, c, c - 1);
      if (seen === c) return true;
      c = seen;
    }
    return false;
  }

  *#loop(): WaitLoop<void> {
    let registered = false;
    try {
      for (;;) {
        if (this.#take()) return;
        // Register, then look again: a release after our look sees the
        // registration and wakes us; one before it is seen by the look.
        if (!registered) {
          Atomics.add(this.i32, this.index + WAITERS, 1);
          registered = true;
          continue;
        }
        yield { offset: this.offset + COUNT * 4, expected: 0 };
      }
    } finally {
      if (registered) Atomics.sub(this.i32, this.index + WAITERS, 1);
    }
  }
}
