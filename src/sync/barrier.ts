/**
 * A reusable barrier shared by processes and threads.
 */
import { BrokenBarrierError, IncompatibleError, validateInteger } from '../errors.js';
import type { SharedMemory } from '../shm/shared-memory.js';
import { initOnce } from './init-once.js';
import { PendingWaits } from './pending-waits.js';
import { createNamed, Kind, openNamed, Placed, placeIn, type NamedCreateOptions, type Placement, type WaitOptions, type WaitSyncOptions } from './placement.js';
import { Primitive } from './primitive.js';
import { driveSync, wake, type WaitLoop } from './wait.js';

// Word indexes inside the barrier.
const SEQ = 0; // futex word: bumped after every release, break and reset
const WAITERS = 1;
const STATE = 2; // 64-bit, byte 8 (see below)
const PARTIES = 4;
const INIT = 5;

// STATE packs, so that one compare-and-swap moves it:
//   low 32 bits   generation (wraps)
//   high bits 0-15   parties arrived in this generation
//   high bit 16      broken
//   high bits 17-31  generations since the last reset() began one (SINCE_NONE: long ago)
// A waiter whose generation has ended tells a release from a reset by
// whether a reset began a generation after its own.
const COUNT_MASK = 0xffff;
const BROKEN = 0x10000;
const SINCE_SHIFT = 17;
const SINCE_NONE = 0x7fff;
const MAX_PARTIES = 0xffff;

interface State {
  gen: number;
  count: number;
  broken: boolean;
  since: number;
}

function unpack(v: bigint): State {
  const hi = Number(v >> 32n);
  return { gen: Number(v & 0xffffffffn), count: hi & COUNT_MASK, broken: (hi & BROKEN) !== 0, since: hi >>> SINCE_SHIFT };
}

function pack(s: State): bigint {
  const hi = (s.count | (s.broken ? BROKEN : 0) | (s.since << SINCE_SHIFT)) >>> 0;
  return (BigInt(hi) << 32n) | BigInt(s.gen >>> 0);
}

/** What {@link Barrier.wait} resolves to. */
export interface BarrierResult {
  /** True for exactly one party of each generation (the last to arrive), e.g. to run a step once. */
  serial: boolean;
}

/**
 * A reusable barrier for a fixed number of parties (processes or threads):
 * each `wait()` blocks until `parties` waits have arrived, then all of them
 * return together and the barrier is ready for the next round ("generation").
 *
 * If a party stops waiting (timeout, abort, its handle closed), or someone
 * calls `abort()`, the barrier breaks: parties waiting in that generation and
 * any later `wait()` fail with {@link BrokenBarrierError} until `reset()`.
 * The party that timed out or aborted gets its own `TimeoutError` or
 * `AbortError`. A process that dies while waiting does not break it (the
 * others time out).
 *
 * Lives in shared memory: by name (`Barrier.create` / `Barrier.open`) or
 * inside a {@link SharedMemory} or SharedArrayBuffer at an offset
 * (`new Barrier(memory, offset, parties)`, {@link Barrier.byteLength} bytes,
 * 8-byte aligned, in zeroed memory).
 *
 * @example
 * ```ts
 * const step = Barrier.create('step', 4);
 * for (let round = 0; round < 10; round++) {
 *   compute(round);
 *   const { serial } = await step.wait({ timeout: 30_000 });
 *   if (serial) publish(round);
 * }
 * ```
 */
export class Barrier extends Primitive {
  /** Bytes a barrier occupies when placed in caller memory. */
  static readonly byteLength = 32;
  /** Required alignment of its offset. */
  static readonly alignment = 8;
  /** The largest number of parties: 65535. */
  static readonly MAX_PARTIES = MAX_PARTIES;

  readonly #waits = new PendingWaits();
  readonly #state: BigUint64Array;
  readonly #parties: number;

