/**
 * Pool: a fixed-size set of worker processes (started with spawn()) that run
 * the exported functions of one task module. Tasks go to the least loaded
 * worker over an RPC connection (a shared-memory ring pair, or a socket pair),
 * several at a time per worker (`concurrentTasksPerWorker`) so that a worker
 * never waits for the round trip of its next task, and plain tasks submitted
 * together share one message each way; large binary arguments and results go
 * through shared-memory segments. A worker that dies fails (or retries) all
 * its tasks at once and is replaced; a task that ignores its cancellation is
 * stopped by killing its worker after a grace period.
 */
import { availableParallelism } from 'node:os';
import { basename, isAbsolute, resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Channel } from '../channel/channel.js';
import { ShmRing, type ShmRingDuplex } from '../channel/transports/shm-ring.js';
import { TaskQueue } from './task-queue.js';
import {
  AbortError,
  ClosedError,
  MessageTooLargeError,
  TimeoutError,
  WorkerExitedError,
  typeError,
  validateInteger,
  validateOneOf,
  validateString,
  validateTimeout,
} from '../errors.js';
import { permissionFlags, spawn, type ChildExit, type ChildHandle, type ProcessPermissions } from '../process/spawn.js';
import { connect, rpcClient, type RpcClient } from '../rpc/connect.js';
import { deserializeError, type WireError } from '../rpc/remote-error.js';
import { processStart } from '../resources/registry.js';
import { StatusPublisher } from '../resources/status.js';
import { SharedMemory } from '../shm/shared-memory.js';
import type { LatencySummary } from './histogram.js';
import { NatsPool, type NatsPoolOptions } from './nats-pool.js';
import { PoolBase, TaskTally, poolOptions, runArguments, type MapDefaults } from './pool-base.js';
import { forget, pack, remember, unlinkQuietly, unpack, type SegmentSource, type ShmPack } from './shm-args.js';
import { onAbort } from '../abort.js';
import { setLongTimeout, type LongTimeout } from '../long-timeout.js';

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
  /**
   * Most tasks sent to one worker and not yet answered. More than one keeps the
   * worker's queue fed (its next task is already there when one finishes), which
   * is what makes tiny tasks fast; async tasks also overlap. A task with a finite
   * timeout runs alone on its worker (see `taskTimeout`). Default 64; for long
   * tasks of uneven length, a small value (1 or 2) balances better.
   */
  concurrentTasksPerWorker?: number;
  /**
   * Milliseconds a task may run, counted from its start on a worker (not from
   * queueing). So that this holds with several tasks per worker, a task with a
   * finite timeout is only sent to a worker that runs nothing else, and nothing
   * else is sent to that worker until it ends. Default `Infinity`.
   */
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
  /** Most chunks submitted but not yet consumed; bounds the items pulled ahead of the consumer. Default `size × max(2, concurrentTasksPerWorker)`. */
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

type WorkerState = 'starting' | 'ready' | 'retiring' | 'dead';

