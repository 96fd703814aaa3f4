/**
 * Pool: a fixed-size set of worker processes (started with spawn()) that run
 * the exported functions of one task module. Tasks go to idle workers over an
 * RPC connection (a shared-memory ring pair, or a socket pair); large binary
 * arguments and results go through shared-memory segments. A worker that dies
 * fails (or retries) its task at once and is replaced; a task that ignores its
 * cancellation is stopped by killing its worker after a grace period.
 */
import { availableParallelism } from 'node:os';
import { basename, isAbsolute, resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Channel } from '../channel/channel.js';
import { ShmRing, type ShmRingDuplex } from '../channel/transports/shm-ring.js';
import {
  AbortError,
  ClosedError,
  MessageTooLargeError,
  TimeoutError,
  WorkerExitedError,
  typeError,
  validateInteger,
  validateOneOf,
  validateOptions,
  validateSignal,
  validateString,
  validateTimeout,
} from '../errors.js';
import { spawn, type ChildExit, type ChildHandle, type ProcessPermissions } from '../process/spawn.js';
import { connect, rpcClient, type RpcClient } from '../rpc/connect.js';
import { StatusPublisher } from '../resources/status.js';
import { SharedMemory } from '../shm/shared-memory.js';
import { Histogram, type LatencySummary } from './histogram.js';
import { NatsPool, type NatsPoolOptions } from './nats-pool.js';
import { forget, pack, remember, unlinkQuietly, unpack, type SegmentSource, type ShmPack } from './shm-args.js';

/** How tasks reach the workers. */
export type PoolTransport = 'shm-ring' | 'stream';

/** Options of {@link Pool}. */
export interface PoolOptions {
  /** The task module: a path (resolved against the current directory) or a `file:` URL. Its exported functions are the tasks. */
  module: string | URL;
  /** Number of worker processes, at most. Default `os.availableParallelism()`. Workers start on demand. */
  size?: number;
  /** Replace a worker after it ran this many tasks (a map chunk counts as one). Default `Infinity`. */
  maxTasksPerWorker?: number;
  /** Milliseconds a task may run, counted from its start on a worker (not from queueing). Default `Infinity`. */
  taskTimeout?: number;
  /** Close a worker that stayed idle this many milliseconds. Default `Infinity` (workers stay). */
  idleTimeout?: number;
  /** How many times a task whose worker died is run again on another worker. Default 0. */
  retries?: number;
  /** Milliseconds a cancelled (aborted or timed-out) task has to stop before its worker is killed and replaced. Default 1000. */
  cancelGrace?: number;
  /** The task channel: `'shm-ring'` (default; a pair of shared-memory rings) or `'stream'` (a Unix socket pair). */
  transport?: PoolTransport;
  /** Run the workers under Node's permission model (see `spawn`). The task module is readable; `addons` must stay allowed. */
  permissions?: ProcessPermissions;
  /** The workers' environment (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Node options for the workers, e.g. `['--max-old-space-size=256']`. */
  execArgv?: string[];
  /** Typed arrays, Buffers, DataViews and ArrayBuffers of at least this many bytes travel through shared memory. Default 65536; `Infinity` never. */
  shmThreshold?: number;
  /**
   * Workers on any host, through NATS: `new Pool` returns a {@link NatsPool}
   * with the same methods, whose tasks run on the hosts that serve the same
   * `nats.subject` (see `servePool`). The options above that configure worker
   * processes then belong to the hosts; `size` is the most tasks in flight.
   */
  nats?: NatsPoolOptions;
}

/** Options of {@link Pool.run}. */
export interface RunOptions {
  /** Cancels the task: a queued task is dropped, a running one is told through its `taskContext().signal`. */
  signal?: AbortSignal;
  /** Milliseconds this task may run once started; overrides `taskTimeout`. */
  timeout?: number;
  /** Binary values among the arguments (typed arrays, Buffers, DataViews, ArrayBuffers) to send through shared memory whatever their size. */
  transfer?: readonly unknown[];
}

/** Options of {@link Pool.map}, {@link Pool.imap}, {@link Pool.imapUnordered} and {@link Pool.starmap}. */
export interface MapOptions {
  /** Items per task. Default 1 for the iterators; for `map`/`starmap` over an array, enough for about 4 tasks per worker. */
  chunkSize?: number;
  /** Results in input order (default true for `map`, `imap`, `starmap`), or as they complete. */
  ordered?: boolean;
  /** Most chunks submitted but not yet consumed; bounds the items pulled ahead of the consumer. Default twice `size`. */
  window?: number;
  /** Cancels the whole operation: chunks in flight are cancelled and the source is closed. */
  signal?: AbortSignal;
  /** Milliseconds each chunk may run; overrides `taskTimeout`. */
  timeout?: number;
}

