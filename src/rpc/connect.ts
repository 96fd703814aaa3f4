/**
 * The calling side of RPC: `connect<Api>(channel)` returns a typed proxy
 * whose methods send calls to the object exposed at the other end.
 */
import type { Receiver } from '../channel/channel.js';
import {
  AbortError,
  ClosedError,
  IpcError,
  TimeoutError,
  typeError,
  validateBoolean,
  validateOptions,
  validateSignal,
  validateString,
  validateTimeout,
} from '../errors.js';
import { CALL, CANCEL, ERROR, RESULT, channelEnds, closeEnds, destroyEnds, isId, receiveLoop, validateMessageTypes, type CancelReason, type Ends, type MessageTypes, type RpcChannel } from './protocol.js';
import { outboxFor, sendOwn, type Outbox, type OutboxEntry } from './outbox.js';
import { deserializeError } from './remote-error.js';
import { onAbort } from '../abort.js';

const ignore = (): void => {};

/** Options of one call, given through `remote.method.with(options)`. */
export interface CallOptions {
  /**
   * Milliseconds to wait for the reply before the call rejects with
   * `ERR_MULTIPROC_TIMEOUT` (and the remote method's signal aborts).
   * Overrides the connection's default; `Infinity` waits forever.
   */
  timeout?: number;
  /** Aborts the call: it rejects with `ABORT_ERR` and the remote method's signal aborts. */
  signal?: AbortSignal;
}

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** Default timeout of every call, in milliseconds (default: none). */
  timeout?: number;
  /** Close (or, on `destroy()`, destroy) the channel when the connection closes. Default false: the channel stays yours. */
  closeChannel?: boolean;
  /** Channel message types of requests and responses; default {@link defaultMessageTypes}. Both sides must agree. */
  messageTypes?: MessageTypes;
}

type AnyFunction = (...args: any[]) => any;

/** A method as the caller sees it: same parameters, the awaited result in a Promise. */
export type RemoteFunction<F extends AnyFunction> = (...args: Parameters<F>) => Promise<Awaited<ReturnType<F>>>;

/** A remote method, with `.with(options)` for per-call options: `remote.add.with({ timeout: 100 })(1, 2)`. */
export type RemoteMethod<F extends AnyFunction> = RemoteFunction<F> & {
  /** The same method with call options (timeout, signal) that are not passed to the remote method. */
  with(options: CallOptions): RemoteFunction<F>;
};

/**
 * The proxy {@link connect} returns: every method of `T` (string-keyed,
 * function-valued properties) returning a Promise of its awaited result.
 * `await using remote = connect<Api>(ch)` closes the connection at scope end.
 */
export type Remote<T> = {
  readonly [K in keyof T as K extends string ? (T[K] extends AnyFunction ? K : never) : never]: T[K] extends AnyFunction ? RemoteMethod<T[K]> : never;
} & {
  /** Closes the connection (`rpcClient(remote).close()`). */
  [Symbol.asyncDispose](): Promise<void>;
};

/** A call waiting for its reply. */
interface Pending {
  id: number;
  method: string;
  client: RpcClient;
  outbox: Outbox;
  resolve: (message: unknown[]) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  offAbort: (() => void) | undefined;
  /** Set while the call message waits in the outbox. */
  entry: OutboxEntry | null;
  /** Why the caller gave up, for a cancel sent once the call message went out after all. */
  gaveUp: { reason: CancelReason; timeout?: number } | undefined;
  settled: boolean;
}

const MAX_TIMER = 2 ** 31 - 1;

/**
 * The receiving half shared by every connection on one channel end and
 * response type: one receive loop, one id space, replies routed by id.
 */
class Endpoint {
  readonly receiver: Receiver<any>;
  readonly responseType: number;
  readonly pending = new Map<number, Pending>();
  readonly clients = new Set<RpcClient>();
  nextId = 1;
  #stop: AbortController | undefined;

  constructor(receiver: Receiver<any>, responseType: number) {
    this.receiver = receiver;
    this.responseType = responseType;
  }

  attach(client: RpcClient): void {
    this.clients.add(client);
    if (this.#stop === undefined) {
      this.#stop = new AbortController();
      void this.#run(this.#stop.signal);
    }
  }

  detach(client: RpcClient): void {
    this.clients.delete(client);
    if (this.clients.size === 0 && this.#stop !== undefined) {
      this.#stop.abort();
      this.#stop = undefined;
    }
  }