interface Task {
  id: number;
  method: 'run' | 'chunk';
  fn: string;
  tree: unknown[];
  star: boolean;
  timeout: number;
  transfer: ReadonlySet<unknown> | undefined;
  signal: AbortSignal | undefined;
  offAbort: (() => void) | undefined;
  controller: AbortController | undefined;
  attempts: number;
  /** The attempt whose wait is in the stats (-1: none yet): a batch that is split sends its tasks twice. */
  waitRecorded: number;
  queuedAt: number;
  startedAt: number;
  state: 'queued' | 'running' | 'done';
  /** The worker it was sent to (while running, or stopping after a cancel). */
  worker: PoolWorker | undefined;
  /** Where the worker puts large binary results; removed once the worker answered or stopped it. */
  resultName: string | undefined;
  /** Send it alone (its batch could not be sent). */
  noBatch: boolean;
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
  /** Tasks sent to it and not yet answered. */
  tasks: Set<Task>;
  /** Cancelled (or timed-out) tasks it has not stopped yet: no new task goes to it meanwhile. */
  stopping: Set<Task>;
  /** A task with a finite timeout runs on it: it takes no other task. */
  exclusive: boolean;
  /** The task whose large arguments are in the argument segment, until the worker is done with them. */
  argUser: Task | undefined;
  /** A task had to wait for the argument segment: take no new task until it is free. */
  argBlocked: boolean;
  /** Set once a kill is scheduled because the task channel broke. */
  brokenTimer: NodeJS.Timeout | undefined;
  tasksRun: number;
  idleTimer: LongTimeout | undefined;
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
const DEFAULT_CONCURRENT_TASKS = 64;
/** Thrown by a worker's argument source when another task's arguments are in the segment. */
const ARG_BUSY = Symbol('argument segment busy');
/** Thrown by the argument source of a batch: a task with large arguments goes alone. */
const NEEDS_SHM = Symbol('needs shared memory');
const noShm: SegmentSource = () => {
  throw NEEDS_SHM;
};
/** Most tasks in one batch message. */
const MAX_BATCH = 64;

/** Tasks that may share a message: plain runs, nothing to cancel or time, no forced shared memory. */
function batchable(task: Task | undefined): boolean {
  return task !== undefined && task.method === 'run' && task.signal === undefined && task.timeout === Infinity && task.transfer === undefined && !task.noBatch;
}
/** After the task channel broke: how long to wait for the worker's exit before killing it. */
const BROKEN_GRACE = 2000;

const workerEntry = fileURLToPath(new URL('./worker.js', import.meta.url));

/** This process as '<pid>:<start>', or '-' without /proc: workers hand result segments over to it. */
function poolOwner(): string {
  const start = processStart(process.pid);
  return start !== undefined ? `${process.pid}:${start}` : '-';
}

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
export class Pool extends PoolBase {
  readonly #moduleUrl: string;
  #status: StatusPublisher | undefined;
  readonly #size: number;
  readonly #maxTasksPerWorker: number;
  readonly #concurrency: number;
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

  readonly #queue = new TaskQueue<Task>();
  readonly #workers = new Set<PoolWorker>();
  #starting = 0;
  #pumpScheduled = false;
  #running = 0;
  #taskSerial = 0;
  #workerSerial = 0;
  #closing: Promise<void> | undefined;
  #destroying: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  readonly #tally = new TaskTally();
  #workerExits = 0;

