/**
 * What the local Pool and the NATS pool share: the checks of the constructor's
 * option names and of `run`'s arguments, and the mapping methods (`map`,
 * `starmap`, `imap`, `imapUnordered`) over the chunk engine of chunks.ts.
 * Each pool supplies only its defaults and how one chunk is submitted.
 * @internal
 */
import { typeError, validateBoolean, validateInteger, validateOptions, validateSignal, validateString, validateTimeout } from '../errors.js';
import { chunkStream, flatten } from './chunks.js';
import { Histogram } from './histogram.js';
import type { MapOptions, PoolOptions, PoolStats, RunOptions } from './pool.js';

const POOL_OPTIONS = [
  'module', 'size', 'maxTasksPerWorker', 'concurrentTasksPerWorker', 'taskTimeout', 'idleTimeout', 'retries', 'cancelGrace', 'transport', 'permissions', 'env', 'execArgv', 'shmThreshold', 'nats',
];

/** Checks that the options of a pool (local or across hosts) are an object with only known names. @internal */
export function poolOptions(options: unknown): Partial<PoolOptions> {
  if (options === null || typeof options !== 'object') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "options" argument must be of type object. Received ${options === null ? 'null' : typeof options}`);
  }
  return validateOptions<PoolOptions>(options, 'options', POOL_OPTIONS);
}

function validateFn(fn: unknown): string {
  validateString(fn, 'fn');
  if ((fn as string).length === 0) throw typeError('ERR_INVALID_ARG_VALUE', "The argument 'fn' must be the name of an exported function. Received ''");
  return fn as string;
}

function isIterable(x: unknown): x is Iterable<unknown> | AsyncIterable<unknown> {
  return x !== null && x !== undefined && (typeof (x as any)[Symbol.iterator] === 'function' || typeof (x as any)[Symbol.asyncIterator] === 'function');
}

/**
 * Checks the arguments of `run` (all but the elements of `transfer`, which
 * only the local pool sends through shared memory). `timeout` falls back to
 * `defaultTimeout`. @internal
 */
export function runArguments<T extends number | undefined>(
  fn: unknown,
  args: unknown,
  options: RunOptions | undefined,
  defaultTimeout: T,
): { signal: AbortSignal | undefined; timeout: number | T; transfer: readonly unknown[] | undefined } {
  validateFn(fn);
  if (!Array.isArray(args)) throw typeError('ERR_INVALID_ARG_TYPE', `The "args" argument must be an array. Received ${args === null ? 'null' : typeof args}`);
  const o = validateOptions<RunOptions>(options, 'options', ['signal', 'timeout', 'transfer']);
  const signal = validateSignal(o.signal);
  const timeout = o.timeout === undefined ? defaultTimeout : validateTimeout(o.timeout);
  if (o.transfer !== undefined && !Array.isArray(o.transfer)) throw typeError('ERR_INVALID_ARG_TYPE', 'The "options.transfer" property must be an array');
  return { signal, timeout, transfer: o.transfer };
}

/** The counters and latencies behind a pool's `stats()`. @internal */
export class TaskTally {
  completed = 0;
  failed = 0;
  retried = 0;
  cancelled = 0;
  readonly runTime = new Histogram();
  readonly waitTime = new Histogram();

  /** Stops watching the task's signal, counts the outcome and settles the task's promise. */
  settle(task: { offAbort: (() => void) | undefined; resolve: (value: any) => void; reject: (err: unknown) => void }, err: unknown, value: unknown, ok: boolean): void {
    task.offAbort?.();
    if (ok) {
      this.completed++;
      task.resolve(value);
    } else {
      this.failed++;
      task.reject(err);
    }
  }

  /** The pool's stats: these counters with what the pool sees now. */
  stats(now: Pick<PoolStats, 'queued' | 'running' | 'workers' | 'idleWorkers' | 'workerExits'>): PoolStats {
    return {
      completed: this.completed,
      failed: this.failed,
      retried: this.retried,
      cancelled: this.cancelled,
      queued: now.queued,
      running: now.running,
      workers: now.workers,
      idleWorkers: now.idleWorkers,
      workerExits: now.workerExits,
      runTime: this.runTime.summary(),
      waitTime: this.waitTime.summary(),
    };
  }
}

/** The defaults of map and friends on one pool. @internal */
export interface MapDefaults {
  /** The pool's size: `map` over an array cuts it into about 4 chunks per unit of it. */
  size: number;
  /** Chunks submitted and not yet consumed, at most. */
  window: number;
  /** Ms each chunk may run (undefined: as the pool that runs it decides). */
  timeout: number | undefined;
}

/**
 * The methods of {@link Pool} and {@link NatsPool} that work the same on both.
 * @internal
 */
export abstract class PoolBase {
  /** The defaults of the mapping methods. @internal */
  protected abstract _mapDefaults(): MapDefaults;

  /** Submits one chunk of a map: `fn` on each item (spread as arguments with `star`); resolves with its results. @internal */
  protected abstract _submitChunk(fn: string, chunk: unknown[], star: boolean, timeout: number | undefined, signal: AbortSignal): Promise<unknown[]>;

  /** Checks the `ordered` option of `map` and `starmap`. @internal */
  protected _checkOrdered(value: unknown): boolean {
    return validateBoolean(value, 'options.ordered');
  }

  /**
   * Runs `fn(item)` for every item of `items` (an array, an iterable or an
   * async iterable) and resolves with the results: in input order, or with
   * `ordered: false` in completion order. Items go to the workers in chunks of
   * `chunkSize`. The first failure rejects the whole call and cancels the rest.
   * Errors as {@link Pool.run}.
   */
  async map<R = any>(fn: string, items: Iterable<unknown> | AsyncIterable<unknown>, options?: MapOptions): Promise<R[]> {
    return collect<R>(this.#chunks(fn, items, options, false, true, true));
  }

  /** {@link Pool.map} for items that are argument lists: calls `fn(...item)`. */
  async starmap<R = any>(fn: string, items: Iterable<readonly unknown[]> | AsyncIterable<readonly unknown[]>, options?: MapOptions): Promise<R[]> {
    return collect<R>(this.#chunks(fn, items, options, true, true, true));
  }

  /**
   * An async iterator of `fn(item)` over `items`, in input order. At most
   * `window` chunks are submitted and not yet consumed, so an endless (or
   * huge) source is read only as fast as results are consumed. Leaving the
   * loop early cancels the chunks in flight and closes the source.
   * Errors as {@link Pool.run}, thrown from the loop.
   */
  imap<R = any>(fn: string, items: Iterable<unknown> | AsyncIterable<unknown>, options?: Omit<MapOptions, 'ordered'>): AsyncGenerator<R, void, undefined> {
    return flatten<R>(this.#chunks(fn, items, options, false, true, false));
  }

  /** As {@link Pool.imap}, yielding results as they complete. */
  imapUnordered<R = any>(fn: string, items: Iterable<unknown> | AsyncIterable<unknown>, options?: Omit<MapOptions, 'ordered'>): AsyncGenerator<R, void, undefined> {
    return flatten<R>(this.#chunks(fn, items, options, false, false, false));
  }

  /** The results chunk by chunk (one array per chunk): map collects them, imap flattens them. */
  #chunks(fn: string, items: unknown, options: MapOptions | undefined, star: boolean, orderedDefault: boolean, eager: boolean): AsyncGenerator<unknown[], void, undefined> {
    // Arguments are checked at the call, not at the first next().
    validateFn(fn);
    if (!isIterable(items)) throw typeError('ERR_INVALID_ARG_TYPE', 'The "items" argument must be an iterable or an async iterable');
    const o = validateOptions<MapOptions>(options, 'options', eager ? ['chunkSize', 'ordered', 'window', 'signal', 'timeout'] : ['chunkSize', 'window', 'signal', 'timeout']);
    const defaults = this._mapDefaults();
    let chunkSize: number;
    if (o.chunkSize !== undefined) chunkSize = validateInteger(o.chunkSize, 'options.chunkSize', 1);
    else chunkSize = eager && Array.isArray(items) ? Math.max(1, Math.ceil(items.length / (defaults.size * 4))) : 1;
    const ordered = o.ordered === undefined ? orderedDefault : this._checkOrdered(o.ordered);
    const window = o.window === undefined ? defaults.window : validateInteger(o.window, 'options.window', 1);
    const signal = validateSignal(o.signal);
    const timeout = o.timeout === undefined ? defaults.timeout : validateTimeout(o.timeout);
    return chunkStream((chunk, sig) => this._submitChunk(fn, chunk, star, timeout, sig), items, chunkSize, ordered, window, signal, star);
  }

  /** Graceful shutdown; see each pool. */
  abstract close(): Promise<void>;

  /** Same as `close()`: `await using pool = new Pool(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function collect<R>(chunks: AsyncGenerator<unknown[], void, undefined>): Promise<R[]> {
  const out: R[] = [];
  for await (const chunk of chunks) for (let i = 0; i < chunk.length; i++) out.push(chunk[i] as R);
  return out;
}
