/**
 * What every synchronization primitive shares: its memory, its name segment
 * (when named), option checks and the close/dispose lifetime.
 *
 * @internal
 */
import { ClosedError, validateOptions, validateSignal, validateTimeout } from '../errors.js';
import type { SharedMemory } from '../shm/shared-memory.js';
import type { Placement } from './placement.js';
import type { DriveOptions } from './wait.js';

/** @internal */
export abstract class Primitive {
  /** @internal */ protected readonly buffer: SharedArrayBuffer;
  /** @internal */ protected readonly offset: number;
  /** @internal */ protected readonly i32: Int32Array;
  /** @internal */ protected readonly index: number;
  /** @internal */ protected readonly label: string;
  readonly #placement: Placement;
  // Closing it unmaps the primitive: what would remain is a private zero page
  // that no other process sees (a "free" lock that excludes nobody).
  readonly #memory: SharedMemory | undefined;
  #closed = false;

  /** @internal */
  protected constructor(placement: Placement) {
    this.#placement = placement;
    this.#memory = placement.memory;
    this.buffer = placement.buffer;
    this.offset = placement.offset;
    this.i32 = new Int32Array(placement.buffer);
    this.index = placement.offset / 4;
    this.label = placement.label;
  }

  /** The segment name for a named primitive (e.g. '/mp.mutex.jobs'); undefined when placed in caller memory. */
  get segmentName(): string | undefined {
    return this.#placement.segment?.name;
  }

  /** True after `close()`, or once the {@link SharedMemory} it was placed in is closed. */
  get closed(): boolean {
    return this.#closed || this.#memory?.closed === true;
  }

  /**
   * Closes this handle. For a named primitive, unmaps its segment and, if this
   * handle created it, removes the name. Idempotent. Memory placed by the
   * caller is left alone.
   */
  close(): void {
    if (this.#closed) return;
    this.#placement.segment?.close();
    this.#closed = true;
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal */
  protected checkOpen(): void {
    if (this.#closed) throw new ClosedError(`${this.label} is closed`);
    if (this.#memory?.closed === true) throw new ClosedError(`${this.label}: the shared memory it is placed in is closed`);
  }

  /** @internal */
  protected waitOptions(options: unknown, async: boolean): DriveOptions {
    this.checkOpen();
    const opts = validateOptions<{ timeout: number; signal: AbortSignal }>(options, 'options', async ? ['timeout', 'signal'] : ['timeout']);
    return { timeout: validateTimeout(opts.timeout), signal: validateSignal(opts.signal), what: this.label };
  }
}