  #run(stop: AbortSignal): Promise<void> {
    // A reply the codec could not decode is skipped: its call will time out (or wait for close).
    return receiveLoop(
      this.receiver,
      this.responseType,
      stop,
      (message) => this.#onReply(message),
      (err) => {
        this.#stop = undefined;
        this.#channelEnded(err);
      },
    );
  }

  #onReply(message: unknown): void {
    if (!Array.isArray(message) || !isId(message[1])) return;
    const p = this.pending.get(message[1]);
    if (p === undefined || (message[0] !== RESULT && message[0] !== ERROR)) return;
    settle(p);
    p.resolve(message);
  }

  #channelEnded(err: unknown): void {
    const calls = [...this.pending.values()];
    for (const p of calls) {
      settle(p);
      p.reject(new ClosedError(`rpc: the channel closed before ${p.method}() returned`, { cause: err }));
    }
    for (const client of [...this.clients]) client._channelEnded(err);
  }
}

// Endpoints by channel end, then by response type.
const endpoints = new WeakMap<Receiver<any>, Map<number, Endpoint>>();

function endpointFor(receiver: Receiver<any>, responseType: number): Endpoint {
  let byType = endpoints.get(receiver);
  if (byType === undefined) endpoints.set(receiver, (byType = new Map()));
  let endpoint = byType.get(responseType);
  if (endpoint === undefined) byType.set(responseType, (endpoint = new Endpoint(receiver, responseType)));
  return endpoint;
}

/** Removes a pending call from every table and stops its timer and listener. */
function settle(p: Pending): void {
  if (p.settled) return;
  p.settled = true;
  p.client._forget(p);
  if (p.timer !== undefined) clearTimeout(p.timer);
  p.offAbort?.();
  if (p.entry !== null) p.entry.withdrawn = true;
}

/** Tells the exposer that the caller gave up on call `p` (best effort). */
function sendCancel(p: Pending, reason: CancelReason, timeout?: number): void {
  const message = reason === 'timeout' ? [CANCEL, p.id, reason, timeout] : [CANCEL, p.id, reason];
  try {
    p.outbox.post(message, p.client._sendOptions, ignore);
  } catch {
    // the channel is gone: the exposer learns from it
  }
}

/** The caller gives up on `p`: settle it and cancel it at the exposer (now, or once its message went out). */
function giveUp(p: Pending, reason: CancelReason, timeout?: number): void {
  const wasSent = p.entry === null;
  p.gaveUp = { reason, timeout };
  settle(p);
  if (wasSent) sendCancel(p, reason, timeout);
}

/** Send failures that are not the channel's: the codec could not encode the arguments. */
function sendError(err: unknown, method: string): unknown {
  if (err instanceof IpcError || (err instanceof Error && 'syscall' in err)) return err;
  const e = typeError('ERR_INVALID_ARG_VALUE', `rpc: the arguments of ${method}() could not be encoded by the channel's codec: ${err instanceof Error ? err.message : String(err)}`);
  (e as { cause?: unknown }).cause = err;
  return e;
}

/**
 * Makes one call and returns the remote method's result. Errors thrown here
 * are created after the await, so their stack leads to the caller's code.
 */
async function invoke(client: RpcClient, method: string, args: unknown[], own: boolean, timeout: number, signal: AbortSignal | undefined): Promise<unknown> {
  let reply: unknown[];
  try {
    reply = await client._request(method, args, own, timeout, signal);
  } catch (err) {
    if (err instanceof IpcError) Error.captureStackTrace(err, invoke);
    throw err;
  }
  if (reply[0] === RESULT) return reply[2];
  throw deserializeError(reply[2], invoke);
}

/**
 * Controls a connection made by {@link connect}: close it, count its calls,
 * or call a method by name. Get it with {@link rpcClient}`(remote)`.
 */
export class RpcClient {
  readonly #ends: Ends;
  readonly #outbox: Outbox;
  readonly #endpoint: Endpoint;
  readonly #timeout: number;
  readonly #closeChannel: boolean;
  /** Calls of this connection waiting for their reply (they are in the endpoint's table). */
  #pending = 0;
  readonly #methods = new Map<string, RemoteMethod<AnyFunction>>();
  #closing: Promise<void> | undefined;
  #closed = false;
  /** Why the channel ended, when it did. */
  #cause: unknown;
  #drained: (() => void) | undefined;
  /** @internal */ readonly _sendOptions: { type: number };
  /** The typed proxy. */
  readonly remote: Remote<any>;

