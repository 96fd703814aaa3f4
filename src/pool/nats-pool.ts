/**
 * NatsPool: the caller's side of a pool whose workers run on any host,
 * reached through NATS. `new Pool({ ..., nats: {...} })` returns one; the
 * hosts run `servePool()` (nats-host.ts), each with a local Pool of worker
 * processes.
 *
 * Wire protocol (subjects under `mppool.<subject>`):
 * - a task is one message `{ reply, method, fn, args, star, timeout }`
 *   (structured clone). Fast mode publishes it on `.tasks`, which the hosts
 *   share as a queue group; durable mode sends it to the JetStream queue
 *   `pool-<subject>`, which the hosts consume (acknowledged after the result
 *   went out, redelivered after `ackWait` when the host died);
 * - the host answers on the task's own `reply` subject (`<inbox>.<n>`):
 *   `accepted` (with its host id) at once, then `ok` or `err`;
 * - hosts publish a heartbeat on `.hb` every second; in fast mode a host
 *   silent for `hostTimeout` is lost and its tasks fail or are sent again;
 * - a cancelled task is named on `.cancel`; the host running (or, durable,
 *   later fetching) it stops it.
 */
import type { Msg, Subscription } from '@nats-io/transport-node';
import { natsClient } from '../nats/lib.js';
import { hostname } from 'node:os';
import { structured } from '../channel/codec.js';
import {
  AbortError,
  ClosedError,
  MessageTooLargeError,
  WorkerExitedError,
  typeError,
  validateBoolean,
  validateInteger,
  validateOptions,
  validateString,
  validateTimeout,
} from '../errors.js';
import { JetStreamQueue } from '../mqueue/jetstream.js';
import { Nats, type NatsConnectOptions } from '../nats/connection.js';
import { deserializeError, type WireError } from '../rpc/remote-error.js';
import { onAbort } from '../abort.js';
import type { PoolOptions, PoolStats, RunOptions } from './pool.js';
import { PoolBase, TaskTally, poolOptions, runArguments, type MapDefaults } from './pool-base.js';

/** The `nats` option of a {@link Pool} (caller) and of {@link servePool} (worker host). */
export interface NatsPoolOptions extends NatsConnectOptions {
  /** A connection to share; without it the pool opens its own from the connect options and closes it with itself. */
  connection?: Nats;
  /** The pool's name on the server (1 to 200 of `A-Z a-z 0-9 _ -`); callers and hosts of one pool use the same. Default `'default'`. */
  subject?: string;
  /** Tasks kept by JetStream until a host finished them (true), or sent to a live host over core NATS (false, default). Callers and hosts must agree. */
  durable?: boolean;
  /** Durable: ms a task may stay unacknowledged on a host before it is given to another (default 30000). */
  ackWait?: number;
  /** Fast mode, caller: ms without a heartbeat after which a host counts as lost (default 5000). */
  hostTimeout?: number;
}

/** A task message. @internal */
export interface WireTask {
  v: 1;
  reply: string;
  method: 'run' | 'chunk';
  fn: string;
  args: unknown[];
  star: boolean;
  /** Ms from its start on a worker; absent: the host's own `taskTimeout`. */
  timeout?: number;
}

/** What a host says about a task on its reply subject. @internal */
export type WireAnswer =
  | { k: 'accepted'; host: string; pid: number; hostname: string }
  | { k: 'ok'; value: unknown; ms: number }
  | { k: 'err'; error: WireError };

/** A host's heartbeat. @internal */
export interface WireBeat {
  host: string;
  pid: number;
  hostname: string;
  size: number;
  running: number;
  bye?: boolean;
}

const NATS_KEYS = ['connection', 'subject', 'durable', 'ackWait', 'hostTimeout', 'servers', 'user', 'pass', 'token', 'tls', 'name', 'reconnect', 'retryFirstConnect', 'timeout', 'signal', 'bufferSize'];
const SUBJECT_RE = /^[A-Za-z0-9_-]{1,200}$/;
/** Ms between two heartbeats of a host. @internal */
export const HEARTBEAT = 1000;
/** Deliveries of a durable task: it comes back until a host finishes it. @internal */
export const DURABLE_MAX_DELIVER = 1_000_000;
/** Bytes kept free in a message for the NATS envelope. */
const ENVELOPE = 512;
const DEFAULT_IN_FLIGHT = 64;