  /**
   * Creates the pool; workers start when tasks arrive.
   *
   * Errors (thrown): `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE` (unknown
   * option or permissions field, empty module, `permissions.addons: false`),
   * `ERR_OUT_OF_RANGE`.
   */
  constructor(options: PoolOptions) {
    super();
    const o = poolOptions(options);
    const m = moduleUrl(o.module);
    this.#moduleUrl = m.url;
    this.#size = o.size === undefined ? availableParallelism() : validateInteger(o.size, 'options.size', 1, 1024);
    this.#maxTasksPerWorker = validateCount(o.maxTasksPerWorker, 'options.maxTasksPerWorker', 1, Infinity);
    this.#concurrency = o.concurrentTasksPerWorker === undefined ? DEFAULT_CONCURRENT_TASKS : validateInteger(o.concurrentTasksPerWorker, 'options.concurrentTasksPerWorker', 1, 1024);
    this.#taskTimeout = validateMs(o.taskTimeout, 'options.taskTimeout', Infinity);
    this.#idleTimeout = validateMs(o.idleTimeout, 'options.idleTimeout', Infinity);
    this.#retries = validateCount(o.retries, 'options.retries', 0, 0);
    this.#cancelGrace = validateMs(o.cancelGrace, 'options.cancelGrace', DEFAULT_CANCEL_GRACE);
    this.#transport = o.transport === undefined ? 'shm-ring' : validateOneOf(o.transport, 'options.transport', ['shm-ring', 'stream'] as const);
    if (o.permissions !== undefined) {
      if (o.permissions === null || typeof o.permissions !== 'object' || Array.isArray(o.permissions)) throw typeError('ERR_INVALID_ARG_TYPE', 'The "options.permissions" property must be of type object');
      // Checked as spawn() checks them, on a copy that is then used as is: a misspelt field fails
      // here rather than in every run(), and a string for `fsRead` must never be spread into
      // characters ('/' would let the workers read the whole file system).
      const perm: ProcessPermissions = { ...o.permissions };
      permissionFlags(perm, undefined);
      if (perm.addons === false) {
        throw typeError('ERR_INVALID_ARG_VALUE', "The option 'permissions.addons' cannot be false for a Pool: its workers use shared memory through the native addon");
      }
      if (perm.fsRead !== undefined && !Array.isArray(perm.fsRead)) throw typeError('ERR_INVALID_ARG_TYPE', 'The "permissions.fsRead" option must be an array of paths');
      this.#permissions = { ...perm, fsRead: [...(perm.fsRead ?? []), ...(m.path !== undefined ? [m.path] : [])] };
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
      const r = runArguments(fn, args, options, this.#taskTimeout);
      let transfer: Set<unknown> | undefined;
      if (r.transfer !== undefined) {
        for (const [i, t] of r.transfer.entries()) {
          if (!(ArrayBuffer.isView(t) || t instanceof ArrayBuffer)) {
            throw typeError('ERR_INVALID_ARG_TYPE', `The "options.transfer[${i}]" element must be a typed array, Buffer, DataView or ArrayBuffer`);
          }
        }
        transfer = new Set(r.transfer);
      }
      return this.#submit<R>('run', fn, [...args], false, r.timeout, r.signal, transfer);
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
        offAbort: undefined,
        controller: undefined,
        attempts: 0,
        waitRecorded: -1,
        queuedAt: performance.now(),
        startedAt: 0,
        state: 'queued',
        worker: undefined,
        resultName: undefined,
        noBatch: false,
        resolve,
        reject,
      };
      if (signal !== undefined) {
        task.offAbort = onAbort(signal, () => this.#abortTask(task, new AbortError('the task was aborted', { cause: signal.reason }), false));
      }
      this.#queue.push(task);
      // Tasks submitted in one go (a loop of run() calls) are dispatched together, in batches.
      if (!this.#pumpScheduled) {
        this.#pumpScheduled = true;
        queueMicrotask(() => {
          this.#pumpScheduled = false;
          this.#pump();
        });
      }
    });
  }

  // --- scheduling -----------------------------------------------------------

  /** How many more tasks `w` takes now (0 when it takes none). */
  #room(w: PoolWorker): number {
    if (w.state !== 'ready' || w.exclusive || w.argBlocked || w.stopping.size > 0) return 0;
    return Math.min(this.#concurrency - w.tasks.size, this.#maxTasksPerWorker - w.tasksRun);
  }

