/**
 * The handoff rotation, both sides, shared by trial.ts (side A, measuring)
 * and partner.ts (side B). bench/c/lock_handoff.c does the same in C.
 *
 * Three mutexes L0, L1, L2. A starts holding L0 and L1, B holds L2.
 * Step i of A: release L[i%3], acquire L[(i+2)%3].
 * Step i of B: acquire L[i%3], release L[(i+2)%3].
 * Every acquire waits for a lock the other process holds and every release
 * is what the other waits for, so the two strictly alternate: one step of A
 * is one round trip, two handoffs (A -> B -> A). Only owners release, as a
 * mutex requires.
 *
 * Modes: `sync` and `async` use the public API (acquireSync / await acquire).
 * The diagnostic modes take pieces away: `sync-nospin` calls the addon's
 * blocking lock with no spin phase; `async-wait` drops the mutex and passes a
 * turn word back and forth through the library's event-loop wait (the futex
 * service), to show what the waiting machinery alone costs.
 */
import { Mutex, type MutexGuard, type SharedMemory } from '../../src/index.js';
import { native } from '../../src/binding/native.js';
import { driveAsync, type WaitLoop } from '../../src/sync/wait.js';

export type HandoffMode = 'sync' | 'async' | 'sync-nospin' | 'async-wait';
export const handoffModes: readonly HandoffMode[] = ['sync', 'async', 'sync-nospin', 'async-wait'];

/** Three mutexes, then the partner's ready flag and the turn word. */
export const HANDOFF_SEGMENT_SIZE = 4096;
const READY_INDEX = (3 * Mutex.byteLength) / 4;
const TURN_INDEX = READY_INDEX + 1;

function* until(i32: Int32Array, index: number, want: number): WaitLoop<void> {
  for (;;) {
    const v = Atomics.load(i32, index);
    if (v === want) return;
    yield { offset: index * 4, expected: v };
  }
}

export class Rotation {
  readonly #mode: HandoffMode;
  readonly #buffer: SharedArrayBuffer;
  readonly #i32: Int32Array;
  readonly #locks: Mutex[];
  readonly #guards: (MutexGuard | null)[] = [null, null, null];
  /** Locks held through the addon directly (sync-nospin). */
  readonly #raw = new Set<number>();

  constructor(shm: SharedMemory, mode: HandoffMode) {
    this.#mode = mode;
    this.#buffer = shm.buffer;
    this.#i32 = new Int32Array(shm.buffer);
    this.#locks = [0, 1, 2].map((i) => new Mutex(shm, i * Mutex.byteLength));
  }

  #take(k: number): void {
    if (this.#mode === 'sync-nospin') {
      const r = native.mutexLock(this.#buffer, k * Mutex.byteLength, -1, 0);
      if (r !== 1 && r !== 2) throw new Error(`mutexLock failed (${r})`);
      this.#raw.add(k);
    } else {
      this.#guards[k] = this.#locks[k]!.acquireSync();
    }
  }

  async #takeAsync(k: number): Promise<void> {
    this.#guards[k] = await this.#locks[k]!.acquire();
  }

  #give(k: number): void {
    if (this.#mode === 'sync-nospin') {
      native.mutexUnlock(this.#buffer, k * Mutex.byteLength);
      this.#raw.delete(k);
    } else {
      this.#guards[k]!.release();
      this.#guards[k] = null;
    }
  }

  /** Takes the starting locks of side A or B (they are free). */
  start(side: 'A' | 'B'): void {
    if (this.#mode === 'async-wait') return;
    for (const k of side === 'A' ? [0, 1] : [2]) {
      if (this.#mode === 'sync-nospin') this.#take(k);
      else if ((this.#guards[k] = this.#locks[k]!.tryAcquire()) === null) throw new Error(`L${k} is not free`);
    }
  }

  /** B: tells A that it holds its starting lock. */
  signalReady(): void {
    Atomics.store(this.#i32, READY_INDEX, 1);
  }

  get ready(): boolean {
    return Atomics.load(this.#i32, READY_INDEX) === 1;
  }

  /** Side A: `steps` round trips; the last `samples.length` are timed (ms). */
  async runA(steps: number, samples: Float64Array): Promise<void> {
    const first = steps - samples.length;
    let last = performance.now();
    const mark = (i: number): void => {
      const now = performance.now();
      if (i >= first) samples[i - first] = now - last;
      last = now;
    };
    switch (this.#mode) {
      case 'sync':
      case 'sync-nospin':
        for (let i = 0; i < steps; i++) {
          this.#give(i % 3);
          this.#take((i + 2) % 3);
          mark(i);
        }
        break;
      case 'async':
        for (let i = 0; i < steps; i++) {
          this.#give(i % 3);
          await this.#takeAsync((i + 2) % 3);
          mark(i);
        }
        break;
      case 'async-wait': {
        const opts = { timeout: Infinity, what: 'turn' };
        for (let i = 0; i < steps; i++) {
          Atomics.store(this.#i32, TURN_INDEX, 1);
          native.futexWake(this.#buffer, TURN_INDEX * 4, 1);
          await driveAsync(this.#buffer, until(this.#i32, TURN_INDEX, 0), opts);
          mark(i);
        }
        break;
      }
    }
  }

  /** Side B: `steps` steps. */
  async runB(steps: number): Promise<void> {
    switch (this.#mode) {
      case 'sync':
      case 'sync-nospin':
        for (let i = 0; i < steps; i++) {
          this.#take(i % 3);
          this.#give((i + 2) % 3);
        }
        break;
      case 'async':
        for (let i = 0; i < steps; i++) {
          await this.#takeAsync(i % 3);
          this.#give((i + 2) % 3);
        }
        break;
      case 'async-wait': {
        const opts = { timeout: Infinity, what: 'turn' };
        for (let i = 0; i < steps; i++) {
          await driveAsync(this.#buffer, until(this.#i32, TURN_INDEX, 1), opts);
          Atomics.store(this.#i32, TURN_INDEX, 0);
          native.futexWake(this.#buffer, TURN_INDEX * 4, 1);
        }
        break;
      }
    }
  }

  /** Releases whatever this side still holds. Safe to call twice. */
  releaseAll(): void {
    for (const g of this.#guards) g?.release();
    this.#guards.fill(null);
    for (const k of this.#raw) native.mutexUnlock(this.#buffer, k * Mutex.byteLength);
    this.#raw.clear();
  }
}
