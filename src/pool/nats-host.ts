/**
 * servePool(): the worker host of a pool across hosts. It runs a local Pool
 * of worker processes over the task module and feeds it the tasks that
 * callers (NatsPool, nats-pool.ts) send through NATS: from the queue group
 * `mppool.<subject>.tasks` (fast mode), or from the JetStream queue
 * `pool-<subject>` (durable mode: a task is acknowledged once its answer was
 * published, so a host that dies before leaves it to be redelivered to
 * another host after `ackWait`).
 */
import type { Subscription } from '@nats-io/transport-node';
import { natsClient } from '../nats/lib.js';
import { structured } from '../channel/codec.js';
import { ClosedError, MessageTooLargeError, typeError, validateOptions } from '../errors.js';
import type { JetStreamQueue, QueueConsumer } from '../mqueue/jetstream.js';
import { Nats } from '../nats/connection.js';
import { serializeError } from '../rpc/remote-error.js';
import { HEARTBEAT, durableQueue, natsPoolConfig, thisHost, type NatsPoolConfig, type NatsPoolOptions, type WireAnswer, type WireBeat, type WireTask } from './nats-pool.js';
import { Pool, type PoolOptions, type PoolStats } from './pool.js';

/** Options of {@link servePool}: those of a local {@link Pool} (its worker processes on this host), plus `nats`. */
export interface PoolHostOptions extends Omit<PoolOptions, 'nats'> {
  /** Where the tasks come from; the same `subject` and `durable` as the callers'. */
  nats: NatsPoolOptions;
}

/** What {@link PoolHost.stats} reports. */
export interface PoolHostStats {
  /** Tasks (and map chunks) this host took. */
  accepted: number;
  /** Of those, answered with a result. */
  completed: number;
  /** Answered with an error (the task threw, its worker died, it timed out). */
  failed: number;
  /** Dropped because the caller cancelled them. */
  cancelled: number;
  /** Being run (or queued in the local pool). */
  running: number;
  /** The local pool's own stats. */
  pool: PoolStats;
}

/** Cancelled tasks remembered for a durable task fetched after its cancellation. */
const CANCELLED_MEMORY = 10_000;
const ENVELOPE = 512;

/**
 * A worker host: serves the tasks of one pool across hosts with a local
 * {@link Pool}. Made by {@link servePool}.
 */
export class PoolHost {
  /** This host's id in heartbeats and answers. */
  readonly id = natsClient().nuid.next();
  /** The local pool that runs the tasks. */
  readonly pool: Pool;
  readonly #cfg: NatsPoolConfig;
  readonly #nats: Nats;
  readonly #owned: boolean;
  readonly #size: number;
  #sub: Subscription | undefined;
  #cancelSub: Subscription | undefined;
  #queue: JetStreamQueue<Uint8Array> | undefined;
  #consumer: QueueConsumer | undefined;
  #beat: NodeJS.Timeout | undefined;
  readonly #running = new Map<string, AbortController>();
  readonly #cancelled = new Set<string>();
  readonly #idle = new Set<() => void>();
  #closing: Promise<void> | undefined;
  /** Set by destroy(): tasks are no longer answered (the local pool's ClosedError is not the caller's business). */
  #destroyed = false;
  #stopped!: () => void;
  readonly #done = new Promise<void>((resolve) => (this.#stopped = resolve));
  #accepted = 0;
  #completed = 0;
  #failed = 0;
  #cancelledCount = 0;

  /** @internal */
  constructor(pool: Pool, cfg: NatsPoolConfig, nats: Nats, owned: boolean) {
    this.pool = pool;
    this.#cfg = cfg;
    this.#nats = nats;
    this.#owned = owned;
    this.#size = pool.size;
  }

