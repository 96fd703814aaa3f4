/**
 * taskContext(): what a task function running in a pool worker can learn
 * about its task, above all the AbortSignal that tells it to stop.
 */
import { typeError } from '../errors.js';

/** What a task function can learn about the task it runs; see {@link taskContext}. */
export interface TaskContext {
  /**
   * Aborts when the task is cancelled: the caller's `signal` aborted, a map
   * was cancelled or an imap loop ended early (reason: an `AbortError`), or its
   * `taskTimeout` / `timeout` elapsed (a `TimeoutError`); a `ClosedError` if
   * the connection to the pool ends. Stop soon: after the pool's
   * `cancelGrace` the worker is killed.
   */
  readonly signal: AbortSignal;
  /** The name of the task function. */
  readonly name: string;
  /** The task's id, unique within its pool, for logs. */
  readonly id: number;
}

// On globalThis, so that the worker runtime and a task module that loaded
// another copy of the library see the same context.
const SLOT = Symbol.for('multiproc.pool.task.v1');
type Slot = { current: TaskContext | undefined };
const slot: Slot = ((globalThis as Record<symbol, unknown>)[SLOT] as Slot | undefined) ?? ((globalThis as Record<symbol, unknown>)[SLOT] = { current: undefined } as Slot);

/**
 * The context of the pool task being run: its `signal`, `name` and `id`.
 *
 * Call it synchronously at the start of the task function, before its first
 * `await`, and keep the object; it is valid for the whole task. (The same rule
 * as RPC's `callContext()`, for the same reason: no AsyncLocalStorage cost on
 * every promise.)
 *
 * ```ts
 * export async function crunch(n: number) {
 *   const { signal } = taskContext();
 *   for (let i = 0; i < n; i++) {
 *     signal.throwIfAborted();
 *     await step(i);
 *   }
 * }
 * ```
 *
 * Errors: `ERR_INVALID_STATE` (TypeError) outside the synchronous start of a task function.
 */
export function taskContext(): TaskContext {
  if (slot.current === undefined) {
    throw typeError('ERR_INVALID_STATE', 'taskContext() is only available synchronously in a pool task function, before its first await; keep the object it returns');
  }
  return slot.current;
}

/** Runs `fn(...args)` with `ctx` as the current context during its synchronous start. @internal */
export function runWithContext(ctx: TaskContext, fn: Function, thisArg: unknown, args: unknown[]): unknown {
  const previous = slot.current;
  slot.current = ctx;
  try {
    return fn.apply(thisArg, args);
  } finally {
    slot.current = previous;
  }
}
