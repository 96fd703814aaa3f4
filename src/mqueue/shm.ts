/**
 * The `shm` backend: our own queue in a shared-memory segment,
 * `/mp.shmq.<name>` (layout and crash safety in shm-store.ts).
 *
 * - One robust Mutex guards the structure; its critical sections are short
 *   (a copy of one payload and a few words). A process killed while holding
 *   it hands the next holder `ownerDied`, which repairs the structure first.
 * - Two doorbells (backend.ts): "not empty", rung after every send, and
 *   "not full", rung after every receive. Waiters sleep on them through the
 *   addon's futex service (no thread), and re-check once a second: a process
 *   killed between its change to the queue and its ring never rings.
 * - No kernel limits: capacity in messages and in bytes is chosen at create.
 *
 * @internal
 */
import { statSync } from 'node:fs';
import { native } from '../binding/native.js';
import { ClosedError, IncompatibleError, TimeoutError, rangeError } from '../errors.js';
import type { Wait } from '../channel/base-channel.js';
import type { Frame } from '../channel/framing.js';
import { SharedMemory, maxBufferSize, type CreationMode } from '../shm/shared-memory.js';
import { Mutex, type MutexGuard } from '../sync/mutex.js';
import { arm, ring, sleep, type Backend, type MessageQueueStat } from './backend.js';
import { H_MAGIC, H_NOT_EMPTY, H_NOT_FULL, H_READY, H_VERSION, MAGIC, MUTEX_OFFSET, ShmStore, VERSION, segmentSize } from './shm-store.js';

/** @internal */
export interface ShmParams {
  creation: CreationMode;
  mode: number;
  capacity: number;
  capacityBytes: number;
  maxMessageSize: number;
}

/**
 * How long a waiter sleeps on a doorbell before it looks at the queue anyway
 * (ms): the ring of a process killed after its commit never comes.
 */
const LIVENESS_SLICE = 1000;

/** Largest segment we lay out: offsets are 32-bit signed words. */
const MAX_SEGMENT = Math.min(maxBufferSize, 2 ** 31 - 8);

/** @internal */
export class ShmBackend implements Backend {
  readonly kind = 'shm' as const;
  readonly name: string;
  readonly label: string;
  readonly maxMessageSize: number;
  readonly minPriority = -(2 ** 31);
  readonly maxPriority = 2 ** 31 - 1;
  readonly #shm: SharedMemory;
  readonly #store: ShmStore;
  readonly #i32: Int32Array;
  readonly #mutex: Mutex;
  #closed = false;
  /**
   * Guards of this handle not yet released. An async acquire hands its guard
   * over through a promise, so a close can come while one is in flight: the
   * segment is then unmapped by the last release.
   */
  #held = 0;
  #unmapped = false;

  constructor(name: string, p: ShmParams) {
    this.name = name;
    this.label = `message queue '${name}' (shm)`;
    const segName = `/mp.shmq.${name}`;
    let shm: SharedMemory | undefined;
    let fresh = false;
    if (p.creation !== 'open') {
      const { size } = segmentSize(p.capacity, p.capacityBytes);
      if (size > MAX_SEGMENT) {
        throw rangeError(
          `a queue of ${p.capacity} messages and ${p.capacityBytes} bytes needs a ${size}-byte segment; at most ${MAX_SEGMENT} bytes are supported`,
        );
      }
      try {
        shm = SharedMemory.create(segName, size, { mode: p.mode, creation: p.creation === 'purgeAndCreate' ? 'purgeAndCreate' : 'create' });
        fresh = true;
      } catch (err) {
        if (p.creation !== 'openOrCreate' || (err as { code?: string }).code !== 'EEXIST') throw err;
      }
    }
    shm ??= SharedMemory.open(segName);
    this.#shm = shm;
    this.#store = new ShmStore(shm.buffer);
    this.#i32 = this.#store.i32;
    try {
      if (fresh) {
        this.#store.init(p.capacity, p.capacityBytes, p.maxMessageSize);
        Atomics.store(this.#i32, H_READY, 1);
        native.futexWake(shm.buffer, H_READY * 4, -1);
      } else {
        this.#attach(segName);
      }
      this.#mutex = new Mutex(shm, MUTEX_OFFSET);
    } catch (err) {
      shm.close();
      throw err;
    }
    this.maxMessageSize = this.#store.maxMessageSize;
  }

  #attach(segName: string): void {
    const i = this.#i32;
    if (Atomics.load(i, H_READY) === 0) {
      native.futexWait(this.#shm.buffer, H_READY * 4, 0, 2000);
      if (Atomics.load(i, H_READY) === 0) throw new TimeoutError(`${this.label} was never initialized by its creator`, 2000);
    }
    if (i[H_MAGIC] !== MAGIC || i[H_VERSION] !== VERSION) {
      throw new IncompatibleError(`'${segName}' is not a shared-memory message queue of layout ${VERSION}`);
    }
  }

  get owner(): boolean {
    return this.#shm.owner;
  }

  get closed(): boolean {
    return this.#closed;
  }

  disown(): void {
    this.#shm.disown();
  }

  // --- locking --------------------------------------------------------------

  /** The lock without sleeping: free, or free after a brief spin; else null. */
  #lockNow(): MutexGuard | null {
    let g = this.#mutex.tryAcquire();
    if (g === null) {
      try {
        g = this.#mutex.acquireSync({ timeout: 0 });
      } catch {
        return null;
      }
    }
    this.#held++;
    return g;
  }