  /** @internal */
  async start(): Promise<void> {
    const nc = this.#nats.connection;
    const prefix = `mppool.${this.#cfg.subject}`;
    this.#cancelSub = nc.subscribe(`${prefix}.cancel`, {
      callback: (err, msg) => {
        if (err !== null) return;
        try {
          const { reply } = structured.decode(msg.data) as { reply: string };
          const ac = this.#running.get(reply);
          if (ac !== undefined) ac.abort();
          else if (this.#cfg.durable) {
            this.#cancelled.add(reply);
            if (this.#cancelled.size > CANCELLED_MEMORY) this.#cancelled.delete(this.#cancelled.values().next().value!);
          }
        } catch {
          // not ours
        }
      },
    });
    if (this.#cfg.durable) {
      // prefetch 1: a host holds no more tasks than it runs, so the others get the rest.
      // keepAlive: a long task stays with its live host; only a dead host's come back.
      this.#queue = await durableQueue(this.#cfg, this.#nats, 1);
      this.#consumer = this.#queue.consume(
        async (bytes) => {
          // Unanswered: not acknowledged but returned to the queue (nak), for another host.
          if (!(await this.#serve(bytes))) throw new ClosedError('the pool host was destroyed');
        },
        { concurrency: this.#size, keepAlive: true },
      );
    } else {
      this.#sub = nc.subscribe(`${prefix}.tasks`, {
        queue: 'hosts',
        callback: (err, msg) => {
          if (err === null) void this.#serve(msg.data);
        },
      });
    }
    await nc.flush();
    // Lost for good (reconnect attempts used up): nothing more can come or go.
    void nc.closed().then(() => {
      if (this.#closing !== undefined) return;
      let err: Error = new ClosedError('the NATS connection of the pool host closed');
      try {
        this.#nats.checkUsable();
      } catch (e) {
        err = e as Error;
      }
      void this.destroy(err);
    });
    this.#heartbeat();
    this.#beat = setInterval(() => this.#heartbeat(), HEARTBEAT);
    this.#beat.unref();
  }

  #heartbeat(bye = false): void {
    const b: WireBeat = { host: this.id, ...thisHost(), size: this.#size, running: this.#running.size, ...(bye ? { bye } : {}) };
    try {
      this.#nats.connection.publish(`mppool.${this.#cfg.subject}.hb`, structured.encode(b));
    } catch {
      // closed
    }
  }

