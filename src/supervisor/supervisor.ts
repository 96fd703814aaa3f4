/**
 * Supervisor: starts child processes from specs, in order, each counted as
 * started once it called `ready()`; restarts them when they exit, by their
 * restart type and the supervisor's strategy, within a restart intensity
 * (at most `maxRestarts` in `period` ms) and with exponential backoff; finds
 * hung children by heartbeat; relays RPC between roles; stops everything in
 * reverse start order on `close()` and, for a root supervisor, on SIGINT or
 * SIGTERM. After Erlang/OTP's supervisor, with Chromium's browser/renderer
 * split in mind (roles with their own permissions).
 *
 * Every change of the children (start, exit, restart, stop) runs as one
 * operation on a queue, one after another, so that an exit that arrives
 * while a group restart is under way is handled after it, against the state
 * that restart left, never in the middle of it.
 */
import { EventEmitter } from 'node:events';
import { spawn, type ChildExit, type ChildHandle, type SpawnOptions } from '../process/spawn.js';
import type { ExitReason } from '../process/exit-reason.js';
import {
  ClosedError,
  SupervisorFailedError,
  codes,
  rangeError,
  typeError,
  validateBoolean,
  validateInteger,
  validateOneOf,
  validateOptions,
  validateString,
} from '../errors.js';
import {
  clientChannelName,
  normalizeSpec,
  roleChannelName,
  validateName,
  type ChildSpec,
  type NormalSpec,
  type RestartStrategy,
  type RestartType,
} from './spec.js';
import { Relay, newLink, type Link } from './relay.js';
import { registerSignals, unregisterSignals } from './signals.js';
import { StatusPublisher } from '../resources/status.js';

export type { ChildSpec, RestartStrategy, RestartType, HeartbeatOptions } from './spec.js';

/** Options of {@link Supervisor}. */
export interface SupervisorOptions {
  /** Name in messages, events and snapshots (default `'supervisor'`); a nested supervisor's role name. */
  name?: string;
  /** What to run, in start order: child specs, or nested (not yet started) supervisors. */
  children: Array<ChildSpec | Supervisor>;
  /** Which children are restarted when one must be (default `'one_for_one'`). */
  strategy?: RestartStrategy;
  /** At most this many restarts within `period` ms (default 3); one more and the supervisor gives up. */
  maxRestarts?: number;
  /** The window of `maxRestarts`, in ms (default 5000). */
  period?: number;
  /**
   * Delay before a restart: `initial` ms, doubled for each earlier restart of
   * the same child within `period`, at most `max` ms. Default `{ initial: 100, max: 5000 }`.
   */
  backoff?: { initial?: number; max?: number };
  /**
   * Close on SIGINT and SIGTERM (then re-raise the signal). Default true for a
   * root supervisor; a nested supervisor never installs handlers.
   */
  handleSignals?: boolean;
}

/**
 * A supervisor's state: `'idle'` (not started), `'starting'`, `'running'`,
 * `'stopping'`, `'stopped'` (closed, for good) or `'failed'` (gave up; its
 * children were stopped; `start()` may be called again).
 */
export type SupervisorState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/**
 * A child's state: `'idle'` (never started), `'starting'` (spawned, not
 * ready yet), `'running'`, `'exited'` (about to be handled), `'restarting'`
 * (waiting for its backoff), `'stopping'`, `'stopped'` (stopped by the
 * supervisor, or ended for good: a temporary child, a transient one that
 * exited cleanly).
 */
export type ChildState = 'idle' | 'starting' | 'running' | 'exited' | 'restarting' | 'stopping' | 'stopped';

/** One child (one instance of a role) in {@link Supervisor.children}. */
export interface ChildInfo {
  /** The role's name (the spec's `name`, or the nested supervisor's). */
  name: string;
  /** Instance number, 0 to `count - 1`. */
  index: number;
  kind: 'process' | 'supervisor';
  /** Process id while the process runs; else undefined (always for a nested supervisor). */
  pid: number | undefined;
  state: ChildState;
  /** How many times the supervisor started it again. */
  restarts: number;
  /** Reason of its last exit, if it exited (`'hung'` when the heartbeat killed it). */
  lastExit: ExitReason | undefined;
  /** A nested supervisor's own snapshot. */
  supervisor?: SupervisorSnapshot;
}