  #pump(): void {
    if (this.#destroying !== undefined) return;
    // A worker is refilled once half its tasks are answered, and then up to the full count at
    // once: the task messages go out back to back, so one wake-up of the worker serves several
    // (the ring wakes a receiver only when it sleeps), and replies come back in runs too.
    const lowWater = this.#concurrency >> 1;
    while (this.#queue.length > 0) {
      // The least loaded worker with room: tasks spread over the workers.
      let best: PoolWorker | undefined;
      for (const w of this.#workers) {
        if (w.tasks.size <= lowWater && this.#room(w) > 0 && (best === undefined || w.tasks.size < best.tasks.size)) best = w;
      }
      if (best === undefined) break;
      // Stack tasks on a busy worker only once no more workers can start: long tasks get a worker each.
      if (best.tasks.size > 0 && this.#active() < this.#size) break;
      let sent = 0;
      while (this.#queue.length > 0 && this.#room(best) > 0) {
        const task = this.#queue.at(0)!;
        // A timed task runs alone (its timeout counts from its real start).
        if (task.timeout !== Infinity && best.tasks.size > 0) break;
        const room = this.#room(best);
        if (room >= 2 && batchable(task) && batchable(this.#queue.at(1))) {
          // A backlog of tiny tasks: several in one message, one reply for them.
          sent += this.#startBatch(best, Math.min(room, MAX_BATCH));
          continue;
        }
        this.#queue.shift();
        this.#start(best, task);
        sent++;
      }
      if (sent === 0) break;
    }
    // Start workers for what is still queued, never more than the queue needs.
    while (this.#queue.length > this.#starting && this.#active() < this.#size) {
      try {
        this.#spawnWorker();
      } catch (err) {
        // No worker could be set up (/dev/shm full, too many processes): with none left to
        // serve the queue, fail it rather than wait for ever.
        if (this.#workers.size === 0) for (const t of this.#queue.takeAll()) this.#settle(t, err, undefined, false);
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
        args: [this.#moduleUrl, this.#transport, ring !== undefined ? ringName : '-', String(this.#shmThreshold), poolOwner()],
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
      tasks: new Set(),
      stopping: new Set(),
      exclusive: false,
      argUser: undefined,
      argBlocked: false,
      brokenTimer: undefined,
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
        w.state = 'ready';
        this.#afterTask(w);
      },
      () => {
        this.#starting--;
        // Exited before ready (handled in the exit handler), or the ready timeout: make sure it is gone.
        handle.kill('SIGKILL');
      },
    );
    void handle.exited.then((exit) => this.#onExit(w, exit));
  }

  /** A task of `w` ended (or `w` became ready): retire it, arm its idle timer, or feed it. */
  #afterTask(w: PoolWorker): void {
    if (this.#destroying !== undefined || w.state !== 'ready') return;
    const empty = w.tasks.size === 0 && w.stopping.size === 0;
    if (empty && (w.tasksRun >= this.#maxTasksPerWorker || (this.#closing !== undefined && this.#queue.length === 0))) {
      this.#retire(w);
      this.#pump();
      return;
    }
    this.#pump();
    if (w.state === 'ready' && w.tasks.size === 0 && w.stopping.size === 0 && this.#idleTimeout !== Infinity && w.idleTimer === undefined) {
      w.idleTimer = setLongTimeout(() => {
        w.idleTimer = undefined;
        if (w.state === 'ready' && w.tasks.size === 0 && w.stopping.size === 0) this.#retire(w);
      }, this.#idleTimeout);
      w.idleTimer.unref();
    }
  }

  #retire(w: PoolWorker): void {
    this.#clearIdleTimer(w);
    w.state = 'retiring';
    void w.client?.close();
    void w.handle.close();
  }

  #clearIdleTimer(w: PoolWorker): void {
    if (w.idleTimer !== undefined) {
      w.idleTimer.clear();
      w.idleTimer = undefined;
    }
  }

  #start(w: PoolWorker, task: Task): void {
    this.#clearIdleTimer(w);
    let packed: ReturnType<typeof pack>;
    try {
      packed = pack(task.tree, this.#argSource(w, task), this.#shmThreshold, task.transfer);
    } catch (err) {
      if (err === ARG_BUSY) {
        // Another task's arguments are in the segment: this one waits (at the head of the queue),
        // and this worker takes nothing more until the segment is free.
        w.argBlocked = true;
        this.#queue.unshift(task);
        return;
      }
      if (w.argUser === task) w.argUser = undefined;
      this.#settle(task, err, undefined, false);
      return;
    }
    this.#begin(w, task);
    if (task.timeout !== Infinity) w.exclusive = true;
    const resultName = task.resultName!;
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

  /** Marks `task` as running on `w`. */
  #begin(w: PoolWorker, task: Task): void {
    task.state = 'running';
    task.startedAt = performance.now();
    task.worker = w;
    if (task.waitRecorded !== task.attempts) {
      task.waitRecorded = task.attempts;
      this.#tally.waitTime.record(task.startedAt - task.queuedAt);
    }
    this.#running++;
    w.tasks.add(task);
    w.tasksRun++;
    const resultName = `${this.#prefix}-t${task.id}-${task.attempts}-r`;
    task.resultName = resultName;
    remember(resultName);
  }

  /** Sends up to `max` batchable tasks from the head of the queue in one `batch` call; returns how many went. */
  #startBatch(w: PoolWorker, max: number): number {
    this.#clearIdleTimer(w);
    const batch: Task[] = [];
    const wire: [string, unknown, string, number][] = [];
    while (batch.length < max && batchable(this.#queue.at(0))) {
      const task = this.#queue.at(0)!;
      let packed: ReturnType<typeof pack>;
      try {
        packed = pack(task.tree, noShm, this.#shmThreshold, undefined);
      } catch (err) {
        if (err === NEEDS_SHM) break;
        this.#queue.shift();
        this.#settle(task, err, undefined, false);
        continue;
      }
      this.#queue.shift();
      this.#begin(w, task);
      batch.push(task);
      wire.push([task.fn, packed.value, task.resultName!, task.id]);
    }
    if (batch.length === 0) {
      // The head has large arguments (or nothing was left): send it alone.
      const task = this.#queue.shift();
      if (task === undefined) return 0;
      this.#start(w, task);
      return 1;
    }
    type Outcome = [0, unknown, ShmPack | null] | [1, WireError];
    const settleOne = (task: Task, r: Outcome): void => {
      if (r[0] === 0) this.#onReply(w, task, [r[1], r[2]]);
      else if (task.state === 'running' && w.tasks.has(task)) {
        this.#release(w, task, false);
        this.#settle(task, deserializeError(r[1]), undefined, false);
      }
    };
    (w.client!.call('batch', [wire], { timeout: Infinity }) as Promise<Array<Outcome | [2]>>).then(
      (replies) => {
        for (let i = 0; i < batch.length; i++) {
          const task = batch[i]!;
          const r = replies[i]!;
          if (r[0] !== 2) settleOne(task, r);
          else {
            // An async task still running: fetch its outcome when it has one.
            (w.client!.call('result', [task.id], { timeout: Infinity }) as Promise<Outcome>).then(
              (o) => {
                settleOne(task, o);
                this.#afterTask(w);
              },
              (err) => this.#onCallError(w, task, err),
            );
          }
        }
        this.#afterTask(w);
      },
      (err) => {
        if ((err instanceof TypeError && (err as { code?: string }).code === 'ERR_INVALID_ARG_VALUE') || err instanceof MessageTooLargeError) {
          // The message could not be sent (an argument that cannot be cloned, or too big): send each
          // task alone, so that only the guilty one fails.
          for (let i = batch.length - 1; i >= 0; i--) {
            const task = batch[i]!;
            if (task.state !== 'running' || !w.tasks.has(task)) continue;
            this.#release(w, task, false);
            w.tasksRun--;
            this.#running--;
            task.state = 'queued';
            task.noBatch = true;
            this.#queue.unshift(task);
          }
          this.#afterTask(w);
          return;
        }
        for (const task of batch) this.#onCallError(w, task, err);
      },
    );
    return batch.length;
  }

  /** The worker is done with `task` (answered it, or stopped it after a cancel). */
  #release(w: PoolWorker, task: Task, unlinkResult: boolean): void {
    w.tasks.delete(task);
    w.stopping.delete(task);
    if (task.timeout !== Infinity) w.exclusive = false;
    if (w.argUser === task) {
      w.argUser = undefined;
      w.argBlocked = false;
    }
    this.#dropResultName(task, unlinkResult);
  }

  /** The task's result name is done with; with `unlink`, remove it in case the worker made it. */
  #dropResultName(task: Task, unlink: boolean): void {
    if (task.resultName === undefined) return;
    if (unlink) unlinkQuietly(task.resultName);
    forget(task.resultName);
    task.resultName = undefined;
  }

  /** The worker's argument segment, big enough for `size` bytes, for `task` alone while it runs. */
  #argSource(w: PoolWorker, task: Task): SegmentSource {
    return (size) => {
      if (w.argUser !== undefined && w.argUser !== task) throw ARG_BUSY;
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
      w.argUser = task;
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
    if (task.state !== 'running' || !w.tasks.has(task)) return;
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
    this.#release(w, task, false);
    if (error === undefined) this.#tally.runTime.record(performance.now() - task.startedAt);
    this.#settle(task, error, result, error === undefined);
    this.#afterTask(w);
  }

  #onCallError(w: PoolWorker, task: Task, err: unknown): void {
    if (task.state !== 'running' || !w.tasks.has(task)) return;
    if (fromRemote(err) || (err instanceof TypeError && (err as { code?: string }).code === 'ERR_INVALID_ARG_VALUE') || err instanceof MessageTooLargeError) {
      // The task threw, or its arguments could not be sent: the worker is fine.
      this.#release(w, task, false);
      this.#settle(task, err, undefined, false);
      this.#afterTask(w);
      return;
    }
    if (err instanceof TimeoutError) {
      this.#tally.cancelled++;
      this.#settle(task, new TimeoutError(`task '${task.fn}' (id ${task.id}) ran longer than its timeout of ${task.timeout} ms`, task.timeout), undefined, false);
      this.#stop(w, task);
      return;
    }
    // The task channel broke: the worker is dying. Its exit settles (or retries) its tasks.
    if (w.state !== 'dead' && w.brokenTimer === undefined) {
      w.brokenTimer = setTimeout(() => w.handle.kill('SIGKILL'), BROKEN_GRACE);
      w.brokenTimer.unref();
      void w.handle.exited.then(() => clearTimeout(w.brokenTimer));
    }
  }

  /** Cancels a task: drops it from the queue, or rejects it and gives its worker `cancelGrace` ms to stop it. */
  #abortTask(task: Task, err: Error, quiet: boolean): void {
    if (task.state === 'queued') {
      this.#queue.remove(task);
      if (!quiet) this.#tally.cancelled++;
      this.#settle(task, err, undefined, false);
      this.#pump();
      return;
    }
    if (task.state !== 'running') return;
    if (!quiet) this.#tally.cancelled++;
    this.#settle(task, err, undefined, false);
    // The cancel goes out first, then the `stopped` call.
    task.controller?.abort(err);
    const w = task.worker;
    if (w !== undefined && w.tasks.has(task)) this.#stop(w, task);
  }

  /**
   * `task` (already settled) was given up: its worker gets `cancelGrace` ms to
   * stop it, and no new task meanwhile; else the worker is killed, and its
   * other tasks are retried or fail as for any worker death.
   */
  #stop(w: PoolWorker, task: Task): void {
    if (w.state !== 'ready' || !w.tasks.has(task)) return;
    w.tasks.delete(task);
    w.stopping.add(task);
    w.client!.call('stopped', [task.id], { timeout: this.#cancelGrace }).then(
      () => {
        if (w.state !== 'ready' || !w.stopping.has(task)) return;
        this.#release(w, task, true);
        this.#afterTask(w);
      },
      () => {
        if (w.state === 'ready' && w.stopping.has(task)) w.handle.kill('SIGKILL');
      },
    );
  }

  #settle(task: Task, err: unknown, value: unknown, ok: boolean): void {
    if (task.state === 'done') return;
    if (task.state === 'running') this.#running--;
    task.state = 'done';
    this.#tally.settle(task, err, value, ok);
    if (this.#queue.length === 0 && this.#running === 0 && this.#drained !== undefined) this.#drained();
  }

  #onExit(w: PoolWorker, exit: ChildExit): void {
    const was = w.state;
    w.state = 'dead';
    this.#workers.delete(w);
    this.#clearIdleTimer(w);
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
    if (was !== 'retiring') this.#workerExits++;
    for (const t of w.stopping) this.#dropResultName(t, true);
    w.stopping.clear();
    // Every task in flight on it is retried (if it has retries left) or fails; retried ones go
    // back to the head of the queue in their order.
    const lost = [...w.tasks];
    w.tasks.clear();
    w.argUser = undefined;
    const requeue: Task[] = [];
    for (const task of lost) {
      this.#dropResultName(task, true);
      task.worker = undefined;
      if (task.state !== 'running') continue;
      if (task.attempts < this.#retries && this.#destroying === undefined) {
        task.attempts++;
        this.#tally.retried++;
        this.#running--;
        task.state = 'queued';
        requeue.push(task);
      } else {
        this.#settle(task, error(`while running task '${task.fn}' (id ${task.id})`), undefined, false);
      }
    }
    this.#queue.unshiftAll(requeue);
    if (!w.everReady && this.#destroying === undefined) {
      // It never started: the module does not load, or the system refuses processes. Trying again
      // for every queued task would loop; fail them instead, and start afresh with the next task.
      const err = error('before it was ready');
      for (const t of this.#queue.takeAll()) this.#settle(t, err, undefined, false);
    }
    this.#pump();
  }

  // --- map and friends (pool-base.ts) -----------------------------------------

  /** @internal */
  protected override _mapDefaults(): MapDefaults {
    // Enough chunks to keep every worker's task slots fed.
    return { size: this.#size, window: this.#size * Math.max(2, this.#concurrency), timeout: this.#taskTimeout };
  }

  /** @internal */
  protected override _submitChunk(fn: string, chunk: unknown[], star: boolean, timeout: number | undefined, signal: AbortSignal): Promise<unknown[]> {
    // Never undefined here: the default is `taskTimeout`.
    return this.#submit<unknown[]>('chunk', fn, chunk, star, timeout ?? Infinity, signal);
  }

  /** @internal */
  protected override _checkOrdered(value: unknown): boolean {
    if (typeof value !== 'boolean') throw typeError('ERR_INVALID_ARG_TYPE', `The "options.ordered" property must be of type boolean. Received ${typeof value}`);
    return value;
  }

  // --- lifetime ---------------------------------------------------------------

  /**
   * Graceful: refuses new tasks, lets the queued and running ones finish,
   * then shuts the workers down (their `onShutdown` handlers run). Idempotent;
   * never rejects.
   */
  override close(): Promise<void> {
    if (this.#destroying !== undefined) return this.#destroying;
    this.#closing ??= (async () => {
      if (this.#queue.length > 0 || this.#running > 0) {
        await new Promise<void>((resolve) => (this.#drained = resolve));
      }
      this.#drained = undefined;
      const exits: Promise<unknown>[] = [];
      for (const w of [...this.#workers]) {
        exits.push(w.handle.exited);
        // A worker still stopping a cancelled task retires once it stopped it, or is killed after the grace.
        if (w.state === 'starting' || (w.state === 'ready' && w.tasks.size === 0 && w.stopping.size === 0)) this.#retire(w);
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
      for (const t of this.#queue.takeAll()) this.#settle(t, reason, undefined, false);
      const exits: Promise<unknown>[] = [];
      for (const w of [...this.#workers]) {
        for (const t of w.tasks) this.#settle(t, reason, undefined, false);
        exits.push(w.handle.exited);
        w.handle.kill('SIGKILL');
      }
      this.#drained?.();
      await Promise.all(exits);
      this.#status?.close();
    })();
    return this.#destroying;
  }

  /** Counters, queue depth, workers and latency summaries. */
  stats(): PoolStats {
    let idle = 0;
    for (const w of this.#workers) if (w.state === 'ready' && w.tasks.size === 0 && w.stopping.size === 0) idle++;
    return this.#tally.stats({ queued: this.#queue.length, running: this.#running, workers: this.#workers.size, idleWorkers: idle, workerExits: this.#workerExits });
  }
}