  #answer(reply: string, a: WireAnswer): void {
    let body: Uint8Array;
    try {
      body = structured.encode(a);
    } catch (err) {
      body = structured.encode({ k: 'err', error: serializeError(typeError('ERR_INVALID_ARG_VALUE', `the result cannot be sent: ${(err as Error).message}`)) } satisfies WireAnswer);
    }
    const max = this.#nats.maxPayload - ENVELOPE;
    if (body.length > max) {
      body = structured.encode({
        k: 'err',
        error: serializeError(new MessageTooLargeError(`the result is ${body.length} bytes; NATS carries at most ${max} (the server's max_payload less the envelope)`, body.length, max)),
      } satisfies WireAnswer);
    }
    try {
      this.#nats.connection.publish(reply, body);
    } catch {
      // closed: in durable mode the task is not acknowledged and comes back
    }
  }

  /**
   * Runs one task; resolves once its answer went out (durable: then it is
   * acknowledged). Resolves with false when the host was destroyed before the
   * task was answered: it is left unanswered, for the caller's retries (fast)
   * or another host (durable).
   */
  async #serve(bytes: Uint8Array): Promise<boolean> {
    if (this.#destroyed) return false;
    let task: WireTask;
    try {
      task = structured.decode(bytes) as WireTask;
      if (task?.v !== 1 || typeof task.reply !== 'string') return true;
    } catch {
      return true; // not a task: drop it
    }
    if (this.#cancelled.delete(task.reply)) {
      this.#cancelledCount++;
      return true;
    }
    this.#accepted++;
    this.#answer(task.reply, { k: 'accepted', host: this.id, ...thisHost() });
    const ac = new AbortController();
    this.#running.set(task.reply, ac);
    const started = performance.now();
    try {
      const options = { signal: ac.signal, ...(typeof task.timeout === 'number' ? { timeout: task.timeout } : {}) };
      let value: unknown;
      if (task.method === 'run') value = await this.pool.run(task.fn, task.args, options);
      else if (task.star) value = await this.pool.starmap(task.fn, task.args as unknown[][], { ...options, chunkSize: Math.max(1, task.args.length) });
      else value = await this.pool.map(task.fn, task.args, { ...options, chunkSize: Math.max(1, task.args.length) });
      this.#completed++;
      this.#answer(task.reply, { k: 'ok', value, ms: performance.now() - started });
    } catch (err) {
      // The local pool's ClosedError on destroy() says nothing about the task: callers see the host
      // gone (its goodbye heartbeat) and retry elsewhere; a durable task goes back to the queue.
      if (this.#destroyed) return false;
      if (ac.signal.aborted) {
        this.#cancelledCount++;
        return true;
      }
      this.#failed++;
      this.#answer(task.reply, { k: 'err', error: serializeError(err) });
    } finally {
      this.#running.delete(task.reply);
      if (this.#running.size === 0) for (const f of [...this.#idle]) f();
    }
    return true;
  }

  /** True once `close()` or `destroy()` was called, or the connection was lost for good. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Resolves when the host has stopped: closed, destroyed, or its connection lost for good (then destroyed). */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Counts of this host, and its local pool's stats. */
  stats(): PoolHostStats {
    return { accepted: this.#accepted, completed: this.#completed, failed: this.#failed, cancelled: this.#cancelledCount, running: this.#running.size, pool: this.pool.stats() };
  }

  /**
   * Graceful: takes no more tasks, finishes (and answers) the ones it has,
   * then closes the local pool and its own connection. Idempotent; never rejects.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#sub?.drain();
      } catch {
        // connection closed
      }
      await this.#consumer?.stop();
      if (this.#running.size > 0) {
        await new Promise<void>((resolve) => {
          const f = (): void => {
            this.#idle.delete(f);
            resolve();
          };
          this.#idle.add(f);
        });
      }
      await this.#finish(true);
    })();
    return this.#closing;
  }

  /**
   * Immediate: the workers are killed and the running tasks dropped unanswered.
   * Fast mode: callers see the host gone (its goodbye heartbeat, or missed
   * heartbeats) and their `retries` apply. Durable: each task goes back to the
   * queue (nak) for another host after the queue's retry delay, or after
   * `ackWait` when the connection is gone.
   */
  destroy(err?: Error): Promise<void> {
    this.#closing ??= (async () => {
      this.#destroyed = true;
      this.#queue?.destroy(err ?? new ClosedError('the pool host was destroyed'));
      await this.#finish(false);
    })();
    return this.#closing;
  }

  async #finish(graceful: boolean): Promise<void> {
    try {
      await this.#finishing(graceful);
    } finally {
      this.#stopped();
    }
  }

  async #finishing(graceful: boolean): Promise<void> {
    if (this.#beat !== undefined) clearInterval(this.#beat);
    this.#heartbeat(true);
    try {
      this.#cancelSub?.unsubscribe();
      this.#sub?.unsubscribe();
    } catch {
      // closed
    }
    if (graceful) {
      await this.#queue?.close();
      await this.pool.close();
      if (this.#owned) await this.#nats.close();
      else await this.#nats.confirm();
    } else {
      await this.pool.destroy();
      if (this.#owned) this.#nats.destroy();
    }
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Serves a pool across hosts from this host: starts a local {@link Pool}
 * (`module`, `size` and the other options of `new Pool`) and runs on it the
 * tasks that callers send with the same `nats.subject`. Resolves once it is
 * subscribed and takes tasks.
 *
 * ```ts
 * // worker-host.ts, started on every machine that should work
 * const host = await servePool({ module: './tasks.js', size: 8, nats: { servers: 'nats://hub:4222', subject: 'render', durable: true } });
 * process.on('SIGTERM', () => host.close());
 * ```
 *
 * Errors: `ERR_MULTIPROC_NATS_UNAVAILABLE`, `ERR_MULTIPROC_AUTH_FAILED`,
 * `ERR_MULTIPROC_JETSTREAM` (durable, JetStream off), argument errors.
 */
export async function servePool(options: PoolHostOptions): Promise<PoolHost> {
  if (options === null || typeof options !== 'object') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "options" argument must be of type object. Received ${options === null ? 'null' : typeof options}`);
  }
  const o = validateOptions<PoolHostOptions>(options, 'options', [
    'module', 'size', 'maxTasksPerWorker', 'concurrentTasksPerWorker', 'taskTimeout', 'idleTimeout', 'retries', 'cancelGrace', 'transport', 'permissions', 'env', 'execArgv', 'shmThreshold', 'nats',
  ]);
  if (o.nats === undefined) throw typeError('ERR_INVALID_ARG_TYPE', 'The "options.nats" property must be of type object. Received undefined');
  const cfg = natsPoolConfig(o.nats);
  const { nats: _n, ...local } = o;
  const pool = new Pool(local as PoolOptions);
  const nats = cfg.connection ?? (await Nats.connect(cfg.connect));
  const host = new PoolHost(pool, cfg, nats, cfg.connection === undefined);
  try {
    await host.start();
  } catch (err) {
    await host.destroy();
    throw err;
  }
  return host;
}