/** The live view of a supervisor tree. */
export interface SupervisorSnapshot {
  name: string;
  state: SupervisorState;
  strategy: RestartStrategy;
  /** Restarts within the last `period` ms, the count the intensity limit applies to. */
  recentRestarts: number;
  children: ChildInfo[];
}

/** Payload of the `'started'`, `'restarted'` and `'hung'` events. */
export interface ChildEvent {
  /** The supervisor's name. */
  supervisor: string;
  name: string;
  index: number;
  pid: number | undefined;
  restarts: number;
}

/** Payload of the `'exited'` event. */
export interface ChildExitEvent extends ChildEvent {
  exit: ChildExit;
  /** Whether the supervisor will start it again. */
  restart: boolean;
}

/** The events of a {@link Supervisor} and their arguments. */
export interface SupervisorEvents {
  /** A child called `ready()` (first start and every restart), or a nested supervisor started. */
  started: [event: ChildEvent];
  /** A child exited, or was stopped by the supervisor. */
  exited: [event: ChildExitEvent];
  /** A child was started again after an exit (after `'started'`). */
  restarted: [event: ChildEvent];
  /** A child missed its heartbeat; it is being killed (its exit follows with reason `'hung'`). */
  hung: [event: ChildEvent];
  /** The supervisor gave up; its children are stopped. */
  failed: [error: SupervisorFailedError];
  /** `close()` finished: every child is stopped. */
  stopped: [];
}

interface Slot {
  readonly id: string;
  readonly name: string;
  readonly index: number;
  readonly order: number;
  readonly spec: NormalSpec | undefined;
  readonly nested: Supervisor | undefined;
  readonly restart: RestartType;
  readonly options: SpawnOptions | undefined;
  handle: ChildHandle | undefined;
  state: ChildState;
  /** Bumped at every start and stop: an exit of an older generation is stale. */
  gen: number;
  restarts: number;
  lastExit: ChildExit | undefined;
  /** The process exit already reported by an 'exited' event. */
  reported: ChildExit | undefined;
  hung: boolean;
  /** Times of this child's restarts, for the backoff. */
  history: number[];
}