  /**
   * Uses the barrier at `offset` in `memory`. The first handle to find the
   * memory zeroed must give `parties` (1 to 65535) and initializes it; later
   * handles may omit it.
   *
   * Errors: `ERR_INVALID_ARG_TYPE` (also: `parties` omitted on zeroed
   * memory), `ERR_OUT_OF_RANGE`; `ERR_MULTIPROC_INCOMPATIBLE` (initialized
   * with other `parties`, or its initialization word holds something else;
   * placing it over another primitive whose memory has 0 there is not detected).
   */
  constructor(memory: SharedMemory | SharedArrayBuffer, offset = 0, parties?: number) {
    let placement: Placement;
    let wanted: number | undefined;
    if (memory instanceof Placed) {
      placement = memory.placement;
      wanted = placement.params[0]!;
    } else {
      if (parties !== undefined) validateInteger(parties, 'parties', 1, MAX_PARTIES);
      wanted = parties;
      placement = placeIn(Kind.Barrier, memory, offset, Barrier.byteLength, Barrier.alignment, []);
    }
    super(placement);
    const i32 = this.i32;
    const base = this.index;
    this.#state = new BigUint64Array(this.buffer, this.offset + STATE * 4, 1);
    const state = this.#state;
    initOnce(this.buffer, i32, base + INIT, this.label, () => {
      // Only the initializer needs parties; a throw here leaves the memory zeroed.
      Atomics.store(i32, base + PARTIES, validateInteger(wanted, 'parties', 1, MAX_PARTIES));
      Atomics.store(state, 0, pack({ gen: 0, count: 0, broken: false, since: SINCE_NONE }));
    });
    this.#parties = Atomics.load(i32, base + PARTIES);
    if (wanted !== undefined && wanted !== this.#parties) {
      throw new IncompatibleError(`${this.label} was initialized for ${this.#parties} parties, not ${wanted}`);
    }
  }

  /**
   * Creates a named barrier for `parties` parties (segment `/mp.barrier.<name>`);
   * `parties` is stored with it so that every opener agrees.
   * Errors: as {@link SharedMemory.create}; `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE` for `parties`.
   */
  static create(name: string, parties: number, options?: NamedCreateOptions): Barrier {
    validateInteger(parties, 'parties', 1, MAX_PARTIES);
    return Barrier.#from(createNamed(Kind.Barrier, name, Barrier.byteLength, [parties], options));
  }

  /** Opens a named barrier. Errors: `ENOENT`, `EACCES`, `ERR_MULTIPROC_INCOMPATIBLE`. */
  static open(name: string): Barrier {
    return Barrier.#from(openNamed(Kind.Barrier, name));
  }

