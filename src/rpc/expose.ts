/**
 * The serving side of RPC: `expose(api, channel)` answers calls of `api`'s
 * methods that arrive on `channel`.
 */
import type { Receiver } from '../channel/channel.js';
import {
  AbortError,
  ClosedError,
  IpcError,
  NoSuchMethodError,
  ProtocolError,
  TimeoutError,
  typeError,
  validateBoolean,
  validateOptions,
} from '../errors.js';
import { CALL, CANCEL, ERROR, RESULT, channelEnds, closeEnds, destroyEnds, isId, receiveLoop, validateMessageTypes, type Ends, type MessageTypes, type RpcChannel } from './protocol.js';
import { outboxFor, sendOwn, type Outbox } from './outbox.js';
import { serializeError } from './remote-error.js';

/** Options of {@link expose}. */
export interface ExposeOptions {
  /** Close (or, on `destroy()`, destroy) the channel when the server stops. Default false: the channel stays yours. */
  closeChannel?: boolean;
  /** Channel message types of requests and responses; default {@link defaultMessageTypes}. Both sides must agree. */
  messageTypes?: MessageTypes;
}

/**
 * What an exposed method can learn about the call it is serving; see
 * {@link callContext}.
 */
export interface CallContext {
  /**
   * Aborts when the caller gives up: it aborted the call (reason: an
   * `AbortError`), its timeout elapsed (a `TimeoutError`), it closed its
   * connection or the channel closed (a `ClosedError`), or the server was
   * destroyed. The method should stop its work; its result is discarded.
   */
  readonly signal: AbortSignal;
  /** The name of the method being called. */
  readonly method: string;
  /** The call's id (unique per caller's channel end), for logs. */
  readonly id: number;
}

class CallState implements CallContext {
  readonly id: number;
  readonly method: string;
  #controller: AbortController | undefined;
  #reason: unknown;
  #cancelled = false;
  /** What could not be sent (the error thrown, or why the result failed), for the fallback replies. */
  #failure: unknown = undefined;
  /** The detail of the next error reply (see serializeError), counting down. */
  #detail = 2;

  constructor(id: number, method: string) {
    this.id = id;
    this.method = method;
  }