const DEFAULT_BACKOFF = { initial: 100, max: 5000 };

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new ClosedError('the supervisor is stopping'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new ClosedError('the supervisor is stopping'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function nonNegative(value: unknown, what: string): number {
  if (typeof value !== 'number') throw typeError('ERR_INVALID_ARG_TYPE', `The "${what}" option must be of type number. Received type ${typeof value}`);
  if (!Number.isFinite(value) || value < 0) {
    throw rangeError(`The value of "${what}" is out of range. It must be a finite number >= 0. Received ${value}`);
  }
  return value;
}

/**
 * Runs child processes and keeps them running: an asymmetric supervisor
 * (the supervisor process is the parent of every child; children reach each
 * other only through it).
 *
 * ```ts
 * await using sup = new Supervisor({
 *   strategy: 'one_for_one',
 *   children: [
 *     { name: 'browser', module: './browser.js', permissions: { fsRead: ['/srv/data'] } },
 *     { name: 'renderer', module: './renderer.js', count: 2, permissions: {}, connects: ['browser'],
 *       heartbeat: { interval: 1000, timeout: 3000 } },
 *   ],
 * });
 * sup.on('exited', (e) => console.log(`${e.name}#${e.index}: ${e.exit.reason}`));
 * await sup.start();
 * ```
 *
 * Lifetime: `start()` once (again only after `'failed'`); `close()` stops
 * every child in reverse start order and is idempotent; `destroy()` kills
 * them at once; `await using` calls `close()`.
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  /** The `name` option (default `'supervisor'`). */
  readonly name: string;
  readonly #strategy: RestartStrategy;
  readonly #maxRestarts: number;
  readonly #period: number;
  readonly #backoff: { initial: number; max: number };
  readonly #handleSignals: boolean;
  readonly #slots: Slot[];
  readonly #relay: Relay;
  #parent: Supervisor | undefined;
  /** The status file `multiproc top` reads (root supervisors only). */
  #status: StatusPublisher | undefined;
  #state: SupervisorState = 'idle';
  #ops: Promise<unknown> = Promise.resolve();
  #abort = new AbortController();
  #restartTimes: number[] = [];
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #destroying = false;
  #finished!: Promise<void>;
  #settleFinished!: (err?: Error) => void;

  /**
   * Validates the specs; starts nothing (see {@link start}).
   *
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE` (an unknown
   * option, a bad or duplicate name, `connects` naming no sibling process
   * role, a Supervisor already nested or started, a `module` URL that is not
   * `file:`, a `stdio` spawn() refuses), `ERR_OUT_OF_RANGE`
   * (`count` outside 1..1024, a negative `maxRestarts`, a non-positive period
   * or heartbeat time).
   */
  constructor(options: SupervisorOptions) {
    super();
    if (options === undefined) throw typeError('ERR_INVALID_ARG_TYPE', 'The "options" argument must be of type object. Received undefined');
    const o = validateOptions<SupervisorOptions>(options, 'options', ['name', 'children', 'strategy', 'maxRestarts', 'period', 'backoff', 'handleSignals']);
    this.name = o.name === undefined ? 'supervisor' : validateName(o.name, 'options.name');
    this.#strategy = o.strategy === undefined ? 'one_for_one' : validateOneOf(o.strategy, 'options.strategy', ['one_for_one', 'one_for_all', 'rest_for_one'] as const);
    this.#maxRestarts = o.maxRestarts === undefined ? 3 : validateInteger(o.maxRestarts, 'options.maxRestarts', 0);
    this.#period = o.period === undefined ? 5000 : nonNegative(o.period, 'options.period');
    if (this.#period === 0) throw rangeError('The value of "options.period" is out of range. It must be > 0. Received 0');
    const b = validateOptions<{ initial: number; max: number }>(o.backoff, 'options.backoff', ['initial', 'max']);
    this.#backoff = {
      initial: b.initial === undefined ? DEFAULT_BACKOFF.initial : nonNegative(b.initial, 'options.backoff.initial'),
      max: b.max === undefined ? DEFAULT_BACKOFF.max : nonNegative(b.max, 'options.backoff.max'),
    };
    this.#handleSignals = o.handleSignals === undefined ? true : validateBoolean(o.handleSignals, 'options.handleSignals');
    if (!Array.isArray(o.children)) throw typeError('ERR_INVALID_ARG_TYPE', 'The "options.children" option must be an array of child specs and supervisors');

    // Everything is checked before any nested supervisor is claimed.
    const entries: Array<NormalSpec | Supervisor> = o.children.map((c, i) => {
      if (c instanceof Supervisor) {
        if (c === this || c.#parent !== undefined || c.#state !== 'idle') {
          throw typeError('ERR_INVALID_ARG_VALUE', `The "options.children[${i}]" supervisor '${c.name}' is already nested or started`);
        }
        return c;
      }
      return normalizeSpec(c, `options.children[${i}]`);
    });
    const byName = new Map<string, NormalSpec | Supervisor>();
    for (const e of entries) {
      if (byName.has(e.name)) throw typeError('ERR_INVALID_ARG_VALUE', `Two children of supervisor '${this.name}' are named '${e.name}'`);
      byName.set(e.name, e);
    }
    if (new Set(entries.filter((e) => e instanceof Supervisor)).size !== entries.filter((e) => e instanceof Supervisor).length) {
      throw typeError('ERR_INVALID_ARG_VALUE', 'The same supervisor is listed twice');
    }
    const links: Link[] = [];
    for (const e of entries) {
      if (e instanceof Supervisor) continue;
      for (const role of e.connects) {
        const target = byName.get(role);
        if (target === undefined || target instanceof Supervisor) {
          throw typeError('ERR_INVALID_ARG_VALUE', `The child '${e.name}' connects to '${role}', which is not a process role of supervisor '${this.name}'`);
        }
        for (let i = 0; i < e.count; i++) {
          links.push(newLink(`${e.name}#${i}`, role, `${role}#${i % target.count}`, roleChannelName(role), clientChannelName(e.name, i)));
        }
      }
    }
    this.#relay = new Relay(links);

    const slots: Slot[] = [];
    for (const e of entries) {
      if (e instanceof Supervisor) {
        e.#parent = this;
        // A nested supervisor ends cleanly only when closed; it is restarted when it gives up.
        slots.push(this.#slot(e.name, 0, slots.length, undefined, e, 'transient', undefined));
        continue;
      }
      for (let i = 0; i < e.count; i++) {
        const id = `${e.name}#${i}`;
        const channels: Record<string, { kind: 'stream'; codec: 'raw' }> = {};
        for (const l of this.#relay.linksOfClient(id)) channels[l.atClient] = { kind: 'stream', codec: 'raw' };
        for (const l of this.#relay.linksOfTarget(id)) channels[l.atTarget] = { kind: 'stream', codec: 'raw' };
        const spawnOptions: SpawnOptions = {
          name: e.count > 1 ? id : e.name,
          shutdownTimeout: e.shutdownTimeout,
          channels,
        };
        if (e.args !== undefined) spawnOptions.args = e.args;
        if (e.env !== undefined) spawnOptions.env = e.env;
        if (e.readyTimeout !== undefined) spawnOptions.readyTimeout = e.readyTimeout;
        if (e.permissions !== undefined) spawnOptions.permissions = e.permissions;
        if (e.cwd !== undefined) spawnOptions.cwd = e.cwd;
        if (e.execArgv !== undefined) spawnOptions.execArgv = e.execArgv;
        if (e.stdio !== undefined) spawnOptions.stdio = e.stdio;
        slots.push(this.#slot(e.name, i, slots.length, e, undefined, e.restart, spawnOptions));
      }
    }
    this.#slots = slots;
    this.#newRun();
  }

  #slot(name: string, index: number, order: number, spec: NormalSpec | undefined, nested: Supervisor | undefined, restart: RestartType, options: SpawnOptions | undefined): Slot {
    return { id: `${name}#${index}`, name, index, order, spec, nested, restart, options, handle: undefined, state: 'idle', gen: 0, restarts: 0, lastExit: undefined, reported: undefined, hung: false, history: [] };
  }

  #newRun(): void {
    let settled = false;
    this.#finished = new Promise<void>((resolve, reject) => {
      this.#settleFinished = (err) => {
        if (settled) return;
        settled = true;
        if (err === undefined) resolve();
        else reject(err);
      };
    });
    // Reported through the 'failed' event too: never an unhandled rejection.
    this.#finished.catch(() => {});
  }

  /** The supervisor's state. */
  get state(): SupervisorState {
    return this.#state;
  }

  /**
   * Settles when this run of the supervisor ends: resolves after `close()`,
   * rejects with the {@link SupervisorFailedError} when it gave up. Never an
   * unhandled rejection when nobody awaits it.
   */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /**
   * Starts the children in order, each once it called `ready()` (a nested
   * supervisor once its own children are started). Resolves when all are
   * running. Calling it again while starting or running returns the same
   * promise; after `'failed'` it starts a new run.
   *
   * Errors (rejections): `ERR_MULTIPROC_SUPERVISOR_FAILED` (a child could not
   * be started: `cause` is its error, e.g. `ERR_MULTIPROC_PROCESS_EXITED` or
   * `ERR_MULTIPROC_TIMEOUT`; the children already started are stopped),
   * `ERR_MULTIPROC_CLOSED` (closed before or while starting).
   */
  start(): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') return Promise.reject(new ClosedError(`supervisor '${this.name}' is closed`));
    if (this.#state === 'starting' || this.#state === 'running') return this.#starting!;
    if (this.#state === 'failed') this.#newRun();
    this.#state = 'starting';
    this.#abort = new AbortController();
    this.#restartTimes = [];
    for (const s of this.#slots) {
      s.state = 'idle';
      s.restarts = 0;
      s.history = [];
    }
    if (this.#parent === undefined && this.#handleSignals) registerSignals(this);
    // A root supervisor shows its tree (nested ones included) to `multiproc top`.
    if (this.#parent === undefined && this.#status === undefined) {
      const status = new StatusPublisher('supervisor', this.name, () => this.snapshot());
      this.#status = status;
      for (const ev of ['started', 'exited', 'restarted', 'hung', 'failed'] as const) this.on(ev, () => status.update());
      this.once('stopped', () => {
        status.close();
        if (this.#status === status) this.#status = undefined;
      });
    }
    this.#starting = this.#enqueue(async () => {
      for (const slot of this.#slots) {
        if (this.#state !== 'starting') throw new ClosedError(`supervisor '${this.name}' was closed while starting`);
        const err = await this.#startSlot(slot, false);
        if (err === undefined) continue;
        if (this.#state !== 'starting') throw new ClosedError(`supervisor '${this.name}' was closed while starting`, { cause: err });
        throw await this.#giveUp(`could not start child '${slot.id}': ${err.message}`, slot, err);
      }
      this.#state = 'running';
    });
    return this.#starting;
  }

  /**
   * The children in start order, with nested supervisors' trees
   * (`info.supervisor`): name, index, pid, state, restarts, last exit reason.
   */
  children(): ChildInfo[] {
    return this.#slots.map((s) => {
      const info: ChildInfo = {
        name: s.name,
        index: s.index,
        kind: s.nested !== undefined ? 'supervisor' : 'process',
        pid: s.handle !== undefined && s.handle.exit === undefined && (s.state === 'starting' || s.state === 'running' || s.state === 'stopping') ? s.handle.pid : undefined,
        state: s.state,
        restarts: s.restarts,
        lastExit: s.lastExit?.reason,
      };
      if (s.nested !== undefined) info.supervisor = s.nested.snapshot();
      return info;
    });
  }

  /** This supervisor and its tree, as plain data (a copy). */
  snapshot(): SupervisorSnapshot {
    const now = Date.now();
    return {
      name: this.name,
      state: this.#state,
      strategy: this.#strategy,
      recentRestarts: this.#restartTimes.filter((t) => now - t < this.#period).length,
      children: this.children(),
    };
  }

  /**
   * The handle of the current (or last) process of child `name#index`, for
   * its control channel or its pid; undefined before it started and for a
   * nested supervisor. A restart replaces it.
   *
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE` (no such child).
   */
  handle(name: string, index = 0): ChildHandle | undefined {
    validateString(name, 'name');
    validateInteger(index, 'index', 0);
    const slot = this.#slots.find((s) => s.name === name && s.index === index);
    if (slot === undefined) throw typeError('ERR_INVALID_ARG_VALUE', `Supervisor '${this.name}' has no child '${name}#${index}'`);
    return slot.handle;
  }

  /**
   * Stops every child in reverse start order: each gets the shutdown request
   * (its `onShutdown` handlers run), SIGTERM after its `shutdownTimeout`,
   * SIGKILL after as long again; pending restarts are cancelled. Resolves
   * when all have exited. Idempotent; never rejects. The supervisor cannot
   * be started again.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Like `close()`, but kills every child with SIGKILL at once. Idempotent. */
  destroy(): Promise<void> {
    this.#destroying = true;
    for (const s of this.#slots) {
      s.handle?.kill('SIGKILL');
      if (s.nested !== undefined) void s.nested.destroy();
    }
    return this.close();
  }

  /** Same as `close()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(): Promise<void> {
    unregisterSignals(this);
    this.#state = 'stopping';
    this.#abort.abort();
    await this.#enqueue(() => this.#stopAll());
    this.#state = 'stopped';
    this.#settleFinished();
    this.#emit('stopped');
  }

  /** Stops a nested supervisor for its parent: like close(), but it may start again. */
  async #stopNested(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'idle') return;
    const failed = this.#state === 'failed';
    this.#state = 'stopping';
    this.#abort.abort();
    await this.#enqueue(() => this.#stopAll());
    this.#state = failed ? 'failed' : 'idle';
    this.#settleFinished();
    this.#newRun();
  }

  #enqueue<T>(op: () => Promise<T>): Promise<T> {
    const p = this.#ops.then(op);
    this.#ops = p.catch(() => {});
    return p;
  }

  /**
   * Emits without letting a throwing listener cut an operation short (the
   * children's state must stay consistent): its error is rethrown on the next
   * tick, an uncaught exception as for any event emitted from the event loop.
   */
  #emit<K extends keyof SupervisorEvents>(event: K, ...args: SupervisorEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: SupervisorEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  #event(s: Slot): ChildEvent {
    return { supervisor: this.name, name: s.name, index: s.index, pid: s.handle?.pid, restarts: s.restarts };
  }

  /** Starts one child and waits for its readiness; the error when it did not get there. */
  async #startSlot(slot: Slot, isRestart: boolean): Promise<Error | undefined> {
    const gen = ++slot.gen;
    slot.hung = false;
    slot.state = 'starting';
    if (slot.nested !== undefined) {
      const nested = slot.nested;
      slot.handle = undefined;
      try {
        await untilAborted(nested.start(), this.#abort.signal);
      } catch (err) {
        // Its own failure already stopped its children; a ClosedError means we are stopping.
        if (this.#live()) void this.#enqueue(() => this.#onExit(slot, gen, { code: null, signal: null, reason: 'error-exit', error: err as Error }));
        return err as Error;
      }
      nested.finished.then(
        () => this.#enqueue(() => this.#onExit(slot, gen, { code: 0, signal: null, reason: 'clean-exit' })),
        (err: Error) => this.#enqueue(() => this.#onExit(slot, gen, { code: null, signal: null, reason: 'error-exit', error: err })),
      );
      return this.#running(slot, gen, isRestart);
    }

    let handle: ChildHandle;
    try {
      handle = spawn(slot.spec!.module, slot.options);
    } catch (err) {
      // spawn() refused to start it: it will not do better next time.
      slot.state = 'exited';
      slot.lastExit = { code: null, signal: null, reason: 'launch-failed', error: err as Error };
      return err as Error;
    }
    slot.handle = handle;
    const channel = (n: string) => handle.channel<Uint8Array>(n);
    this.#relay.clientStarted(slot.id, channel);
    this.#relay.targetStarted(slot.id, channel);
    void handle.exited.then((exit) => {
      this.#relay.clientExited(slot.id);
      this.#relay.targetExited(slot.id, `exited (${slot.hung ? 'hung' : exit.reason})`);
      void this.#enqueue(() => this.#onExit(slot, gen, exit));
    });
    try {
      await untilAborted(handle.ready, this.#abort.signal);
    } catch (err) {
      // Not ready in time: it is killed, and its exit is handled like any other.
      if ((err as { code?: string }).code === codes.TIMEOUT) handle.kill('SIGKILL');
      return err as Error;
    }
    if (gen !== slot.gen) return new ClosedError(`child '${slot.id}' was stopped while starting`);
    void this.#relay.targetReady(slot.id);
    void this.#heartbeat(slot, gen, handle);
    return this.#running(slot, gen, isRestart);
  }

  #running(slot: Slot, gen: number, isRestart: boolean): undefined {
    if (gen !== slot.gen) return undefined;
    slot.state = 'running';
    this.#emit('started', this.#event(slot));
    if (isRestart) this.#emit('restarted', this.#event(slot));
    return undefined;
  }

  #live(): boolean {
    return this.#state === 'starting' || this.#state === 'running';
  }

  async #heartbeat(slot: Slot, gen: number, handle: ChildHandle): Promise<void> {
    const hb = slot.spec?.heartbeat;
    if (hb === undefined) return;
    for (;;) {
      await new Promise<void>((resolve) => setTimeout(resolve, hb.interval).unref());
      if (slot.gen !== gen || slot.state !== 'running' || handle.exit !== undefined) return;
      try {
        await handle.ping({ timeout: hb.timeout });
      } catch (err) {
        if (slot.gen !== gen || slot.state !== 'running' || handle.exit !== undefined) return;
        if ((err as { code?: string }).code !== codes.TIMEOUT) return;
        slot.hung = true;
        this.#emit('hung', this.#event(slot));
        handle.kill('SIGKILL');
        return;
      }
    }
  }

  /** Handles an exit (or a failed start) of `slot`: the restart policy, the intensity, the strategy. */
  async #onExit(slot: Slot, gen: number, raw: ChildExit): Promise<void> {
    if (gen !== slot.gen || !this.#live()) return;
    const exit: ChildExit = slot.hung ? { ...raw, reason: 'hung' } : raw;
    slot.lastExit = exit;
    slot.reported = raw;
    slot.state = 'exited';
    await slot.handle?.close();
    const restart = slot.restart === 'permanent' || (slot.restart === 'transient' && exit.reason !== 'clean-exit');
    this.#emit('exited', { ...this.#event(slot), pid: slot.handle?.pid, exit, restart });
    if (!restart) {
      slot.state = 'stopped';
      return;
    }
    if (!this.#live()) return;

    const now = Date.now();
    this.#restartTimes = this.#restartTimes.filter((t) => now - t < this.#period);
    this.#restartTimes.push(now);
    if (this.#restartTimes.length > this.#maxRestarts) {
      await this.#giveUp(
        `child '${slot.id}' exited (${exit.reason}) and the restart limit is reached: ${this.#maxRestarts} restarts within ${this.#period} ms`,
        slot,
        exit.error,
      );
      return;
    }

    const group = this.#strategy === 'one_for_one' ? [slot] : this.#strategy === 'one_for_all' ? this.#slots : this.#slots.filter((s) => s.order >= slot.order);
    // The rest of the group stops first, newest first; temporary children are not started again.
    for (const s of [...group].reverse()) {
      if (s === slot || !(s.state === 'running' || s.state === 'starting')) continue;
      await this.#stopSlot(s, s.restart !== 'temporary');
      if (!this.#live()) return;
    }
    // Started again: this child, the ones just stopped for the group, and group members already down.
    for (const s of group) if (s === slot || s.state === 'exited') s.state = 'restarting';

    const recent = slot.history.filter((t) => now - t < this.#period).length;
    const delay = Math.min(this.#backoff.initial * 2 ** recent, this.#backoff.max);
    if (!(await sleep(delay, this.#abort.signal)) || !this.#live()) return;

    for (const s of group) {
      if (s.state !== 'restarting') continue;
      s.restarts++;
      s.history = [...s.history.filter((t) => Date.now() - t < this.#period), Date.now()];
      const err = await this.#startSlot(s, true);
      if (!this.#live()) return;
      if (err !== undefined) {
        // Its exit (or the synthetic one of a failed nested start) comes through the queue and
        // restarts what is still down; a spec spawn() refused never will.
        if (s.handle === undefined && s.nested === undefined) await this.#giveUp(`could not start child '${s.id}': ${err.message}`, s, err);
        return;
      }
    }
  }

  /** Stops one child; `restartLater` marks it to be started again by the group restart under way. */
  async #stopSlot(s: Slot, restartLater: boolean): Promise<void> {
    s.gen++;
    s.state = 'stopping';
    if (s.nested !== undefined) {
      await s.nested.#stopNested();
    } else if (s.handle !== undefined) {
      if (this.#destroying) s.handle.kill('SIGKILL');
      const exit = await s.handle.close();
      if (s.reported !== exit) {
        s.lastExit = exit;
        s.reported = exit;
        this.#emit('exited', { ...this.#event(s), exit, restart: restartLater });
      }
    }
    s.state = restartLater ? 'restarting' : 'stopped';
  }

  async #stopAll(): Promise<void> {
    for (const s of [...this.#slots].reverse()) {
      if (s.state === 'idle' || s.state === 'stopped') continue;
      await this.#stopSlot(s, false);
    }
  }

  /** Gives up: stops every child, reports, and returns the error. */
  async #giveUp(message: string, slot: Slot | undefined, cause: unknown): Promise<SupervisorFailedError> {
    const now = Date.now();
    const err = new SupervisorFailedError(
      `supervisor '${this.name}' gave up: ${message}`,
      { supervisor: this.name, child: slot?.id, restarts: this.#restartTimes.filter((t) => now - t < this.#period).length },
      cause === undefined ? undefined : { cause },
    );
    this.#state = 'failed';
    this.#abort.abort();
    await this.#stopAll();
    unregisterSignals(this);
    this.#settleFinished(err);
    this.#emit('failed', err);
    return err;
  }
}