  static #from(placement: Placement): Barrier {
    try {
      return new Barrier(new Placed(placement) as unknown as SharedArrayBuffer);
    } catch (err) {
      placement.segment?.close();
      throw err;
    }
  }

  /** The number of parties each generation waits for. */
  get parties(): number {
    return this.#parties;
  }

  /** How many parties have arrived in the current generation (a snapshot). */
  get waiting(): number {
    this.checkOpen();
    return unpack(Atomics.load(this.#state, 0)).count;
  }

  /** True while the barrier is broken (until `reset()`). */
  get broken(): boolean {
    this.checkOpen();
    return unpack(Atomics.load(this.#state, 0)).broken;
  }

  /**
   * Arrives and waits, without blocking the event loop, until all parties
   * have arrived.
   *
   * Errors: `ERR_MULTIPROC_BARRIER_BROKEN` (broken before or while waiting,
   * or reset while waiting), `ERR_MULTIPROC_TIMEOUT` and `ABORT_ERR` (this
   * party gave up; the barrier is now broken), `ERR_MULTIPROC_CLOSED` (also
   * when closed while waiting, which breaks the barrier too), argument errors.
   */
  async wait(options?: WaitOptions): Promise<BarrierResult> {
    const opts = this.waitOptions(options, true);
    return this.#waits.drive(this.buffer, this.#loop(), opts);
  }

  /**
   * Like {@link Barrier.wait}, blocking this thread. Meant for worker
   * threads; on the main thread it stalls the event loop.
   * Errors: as {@link Barrier.wait}, without `ABORT_ERR`.
   */
  waitSync(options?: WaitSyncOptions): BarrierResult {
    const opts = this.waitOptions(options, false);
    return driveSync(this.buffer, this.#loop(), opts);
  }

  /**
   * Breaks the barrier: parties waiting now and every later `wait()` fail
   * with `ERR_MULTIPROC_BARRIER_BROKEN` until `reset()`. Errors: `ERR_MULTIPROC_CLOSED`.
   */
  abort(): void {
    this.checkOpen();
    this.#break(undefined);
  }

  /**
   * Starts a fresh generation with nobody arrived and the barrier not broken.
   * Parties waiting in the old generation fail with
   * `ERR_MULTIPROC_BARRIER_BROKEN` (so may parties of a generation that
   * completed just before the reset but have not woken yet).
   * Errors: `ERR_MULTIPROC_CLOSED`.
   */
  reset(): void {
    this.checkOpen();
    let v = Atomics.load(this.#state, 0);
    for (;;) {
      const s = unpack(v);
      const next = pack({ gen: (s.gen + 1) >>> 0, count: 0, broken: false, since: 1 });
      const seen = Atomics.compareExchange(this.#state, 0, v, next);
      if (seen === v) break;
      v = seen;
    }
    this.#changed();
  }

  /**
   * Closes this handle: unmaps a named barrier's segment (removing the name
   * if this handle created it). Pending `wait` calls of this handle break the
   * barrier and reject with `ERR_MULTIPROC_CLOSED`. Idempotent.
   */
  override close(): void {
    this.#waits.closeAll();
    super.close();
  }

  #changed(): void {
    Atomics.add(this.i32, this.index + SEQ, 1);
    if (Atomics.load(this.i32, this.index + WAITERS) > 0) wake(this.buffer, this.offset + SEQ * 4);
  }

  /** Breaks generation `gen` (the current one when undefined) unless it has ended. */
  #break(gen: number | undefined): void {
    let v = Atomics.load(this.#state, 0);
    for (;;) {
      const s = unpack(v);
      if (s.broken || (gen !== undefined && s.gen !== gen)) return;
      const seen = Atomics.compareExchange(this.#state, 0, v, pack({ ...s, broken: true }));
      if (seen === v) break;
      v = seen;
    }
    this.#changed();
  }

  #brokenError(): BrokenBarrierError {
    return new BrokenBarrierError(`${this.label} is broken: a party gave up, or it was aborted or reset`);
  }

  *#loop(): WaitLoop<BarrierResult> {
    let gen = -1; // the generation we arrived in
    let registered = false;
    let settled = false;
    try {
      for (;;) {
        // Read SEQ before STATE: any change after this read bumps SEQ and ends our sleep.
        const seq = Atomics.load(this.i32, this.index + SEQ);
        const v = Atomics.load(this.#state, 0);
        const s = unpack(v);
        if (gen < 0) {
          if (s.broken) throw this.#brokenError();
          if (s.count + 1 >= this.#parties) {
            const next = pack({ gen: (s.gen + 1) >>> 0, count: 0, broken: false, since: Math.min(s.since + 1, SINCE_NONE) });
            if (Atomics.compareExchange(this.#state, 0, v, next) !== v) continue;
            this.#changed();
            return { serial: true };
          }
          if (Atomics.compareExchange(this.#state, 0, v, pack({ ...s, count: s.count + 1 })) !== v) continue;
          gen = s.gen;
          continue;
        }
        if (s.gen !== gen) {
          settled = true;
          // A reset began a generation after ours started: ours did not complete.
          if (s.since !== SINCE_NONE && s.since <= ((s.gen - gen) >>> 0)) throw this.#brokenError();
          return { serial: false };
        }
        if (s.broken) {
          settled = true;
          throw this.#brokenError();
        }
        if (!registered) {
          Atomics.add(this.i32, this.index + WAITERS, 1);
          registered = true;
          continue;
        }
        yield { offset: this.offset + SEQ * 4, expected: seq };
      }
    } finally {
      if (registered) Atomics.sub(this.i32, this.index + WAITERS, 1);
      // We arrived and gave up (timeout, abort, close): the others must not wait for us.
      if (gen >= 0 && !settled) this.#break(gen);
    }
  }
}
