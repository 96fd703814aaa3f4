/**
 * A connection to NATS, shared by the channels and queues made from it.
 *
 * Over the official client (`@nats-io/transport-node`) this adds what the
 * rest of the library relies on:
 * - coded errors: an unreachable server is `ERR_MULTIPROC_NATS_UNAVAILABLE`,
 *   refused credentials `ERR_MULTIPROC_AUTH_FAILED`;
 * - reconnect with exponential backoff and jitter, forever by default;
 * - a bound on bytes the server has not confirmed yet. The client buffers
 *   publishes in memory, without limit, while the socket is slow or the
 *   server is away; here every publish counts against `bufferSize` until a
 *   PING/PONG round trip after it comes back. While the server is away no
 *   round trip completes, so the same bound caps buffering during reconnect:
 *   senders wait (or `trySend` says false) instead of growing the heap.
 */
import type { ConnectionOptions, NatsConnection, MsgHdrs, TlsOptions } from '@nats-io/transport-node';
import { AbortError, AuthError, ClosedError, NatsUnavailableError, TimeoutError, typeError, validateBoolean, validateInteger, validateOptions, validateSignal, validateString, validateTimeout } from '../errors.js';
import { waitFor, type Wait } from '../channel/base-channel.js';
import { loadNatsClient } from './lib.js';

/** Reconnect policy of a {@link Nats} connection. */
export interface NatsReconnectOptions {
  /** Attempts after a loss before giving up; -1 (default) tries forever. */
  maxAttempts?: number;
  /** First delay in ms (default 100); doubles per failed attempt. */
  minDelay?: number;
  /** Largest delay in ms (default 5000). */
  maxDelay?: number;
}

/** Options of {@link Nats.connect}. */
export interface NatsConnectOptions {
  /** Server URL(s), 'nats://host:4222' or 'host:port'. Default 'nats://127.0.0.1:4222'. */
  servers?: string | string[];
  /** User name (with `pass`). */
  user?: string;
  /** Password (with `user`). */
  pass?: string;
  /** Authentication token. */
  token?: string;
  /**
   * TLS: `true` to require TLS with the system's CAs, or the client's TLS
   * options (`caFile`, `certFile`, `keyFile`, `ca`, `cert`, `key`,
   * `handshakeFirst`), passed through unchanged.
   */
  tls?: boolean | TlsOptions;
  /** Connection name, as the server's monitoring shows it. */
  name?: string;
  /**
   * Reconnect after the connection is lost: `true` (default) for the
   * default policy, `false` to give up at the first loss, or a policy.
   */
  reconnect?: boolean | NatsReconnectOptions;
  /**
   * Keep trying the first connect while no server answers, with the same
   * backoff, until `timeout`. Default false: one round over `servers`.
   */
  retryFirstConnect?: boolean;
  /** Bound on connecting, in ms (default 10000). */
  timeout?: number;
  /** Aborts connecting (ABORT_ERR). */
  signal?: AbortSignal;
  /**
   * Largest number of published bytes the server has not confirmed yet, in
   * bytes (default 8 MiB). Beyond it `send` waits and `trySend` returns false;
   * this is also what is buffered at most while reconnecting.
   */
  bufferSize?: number;
}

/** The options of {@link Nats.connect}; channels and queues accept them too. @internal */
export const CONNECT_KEYS = ['servers', 'user', 'pass', 'token', 'tls', 'name', 'reconnect', 'retryFirstConnect', 'timeout', 'signal', 'bufferSize'];
const RECONNECT_KEYS = ['maxAttempts', 'minDelay', 'maxDelay'];
const DEFAULT_SERVER = 'nats://127.0.0.1:4222';
const DEFAULT_BUFFER = 8 * 1024 * 1024;
/** Unconfirmed bytes after which a round trip is started. */
const FLUSH_EVERY = 256 * 1024;

/** Connection state as {@link Nats.state} reports it. */
export type NatsState = 'connected' | 'reconnecting' | 'closed';

function toServers(value: unknown): string[] {
  if (value === undefined) return [DEFAULT_SERVER];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) {
    throw typeError('ERR_INVALID_ARG_TYPE', "The option 'servers' must be a non-empty string or array of strings");
  }
  return list.map((s, i) => validateString(s, `options.servers[${i}]`));
}

