/**
 * Waiting on futex words, two ways, with one algorithm.
 *
 * Each primitive describes its wait loop once, as a generator that yields
 * "wait until the word at `offset` no longer holds `expected`" requests. The
 * async driver waits through the addon's futex service (no thread per waiter,
 * no polling; the event loop keeps running); the sync driver blocks the
 * calling thread in futex(2). Cleanup after a timeout or abort happens in the
 * generator's `finally`.
 *
 * @internal
 */
import { native, WaitResult } from '../binding/native.js';
import { AbortError, TimeoutError } from '../errors.js';
import { setLongTimeout, type LongTimeout } from '../long-timeout.js';
import { waitBell } from './bell.js';

/** One wait: until the 32-bit word at `offset` differs from `expected`, or `slice` ms pass. @internal */
export interface WaitRequest {
  offset: number;
  expected: number;
  /** Wake up after this many ms even if nobody woke us (for liveness checks). */
  slice?: number;
  /** Async only: wait for this token on the environment's doorbell instead of the futex word (see bell.ts). */
  bell?: number;
}

/** A wait loop. `next(true)` means woken (or value changed), `next(false)` means the slice ran out. @internal */
export type WaitLoop<R> = Generator<WaitRequest, R, boolean>;

const pending = new Map<number, () => void>();
let nextId = 1;
native.futexSetCallback((ids: number[]) => {
  for (const id of ids) pending.get(id)?.();
});

const kIndefinite = -1;

/**
 * What a wait uses of an AbortSignal. Internal callers may pass a cheaper
 * stand-in ({@link WaitCancel}): on a parked path, making an AbortController
 * per wait cost more than the rest of the wake-up. @internal
 */
export interface WaitSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** A one-shot abort flag with listeners, shaped like the part of AbortSignal that waits use. @internal */
export class WaitCancel implements WaitSignal {
  aborted = false;
  reason: unknown = undefined;
  #listeners: (() => void)[] = [];

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.#listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.#listeners.indexOf(listener);
    if (i >= 0) this.#listeners.splice(i, 1);
  }

  /** Sets the flag and calls each listener once (later calls do nothing). */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const fn of listeners) fn();
  }
}

function waitOnce(buffer: SharedArrayBuffer, req: WaitRequest, ms: number, signal: WaitSignal | undefined): boolean | Promise<boolean> {
  if (req.bell !== undefined) return waitBell(req.bell, ms, signal);
  const id = nextId++;
  if (nextId > Number.MAX_SAFE_INTEGER) nextId = 1;
  if (native.futexWaitAsync(buffer, req.offset, req.expected, id) === 1) return true;
  return new Promise<boolean>((resolve, reject) => {
    let timer: LongTimeout | undefined;
    const done = (): void => {
      pending.delete(id);
      timer?.clear();
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      native.futexCancelAsync(id);
      done();
      reject(new AbortError(undefined, { cause: signal?.reason }));
    };
    pending.set(id, () => {
      done();
      resolve(true);
    });
    if (ms !== kIndefinite) {
      timer = setLongTimeout(() => {
        native.futexCancelAsync(id);
        done();
        resolve(false);
      }, ms);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** @internal */
export interface DriveOptions {
  timeout: number;
  signal?: WaitSignal | undefined;
  /** What is waited for, for error messages: "mutex 'jobs'". */
  what: string;
  /** Absolute deadline (performance.now() ms) when a caller spreads one timeout over several waits. */
  deadline?: number;
}

function slice(req: WaitRequest, deadline: number): number {
  const left = deadline === Infinity ? Infinity : Math.max(0, deadline - performance.now());
  const ms = Math.min(left, req.slice ?? Infinity);
  return ms === Infinity ? kIndefinite : Math.ceil(ms);
}

/** @internal */
export function timeoutError(opts: DriveOptions): TimeoutError {
  return new TimeoutError(`timed out after ${opts.timeout} ms waiting for ${opts.what}`, opts.timeout);
}

/** Runs a wait loop without blocking the event loop. @internal */
export async function driveAsync<R>(buffer: SharedArrayBuffer, loop: WaitLoop<R>, opts: DriveOptions): Promise<R> {
  const deadline = opts.deadline ?? (opts.timeout === Infinity ? Infinity : performance.now() + opts.timeout);
  let woken = true;
  try {
    if (opts.signal?.aborted) throw new AbortError(undefined, { cause: opts.signal.reason });
    for (;;) {
      const step = loop.next(woken);
      if (step.done) return step.value;
      const req = step.value;
      if (deadline !== Infinity && performance.now() >= deadline) throw timeoutError(opts);
      const r = waitOnce(buffer, req, slice(req, deadline), opts.signal);
      woken = r === true || r === false ? r : await r;
      if (!woken && deadline !== Infinity && performance.now() >= deadline) throw timeoutError(opts);
    }
  } finally {
    loop.return(undefined as R);
  }
}

/** Runs a wait loop, blocking the calling thread (meant for worker threads). @internal */
export function driveSync<R>(buffer: SharedArrayBuffer, loop: WaitLoop<R>, opts: DriveOptions): R {
  const deadline = opts.deadline ?? (opts.timeout === Infinity ? Infinity : performance.now() + opts.timeout);
  let woken = true;
  try {
    for (;;) {
      const step = loop.next(woken);
      if (step.done) return step.value;
      const req = step.value;
      if (req.bell !== undefined) throw new Error('internal: a doorbell wait in a blocking wait loop');
      if (deadline !== Infinity && performance.now() >= deadline) throw timeoutError(opts);
      woken = futexWaitSliced(buffer, req.offset, req.expected, slice(req, deadline));
      if (!woken && deadline !== Infinity && performance.now() >= deadline) throw timeoutError(opts);
    }
  } finally {
    loop.return(undefined as R);
  }
}

/**
 * Longest a blocking wait stays in the kernel at a time, ms. A thread asleep
 * in futex(2) cannot be stopped by worker.terminate() or process.exit() (V8
 * only stops running JavaScript), so blocking waits come back to JavaScript
 * this often; it costs one wake-up per slice of a long wait. @internal
 */
export const SYNC_SLICE_MS = 200;

/**
 * futexWait for `ms` (-1: no limit), in slices of at most SYNC_SLICE_MS.
 * True when woken or the value differs, false when `ms` ran out. @internal
 */
export function futexWaitSliced(buffer: SharedArrayBuffer, offset: number, expected: number, ms: number): boolean {
  const end = ms === kIndefinite ? Infinity : performance.now() + ms;
  for (;;) {
    const left = end === Infinity ? SYNC_SLICE_MS : Math.max(0, Math.ceil(end - performance.now()));
    const r = native.futexWait(buffer, offset, expected, Math.min(left, SYNC_SLICE_MS));
    if (r !== WaitResult.TimedOut) return true;
    // The end of a slice is not a timeout: wait again (the word is checked anew).
    if (end !== Infinity && performance.now() >= end) return false;
  }
}

/** Wakes up to `count` waiters (all when omitted) on the word at `offset`, in every process. @internal */
export function wake(buffer: SharedArrayBuffer, offset: number, count = -1): number {
  return native.futexWake(buffer, offset, count);
}