/** The checked `nats` option. @internal */
export interface NatsPoolConfig {
  connection: Nats | undefined;
  connect: NatsConnectOptions;
  subject: string;
  durable: boolean;
  ackWait: number;
  hostTimeout: number;
}

/** Checks the `nats` option. @internal */
export function natsPoolConfig(value: unknown): NatsPoolConfig {
  if (value === null || typeof value !== 'object') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "options.nats" property must be of type object. Received ${value === null ? 'null' : typeof value}`);
  }
  const o = validateOptions<NatsPoolOptions>(value, 'options.nats', NATS_KEYS);
  const subject = o.subject === undefined ? 'default' : validateString(o.subject, 'options.nats.subject');
  if (!SUBJECT_RE.test(subject)) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The option 'nats.subject' must be 1 to 200 characters of A-Z, a-z, 0-9, '_', '-'. Received '${subject}'`);
  }
  if (o.connection !== undefined && !(o.connection instanceof Nats)) throw typeError('ERR_INVALID_ARG_TYPE', 'The "options.nats.connection" property must be a Nats connection');
  const { connection, subject: _s, durable, ackWait, hostTimeout, ...connect } = o;
  return {
    connection,
    connect,
    subject,
    durable: durable === undefined ? false : validateBoolean(durable, 'options.nats.durable'),
    ackWait: ackWait === undefined ? 30_000 : validateInteger(ackWait, 'options.nats.ackWait', 100, 2 ** 31 - 1),
    hostTimeout: hostTimeout === undefined ? 5000 : validateInteger(hostTimeout, 'options.nats.hostTimeout', 2 * HEARTBEAT, 2 ** 31 - 1),
  };
}

/** The JetStream queue of a durable pool. @internal */
export function durableQueue(cfg: NatsPoolConfig, nats: Nats, prefetch: number): Promise<JetStreamQueue<Uint8Array>> {
  return JetStreamQueue.create<Uint8Array>(`pool-${cfg.subject}`, {
    connection: nats,
    codec: 'raw',
    ackWait: cfg.ackWait,
    maxDeliver: DURABLE_MAX_DELIVER,
    retryDelay: 1000,
    prefetch,
  });
}

interface RemoteTask {
  n: number;
  reply: string;
  method: 'run' | 'chunk';
  fn: string;
  args: unknown[];
  star: boolean;
  timeout: number | undefined;
  /** The encoded message, kept for a resend while no host took it. */
  body: Uint8Array | undefined;
  signal: AbortSignal | undefined;
  offAbort: (() => void) | undefined;
  attempts: number;
  /** Times in a row no host was there to take it (fast mode): the resend backs off. */
  noHost: number;
  state: 'queued' | 'sent' | 'accepted' | 'done';
  host: string | undefined;
  hostPid: number | undefined;
  queuedAt: number;
  sentAt: number;
  resolve: (value: any) => void;
  reject: (err: unknown) => void;
}

interface HostSeen {
  pid: number;
  hostname: string;
  size: number;
  running: number;
  seen: number;
}

/**
 * The caller's side of a pool across hosts: `run`, `map`, `starmap`,
 * `imap`, `imapUnordered`, `close`, `destroy` and `stats` as on
 * {@link Pool}, with the work done by the hosts that run
 * {@link servePool} with the same `nats.subject`.
 *
 * ```ts
 * // on each worker host
 * await servePool({ module: './tasks.js', size: 8, nats: { servers: 'nats://hub:4222', subject: 'render' } });
 * // the caller: the local program, with a transport option added
 * await using pool = new Pool({ module: './tasks.js', nats: { servers: 'nats://hub:4222', subject: 'render' } });
 * await pool.map('square', [1, 2, 3]);
 * ```
 *
 * See docs/api/pool.md, "A pool across hosts".
 */