function backoffDelay(min: number, max: number, failures: number): number {
  const base = Math.min(max, min * 2 ** Math.min(failures, 30));
  return base / 2 + Math.random() * (base / 2);
}

/** Maps the client's errors to the library's. @internal */
export function mapNatsError(err: unknown, servers: readonly string[]): Error {
  const e = err as Error & { code?: string };
  const name = e?.constructor?.name ?? '';
  if (name === 'AuthorizationError' || /authorization/i.test(e?.message ?? '')) {
    return new AuthError(`the NATS server at ${servers.join(', ')} refused the credentials: ${e.message}`, { cause: err });
  }
  if (name === 'ConnectionError' || name === 'TimeoutError' || name === 'ClosedConnectionError' || /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|connection refused|timeout/i.test(e?.message ?? '')) {
    return new NatsUnavailableError(
      `no NATS server reachable at ${servers.join(', ')} (${e.message}); is nats-server running? Start one with 'nats-server -js' (Debian: apt-get install nats-server)`,
      servers,
      { cause: err },
    );
  }
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * A connection to a NATS server (or cluster). Channels
 * ({@link Nats.channel}) and JetStream queues share it; closing it closes
 * them.
 *
 * @example
 * ```ts
 * const nats = await Nats.connect({ servers: 'nats://10.0.0.5:4222', token: 's3cret' });
 * const jobs = await nats.channel<Job>({ send: 'jobs' });
 * await jobs.send({ id: 1 });
 * await nats.close();
 * ```
 */
export class Nats {
  /** The official client's connection, for what this class does not cover. */
  readonly connection: NatsConnection;
  /** The servers this connection was configured with. */
  readonly servers: readonly string[];
  /** The bound on unconfirmed bytes (`options.bufferSize`). */
  readonly bufferSize: number;
  #state: NatsState = 'connected';
  #unconfirmed = 0;
  #flushing = false;
  #roomWaiters = new Set<() => void>();
  #closers = new Set<{ close(): Promise<void>; destroy(err?: Error): void }>();
  #closing: Promise<void> | undefined;
  #lost: Error | undefined;
  #reconnects = 0;

  private constructor(nc: NatsConnection, servers: string[], bufferSize: number) {
    this.connection = nc;
    this.servers = servers;
    this.bufferSize = bufferSize;
    void this.#watch();
  }

  /**
   * Connects to a NATS server. Rejects with `ERR_MULTIPROC_NATS_UNAVAILABLE`
   * when none answers, `ERR_MULTIPROC_AUTH_FAILED` when credentials are
   * refused, `ERR_MULTIPROC_TIMEOUT`, `ABORT_ERR`, argument errors.
   */
  static async connect(options?: NatsConnectOptions): Promise<Nats> {
    const opts = validateOptions<NatsConnectOptions>(options, 'options', CONNECT_KEYS);
    const servers = toServers(opts.servers);
    const timeout = opts.timeout === undefined ? 10_000 : validateTimeout(opts.timeout);
    const signal = validateSignal(opts.signal);
    const bufferSize = opts.bufferSize === undefined ? DEFAULT_BUFFER : validateInteger(opts.bufferSize, 'options.bufferSize', 1024, 2 ** 31 - 1);
    const retryFirst = opts.retryFirstConnect === undefined ? false : validateBoolean(opts.retryFirstConnect, 'options.retryFirstConnect');
    let policy: Required<NatsReconnectOptions> | false = { maxAttempts: -1, minDelay: 100, maxDelay: 5000 };
    if (opts.reconnect === false) policy = false;
    else if (opts.reconnect !== undefined && opts.reconnect !== true) {
      const r = validateOptions<NatsReconnectOptions>(opts.reconnect, 'options.reconnect', RECONNECT_KEYS);
      policy = {
        maxAttempts: r.maxAttempts === undefined ? -1 : validateInteger(r.maxAttempts, 'options.reconnect.maxAttempts', -1, 2 ** 31 - 1),
        minDelay: r.minDelay === undefined ? 100 : validateInteger(r.minDelay, 'options.reconnect.minDelay', 1, 2 ** 31 - 1),
        maxDelay: r.maxDelay === undefined ? 5000 : validateInteger(r.maxDelay, 'options.reconnect.maxDelay', 1, 2 ** 31 - 1),
      };
    }
    for (const k of ['user', 'pass', 'token', 'name'] as const) if (opts[k] !== undefined) validateString(opts[k], `options.${k}`);
    if (opts.tls !== undefined && typeof opts.tls !== 'boolean' && (typeof opts.tls !== 'object' || opts.tls === null)) {
      throw typeError('ERR_INVALID_ARG_TYPE', "The option 'tls' must be a boolean or an object of TLS options");
    }
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });

    // The client counts reconnect attempts per server; the delay grows with
    // the failures since the connection was last up.
    let failures = 0;
    const co: ConnectionOptions = {
      servers,
      timeout: Math.min(timeout, 2 ** 31 - 1),
      reconnect: policy !== false,
      maxReconnectAttempts: policy === false ? 0 : policy.maxAttempts,
      reconnectDelayHandler: () => (policy === false ? 0 : backoffDelay(policy.minDelay, policy.maxDelay, failures++)),
      ignoreClusterUpdates: false,
    };
    if (opts.user !== undefined) co.user = opts.user;
    if (opts.pass !== undefined) co.pass = opts.pass;
    if (opts.token !== undefined) co.token = opts.token;
    if (opts.name !== undefined) co.name = opts.name;
    if (opts.tls === true) co.tls = {};
    else if (typeof opts.tls === 'object') co.tls = opts.tls;

    const deadline = timeout === Infinity ? Infinity : performance.now() + timeout;
    let attempt = 0;
    const { connect: natsConnect } = await loadNatsClient();
    for (;;) {
      try {
        const nc = await natsConnect(co);
        const n = new Nats(nc, servers, bufferSize);
        n.#resetFailures = () => {
          failures = 0;
        };
        if (signal?.aborted) {
          await nc.close();
          throw new AbortError(undefined, { cause: signal.reason });
        }
        return n;
      } catch (err) {
        if (err instanceof AbortError) throw err;
        const mapped = mapNatsError(err, servers);
        if (!retryFirst || !(mapped instanceof NatsUnavailableError)) throw mapped;
        const delay = policy === false ? 100 : backoffDelay(policy.minDelay, policy.maxDelay, attempt++);
        if (performance.now() + delay >= deadline) {
          throw new TimeoutError(`timed out after ${timeout} ms connecting to NATS at ${servers.join(', ')}: ${mapped.message}`, timeout);
        }
        await waitFor<void>({ deadline, timeout, signal, what: 'a NATS server' }, (resolve) => {
          const t = setTimeout(resolve, delay);
          return () => clearTimeout(t);
        });
      }
    }
  }

  #resetFailures: () => void = () => {};

  /** 'connected', 'reconnecting' (publishes are buffered up to `bufferSize`) or 'closed'. */
  get state(): NatsState {
    return this.#state;
  }

  /** Times the connection was re-established after a loss. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** True once `close()` or `destroy()` was called. */
  get closing(): boolean {
    return this.#closing !== undefined;
  }

  /** The server's largest message (headers included), from its INFO. */
  get maxPayload(): number {
    return this.connection.info?.max_payload ?? 1024 * 1024;
  }

  async #watch(): Promise<void> {
    for await (const s of this.connection.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnecting') this.#state = 'reconnecting';
      else if (s.type === 'reconnect') {
        this.#state = 'connected';
        this.#reconnects++;
        this.#resetFailures();
        // Whatever round trip was pending may have died with the socket.
        this.#flushing = false;
        this.#maybeFlush(true);
      }
    }
    const err = await this.connection.closed();
    this.#state = 'closed';
    if (this.#closing === undefined) {
      // Lost for good (reconnect attempts used up, or the server said no).
      this.#lost = mapNatsError(err ?? new Error('connection closed'), this.servers);
      if (!(this.#lost instanceof NatsUnavailableError) && !(this.#lost instanceof AuthError)) {
        this.#lost = new NatsUnavailableError(`the connection to NATS at ${this.servers.join(', ')} was lost: ${this.#lost.message}`, this.servers, { cause: err });
      }
      for (const c of [...this.#closers]) c.destroy(this.#lost);
    }
    this.#wakeRoom();
  }

  // --- bounded publishing (used by channels and queues) ------------------

  /** Whether `bytes` more may be published now. @internal */
  hasRoom(bytes: number): boolean {
    // One message larger than the whole bound still goes when nothing is pending.
    return this.#unconfirmed === 0 || this.#unconfirmed + bytes <= this.bufferSize;
  }

  /** Throws when this connection can no longer publish. @internal */
  checkUsable(): void {
    if (this.#lost !== undefined) throw this.#lost;
    if (this.#closing !== undefined || this.#state === 'closed') throw new ClosedError('the NATS connection is closed');
  }

  /** Publishes; the caller checked `hasRoom`. @internal */
  publish(subject: string, payload: Uint8Array, headers: MsgHdrs | undefined): void {
    this.connection.publish(subject, payload, headers === undefined ? undefined : { headers });
    this.#unconfirmed += payload.length + 64;
    this.#maybeFlush(false);
  }

  /** Waits until `bytes` fit, bounded by `wait`. @internal */
  async waitRoom(bytes: number, wait: Wait): Promise<void> {
    while (!this.hasRoom(bytes)) {
      this.checkUsable();
      this.#maybeFlush(true);
      await waitFor<void>(wait, (resolve) => {
        this.#roomWaiters.add(resolve);
        return () => this.#roomWaiters.delete(resolve);
      });
    }
    this.checkUsable();
  }

  /** Resolves once the server has everything published so far (graceful close). @internal */
  async confirm(): Promise<void> {
    if (this.#state === 'closed') return;
    try {
      await this.connection.flush();
    } catch {
      // closed meanwhile: nothing more can be confirmed
    }
  }

  #maybeFlush(force: boolean): void {
    if (this.#flushing || this.#unconfirmed === 0 || this.#state !== 'connected') return;
    if (!force && this.#unconfirmed < FLUSH_EVERY) return;
    this.#flushing = true;
    const covered = this.#unconfirmed;
    this.connection.flush().then(
      () => {
        if (!this.#flushing) return; // superseded after a reconnect
        this.#flushing = false;
        this.#unconfirmed = Math.max(0, this.#unconfirmed - covered);
        this.#wakeRoom();
        if (this.#roomWaiters.size > 0 || this.#unconfirmed >= FLUSH_EVERY) this.#maybeFlush(true);
      },
      () => {
        // Lost with the connection: the reconnect handler starts another.
        this.#flushing = false;
        if (this.#state === 'closed') this.#wakeRoom();
      },
    );
  }

  #wakeRoom(): void {
    const w = [...this.#roomWaiters];
    this.#roomWaiters.clear();
    for (const f of w) f();
  }

  /** Registers a channel or queue to close with this connection. @internal */
  track(c: { close(): Promise<void>; destroy(err?: Error): void }): () => void {
    this.#closers.add(c);
    return () => this.#closers.delete(c);
  }

  /**
   * Closes the channels and queues made from this connection (gracefully),
   * then drains and closes the connection. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#closers].map((c) => c.close()));
      if (!this.connection.isClosed()) {
        try {
          await this.connection.drain();
        } catch {
          await this.connection.close().catch(() => {});
        }
      }
      this.#state = 'closed';
      this.#wakeRoom();
    })();
    return this.#closing;
  }

  /** Closes at once: channels and queues are destroyed, buffered publishes dropped. */
  destroy(err?: Error): void {
    this.#closing ??= Promise.resolve();
    for (const c of [...this.#closers]) c.destroy(err);
    this.#state = 'closed';
    void this.connection.close().catch(() => {});
    this.#wakeRoom();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * The connection a channel or queue uses: `options.connection` (shared, not
 * owned; no connect options may come with it), or a new one made from the
 * connect options among `options` (owned: closed with the channel). @internal
 */
export async function connectionFor(options: { connection?: unknown } & Record<string, unknown>): Promise<{ nats: Nats; owned: boolean }> {
  if (options.connection !== undefined) {
    if (!(options.connection instanceof Nats)) throw typeError('ERR_INVALID_ARG_TYPE', "The option 'connection' must be a Nats connection (Nats.connect())");
    for (const k of CONNECT_KEYS) {
      if (options[k] !== undefined) throw typeError('ERR_INVALID_ARG_VALUE', `The option '${k}' is for a new connection; it cannot be given with 'connection'`);
    }
    options.connection.checkUsable();
    return { nats: options.connection, owned: false };
  }
  const co: Record<string, unknown> = {};
  for (const k of CONNECT_KEYS) if (options[k] !== undefined) co[k] = options[k];
  return { nats: await Nats.connect(co as NatsConnectOptions), owned: true };
}
