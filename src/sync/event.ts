/**
 * A manual-reset event shared by processes and threads.
 */
import type { SharedMemory } from '../shm/shared-memory.js';
import { PendingWaits } from './pending-waits.js';
import { createNamed, Kind, openNamed, Placed, placeIn, type NamedCreateOptions, type Placement, type WaitOptions, type WaitSyncOptions } from './placement.js';
import { Primitive } from './primitive.js';
import { driveSync, wake, type WaitLoop } from './wait.js';

// Word indexes inside the event.
const STATE = 0;
const WAITERS = 1;

// STATE: bit 0 is the flag; the bits above count the set() calls that raised
// it, so a waiter can tell that a set() happened even if clear() followed.
const FLAG = 1;

/**
 * A flag that processes and threads can wait for, like Python's
 * `multiprocessing.Event`: `set()` raises it and releases every waiter,
 * `clear()` lowers it, `wait()` returns at once while it is raised.
 *
 * Lives in shared memory: by name (`Event.create` / `Event.open`) or inside a
 * {@link SharedMemory} or SharedArrayBuffer at an offset
 * (`new Event(memory, offset)`, {@link Event.byteLength} bytes, 8-byte
 * aligned; zeroed memory is a cleared event).
 *
 * A waiter that was waiting when `set()` was called returns even if
 * `clear()` follows before it runs.
 *
 * @example
 * ```ts
 * const ready = Event.create('ready');
 * // another process: Event.open('ready').set();
 * await ready.wait({ timeout: 10_000 });
 * ```
 */
export class Event extends Primitive {
  /** Bytes an event occupies when placed in caller memory. */
  static readonly byteLength = 32;
  /** Required alignment of its offset. */
  static readonly alignment = 8;

  readonly #waits = new PendingWaits();

  /**
   * Uses the event at `offset` in `memory`. Zeroed memory is a cleared event.
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE`.
   */
  constructor(memory: SharedMemory | SharedArrayBuffer, offset = 0) {
    super(memory instanceof Placed ? memory.placement : placeIn(Kind.Event, memory, offset, Event.byteLength, Event.alignment, []));
  }

  /** Creates a named event, cleared (segment `/mp.event.<name>`). Errors: as {@link SharedMemory.create}. */
  static create(name: string, options?: NamedCreateOptions): Event {
    return Event.#from(createNamed(Kind.Event, name, Event.byteLength, [], options));
  }

  /** Opens a named event. Errors: `ENOENT`, `EACCES`, `ERR_MULTIPROC_INCOMPATIBLE`. */
  static open(name: string): Event {
    return Event.#from(openNamed(Kind.Event, name));
  }

  static #from(placement: Placement): Event {
    return new Event(new Placed(placement) as unknown as SharedArrayBuffer);
  }

  /** True while the flag is raised. Errors: `ERR_MULTIPROC_CLOSED`. */
  isSet(): boolean {
    this.checkOpen();
    return (Atomics.load(this.i32, this.index + STATE) & FLAG) !== 0;
  }

  /**
   * Raises the flag and wakes every waiter, in every process. Does nothing
   * if it is already raised. Errors: `ERR_MULTIPROC_CLOSED`.
   */
  set(): void {
    this.checkOpen();
    const i = this.index + STATE;
    let v = Atomics.load(this.i32, i);
    while ((v & FLAG) === 0) {
      // v is even: v + 3 bumps the set() count and raises the flag.
      const seen = Atomics.compareExchange(this.i32, i, v, (v + 3) | 0);
      if (seen === v) {
        if (Atomics.load(this.i32, this.index + WAITERS) > 0) wake(this.buffer, this.offset + STATE * 4);
        return;
      }
      v = seen;
    }
  }

  /** Lowers the flag; later `wait()` calls wait again. Errors: `ERR_MULTIPROC_CLOSED`. */
  clear(): void {
    this.checkOpen();
    Atomics.and(this.i32, this.index + STATE, ~FLAG);
  }

  /**
   * Waits until the flag is raised, without blocking the event loop.
   * Resolves at once if it is raised already.
   * Errors: `ERR_MULTIPROC_TIMEOUT`, `ABORT_ERR`, `ERR_MULTIPROC_CLOSED`
   * (also when closed while waiting), argument errors.
   */
  async wait(options?: WaitOptions): Promise<void> {
    const opts = this.waitOptions(options, true);
    await this.#waits.drive(this.buffer, this.#loop(), opts);
  }

  /**
   * Waits until the flag is raised, blocking this thread. Meant for worker
   * threads; on the main thread it stalls the event loop.
   * Errors: `ERR_MULTIPROC_TIMEOUT`, `ERR_MULTIPROC_CLOSED`, argument errors.
   */
  waitSync(options?: WaitSyncOptions): void {
    const opts = this.waitOptions(options, false);
    driveSync(this.buffer, this.#loop(), opts);
  }

  /**
   * Closes this handle: unmaps a named event's segment (removing the name if
   * this handle created it). Pending `wait` calls of this handle reject with
   * `ERR_MULTIPROC_CLOSED`. Idempotent.
   */
  override close(): void {
    this.#waits.closeAll();
    super.close();
  }

  *#loop(): WaitLoop<void> {
    const i = this.index + STATE;
    const start = Atomics.load(this.i32, i);
    let registered = false;
    try {
      for (;;) {
        const v = Atomics.load(this.i32, i);
        // Any change from a cleared start is a set(), even if a clear() followed.
        if ((v & FLAG) !== 0 || v !== start) return;
        if (!registered) {
          // Register, then look again, so that set() either sees us or we see it.
          Atomics.add(this.i32, this.index + WAITERS, 1);
          registered = true;
          continue;
        }
        yield { offset: this.offset + STATE * 4, expected: v };
      }
    } finally {
      if (registered) Atomics.sub(this.i32, this.index + WAITERS, 1);
    }
  }
}