export class NatsPool extends PoolBase {
  readonly #cfg: NatsPoolConfig;
  readonly #size: number;
  readonly #taskTimeout: number | undefined;
  readonly #retries: number;
  readonly #tasksSubject: string;
  readonly #prefix: string;

  #setup: Promise<void> | undefined;
  #nats: Nats | undefined;
  #queue: JetStreamQueue<Uint8Array> | undefined;
  #subs: Subscription[] = [];
  #inbox = '';
  #watch: NodeJS.Timeout | undefined;
  #lastCheck = 0;

  readonly #waiting: RemoteTask[] = [];
  readonly #tasks = new Map<number, RemoteTask>();
  readonly #hosts = new Map<string, HostSeen>();
  readonly #lostHosts = new Set<string>();
  #inFlight = 0;
  #serial = 0;
  #closing: Promise<void> | undefined;
  #destroying: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  readonly #tally = new TaskTally();

  /**
   * Checks the options; nothing connects until the first task.
   *
   * The options of {@link Pool} that configure worker processes
   * (`maxTasksPerWorker`, `concurrentTasksPerWorker`, `idleTimeout`, `cancelGrace`, `transport`,
   * `permissions`, `env`, `execArgv`, `shmThreshold`) belong to the hosts
   * ({@link servePool}) and are accepted and ignored here; `module` too.
   *
   * Errors (thrown): `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`.
   */
  constructor(options: Omit<PoolOptions, 'module'> & { module?: string | URL }) {
    super();
    const o = poolOptions(options);
    this.#cfg = natsPoolConfig(o.nats);
    this.#size = o.size === undefined ? DEFAULT_IN_FLIGHT : validateInteger(o.size, 'options.size', 1, 1_000_000);
    this.#taskTimeout = o.taskTimeout === undefined ? undefined : validateTimeout(o.taskTimeout, 'options.taskTimeout');
    this.#retries = o.retries === undefined ? 0 : o.retries === Infinity ? Infinity : validateInteger(o.retries, 'options.retries', 0);
    this.#tasksSubject = `mppool.${this.#cfg.subject}.tasks`;
    this.#prefix = `mppool.${this.#cfg.subject}`;
  }

  /** The most tasks this caller has on the hosts at once (default 64); more wait here. */
  get size(): number {
    return this.#size;
  }

  /** True once `close()` or `destroy()` was called. */
  get closed(): boolean {
    return this.#closing !== undefined || this.#destroying !== undefined;
  }

  /** The subject prefix of the pool, `mppool.<subject>`. */
  get namePrefix(): string {
    return this.#prefix;
  }

  /** Whether tasks are kept by JetStream (`nats.durable`). */
  get durable(): boolean {
    return this.#cfg.durable;
  }

  // --- connecting -------------------------------------------------------------

  #connect(): Promise<void> {
    this.#setup ??= (async () => {
      const nats = this.#cfg.connection ?? (await Nats.connect(this.#cfg.connect));
      this.#nats = nats;
      try {
        const nc = nats.connection;
        this.#inbox = natsClient().createInbox();
        this.#subs.push(nc.subscribe(`${this.#inbox}.*`, { callback: (err, msg) => void (err === null && this.#onAnswer(msg)) }));
        this.#subs.push(nc.subscribe(`${this.#prefix}.hb`, { callback: (err, msg) => void (err === null && this.#onBeat(msg)) }));
        if (this.#cfg.durable) this.#queue = await durableQueue(this.#cfg, nats, 1);
        await nc.flush();
        void nc.closed().then(() => this.#lostConnection(nats));
        if (!this.#cfg.durable) {
          this.#lastCheck = performance.now();
          this.#watch = setInterval(() => this.#checkHosts(), Math.max(100, this.#cfg.hostTimeout / 4));
          this.#watch.unref();
        }
      } catch (err) {
        this.#teardown();
        this.#queue = undefined;
        this.#nats = undefined;
        if (this.#cfg.connection === undefined) nats.destroy();
        throw err;
      }
    })();
    return this.#setup;
  }

  #teardown(): void {
    if (this.#watch !== undefined) clearInterval(this.#watch);
    this.#watch = undefined;
    for (const s of this.#subs.splice(0)) {
      try {
        s.unsubscribe();
      } catch {
        // connection closed
      }
    }
  }

