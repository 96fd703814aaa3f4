/**
 * What every socket listener shares: handing out authenticated connections
 * (by event or async iteration), tracking them, and closing them with the
 * listener (graceful `close()`, forceful `destroy()`).
 */
import { EventEmitter } from 'node:events';
import { ClosedError } from '../../errors.js';
import type { BytesReceiver, Channel, ChannelTraits } from '../channel.js';
import type { SocketEndpoint } from './socket-common.js';

/** One end of an established socket connection: a two-way {@link Channel}. */
export interface SocketConnection<T = unknown> extends Channel<T>, BytesReceiver {
  /** This end's address. */
  readonly local: SocketEndpoint;
  /** The peer's address (for a Unix socket, the path the client connected to). */
  readonly remote: SocketEndpoint;
  /** True when both ends proved knowledge of the shared `authKey`. */
  readonly authenticated: boolean;
  /** Lets the process exit while this connection is open (`unref`), or not (`ref`, the default). */
  ref(): this;
  unref(): this;
}

/** Events of a {@link SocketServer}. */
export interface SocketServerEvents<T> {
  /** A client connected and passed the handshake. */
  connection: [connection: SocketConnection<T>];
  /**
   * A client failed the handshake (`ERR_MULTIPROC_AUTH_FAILED`,
   * `ERR_MULTIPROC_PROTOCOL`, `ERR_MULTIPROC_TIMEOUT`) or broke off; its
   * connection was closed and the server goes on. Informational only.
   */
  handshakeError: [error: Error, remote: SocketEndpoint];
  /** Only with a listener: an error of the listening socket that nobody awaits. */
  error: [error: Error];
  /** The server closed (after its connections). */
  close: [];
}

/**
 * A listening socket (Unix, TCP or UDP), made by `Socket.listen`. Each client
 * that passes the handshake becomes a {@link SocketConnection}, delivered as a
 * `'connection'` event when there are listeners, else through async
 * iteration (`for await (const conn of server)`), queued until taken.
 */
export abstract class SocketServer<T = unknown> extends EventEmitter implements AsyncIterable<SocketConnection<T>> {
  /** Traits of this server's connections. */
  readonly traits: ChannelTraits;
  readonly #handle: { ref(): unknown; unref(): unknown };
  readonly #address: SocketEndpoint;
  readonly #connections = new Set<SocketConnection<T>>();
  #queue: SocketConnection<T>[] = [];
  #takers: Array<{ resolve: (c: SocketConnection<T> | undefined) => void }> = [];
  #closing: Promise<void> | undefined;
  #accepted = 0;
  #rejected = 0;

  /** @internal `handle`: the listening socket, `address`: where it is bound. */
  protected constructor(traits: ChannelTraits, handle: { ref(): unknown; unref(): unknown }, address: SocketEndpoint) {
    super();
    this.traits = traits;
    this.#handle = handle;
    this.#address = address;
  }

  /** Where the server listens (the actual port when 0 was asked for). */
  get address(): SocketEndpoint {
    return { ...this.#address };
  }

  /** True once `close()` or `destroy()` was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Open connections. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Connections accepted and handshakes refused since the server started. */
  stats(): { connections: number; accepted: number; rejected: number } {
    return { connections: this.#connections.size, accepted: this.#accepted, rejected: this.#rejected };
  }

  /** Lets the process exit while the server listens (`unref`), or not (`ref`, the default). */
  ref(): this {
    this.#handle.ref();
    return this;
  }

  unref(): this {
    this.#handle.unref();
    return this;
  }

  // --- transport hooks --------------------------------------------------

  /** Stops accepting, aborts handshakes in progress, removes a socket file. @internal */
  protected abstract _stopListening(): void;
  /** Releases the listening socket, after the connections closed. @internal */
  protected abstract _release(): Promise<void>;

  /** A connection passed the handshake. @internal */
  protected _accept(conn: SocketConnection<T>): void {
    if (this.closed) {
      conn.destroy();
      return;
    }
    this.#accepted++;
    this.#connections.add(conn);
    if (this.listenerCount('connection') > 0) {
      this.emit('connection', conn);
      return;
    }
    const taker = this.#takers.shift();
    if (taker !== undefined) taker.resolve(conn);
    else this.#queue.push(conn);
  }

  /**
   * A connection is gone (closed by either side). One still queued stays
   * queued: what its peer sent before leaving can still be received.
   * @internal
   */
  protected _forget(conn: SocketConnection<T>): void {
    this.#connections.delete(conn);
  }

  /** A handshake failed. @internal */
  protected _reject(err: Error, remote: SocketEndpoint): void {
    this.#rejected++;
    if (this.listenerCount('handshakeError') > 0) this.emit('handshakeError', err, remote);
  }

  /** An error of the listening socket. @internal */
  protected _error(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  // --- lifetime -----------------------------------------------------------

  /**
   * Stops listening, aborts handshakes in progress and closes every
   * connection gracefully (what was sent is delivered); a Unix socket file
   * is removed. Idempotent: a second call returns the same promise.
   * `for await` loops over the server end.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#endTakers();
      this._stopListening();
      await Promise.allSettled([...this.#connections].map((c) => c.close()));
      this.#connections.clear();
      this.#queue = [];
      await this._release();
      this.emit('close');
    })();
    return this.#closing;
  }

  /**
   * Stops listening and destroys every connection at once; their pending
   * operations reject with `err` (or ERR_MULTIPROC_CLOSED). Idempotent.
   */
  destroy(err?: Error): void {
    const first = this.#closing === undefined;
    this.#closing ??= Promise.resolve();
    this.#endTakers();
    for (const c of this.#connections) c.destroy(err ?? new ClosedError(`the ${this.traits.mechanism} server was destroyed`));
    this.#connections.clear();
    this.#queue = [];
    if (!first) return;
    this._stopListening();
    void this._release().finally(() => this.emit('close'));
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Connections as they pass the handshake; ends when the server closes. */
  async *[Symbol.asyncIterator](): AsyncIterator<SocketConnection<T>> {
    for (;;) {
      let conn = this.#queue.shift();
      if (conn === undefined) {
        if (this.closed) return;
        conn = await new Promise<SocketConnection<T> | undefined>((resolve) => this.#takers.push({ resolve }));
        if (conn === undefined) return;
      }
      yield conn;
    }
  }

  #endTakers(): void {
    const takers = this.#takers;
    this.#takers = [];
    for (const t of takers) t.resolve(undefined);
  }
}

// Typed events.
export interface SocketServer<T> {
  on<E extends keyof SocketServerEvents<T>>(event: E, listener: (...args: SocketServerEvents<T>[E]) => void): this;
  once<E extends keyof SocketServerEvents<T>>(event: E, listener: (...args: SocketServerEvents<T>[E]) => void): this;
  off<E extends keyof SocketServerEvents<T>>(event: E, listener: (...args: SocketServerEvents<T>[E]) => void): this;
  emit<E extends keyof SocketServerEvents<T>>(event: E, ...args: SocketServerEvents<T>[E]): boolean;
}