  // Created on first use: most methods never look at their signal.
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#cancelled) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** The error reply for `err`, with every detail. */
  static errorReply(state: CallState, err: unknown): unknown[] {
    state.#failure = err;
    return [ERROR, state.id, serializeError(err, state.#detail)];
  }

  /** A result the codec could not carry, or too large: say so instead, in less and less detail. */
  static resultFallback(this: void, state: CallState, err: unknown): unknown[] | undefined {
    state.#failure ??= err instanceof IpcError ? err : unencodable(state.method, err);
    return state.#detail >= 0 ? [ERROR, state.id, serializeError(state.#failure, state.#detail--)] : undefined;
  }

  /** An error reply that could not be sent: without properties and causes, then name, message, code and stack only. */
  static errorFallback(this: void, state: CallState): unknown[] | undefined {
    return --state.#detail >= 0 ? [ERROR, state.id, serializeError(state.#failure, state.#detail)] : undefined;
  }

  static cancel(state: CallState, reason: unknown): void {
    if (state.#cancelled) return;
    state.#cancelled = true;
    state.#reason = reason;
    state.#controller?.abort(reason);
  }
}

/** The next reply to try after one could not be sent, or undefined to give up. */
type Fallback = (state: CallState, err: unknown) => unknown[] | undefined;

let current: CallState | undefined;

/**
 * The context of the RPC call being served: its `signal` (aborted when the
 * caller aborts, times out or goes away), `method` and `id`.
 *
 * Call it synchronously in an exposed method, before its first `await`, and
 * keep the object: it is set while the method starts, not while it awaits.
 * (This costs nothing per call, where tracking the context across awaits
 * with AsyncLocalStorage would slow every promise of the process on Node 20.)
 *
 * ```ts
 * expose({
 *   async crunch(n: number) {
 *     const { signal } = callContext();
 *     for (let i = 0; i < n; i++) {
 *       signal.throwIfAborted();
 *       await step(i);
 *     }
 *   },
 * }, channel);
 * ```
 *
 * Errors: `ERR_INVALID_STATE` (TypeError) outside the synchronous start of an exposed method.
 */
export function callContext(): CallContext {
  if (current === undefined) {
    throw typeError('ERR_INVALID_STATE', 'callContext() is only available synchronously in an exposed method, before its first await; keep the object it returns');
  }
  return current;
}

/**
 * The method `name` of `api`, or undefined when it may not be called: only
 * functions that are own or prototype data properties, never `constructor`,
 * `__proto__` or what every object inherits (Object.prototype,
 * Function.prototype); getters are not run.
 */
function lookup(api: object, name: unknown): Function | undefined {
  if (typeof name !== 'string' || name === 'constructor' || name === '__proto__') return undefined;
  for (let o: object | null = api; o !== null && o !== Object.prototype && o !== Function.prototype; o = Object.getPrototypeOf(o)) {
    const d = Object.getOwnPropertyDescriptor(o, name);
    if (d !== undefined) return typeof d.value === 'function' ? (d.value as Function) : undefined;
  }
  return undefined;
}

function isTransportFailure(err: unknown): boolean {
  return err instanceof ClosedError || err instanceof ProtocolError || err instanceof AbortError || err instanceof TimeoutError || (err instanceof Error && 'syscall' in err);
}

function describeMethod(name: unknown): string {
  return typeof name === 'string' ? (name.length > 60 ? `${name.slice(0, 60)}...` : name) : String(typeof name);
}

// One server per channel end and request type: two would take each other's calls.
const serving = new WeakMap<Receiver<any>, Set<number>>();

/**
 * Serves calls of `api`'s methods arriving on a channel. Returned by {@link expose}.
 *
 * Lifetime: `close()` stops taking calls (refusing new ones with
 * `ERR_MULTIPROC_CLOSED`) and resolves once the calls in progress have
 * finished and their replies were sent; `destroy(err?)` stops
 * at once, aborts the signals of the calls in progress and answers them with
 * `ERR_MULTIPROC_CLOSED`. When the channel closes (or the peer closes it),
 * the server stops by itself and the calls in progress see their signal abort.
 */
export class RpcServer {
  readonly #api: object;
  readonly #ends: Ends;
  readonly #outbox: Outbox;
  readonly #sendOptions: { type: number };
  readonly #types: MessageTypes;
  readonly #closeChannel: boolean;
  /** Calls waiting for an async method's result (or for room to send a reply). */
  readonly #calls = new Map<number, CallState>();
  /**
   * The call whose method is running now, synchronously. A call enters
   * #calls only when its method returned a promise: most methods answer at
   * once, and a Map that goes from empty to one entry and back reallocates
   * its table each time.
   */
  #running: CallState | undefined;
  readonly #stop = new AbortController();
  readonly #loop: Promise<void>;
  #closing: Promise<void> | undefined;
  #closed = false;
  #destroyed = false;
  #drained: (() => void) | undefined;
  #finish!: () => void;
  /** Resolves when the server has stopped: after `close()`, `destroy()`, or the channel's end. Never rejects. */
  readonly finished: Promise<void>;

  /** @internal */
  constructor(api: object, ends: Ends, types: MessageTypes, closeChannel: boolean) {
    this.#api = api;
    this.#ends = ends;
    this.#outbox = outboxFor(ends.sender);
    this.#types = types;
    this.#sendOptions = { type: types.response };
    this.#closeChannel = closeChannel;
    this.finished = new Promise<void>((resolve) => (this.#finish = resolve));
    this.#loop = this.#run();
  }

  /** True once the server stopped taking calls (closed, destroyed, or the channel ended). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Calls in progress. */
  get pending(): number {
    return this.#calls.size + (this.#running === undefined ? 0 : 1);
  }

  #run(): Promise<void> {
    return receiveLoop(
      this.#ends.receiver,
      this.#types.request,
      this.#stop.signal,
      (message) => this.#dispatch(message),
      (err) => this.#channelEnded(err),
    );
  }

  #dispatch(message: unknown): void {
    // A message received just before destroy() is dropped like the calls in progress.
    if (this.#destroyed || !Array.isArray(message) || !isId(message[1])) return;
    const id = message[1];
    if (message[0] === CALL) {
      if (this.#closed) {
        const state = new CallState(id, typeof message[2] === 'string' ? message[2] : '');
        this.#respondError(state, new ClosedError(`rpc: the server is closing; ${describeMethod(message[2])}() was not run`));
        return;
      }
      this.#call(id, message[2], message[3]);
    } else if (message[0] === CANCEL) {
      const state = this.#calls.get(id);
      if (state !== undefined) CallState.cancel(state, cancelReason(message[2], message[3]));
    }
  }

  #call(id: number, method: unknown, args: unknown): void {
    // Answered without being registered: close() does not wait for these.
    const state = new CallState(id, typeof method === 'string' ? method : '');
    if (this.#calls.has(id)) {
      this.#respondError(state, new ProtocolError(`rpc: call id ${id} is already in progress`));
      return;
    }
    if (!Array.isArray(args) || typeof method !== 'string') {
      this.#respondError(state, new ProtocolError('rpc: malformed call message'));
      return;
    }
    const fn = lookup(this.#api, method);
    if (fn === undefined) {
      this.#respondError(state, new NoSuchMethodError(`rpc: the exposed object has no method '${describeMethod(method)}' that may be called remotely`, method));
      return;
    }
    const outer = current;
    current = state;
    this.#running = state;
    let result: unknown;
    try {
      result = fn.apply(this.#api, args);
    } catch (err) {
      current = outer;
      this.#running = undefined;
      this.#respondError(state, err);
      return;
    }
    current = outer;
    this.#running = undefined;
    if (result !== null && (typeof result === 'object' || typeof result === 'function') && typeof (result as PromiseLike<unknown>).then === 'function') {
      // destroy() during the method cancelled it already: nothing to wait for.
      if (!state.cancelled) this.#calls.set(id, state);
      Promise.resolve(result).then(
        (value) => this.#respondValue(state, value),
        (err) => this.#respondError(state, err),
      );
    } else {
      this.#respondValue(state, result);
    }
  }

  #respondValue(state: CallState, value: unknown): void {
    this.#transmit(state, value === undefined ? [RESULT, state.id] : [RESULT, state.id, value], CallState.resultFallback);
  }

  #respondError(state: CallState, err: unknown): void {
    this.#transmit(state, CallState.errorReply(state, err), CallState.errorFallback);
  }

  /** Sends a reply; when that fails for another reason than the channel, sends what `fallback` makes of it instead. */
  #transmit(state: CallState, message: unknown[], fallback: Fallback): void {
    if (state.cancelled) {
      this.#done(state);
      return;
    }
    let sent: boolean;
    try {
      sent = sendOwn(this.#outbox, message, undefined, this.#sendOptions);
    } catch (err) {
      this.#failed(state, err, fallback);
      return;
    }
    // The callbacks are made only when the reply has to wait in the outbox;
    // then the call is in progress until it went out (close() waits for it).
    if (sent) {
      this.#done(state);
      return;
    }
    if (!this.#calls.has(state.id)) this.#calls.set(state.id, state);
    this.#outbox.enqueue(message, this.#sendOptions, (err) => this.#failed(state, err, fallback), () => this.#done(state));
  }

  #failed(state: CallState, err: unknown, fallback: Fallback): void {
    const next = isTransportFailure(err) ? undefined : fallback(state, err);
    if (next === undefined) this.#done(state);
    else this.#transmit(state, next, fallback);
  }

  #done(state: CallState): void {
    if (this.#calls.size !== 0 && this.#calls.get(state.id) === state) this.#calls.delete(state.id);
    if (this.#calls.size === 0 && this.#drained !== undefined) this.#drained();
  }

  /** Stops the receive loop and frees the channel end for another server. */
  #stopReceiving(): void {
    if (!this.#stop.signal.aborted) this.#stop.abort();
    serving.get(this.#ends.receiver)?.delete(this.#types.request);
  }

  #channelEnded(err: unknown): void {
    this.#closed = true;
    this.#stopReceiving();
    const reason = err instanceof ClosedError ? err : new ClosedError('rpc: the channel closed', { cause: err });
    for (const state of this.#calls.values()) CallState.cancel(state, reason);
    this.#calls.clear();
    // A close() in progress goes on from here; otherwise the server is done.
    if (this.#drained !== undefined) {
      this.#drained();
      return;
    }
    this.#closing ??= this.#closeChannel ? closeEnds(this.#ends).catch(() => {}) : Promise.resolve();
    void this.#closing.then(this.#finish);
  }

  /**
   * Graceful close: stops taking calls (those that arrive now are answered
   * with `ERR_MULTIPROC_CLOSED`); resolves when the calls in progress have
   * finished and their replies were handed to the channel, then stops reading
   * and closes the channel if `closeChannel` was set. Cancels keep reaching
   * the calls in progress meanwhile. Idempotent: a second call returns the
   * same promise. Calls that arrive after it resolved are not answered.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      if (this.#calls.size > 0 || this.#running !== undefined) await new Promise<void>((resolve) => (this.#drained = resolve));
      this.#stopReceiving();
      await this.#loop;
      if (this.#closeChannel) await closeEnds(this.#ends).catch(() => {});
      this.#finish();
    })();
    return this.#closing;
  }

  /**
   * Stops at once: the signals of the calls in progress abort with `err` (or
   * a `ClosedError`), their callers get `ERR_MULTIPROC_CLOSED`, and their
   * results are discarded. Destroys the channel if `closeChannel` was set. Idempotent.
   */
  destroy(err?: Error): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#closed = true;
    this.#stopReceiving();
    const reason = err ?? new ClosedError('rpc: the server was destroyed');
    const calls = [...this.#calls.values()];
    if (this.#running !== undefined) calls.push(this.#running);
    this.#calls.clear();
    for (const state of calls) {
      CallState.cancel(state, reason);
      try {
        const closed = new ClosedError(`rpc: the server was destroyed while ${state.method}() ran`, err === undefined ? undefined : { cause: err });
        this.#outbox.post([ERROR, state.id, serializeError(closed)], this.#sendOptions, () => {});
      } catch {
        // the channel is gone: the caller learns from it
      }
    }
    if (this.#closeChannel) destroyEnds(this.#ends, err);
    this.#closing ??= Promise.resolve();
    this.#drained?.();
    this.#finish();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function cancelReason(reason: unknown, timeout: unknown): Error {
  if (reason === 'timeout') {
    const ms = typeof timeout === 'number' ? timeout : NaN;
    return new TimeoutError(`rpc: the caller's timeout of ${ms} ms elapsed`, ms);
  }
  if (reason === 'closed') return new ClosedError('rpc: the caller closed its connection');
  return new AbortError('rpc: the caller aborted the call');
}

function unencodable(method: string, err: unknown): Error {
  const e = typeError('ERR_INVALID_RETURN_VALUE', `rpc: the result of ${method}() could not be encoded by the channel's codec: ${err instanceof Error ? err.message : String(err)}`);
  (e as { cause?: unknown }).cause = err;
  return e;
}

/**
 * Serves `api`'s methods over `channel`: each call that arrives runs
 * `api[method](...args)` (with `this` = `api`), and its result, or the error
 * it throws, goes back to the caller. Methods may be sync or async. Many calls
 * run at once; replies go out as they complete. Inside a method,
 * {@link callContext} gives the call's `signal`, which aborts when the caller
 * gives up.
 *
 * Callable: functions that are own or inherited properties of `api`, except
 * `constructor`, `__proto__` and what every object or function inherits
 * (Object.prototype, Function.prototype); getters are never run. Anything
 * else answers `ERR_MULTIPROC_NO_SUCH_METHOD`.
 *
 * The channel must carry objects: codec `structured` (the default of most
 * transports: Map, Set, Date, BigInt, typed arrays pass), `msgpack` or
 * `json`. RPC uses two channel message types (see `messageTypes`); other
 * types stay free for the application.
 *
 * Errors (thrown): `ERR_INVALID_ARG_TYPE` (api is not an object, channel is
 * not a channel), `ERR_INVALID_ARG_VALUE` (unknown option), `ERR_INVALID_STATE`
 * (another server already serves this channel end with the same message types),
 * `ERR_MULTIPROC_CLOSED` (the channel is closed).
 * Errors sent to callers: whatever the method throws, `ERR_MULTIPROC_NO_SUCH_METHOD`,
 * `ERR_INVALID_RETURN_VALUE` (the codec could not encode the result),
 * `ERR_MULTIPROC_MESSAGE_TOO_LARGE` (the result was too large for the channel),
 * `ERR_MULTIPROC_PROTOCOL` (a malformed call), `ERR_MULTIPROC_CLOSED` (on `destroy()`,
 * and for calls that arrive while `close()` waits).
 */
export function expose(api: object, channel: RpcChannel, options?: ExposeOptions): RpcServer {
  if (api === null || (typeof api !== 'object' && typeof api !== 'function')) {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "api" argument must be an object with methods. Received ${api === null ? 'null' : typeof api}`);
  }
  const ends = channelEnds(channel);
  const opts = validateOptions<ExposeOptions>(options, 'options', ['closeChannel', 'messageTypes']);
  const closeChannel = opts.closeChannel === undefined ? false : validateBoolean(opts.closeChannel, 'options.closeChannel');
  const types = validateMessageTypes(opts.messageTypes);
  if (ends.receiver.closed) throw new ClosedError('rpc: the channel is closed');
  let served = serving.get(ends.receiver);
  if (served?.has(types.request)) {
    throw typeError('ERR_INVALID_STATE', 'rpc: an object is already exposed on this channel end with these message types; close it first, or use other messageTypes');
  }
  if (served === undefined) serving.set(ends.receiver, (served = new Set()));
  served.add(types.request);
  return new RpcServer(api, ends, types, closeChannel);
}