  /** The connection ended without close(): what waits or runs fails with the reason, the next task connects afresh. */
  #lostConnection(nats: Nats): void {
    if (this.#nats !== nats || this.closed) return;
    let err: unknown = new ClosedError('the NATS connection of the pool closed');
    try {
      nats.checkUsable();
    } catch (e) {
      err = e;
    }
    this.#teardown();
    this.#queue = undefined;
    this.#nats = undefined;
    this.#setup = undefined;
    this.#waiting.length = 0;
    for (const t of [...this.#tasks.values()]) this.#settle(t, err, undefined, false);
  }

  async #disconnect(graceful: boolean): Promise<void> {
    if (this.#setup === undefined) return;
    await this.#setup.catch(() => {});
    this.#teardown();
    if (graceful) await this.#queue?.close();
    else this.#queue?.destroy();
    if (this.#cfg.connection === undefined && this.#nats !== undefined) {
      if (graceful) await this.#nats.close();
      else this.#nats.destroy();
    }
  }

  // --- answers and hosts --------------------------------------------------------

  #onBeat(msg: Msg): void {
    let b: WireBeat;
    try {
      b = structured.decode(msg.data) as WireBeat;
    } catch {
      return;
    }
    if (b.bye === true) this.#hosts.delete(b.host);
    else this.#hosts.set(b.host, { pid: b.pid, hostname: b.hostname, size: b.size, running: b.running, seen: performance.now() });
  }

  #onAnswer(msg: Msg): void {
    const n = Number(msg.subject.slice(this.#inbox.length + 1));
    const task = this.#tasks.get(n);
    if (task === undefined || task.state === 'done') return;
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      // No host subscribed (fast mode): wait for one, as local tasks wait for a worker.
      if (task.state !== 'sent') return;
      const delay = Math.min(1000, 50 * 2 ** Math.min(task.noHost++, 5));
      task.sentAt = Infinity;
      setTimeout(() => {
        if (task.state === 'sent' && this.#destroying === undefined) this.#publish(task);
      }, delay).unref();
      return;
    }
    let a: WireAnswer;
    try {
      a = structured.decode(msg.data) as WireAnswer;
    } catch {
      return;
    }
    if (a.k === 'accepted') {
      if (task.state === 'sent') this.#tally.waitTime.record(performance.now() - task.queuedAt);
      task.state = 'accepted';
      task.host = a.host;
      task.hostPid = a.pid;
      const h = this.#hosts.get(a.host);
      if (h !== undefined) h.seen = performance.now();
      else this.#hosts.set(a.host, { pid: a.pid, hostname: a.hostname, size: 1, running: 1, seen: performance.now() });
    } else if (a.k === 'ok') {
      this.#tally.runTime.record(a.ms);
      this.#settle(task, undefined, a.value, true);
    } else if (a.k === 'err') {
      this.#settle(task, deserializeError(a.error), undefined, false);
    }
  }

  /** Fast mode: tasks on hosts that went silent, or never accepted, fail or go again. */
  #checkHosts(): void {
    const now = performance.now();
    const limit = this.#cfg.hostTimeout;
    // This process was busy (its event loop blocked): the heartbeats that came
    // meanwhile are still unread. Read them before judging any host.
    const late = now - this.#lastCheck > limit / 2;
    this.#lastCheck = now;
    if (late) return;
    for (const [id, h] of this.#hosts) {
      if (now - h.seen > limit) {
        this.#hosts.delete(id);
        this.#lostHosts.add(id);
      }
    }
    for (const task of [...this.#tasks.values()]) {
      if (task.state === 'sent' && now - task.sentAt > limit) this.#lost(task, 'no pool host accepted it');
      else if (task.state === 'accepted' && !this.#hosts.has(task.host!)) this.#lost(task, `pool host ${task.host} (pid ${task.hostPid}) was destroyed or sent no heartbeat for ${limit} ms`);
    }
  }

  #lost(task: RemoteTask, why: string): void {
    if (task.attempts < this.#retries && this.#destroying === undefined) {
      task.attempts++;
      this.#tally.retried++;
      this.#inFlight--;
      task.state = 'queued';
      task.host = undefined;
      this.#waiting.unshift(task);
      this.#pump();
      return;
    }
    this.#settle(task, new WorkerExitedError(`${why} while it ran task '${task.fn}' (id ${task.n})`, { code: null, signal: null, reason: 'host-lost', pid: task.hostPid }), undefined, false);
  }

  // --- submitting ---------------------------------------------------------------

  /**
   * As {@link Pool.run}: runs `fn(...args)` on a worker of some host.
   * Rejects, besides the errors of `Pool.run`, with `ERR_MULTIPROC_WORKER_EXITED`
   * reason `'host-lost'` (fast mode: the host went silent and no retry was
   * left), `ERR_MULTIPROC_NATS_UNAVAILABLE`, `ERR_MULTIPROC_JETSTREAM`.
   */
  run<R = any>(fn: string, args: readonly unknown[] = [], options?: RunOptions): Promise<R> {
    try {
      const { signal, timeout } = runArguments(fn, args, options, this.#taskTimeout);
      return this.#submit<R>('run', fn, [...args], false, timeout, signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #submit<R>(method: 'run' | 'chunk', fn: string, args: unknown[], star: boolean, timeout: number | undefined, signal: AbortSignal | undefined): Promise<R> {
    if (this.closed) return Promise.reject(new ClosedError('the pool is closed'));
    if (signal?.aborted) return Promise.reject(new AbortError('the task was aborted before it started', { cause: signal.reason }));
    return new Promise<R>((resolve, reject) => {
      const n = ++this.#serial;
      const task: RemoteTask = {
        n, reply: '', method, fn, args, star, timeout, body: undefined, signal, offAbort: undefined, attempts: 0, noHost: 0, state: 'queued',
        host: undefined, hostPid: undefined, queuedAt: performance.now(), sentAt: 0, resolve, reject,
      };
      if (signal !== undefined) {
        task.offAbort = onAbort(signal, () => this.#abort(task, new AbortError('the task was aborted', { cause: signal.reason })));
      }
      this.#tasks.set(n, task);
      this.#waiting.push(task);
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#waiting.length === 0 || this.#inFlight >= this.#size) return;
    if (this.#nats === undefined || (this.#cfg.durable && this.#queue === undefined)) {
      this.#connect().then(
        () => this.#pump(),
        (err: unknown) => {
          // Could not connect: fail what waits; the next task tries again.
          this.#setup = undefined;
          for (const t of this.#waiting.splice(0)) this.#settle(t, err, undefined, false);
        },
      );
      return;
    }
    while (this.#waiting.length > 0 && this.#inFlight < this.#size) {
      const task = this.#waiting.shift()!;
      task.reply = `${this.#inbox}.${task.n}`;
      let body: Uint8Array;
      try {
        const wire: WireTask = { v: 1, reply: task.reply, method: task.method, fn: task.fn, args: task.args, star: task.star, ...(task.timeout !== undefined ? { timeout: task.timeout } : {}) };
        body = structured.encode(wire);
      } catch (err) {
        this.#settle(task, typeError('ERR_INVALID_ARG_VALUE', `The arguments of task '${task.fn}' cannot be sent: ${(err as Error).message}`), undefined, false);
        continue;
      }
      const max = this.#nats.maxPayload - ENVELOPE;
      if (body.length > max) {
        this.#settle(task, new MessageTooLargeError(`task '${task.fn}' is ${body.length} bytes; NATS carries at most ${max} (the server's max_payload less the envelope)`, body.length, max), undefined, false);
        continue;
      }
      this.#inFlight++;
      task.state = 'sent';
      task.sentAt = performance.now();
      task.body = body;
      this.#publish(task);
    }
  }

  #publish(task: RemoteTask): void {
    const body = task.body!;
    task.sentAt = performance.now();
    if (this.#queue !== undefined) {
      // Resolves once the stream stored it; from then on no host's death loses it.
      this.#queue.send(body).catch((err: unknown) => this.#settle(task, err, undefined, false));
      return;
    }
    try {
      this.#nats!.connection.publish(this.#tasksSubject, body, { reply: task.reply });
    } catch (err) {
      this.#settle(task, err, undefined, false);
    }
  }

  #abort(task: RemoteTask, err: Error): void {
    if (task.state === 'done') return;
    const remote = task.state !== 'queued';
    if (!remote) {
      const i = this.#waiting.indexOf(task);
      if (i >= 0) this.#waiting.splice(i, 1);
    }
    this.#tally.cancelled++;
    this.#settle(task, err, undefined, false);
    if (remote) this.#cancelRemote(task);
  }

  #cancelRemote(task: RemoteTask): void {
    try {
      this.#nats?.connection.publish(`${this.#prefix}.cancel`, structured.encode({ reply: task.reply }));
    } catch {
      // connection gone: the host finishes it and its answer is dropped
    }
  }

  #settle(task: RemoteTask, err: unknown, value: unknown, ok: boolean): void {
    if (task.state === 'done') return;
    if (task.state === 'sent' || task.state === 'accepted') this.#inFlight--;
    task.state = 'done';
    this.#tasks.delete(task.n);
    task.body = undefined;
    this.#tally.settle(task, err, value, ok);
    if (this.#tasks.size === 0 && this.#drained !== undefined) this.#drained();
    this.#pump();
  }

  // --- map and friends (pool-base.ts) -----------------------------------------

  /** @internal */
  protected override _mapDefaults(): MapDefaults {
    return { size: this.#size, window: this.#size * 2, timeout: this.#taskTimeout };
  }

  /** @internal */
  protected override _submitChunk(fn: string, chunk: unknown[], star: boolean, timeout: number | undefined, signal: AbortSignal): Promise<unknown[]> {
    return this.#submit<unknown[]>('chunk', fn, chunk, star, timeout, signal);
  }

  // --- lifetime -----------------------------------------------------------------

  /**
   * Graceful: refuses new tasks, waits for the queued and running ones, then
   * closes its subscriptions (and its own connection). The hosts stay. Idempotent; never rejects.
   */
  override close(): Promise<void> {
    if (this.#destroying !== undefined) return this.#destroying;
    this.#closing ??= (async () => {
      if (this.#tasks.size > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
      this.#drained = undefined;
      await this.#disconnect(true).catch(() => {});
    })();
    return this.#closing;
  }

  /**
   * Immediate: queued and running tasks reject with `ERR_MULTIPROC_CLOSED`
   * (`cause`: `err`); the hosts are told to stop the running ones. Idempotent.
   */
  destroy(err?: Error): Promise<void> {
    this.#destroying ??= (async () => {
      const reason = new ClosedError('the pool was destroyed', err !== undefined ? { cause: err } : undefined);
      this.#waiting.length = 0;
      for (const t of [...this.#tasks.values()]) {
        const remote = t.state === 'sent' || t.state === 'accepted';
        this.#settle(t, reason, undefined, false);
        if (remote) this.#cancelRemote(t);
      }
      this.#drained?.();
      try {
        await this.#nats?.confirm();
      } catch {
        // gone already
      }
      await this.#disconnect(false).catch(() => {});
    })();
    return this.#destroying;
  }

  /**
   * As {@link Pool.stats}. `workers` and `idleWorkers` add up the worker
   * processes of the hosts heard from (heartbeats); `workerExits` counts hosts
   * lost; `running` is the tasks on hosts; `waitTime` runs until a host
   * accepted the task; `runTime` is measured on the host.
   */
  stats(): PoolStats {
    let workers = 0;
    let idle = 0;
    const now = performance.now();
    for (const h of this.#hosts.values()) {
      if (now - h.seen > this.#cfg.hostTimeout) continue;
      workers += h.size;
      idle += Math.max(0, h.size - h.running);
    }
    return this.#tally.stats({ queued: this.#waiting.length, running: this.#inFlight, workers, idleWorkers: idle, workerExits: this.#lostHosts.size });
  }
}

/** This process, as hosts name themselves in heartbeats. @internal */
export const thisHost = (): { pid: number; hostname: string } => ({ pid: process.pid, hostname: hostname() });