  /** @internal */
  constructor(ends: Ends, types: MessageTypes, timeout: number, closeChannel: boolean) {
    this.#ends = ends;
    this.#outbox = outboxFor(ends.sender);
    this.#timeout = timeout;
    this.#closeChannel = closeChannel;
    this.#endpoint = endpointFor(ends.receiver, types.response);
    this._sendOptions = { type: types.request };
    this.#endpoint.attach(this);
    const dispose = (): Promise<void> => this.close();
    this.remote = new Proxy(Object.create(null) as object, {
      get: (_target, key) => {
        if (typeof key === 'symbol') return key === Symbol.asyncDispose ? dispose : undefined;
        // Not a thenable: `await remote` and async functions returning it must not call the peer.
        if (key === 'then') return undefined;
        return this.#method(key);
      },
      set: () => false,
      defineProperty: () => false,
      deleteProperty: () => false,
    }) as Remote<any>;
    clients.set(this.remote, this);
  }

  /** True once `close()` or `destroy()` was called or the channel ended; calls then reject with `ERR_MULTIPROC_CLOSED`. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Calls waiting for their reply. */
  get pending(): number {
    return this.#pending;
  }

  #method(name: string): RemoteMethod<AnyFunction> {
    let m = this.#methods.get(name);
    if (m === undefined) {
      // Rest arguments are a fresh array nobody else holds: `own` (see vouchForArrays).
      const call = (...args: unknown[]): Promise<unknown> => invoke(this, name, args, true, this.#timeout, undefined);
      m = Object.assign(call, {
        with: (options: CallOptions): RemoteFunction<AnyFunction> => {
          const { timeout, signal } = callOptions(options, this.#timeout);
          return (...args: unknown[]) => invoke(this, name, args, true, timeout, signal);
        },
      });
      this.#methods.set(name, m);
    }
    return m;
  }

  /**
   * Calls `method` by name: `client.call('add', [1, 2], { timeout: 100 })`.
   * Same errors as a call through the proxy.
   */
  call(method: string, args: unknown[] = [], options?: CallOptions): Promise<unknown> {
    try {
      validateString(method, 'method');
      if (!Array.isArray(args)) throw typeError('ERR_INVALID_ARG_TYPE', 'The "args" argument must be an array');
      const { timeout, signal } = callOptions(options, this.#timeout);
      return invoke(this, method, args, false, timeout, signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** @internal */
  _request(method: string, args: unknown[], own: boolean, timeout: number, signal: AbortSignal | undefined): Promise<unknown[]> {
    if (this.#closed) {
      const why = this.#cause === undefined ? 'the connection is closed' : 'the channel closed';
      return Promise.reject(new ClosedError(`rpc: ${why}; ${method}() was not sent`, this.#cause === undefined ? undefined : { cause: this.#cause }));
    }
    if (signal?.aborted) return Promise.reject(new AbortError(`rpc: ${method}() was aborted before it was sent`, { cause: signal.reason }));
    // No reply can beat a deadline of now: fail without sending.
    if (timeout === 0) return Promise.reject(new TimeoutError(`rpc: ${method}() timed out after 0 ms (not sent)`, 0));
    const endpoint = this.#endpoint;
    const id = endpoint.nextId++;
    return new Promise<unknown[]>((resolve, reject) => {
      const p: Pending = { id, method, client: this, outbox: this.#outbox, resolve, reject, timer: undefined, signal: undefined, offAbort: undefined, entry: null, gaveUp: undefined, settled: false };
      const message = [CALL, id, method, args];
      // Registered first: whatever settles it from here on finds it in the tables.
      endpoint.pending.set(id, p);
      this.#pending++;
      try {
        // The callbacks are made only when the call has to wait in the outbox.
        if (!sendOwn(this.#outbox, message, own ? args : undefined, this._sendOptions)) p.entry = this.#enqueue(p, message);
      } catch (err) {
        settle(p);
        reject(sendError(err, method));
        return;
      }
      if (p.settled) return;
      if (timeout !== Infinity && timeout <= MAX_TIMER) {
        p.timer = setTimeout(() => {
          giveUp(p, 'timeout', timeout);
          reject(new TimeoutError(`rpc: ${method}() timed out after ${timeout} ms`, timeout));
        }, timeout);
      }
      if (signal !== undefined) {
        p.signal = signal;
        p.offAbort = onAbort(signal, () => {
          giveUp(p, 'abort');
          reject(new AbortError(`rpc: ${method}() was aborted`, { cause: signal.reason }));
        });
      }
    });
  }

  /** Queues the call message of `p` behind others waiting for room in the channel. */
  #enqueue(p: Pending, message: unknown[]): OutboxEntry {
    return this.#outbox.enqueue(
      message,
      this._sendOptions,
      (err) => {
        p.entry = null;
        if (p.settled) return;
        settle(p);
        p.reject(sendError(err, p.method));
      },
      () => {
        // Went out after the caller gave up: cancel it now.
        p.entry = null;
        if (p.gaveUp !== undefined) sendCancel(p, p.gaveUp.reason, p.gaveUp.timeout);
      },
    );
  }

  /** @internal */
  _forget(p: Pending): void {
    this.#endpoint.pending.delete(p.id);
    if (--this.#pending === 0 && this.#drained !== undefined) this.#drained();
  }

  /** @internal */
  _channelEnded(err: unknown): void {
    if (!this.#closed) {
      this.#closed = true;
      this.#cause = err;
    }
    this.#closing ??= this.#closeChannel ? closeEnds(this.#ends).catch(() => {}) : Promise.resolve();
    this.#endpoint.detach(this);
  }

  /**
   * Graceful close: new calls reject with `ERR_MULTIPROC_CLOSED`; resolves
   * once the calls in flight have settled (replied, timed out or aborted),
   * then closes the channel if `closeChannel` was set. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      if (this.#pending > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
      this.#endpoint.detach(this);
      if (this.#closeChannel) await closeEnds(this.#ends).catch(() => {});
    })();
    return this.#closing;
  }

  /**
   * Immediate close: calls in flight reject with `err` (or
   * `ERR_MULTIPROC_CLOSED`), the exposer is told to abort them, and the
   * channel is destroyed if `closeChannel` was set. Idempotent.
   */
  destroy(err?: Error): void {
    this.#closed = true;
    this.#closing ??= Promise.resolve();
    for (const p of [...this.#endpoint.pending.values()]) {
      if (p.client !== this) continue;
      giveUp(p, 'closed');
      p.reject(err ?? new ClosedError(`rpc: the connection was destroyed before ${p.method}() returned`));
    }
    this.#drained?.();
    this.#endpoint.detach(this);
    if (this.#closeChannel) destroyEnds(this.#ends, err);
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

const clients = new WeakMap<object, RpcClient>();

function callOptions(options: unknown, fallbackTimeout: number): { timeout: number; signal: AbortSignal | undefined } {
  const opts = validateOptions<CallOptions>(options, 'options', ['timeout', 'signal']);
  return {
    timeout: opts.timeout === undefined ? fallbackTimeout : validateTimeout(opts.timeout),
    signal: validateSignal(opts.signal),
  };
}

/**
 * Connects to the object exposed (with {@link expose}) at the other end of
 * `channel`, and returns a typed proxy: `await remote.add(1, 2)`. Every
 * method returns a Promise of the remote method's awaited result. Calls carry
 * ids; many may be in flight and complete in any order.
 *
 * Per-call options go through `.with()`, not through the arguments:
 * `remote.add.with({ timeout: 100, signal })(1, 2)`.
 *
 * The proxy has no other members (only `Symbol.asyncDispose`; `then` is
 * undefined so that the proxy is not a thenable); {@link rpcClient} gives
 * the connection's controls (`close`, `destroy`, `pending`, `call`).
 *
 * Errors of calls: the remote method's error, re-created (see
 * docs/api-rpc.md); `ERR_MULTIPROC_TIMEOUT`; `ABORT_ERR`;
 * `ERR_MULTIPROC_CLOSED` (the connection or the channel closed);
 * `ERR_MULTIPROC_NO_SUCH_METHOD`; `ERR_INVALID_ARG_VALUE` (the codec cannot
 * encode the arguments); `ERR_MULTIPROC_MESSAGE_TOO_LARGE`; argument errors of `.with()`.
 * Errors (thrown by connect): `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`,
 * `ERR_OUT_OF_RANGE`, `ERR_MULTIPROC_CLOSED` (the channel is closed).
 */
export function connect<T = Record<string, AnyFunction>>(channel: RpcChannel, options?: ConnectOptions): Remote<T> {
  const ends = channelEnds(channel);
  const opts = validateOptions<ConnectOptions>(options, 'options', ['timeout', 'closeChannel', 'messageTypes']);
  const timeout = validateTimeout(opts.timeout);
  const closeChannel = opts.closeChannel === undefined ? false : validateBoolean(opts.closeChannel, 'options.closeChannel');
  const types = validateMessageTypes(opts.messageTypes);
  if (ends.sender.closed || ends.receiver.closed) throw new ClosedError('rpc: the channel is closed');
  return new RpcClient(ends, types, timeout, closeChannel).remote as Remote<T>;
}

/**
 * The controls of a connection made by {@link connect}.
 * Errors: `ERR_INVALID_ARG_TYPE` when `remote` is not a proxy from `connect`.
 */
export function rpcClient(remote: object): RpcClient {
  const client = clients.get(remote);
  if (client === undefined) throw typeError('ERR_INVALID_ARG_TYPE', 'The "remote" argument must be a proxy returned by connect()');
  return client;
}