  async #lock(wait: Wait): Promise<MutexGuard> {
    let g = this.#mutex.tryAcquire();
    if (g === null) {
      const timeout = wait.deadline === Infinity ? undefined : Math.max(0, wait.deadline - performance.now());
      try {
        g = await this.#mutex.acquire({ ...(timeout === undefined ? {} : { timeout }), ...(wait.signal ? { signal: wait.signal } : {}) });
      } catch (err) {
        if (err instanceof TimeoutError) throw new TimeoutError(`timed out after ${wait.timeout} ms waiting for ${wait.what}`, wait.timeout);
        throw err;
      }
    }
    this.#held++;
    return g;
  }

  #unlock(g: MutexGuard): void {
    g.release();
    this.#held--;
    if (this.#closed && this.#held === 0) this.#unmap();
  }

  #put(g: MutexGuard, frame: Frame): boolean {
    const repaired = this.#repairIfDied(g);
    try {
      return this.#store.put(frame.type, frame.priority, frame.payload);
    } finally {
      this.#unlock(g);
      if (repaired) this.#ringBoth();
    }
  }

  #take(g: MutexGuard, selector: number): Frame | undefined {
    const repaired = this.#repairIfDied(g);
    try {
      return this.#store.take(selector);
    } finally {
      this.#unlock(g);
      if (repaired) this.#ringBoth();
    }
  }

  /** Repairs the queue when the last holder of `g`'s lock died holding it; releases `g` if that throws. */
  #repairIfDied(g: MutexGuard): boolean {
    if (!g.ownerDied) return false;
    try {
      this.#store.repair();
    } catch (err) {
      this.#unlock(g);
      throw err;
    }
    return true;
  }

  /**
   * After a repair: the dead holder may have committed a send or a receive
   * without ringing; whoever sleeps on either doorbell looks again now.
   */
  #ringBoth(): void {
    ring(this.#i32, H_NOT_EMPTY);
    ring(this.#i32, H_NOT_FULL);
  }

  // --- messages ---------------------------------------------------------------

  trySend(frame: Frame): boolean {
    this.#check();
    const g = this.#lockNow();
    if (g === null) return false;
    const ok = this.#put(g, frame);
    if (ok) ring(this.#i32, H_NOT_EMPTY);
    return ok;
  }

  async send(frame: Frame, wait: Wait): Promise<void> {
    for (;;) {
      this.#check();
      const armed = arm(this.#i32, H_NOT_FULL);
      const g = await this.#lock(wait);
      this.#check(g);
      if (this.#put(g, frame)) {
        ring(this.#i32, H_NOT_EMPTY);
        return;
      }
      await sleep(this.#i32, H_NOT_FULL, armed, wait, LIVENESS_SLICE);
    }
  }

  tryReceive(selector: number): Frame | undefined {
    this.#check();
    // Busy lock: report nothing; the waiting path takes the lock properly.
    const g = this.#mutex.tryAcquire();
    if (g === null) return undefined;
    this.#held++;
    const f = this.#take(g, selector);
    if (f !== undefined) ring(this.#i32, H_NOT_FULL);
    return f;
  }

  async receive(selector: number, wait: Wait): Promise<Frame> {
    for (;;) {
      this.#check();
      const armed = arm(this.#i32, H_NOT_EMPTY);
      const g = await this.#lock(wait);
      this.#check(g);
      const f = this.#take(g, selector);
      if (f !== undefined) {
        ring(this.#i32, H_NOT_FULL);
        return f;
      }
      await sleep(this.#i32, H_NOT_EMPTY, armed, wait, LIVENESS_SLICE);
    }
  }

  // --- state and lifetime -----------------------------------------------------

  stat(): MessageQueueStat {
    this.#check();
    return this.#store.stat(this.name, this.maxMessageSize, this.#mode());
  }

  #mode(): number | null {
    try {
      return statSync(`/dev/shm${this.#shm.name}`).mode & 0o777;
    } catch {
      return null; // unlinked
    }
  }

  unlink(): void {
    this.#shm.unlink();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#held === 0) this.#unmap();
  }

  #unmap(): void {
    if (this.#unmapped) return;
    this.#unmapped = true;
    this.#mutex.close();
    this.#shm.close();
  }

  /** Throws after close; releases `g` first when given. */
  #check(g?: MutexGuard): void {
    if (!this.#closed) return;
    if (g !== undefined) this.#unlock(g);
    throw new ClosedError(`${this.label} is closed`);
  }
}