/** What {@link Pool.stats} reports. */
export interface PoolStats {
  /** Tasks (and map chunks) that completed with a result. */
  completed: number;
  /** Tasks that failed: the function threw, the worker died, timed out or was cancelled, or the pool was destroyed. */
  failed: number;
  /** Times a task was queued again after its worker died. */
  retried: number;
  /** Tasks that were cancelled through their signal or timed out (included in `failed`). */
  cancelled: number;
  /** Tasks waiting for a worker. */
  queued: number;
  /** Tasks running on a worker. */
  running: number;
  /** Worker processes alive (starting, idle, busy or stopping a cancelled task). */
  workers: number;
  /** Of those, idle ones. */
  idleWorkers: number;
  /** Workers that died or were killed and replaced. */
  workerExits: number;
  /** Run time of completed tasks: from the start on a worker to the result, in ms. */
  runTime: LatencySummary;
  /** Wait time of started tasks: from `run()` to the start on a worker, in ms. */
  waitTime: LatencySummary;
}

type WorkerState = 'starting' | 'idle' | 'busy' | 'draining' | 'retiring' | 'dead';

interface Task {
  id: number;
  method: 'run' | 'chunk';
  fn: string;
  tree: unknown[];
  star: boolean;
  timeout: number;
  transfer: ReadonlySet<unknown> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  controller: AbortController | undefined;
  attempts: number;
  queuedAt: number;
  startedAt: number;
  state: 'queued' | 'running' | 'done';
  resolve: (value: any) => void;
  reject: (err: unknown) => void;
}

interface PoolWorker {
  serial: number;
  handle: ChildHandle;
  ring: ShmRingDuplex<unknown> | undefined;
  channel: Channel<unknown> | undefined;
  client: RpcClient | undefined;
  state: WorkerState;
  task: Task | undefined;
  /** The result segment name of the current (or last cancelled) task, removed once the worker is idle or dead. */
  resultName: string | undefined;
  tasksRun: number;
  idleTimer: NodeJS.Timeout | undefined;
  everReady: boolean;
  /** Large arguments go here, reused from task to task; replaced by a bigger one when needed. */
  argSegment: SharedMemory | undefined;
  argName: string;
  /** Whether the argument segment still has its name (removed once the worker has mapped it). */
  argNamed: boolean;
  argGeneration: number;
}

const RING_CAPACITY = 4 << 20;
const MIN_ARG_SEGMENT = 256 * 1024;
const DEFAULT_SHM_THRESHOLD = 64 * 1024;
const DEFAULT_CANCEL_GRACE = 1000;
/** After the task channel broke: how long to wait for the worker's exit before killing it. */
const BROKEN_GRACE = 2000;

const workerEntry = fileURLToPath(new URL('./worker.js', import.meta.url));
let poolSerial = 0;

function validateMs(value: unknown, what: string, fallback: number): number {
  return value === undefined ? fallback : validateTimeout(value, what);
}

function validateCount(value: unknown, what: string, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (value === Infinity) return Infinity;
  return validateInteger(value, what, min);
}

function moduleUrl(value: unknown): { url: string; path: string | undefined } {
  if (value instanceof URL) {
    if (value.protocol !== 'file:') throw typeError('ERR_INVALID_ARG_VALUE', `The option 'module' must be a path or a file: URL. Received '${value.href}'`);
    return { url: value.href, path: fileURLToPath(value) };
  }
  if (typeof value !== 'string') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "options.module" property must be of type string or an instance of URL. Received ${value === null ? 'null' : typeof value}`);
  }
  if (value.length === 0) throw typeError('ERR_INVALID_ARG_VALUE', "The option 'module' must not be empty");
  if (value.startsWith('file:')) return moduleUrl(new URL(value));
  const path = isAbsolute(value) ? value : resolvePath(value);
  return { url: pathToFileURL(path).href, path };
}

function validateFn(fn: unknown): string {
  validateString(fn, 'fn');
  if ((fn as string).length === 0) throw typeError('ERR_INVALID_ARG_VALUE', "The argument 'fn' must be the name of an exported function. Received ''");
  return fn as string;
}

function isIterable(x: unknown): x is Iterable<unknown> | AsyncIterable<unknown> {
  return x !== null && x !== undefined && (typeof (x as any)[Symbol.iterator] === 'function' || typeof (x as any)[Symbol.asyncIterator] === 'function');
}

/** Local failures of the RPC call that say "the worker's channel broke", as opposed to an error the task threw. */
function fromRemote(err: unknown): boolean {
  return err instanceof Error && Object.prototype.hasOwnProperty.call(err, 'remoteStack');
}

/**
 * A pool of worker processes running the exported functions of one module.
 *
 * ```ts
 * // tasks.ts
 * export function square(x: number) { return x * x; }
 *
 * // main.ts
 * await using pool = new Pool({ module: './tasks.js', size: 4 });
 * await pool.run('square', [7]);                       // 49
 * await pool.map('square', [1, 2, 3]);                 // [1, 4, 9]
 * for await (const y of pool.imap('square', endless())) use(y);
 * ```
 *
 * See docs/api/pool.md for the full semantics.
 */
export class Pool {
  readonly #moduleUrl: string;
  #status: StatusPublisher | undefined;
  readonly #size: number;
  readonly #maxTasksPerWorker: number;
  readonly #taskTimeout: number;
  readonly #idleTimeout: number;
  readonly #retries: number;
  readonly #cancelGrace: number;
  readonly #transport: PoolTransport;
  readonly #permissions: ProcessPermissions | undefined;
  readonly #env: NodeJS.ProcessEnv | undefined;
  readonly #execArgv: string[] | undefined;
  readonly #shmThreshold: number;
  readonly #prefix: string;

  readonly #queue: Task[] = [];
  readonly #workers = new Set<PoolWorker>();
  readonly #idle: PoolWorker[] = [];
  #starting = 0;
  #running = 0;
  #taskSerial = 0;
  #workerSerial = 0;
  #closing: Promise<void> | undefined;
  #destroying: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  #completed = 0;
  #failed = 0;
  #retried = 0;
  #cancelled = 0;
  #workerExits = 0;
  readonly #runTime = new Histogram();
  readonly #waitTime = new Histogram();

  /**
   * Creates the pool; workers start when tasks arrive.
   *
   * Errors (thrown): `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE` (unknown
   * option, empty module, `permissions.addons: false`), `ERR_OUT_OF_RANGE`.
   */
  constructor(options: PoolOptions) {
    if (options === null || typeof options !== 'object') {
      throw typeError('ERR_INVALID_ARG_TYPE', `The "options" argument must be of type object. Received ${options === null ? 'null' : typeof options}`);
    }
    const o = validateOptions<PoolOptions>(options, 'options', [
      'module', 'size', 'maxTasksPerWorker', 'taskTimeout', 'idleTimeout', 'retries', 'cancelGrace', 'transport', 'permissions', 'env', 'execArgv', 'shmThreshold', 'nats',
    ]);
    const m = moduleUrl(o.module);
    this.#moduleUrl = m.url;
    this.#size = o.size === undefined ? availableParallelism() : validateInteger(o.size, 'options.size', 1, 1024);
    this.#maxTasksPerWorker = validateCount(o.maxTasksPerWorker, 'options.maxTasksPerWorker', 1, Infinity);
    this.#taskTimeout = validateMs(o.taskTimeout, 'options.taskTimeout', Infinity);
    this.#idleTimeout = validateMs(o.idleTimeout, 'options.idleTimeout', Infinity);
    this.#retries = validateCount(o.retries, 'options.retries', 0, 0);
    this.#cancelGrace = validateMs(o.cancelGrace, 'options.cancelGrace', DEFAULT_CANCEL_GRACE);
    this.#transport = o.transport === undefined ? 'shm-ring' : validateOneOf(o.transport, 'options.transport', ['shm-ring', 'stream'] as const);
    if (o.permissions !== undefined) {
      if (o.permissions === null || typeof o.permissions !== 'object') throw typeError('ERR_INVALID_ARG_TYPE', 'The "options.permissions" property must be of type object');
      if (o.permissions.addons === false) {
        throw typeError('ERR_INVALID_ARG_VALUE', "The option 'permissions.addons' cannot be false for a Pool: its workers use shared memory through the native addon");
      }
      this.#permissions = { ...o.permissions, fsRead: [...(o.permissions.fsRead ?? []), ...(m.path !== undefined ? [m.path] : [])] };
    }
    if (o.env !== undefined && (o.env === null || typeof o.env !== 'object')) throw typeError('ERR_INVALID_ARG_TYPE', 'The "options.env" property must be of type object');
    this.#env = o.env;
    if (o.execArgv !== undefined) {
      if (!Array.isArray(o.execArgv)) throw typeError('ERR_INVALID_ARG_TYPE', 'The "options.execArgv" property must be an array of strings');
      o.execArgv.forEach((a, i) => validateString(a, `options.execArgv[${i}]`));
      this.#execArgv = [...o.execArgv];
    }
    if (o.shmThreshold === undefined) this.#shmThreshold = DEFAULT_SHM_THRESHOLD;
    else if (o.shmThreshold === Infinity) this.#shmThreshold = Infinity;
    else this.#shmThreshold = validateInteger(o.shmThreshold, 'options.shmThreshold', 0);
    this.#prefix = `mpool-${process.pid}-${++poolSerial}-${Math.random().toString(36).slice(2, 8)}`;
    // Across hosts: the same methods, over NATS (src/pool/nats-pool.ts).
    if (o.nats !== undefined) return new NatsPool(options) as unknown as Pool;
    // Seen by `multiproc top` while it runs.
    this.#status = new StatusPublisher('pool', basename(fileURLToPath(this.#moduleUrl)), () => ({ size: this.#size, ...this.stats() }));
  }

  /** The most worker processes this pool runs. */
  get size(): number {
    return this.#size;
  }

  /** True once `close()` or `destroy()` was called: new tasks are refused. */
  get closed(): boolean {
    return this.#closing !== undefined || this.#destroying !== undefined;
  }

  /** Prefix of the shared-memory names this pool creates (rings: `mp.ring.<prefix>-w<n>.0/.1`). */
  get namePrefix(): string {
    return this.#prefix;
  }

  // --- submitting -------------------------------------------------------------

  /**
   * Runs the exported function `fn` of the task module with `args` on a
   * worker and resolves with its (awaited) result.
   *
   * Rejects with: the error the function threw (re-created as for RPC);
   * `ERR_MULTIPROC_WORKER_EXITED` (the worker died while running it, and no
   * retry was left); `ERR_MULTIPROC_TIMEOUT` (it ran longer than its
   * timeout); `ABORT_ERR` (the signal aborted); `ERR_MULTIPROC_CLOSED` (the
   * pool is closed, or was destroyed meanwhile); `ERR_MULTIPROC_NO_SUCH_METHOD`
   * (no such exported function); `ERR_MULTIPROC_MESSAGE_TOO_LARGE`;
   * argument errors (`ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`,
   * `ERR_OUT_OF_RANGE`).
   */
  run<R = any>(fn: string, args: readonly unknown[] = [], options?: RunOptions): Promise<R> {
    try {
      validateFn(fn);
      if (!Array.isArray(args)) throw typeError('ERR_INVALID_ARG_TYPE', `The "args" argument must be an array. Received ${args === null ? 'null' : typeof args}`);
      const o = validateOptions<RunOptions>(options, 'options', ['signal', 'timeout', 'transfer']);
      const signal = validateSignal(o.signal);
      const timeout = o.timeout === undefined ? this.#taskTimeout : validateTimeout(o.timeout);
      let transfer: Set<unknown> | undefined;
      if (o.transfer !== undefined) {
        if (!Array.isArray(o.transfer)) throw typeError('ERR_INVALID_ARG_TYPE', 'The "options.transfer" property must be an array');
        for (const [i, t] of o.transfer.entries()) {
          if (!(ArrayBuffer.isView(t) || t instanceof ArrayBuffer)) {
            throw typeError('ERR_INVALID_ARG_TYPE', `The "options.transfer[${i}]" element must be a typed array, Buffer, DataView or ArrayBuffer`);
          }
        }
        transfer = new Set(o.transfer);
      }
      return this.#submit<R>('run', fn, [...args], false, timeout, signal, transfer);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #submit<R>(method: 'run' | 'chunk', fn: string, tree: unknown[], star: boolean, timeout: number, signal: AbortSignal | undefined, transfer?: ReadonlySet<unknown>): Promise<R> {
    if (this.closed) return Promise.reject(new ClosedError(`the pool is ${this.#destroying !== undefined ? 'destroyed' : 'closed'}: no new tasks`));
    if (signal?.aborted) return Promise.reject(new AbortError('the task was aborted before it was queued', { cause: signal.reason }));
    return new Promise<R>((resolve, reject) => {
      const task: Task = {
        id: ++this.#taskSerial,
        method,
        fn,
        tree,
        star,
        timeout,
        transfer,
        signal,
        onAbort: undefined,
        controller: undefined,
        attempts: 0,
        queuedAt: performance.now(),
        startedAt: 0,
        state: 'queued',
        resolve,
        reject,
      };
      if (signal !== undefined) {
        task.onAbort = () => this.#abortTask(task, new AbortError('the task was aborted', { cause: signal.reason }), false);
        signal.addEventListener('abort', task.onAbort, { once: true });
      }
      this.#queue.push(task);
      this.#pump();
    });
  }

  // --- scheduling -----------------------------------------------------------

  #pump(): void {
    if (this.#destroying !== undefined) return;
    while (this.#queue.length > 0) {
      const w = this.#idle.pop();
      if (w === undefined) break;
      this.#start(w, this.#queue.shift()!);
    }
    // Start workers for what is still queued, never more than the queue needs.
    while (this.#queue.length > this.#starting && this.#active() < this.#size) {
      try {
        this.#spawnWorker();
      } catch (err) {
        // No worker could be set up (/dev/shm full, too many processes): with none left to
        // serve the queue, fail it rather than wait for ever.
        if (this.#workers.size === 0) for (const t of this.#queue.splice(0)) this.#settle(t, err, undefined, false);
        break;
      }
    }
    if (this.#queue.length === 0 && this.#running === 0 && this.#drained !== undefined) this.#drained();
  }

  /** Workers that count against `size`: all but those on their way out. */
  #active(): number {
    let n = 0;
    for (const w of this.#workers) if (w.state !== 'retiring' && w.state !== 'dead') n++;
    return n;
  }

  #spawnWorker(): void {
    const serial = ++this.#workerSerial;
    let ring: ShmRingDuplex<unknown> | undefined;
    const ringName = `${this.#prefix}-w${serial}`;
    const ringNames = [`/mp.ring.${ringName}.0`, `/mp.ring.${ringName}.1`];
    if (this.#transport === 'shm-ring') {
      ring = ShmRing.createDuplex(ringName, { capacity: RING_CAPACITY, codec: 'structured' });
      for (const n of ringNames) remember(n);
    }
    let handle: ChildHandle;
    try {
      handle = spawn(workerEntry, {
        args: [this.#moduleUrl, this.#transport, ring !== undefined ? ringName : '-', String(this.#shmThreshold)],
        name: 'pool-worker',
        ...(this.#transport === 'stream' ? { channels: { tasks: 'stream' } } : {}),
        ...(this.#env !== undefined ? { env: this.#env } : {}),
        ...(this.#permissions !== undefined ? { permissions: this.#permissions } : {}),
        ...(this.#execArgv !== undefined ? { execArgv: this.#execArgv } : {}),
      });
    } catch (err) {
      ring?.destroy();
      for (const n of ringNames) forget(n);
      throw err;
    }
    const w: PoolWorker = {
      serial,
      handle,
      ring,
      channel: undefined,
      client: undefined,
      state: 'starting',
      task: undefined,
      resultName: undefined,
      tasksRun: 0,
      idleTimer: undefined,
      everReady: false,
      argSegment: undefined,
      argName: '',
      argNamed: false,
      argGeneration: 0,
    };
    this.#workers.add(w);
    this.#starting++;
    handle.ready.then(
      () => {
        this.#starting--;
        if (w.state !== 'starting') return;
        w.everReady = true;
        if (ring !== undefined) {
          // Both sides have the rings mapped now: drop the names so that nothing is left in /dev/shm,
          // even if this process is killed.
          for (const n of ringNames) {
            unlinkQuietly(n);
            forget(n);
          }
        }
        w.channel = ring ?? handle.channel('tasks');
        w.client = rpcClient(connect(w.channel));
        this.#makeIdle(w);
      },
      () => {
        this.#starting--;
        // Exited before ready (handled in the exit handler), or the ready timeout: make sure it is gone.
        handle.kill('SIGKILL');
      },
    );
    void handle.exited.then((exit) => this.#onExit(w, exit));
  }

  #makeIdle(w: PoolWorker): void {
    w.task = undefined;
    if (this.#destroying !== undefined) return;
    if (w.tasksRun >= this.#maxTasksPerWorker || (this.#closing !== undefined && this.#queue.length === 0)) {
      this.#retire(w);
      this.#pump();
      return;
    }
    w.state = 'idle';
    this.#idle.push(w);
    if (this.#idleTimeout !== Infinity) {
      w.idleTimer = setTimeout(() => {
        if (w.state !== 'idle') return;
        this.#retire(w);
      }, this.#idleTimeout);
      w.idleTimer.unref();
    }
    this.#pump();
  }

  #retire(w: PoolWorker): void {
    this.#unidle(w);
    w.state = 'retiring';
    void w.client?.close();
    void w.handle.close();
  }

  #unidle(w: PoolWorker): void {
    const i = this.#idle.indexOf(w);
    if (i >= 0) this.#idle.splice(i, 1);
    if (w.idleTimer !== undefined) {
      clearTimeout(w.idleTimer);
      w.idleTimer = undefined;
    }
  }

  #start(w: PoolWorker, task: Task): void {
    if (w.idleTimer !== undefined) {
      clearTimeout(w.idleTimer);
      w.idleTimer = undefined;
    }
    task.state = 'running';
    task.startedAt = performance.now();
    this.#waitTime.record(task.startedAt - task.queuedAt);
    this.#running++;
    w.state = 'busy';
    w.task = task;
    w.tasksRun++;
    let packed: ReturnType<typeof pack>;
    try {
      packed = pack(task.tree, this.#argSource(w), this.#shmThreshold, task.transfer);
    } catch (err) {
      this.#settle(task, err, undefined, false);
      this.#makeIdle(w);
      return;
    }
    const resultName = `${this.#prefix}-t${task.id}-${task.attempts}-r`;
    w.resultName = resultName;
    remember(resultName);
    if (task.signal !== undefined) task.controller = new AbortController();
    const args =
      task.method === 'run'
        ? [task.fn, packed.value, packed.pack, resultName, task.id]
        : [task.fn, packed.value, task.star, packed.pack, resultName, task.id];
    const options = task.controller !== undefined ? { timeout: task.timeout, signal: task.controller.signal } : { timeout: task.timeout };
    (w.client!.call(task.method, args, options) as Promise<[unknown, ShmPack | null]>).then(
      (reply) => {
        if (packed.pack !== null) this.#argSegmentMapped(w);
        this.#onReply(w, task, reply);
      },
      (err) => {
        if (packed.pack !== null && fromRemote(err)) this.#argSegmentMapped(w);
        this.#onCallError(w, task, err);
      },
    );
  }

  /** The current task's result name is done with; with `unlink`, remove it in case the worker made it. */
  #dropResultName(w: PoolWorker, unlink: boolean): void {
    if (w.resultName === undefined) return;
    if (unlink) unlinkQuietly(w.resultName);
    forget(w.resultName);
    w.resultName = undefined;
  }

  /** The worker's argument segment, big enough for `size` bytes. */
  #argSource(w: PoolWorker): SegmentSource {
    return (size) => {
      if (w.argSegment === undefined || w.argSegment.size < size) {
        w.argSegment?.close();
        forget(w.argName);
        w.argSegment = undefined;
        let capacity = MIN_ARG_SEGMENT;
        while (capacity < size) capacity *= 2;
        w.argName = `${this.#prefix}-w${w.serial}-a${++w.argGeneration}`;
        w.argSegment = SharedMemory.create(w.argName, capacity);
        remember(w.argName);
        w.argNamed = true;
      }
      return { segment: w.argSegment, name: w.argName, owned: false };
    };
  }

  /** The worker answered a call that used its argument segment, so it has it mapped: drop the name. */
  #argSegmentMapped(w: PoolWorker): void {
    if (!w.argNamed || w.argSegment === undefined) return;
    w.argNamed = false;
    try {
      w.argSegment.unlink();
      forget(w.argName);
    } catch {
      // already gone
    }
  }

  #onReply(w: PoolWorker, task: Task, [value, rpack]: [unknown, ShmPack | null]): void {
    if (task.state !== 'running' || w.task !== task) return;
    let result = value;
    let error: unknown;
    if (rpack !== null) {
      try {
        result = unpack(value, rpack, true).value;
      } catch (err) {
        error = err;
      } finally {
        unlinkQuietly(rpack.name);
      }
    }
    this.#dropResultName(w, false);
    if (error === undefined) this.#runTime.record(performance.now() - task.startedAt);
    this.#settle(task, error, result, error === undefined);
    this.#makeIdle(w);
  }

  #onCallError(w: PoolWorker, task: Task, err: unknown): void {
    if (task.state !== 'running' || w.task !== task) return;
    if (fromRemote(err) || (err instanceof TypeError && (err as { code?: string }).code === 'ERR_INVALID_ARG_VALUE') || err instanceof MessageTooLargeError) {
      // The task threw, or its arguments could not be sent: the worker is fine.
      this.#dropResultName(w, false);
      this.#settle(task, err, undefined, false);
      this.#makeIdle(w);
      return;
    }
    if (err instanceof TimeoutError) {
      this.#cancelled++;
      this.#settle(task, new TimeoutError(`task '${task.fn}' (id ${task.id}) ran longer than its timeout of ${task.timeout} ms`, task.timeout), undefined, false);
      this.#drain(w);
      return;
    }
    // The task channel broke: the worker is dying. Its exit settles (or retries) the task.
    if (w.state !== 'dead') {
      const t = setTimeout(() => w.handle.kill('SIGKILL'), BROKEN_GRACE);
      t.unref();
      void w.handle.exited.then(() => clearTimeout(t));
    }
  }

  /** Cancels a task: drops it from the queue, or rejects it and gives its worker `cancelGrace` ms to stop. */
  #abortTask(task: Task, err: Error, quiet: boolean): void {
    if (task.state === 'queued') {
      const i = this.#queue.indexOf(task);
      if (i >= 0) this.#queue.splice(i, 1);
      if (!quiet) this.#cancelled++;
      this.#settle(task, err, undefined, false);
      this.#pump();
      return;
    }
    if (task.state !== 'running') return;
    if (!quiet) this.#cancelled++;
    this.#settle(task, err, undefined, false);
    // The cancel goes out first, then the drain's `idle` call.
    task.controller?.abort(err);
    for (const w of this.#workers) if (w.task === task) this.#drain(w);
  }

  /** The worker's task was given up: wait up to `cancelGrace` for it to stop, else kill the worker. */
  #drain(w: PoolWorker): void {
    if (w.state !== 'busy') return;
    w.state = 'draining';
    const client = w.client!;
    client.call('idle', [], { timeout: this.#cancelGrace }).then(
      () => {
        if (w.state !== 'draining') return;
        this.#dropResultName(w, true);
        this.#makeIdle(w);
      },
      () => {
        if (w.state === 'draining') w.handle.kill('SIGKILL');
      },
    );
  }

  #settle(task: Task, err: unknown, value: unknown, ok: boolean): void {
    if (task.state === 'done') return;
    if (task.state === 'running') this.#running--;
    task.state = 'done';
    if (task.onAbort !== undefined) task.signal!.removeEventListener('abort', task.onAbort);
    if (ok) {
      this.#completed++;
      task.resolve(value);
    } else {
      this.#failed++;
      task.reject(err);
    }
    if (this.#queue.length === 0 && this.#running === 0 && this.#drained !== undefined) this.#drained();
  }

  #onExit(w: PoolWorker, exit: ChildExit): void {
    const was = w.state;
    w.state = 'dead';
    this.#workers.delete(w);
    this.#unidle(w);
    const pid = w.handle.pid;
    const status = exit.signal !== null ? `signal ${exit.signal}` : exit.code !== null ? `code ${exit.code}` : 'no exit status';
    const error = (what: string): WorkerExitedError =>
      new WorkerExitedError(`pool worker${pid !== undefined ? ` (pid ${pid})` : ''} exited ${what}: ${exit.reason} (${status})`, { ...exit, pid }, { cause: exit.error });
    w.client?.destroy(error('while a call was in flight'));
    if (w.ring !== undefined) {
      w.ring.destroy();
      forget(`/mp.ring.${this.#prefix}-w${w.serial}.0`);
      forget(`/mp.ring.${this.#prefix}-w${w.serial}.1`);
    }
    w.argSegment?.close();
    w.argSegment = undefined;
    forget(w.argName);
    this.#dropResultName(w, true);
    if (was !== 'retiring') this.#workerExits++;
    const task = w.task;
    w.task = undefined;
    if (task !== undefined && task.state === 'running') {
      if (task.attempts < this.#retries && this.#destroying === undefined) {
        task.attempts++;
        this.#retried++;
        this.#running--;
        task.state = 'queued';
        this.#queue.unshift(task);
      } else {
        this.#settle(task, error(`while running task '${task.fn}' (id ${task.id})`), undefined, false);
      }
    }
    if (!w.everReady && this.#destroying === undefined) {
      // It never started: the module does not load, or the system refuses processes. Trying again
      // for every queued task would loop; fail them instead, and start afresh with the next task.
      const err = error('before it was ready');
      for (const t of this.#queue.splice(0)) this.#settle(t, err, undefined, false);
    }
    this.#pump();
  }

  // --- map and friends ----------------------------------------------------------

  /**
   * Runs `fn(item)` for every item of `items` (an array, an iterable or an
   * async iterable) and resolves with the results: in input order, or with
   * `ordered: false` in completion order. Items go to the workers in chunks of
   * `chunkSize`. The first failure rejects the whole call and cancels the rest.
   * Errors as {@link Pool.run}.
   */
  async map<R = any>(fn: string, items: Iterable<unknown> | AsyncIterable<unknown>, options?: MapOptions): Promise<R[]> {
    const out: R[] = [];
    for await (const r of this.#iterate<R>(fn, items, options, false, true, true)) out.push(r);
    return out;
  }

  /** {@link Pool.map} for items that are argument lists: calls `fn(...item)`. */
  async starmap<R = any>(fn: string, items: Iterable<readonly unknown[]> | AsyncIterable<readonly unknown[]>, options?: MapOptions): Promise<R[]> {
    const out: R[] = [];
    for await (const r of this.#iterate<R>(fn, items, options, true, true, true)) out.push(r);
    return out;
  }

  /**
   * An async iterator of `fn(item)` over `items`, in input order. At most
   * `window` chunks are submitted and not yet consumed, so an endless (or
   * huge) source is read only as fast as results are consumed. Leaving the
   * loop early cancels the chunks in flight and closes the source.
   * Errors as {@link Pool.run}, thrown from the loop.
   */
  imap<R = any>(fn: string, items: Iterable<unknown> | AsyncIterable<unknown>, options?: Omit<MapOptions, 'ordered'>): AsyncGenerator<R, void, undefined> {
    return this.#iterate<R>(fn, items, options, false, true, false);
  }

  /** As {@link Pool.imap}, yielding results as they complete. */
  imapUnordered<R = any>(fn: string, items: Iterable<unknown> | AsyncIterable<unknown>, options?: Omit<MapOptions, 'ordered'>): AsyncGenerator<R, void, undefined> {
    return this.#iterate<R>(fn, items, options, false, false, false);
  }

  #iterate<R>(fn: string, items: unknown, options: MapOptions | undefined, star: boolean, orderedDefault: boolean, eager: boolean): AsyncGenerator<R, void, undefined> {
    // Arguments are checked at the call, not at the first next().
    validateFn(fn);
    if (!isIterable(items)) throw typeError('ERR_INVALID_ARG_TYPE', 'The "items" argument must be an iterable or an async iterable');
    const o = validateOptions<MapOptions>(options, 'options', eager ? ['chunkSize', 'ordered', 'window', 'signal', 'timeout'] : ['chunkSize', 'window', 'signal', 'timeout']);
    let chunkSize: number;
    if (o.chunkSize !== undefined) chunkSize = validateInteger(o.chunkSize, 'options.chunkSize', 1);
    else chunkSize = eager && Array.isArray(items) ? Math.max(1, Math.ceil(items.length / (this.#size * 4))) : 1;
    const ordered = o.ordered === undefined ? orderedDefault : (o.ordered as unknown) === true ? true : (o.ordered as unknown) === false ? false : this.#badBoolean('options.ordered', o.ordered);
    const window = o.window === undefined ? this.#size * 2 : validateInteger(o.window, 'options.window', 1);
    const signal = validateSignal(o.signal);
    const timeout = o.timeout === undefined ? this.#taskTimeout : validateTimeout(o.timeout);
    return this.#stream<R>(fn, items as Iterable<unknown> | AsyncIterable<unknown>, chunkSize, ordered, window, signal, timeout, star);
  }

  #badBoolean(what: string, value: unknown): never {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${what}" property must be of type boolean. Received ${typeof value}`);
  }

  async *#stream<R>(
    fn: string,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    chunkSize: number,
    ordered: boolean,
    window: number,
    signal: AbortSignal | undefined,
    timeout: number,
    star: boolean,
  ): AsyncGenerator<R, void, undefined> {
    const source: Iterator<unknown> | AsyncIterator<unknown> =
      typeof (items as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
        ? (items as AsyncIterable<unknown>)[Symbol.asyncIterator]()
        : (items as Iterable<unknown>)[Symbol.iterator]();
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    type Outcome = { ok: true; value: unknown[] } | { ok: false; error: unknown };
    const done = new Map<number, Outcome>();
    let wake: (() => void) | undefined;
    let submitted = 0;
    let consumed = 0;
    let exhausted = false;
    try {
      for (;;) {
        if (signal?.aborted) throw new AbortError('the operation was aborted', { cause: signal.reason });
        while (!exhausted && submitted - consumed < window) {
          const chunk: unknown[] = [];
          while (chunk.length < chunkSize) {
            const r = await source.next();
            if (r.done === true) {
              exhausted = true;
              break;
            }
            if (star && !Array.isArray(r.value)) {
              throw typeError('ERR_INVALID_ARG_TYPE', `starmap: every item must be an array of arguments. Received ${r.value === null ? 'null' : typeof r.value}`);
            }
            chunk.push(r.value);
          }
          if (chunk.length === 0) break;
          const seq = submitted++;
          this.#submit<unknown[]>('chunk', fn, chunk, star, timeout, controller.signal).then(
            (value) => {
              done.set(seq, { ok: true, value });
              wake?.();
            },
            (error: unknown) => {
              done.set(seq, { ok: false, error });
              wake?.();
            },
          );
        }
        if (consumed === submitted && exhausted) return;
        let next: number | undefined;
        if (ordered) {
          if (done.has(consumed)) next = consumed;
        } else {
          for (const k of done.keys()) {
            next = k;
            break;
          }
        }
        if (next === undefined) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        const outcome = done.get(next)!;
        done.delete(next);
        consumed++;
        if (!outcome.ok) {
          if (signal?.aborted) throw new AbortError('the operation was aborted', { cause: signal.reason });
          throw outcome.error;
        }
        for (const v of outcome.value) yield v as R;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (submitted > consumed) controller.abort(new AbortError('the iteration ended early'));
      if (!exhausted) await source.return?.();
    }
  }

  // --- lifetime ---------------------------------------------------------------

  /**
   * Graceful: refuses new tasks, lets the queued and running ones finish,
   * then shuts the workers down (their `onShutdown` handlers run). Idempotent;
   * never rejects.
   */
  close(): Promise<void> {
    if (this.#destroying !== undefined) return this.#destroying;
    this.#closing ??= (async () => {
      if (this.#queue.length > 0 || this.#running > 0) {
        await new Promise<void>((resolve) => (this.#drained = resolve));
      }
      this.#drained = undefined;
      const exits: Promise<unknown>[] = [];
      for (const w of [...this.#workers]) {
        exits.push(w.handle.exited);
        if (w.state === 'idle' || w.state === 'starting') this.#retire(w);
        else if (w.state === 'draining') {
          // A cancelled task that still runs: its grace ends in a kill, which the exit handler sees.
        }
      }
      await Promise.all(exits);
      this.#status?.close();
    })();
    return this.#closing;
  }

  /**
   * Immediate: queued and running tasks reject with `ERR_MULTIPROC_CLOSED`
   * (`cause`: `err`), the workers are killed (SIGKILL), and their shared
   * memory is released. Resolves once every worker has exited. Idempotent.
   */
  destroy(err?: Error): Promise<void> {
    this.#destroying ??= (async () => {
      const reason = new ClosedError('the pool was destroyed', err !== undefined ? { cause: err } : undefined);
      for (const t of this.#queue.splice(0)) this.#settle(t, reason, undefined, false);
      const exits: Promise<unknown>[] = [];
      for (const w of [...this.#workers]) {
        if (w.task !== undefined) {
          const t = w.task;
          this.#settle(t, reason, undefined, false);
        }
        exits.push(w.handle.exited);
        w.handle.kill('SIGKILL');
      }
      this.#drained?.();
      await Promise.all(exits);
      this.#status?.close();
    })();
    return this.#destroying;
  }

  /** Same as `close()`: `await using pool = new Pool(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Counters, queue depth, workers and latency summaries. */
  stats(): PoolStats {
    let idle = 0;
    for (const w of this.#workers) if (w.state === 'idle') idle++;
    return {
      completed: this.#completed,
      failed: this.#failed,
      retried: this.#retried,
      cancelled: this.#cancelled,
      queued: this.#queue.length,
      running: this.#running,
      workers: this.#workers.size,
      idleWorkers: idle,
      workerExits: this.#workerExits,
      runTime: this.#runTime.summary(),
      waitTime: this.#waitTime.summary(),
    };
  }
}

