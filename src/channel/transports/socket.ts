/**
 * Socket transports: Unix-domain (a file path or a Linux abstract name) and
 * TCP stream sockets, and UDP (udp.ts). `Socket.listen` makes a server whose
 * clients each become a {@link SocketConnection}; `Socket.connect` makes a
 * client connection, retrying with backoff while nothing listens yet.
 *
 * Stream connections start with a handshake on fixed-size messages, then
 * carry StreamChannel frames:
 *
 *   both ways   HELLO 48 bytes: 'MPSK', u16 version, u16 flags (1: authKey),
 *               u32 maxMessageSize, u32 reserved, 32-byte random nonce
 *   with a key  client: proof_c = HMAC-SHA256(key, 'multiproc stream client' | HELLO_s | HELLO_c)
 *               server: 1 byte status (0 refused, 1 accepted) + proof_s =
 *                       HMAC-SHA256(key, 'multiproc stream server' | HELLO_c | HELLO_s)
 *               client: 1 byte status (1: the server's proof is right)
 *
 * The server checks the client before proving itself; both compare in
 * constant time; the key never crosses the wire. Each connection's
 * maxMessageSize is the smaller of the two ends' (both refuse to send more).
 */
import { Socket as NetSocket, createConnection, createServer, type Server } from 'node:net';
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, unlinkSync, type Stats } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { native } from '../../binding/native.js';
import { AuthError, ProtocolError, systemError, typeError, validateBoolean, validateInteger, validateOptions } from '../../errors.js';
import { makeWait, validateMaxMessageSize, waitFor, type ChannelOptions, type Wait } from '../base-channel.js';
import { resolveCodec } from '../codec.js';
import { StreamChannel, type StreamChannelInit } from '../stream-channel.js';
import {
  NONCE_SIZE,
  PROOF_SIZE,
  TCP_TRAITS,
  UNIX_TRAITS,
  authRequired,
  backoff,
  checkListenHost,
  checkSignal,
  connectPolicy,
  displayPath,
  hmac,
  innerWait,
  isLoopback,
  resolveAuthKey,
  retriable,
  sameProof,
  sleep,
  validateHandshakeTimeout,
  validateTarget,
  type RetryOptions,
  type SocketEndpoint,
  type Target,
} from './socket-common.js';
import { SocketServer, type SocketConnection } from './socket-server.js';
import { connectUdp, listenUdp } from './udp.js';
import { recordCreated, recordRemoved, type Hold } from '../../resources/registry.js';

/** Options of {@link Socket.listen}. */
export interface SocketListenOptions<T> extends ChannelOptions<T> {
  /** Unix socket path (or abstract name, see `abstract`). Exactly one of `path` and `port`. */
  path?: string;
  /** `path` names the Linux abstract namespace (no file). Default: true when `path` starts with '\0'. */
  abstract?: boolean;
  /** TCP or UDP port; 0 picks a free one (see `server.address.port`). */
  port?: number;
  /** Address to bind (default '127.0.0.1'). Anything but loopback requires `authKey`. */
  host?: string;
  /** With `port`: 'tcp' (default) or 'udp'. */
  protocol?: 'tcp' | 'udp';
  /** Shared secret every client must prove it knows (string as UTF-8, or bytes). */
  authKey?: string | Uint8Array;
  /** A client that has not finished the handshake after this many ms is dropped (default 10000). */
  handshakeTimeout?: number;
  /** Mode of the Unix socket file (default 0o600: only this user may connect). */
  mode?: number;
  /** Replace a socket file that no process listens on any more (default true). */
  replaceStale?: boolean;
  /** Length of the kernel's queue of not yet accepted connections (default 511). */
  backlog?: number;
}

/** Options of {@link Socket.connect}. */
export interface SocketConnectOptions<T> extends ChannelOptions<T> {
  /** Unix socket path (or abstract name). Exactly one of `path` and `port`. */
  path?: string;
  /** `path` names the Linux abstract namespace. Default: true when `path` starts with '\0'. */
  abstract?: boolean;
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** With `port`: 'tcp' (default) or 'udp'. */
  protocol?: 'tcp' | 'udp';
  /** The server's shared secret; needed exactly when the server has one. */
  authKey?: string | Uint8Array;
  /** Retry while nothing listens (ECONNREFUSED, ENOENT, ...): `true` for the defaults, or a policy. Default: one attempt. */
  retry?: boolean | RetryOptions;
  /** Bound on the whole connect, retries and handshake included, in ms (ERR_MULTIPROC_TIMEOUT). */
  timeout?: number;
  /** Aborts the connect (ABORT_ERR). */
  signal?: AbortSignal;
  /** Bound on the handshake of one attempt, in ms (default 10000). */
  handshakeTimeout?: number;
}

const LISTEN_KEYS = ['path', 'abstract', 'port', 'host', 'protocol', 'authKey', 'handshakeTimeout', 'mode', 'replaceStale', 'backlog', 'codec', 'maxMessageSize'];
const CONNECT_KEYS = ['path', 'abstract', 'port', 'host', 'protocol', 'authKey', 'retry', 'timeout', 'signal', 'handshakeTimeout', 'codec', 'maxMessageSize'];

// --- the handshake ----------------------------------------------------------

const MAGIC = Buffer.from('MPSK', 'latin1');
const VERSION = 1;
const HELLO_SIZE = 48;
const FLAG_AUTH = 1;
const CLIENT_LABEL = 'multiproc stream client';
const SERVER_LABEL = 'multiproc stream server';

interface Hello {
  auth: boolean;
  maxMessageSize: number;
  nonce: Buffer;
}

function encodeHello(h: Hello): Buffer {
  const b = Buffer.alloc(HELLO_SIZE);
  MAGIC.copy(b, 0);
  b.writeUInt16LE(VERSION, 4);
  b.writeUInt16LE(h.auth ? FLAG_AUTH : 0, 6);
  b.writeUInt32LE(h.maxMessageSize, 8);
  h.nonce.copy(b, 16);
  return b;
}

function decodeHello(b: Buffer, label: string): Hello {
  if (!b.subarray(0, 4).equals(MAGIC)) throw new ProtocolError(`${label}: the peer does not speak the multiproc socket protocol (bad handshake magic)`);
  const version = b.readUInt16LE(4);
  if (version !== VERSION) throw new ProtocolError(`${label}: the peer speaks handshake version ${version}; this end speaks ${VERSION}`);
  const maxMessageSize = b.readUInt32LE(8);
  if (maxMessageSize === 0) throw new ProtocolError(`${label}: the peer announced a maxMessageSize of 0`);
  return { auth: (b.readUInt16LE(6) & FLAG_AUTH) !== 0, maxMessageSize, nonce: Buffer.from(b.subarray(16, 16 + NONCE_SIZE)) };
}

/**
 * Reads exactly `n` bytes in paused mode. Bytes past them, and the end of
 * the stream, stay in the socket for the StreamChannel that follows.
 */
function readExactly(sock: NetSocket, n: number, label: string): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const cleanup = (): void => {
      sock.off('readable', attempt);
      sock.off('end', onEnd);
      sock.off('close', onEnd);
      sock.off('error', onError);
    };
    const onEnd = (): void => {
      cleanup();
      reject(new ProtocolError(`${label}: the peer closed the connection during the handshake`));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    function attempt(): void {
      const b = sock.read(n) as Buffer | null;
      if (b === null) {
        if (sock.readableEnded || sock.destroyed) onEnd();
        return;
      }
      cleanup();
      if (b.length < n) reject(new ProtocolError(`${label}: the peer closed the connection during the handshake`));
      else resolve(b);
    }
    sock.on('readable', attempt);
    sock.on('end', onEnd);
    sock.on('close', onEnd);
    sock.on('error', onError);
    attempt();
  });
}

function write(sock: NetSocket, data: Buffer): void {
  if (!sock.destroyed) sock.write(data);
}

interface HandshakeResult {
  maxMessageSize: number;
  authenticated: boolean;
}

async function runHandshake(sock: NetSocket, role: 'client' | 'server', key: Buffer | undefined, maxMessageSize: number, label: string): Promise<HandshakeResult> {
  const mineBytes = encodeHello({ auth: key !== undefined, maxMessageSize, nonce: randomBytes(NONCE_SIZE) });
  let peerBytes: Buffer;
  if (role === 'client') {
    write(sock, mineBytes);
    peerBytes = await readExactly(sock, HELLO_SIZE, label);
  } else {
    peerBytes = await readExactly(sock, HELLO_SIZE, label);
  }
  const peer = decodeHello(peerBytes, label);
  if (role === 'server') write(sock, mineBytes);
  const agreed = Math.min(maxMessageSize, peer.maxMessageSize);
  if (peer.auth !== (key !== undefined)) {
    const other = role === 'client' ? 'server' : 'client';
    throw new AuthError(
      key !== undefined
        ? `${label}: the ${other} has no authKey, but this end requires one`
        : `${label}: the ${other} requires an authKey; pass the shared secret as options.authKey`,
    );
  }
  if (key === undefined) return { maxMessageSize: agreed, authenticated: false };
  // Proofs cover both HELLOs (nonces and announced limits) and name the role.
  const [clientHello, serverHello] = role === 'client' ? [mineBytes, peerBytes] : [peerBytes, mineBytes];
  const clientProof = hmac(key, CLIENT_LABEL, serverHello, clientHello);
  const serverProof = hmac(key, SERVER_LABEL, clientHello, serverHello);
  if (role === 'client') {
    write(sock, clientProof);
    const status = await readExactly(sock, 1, label);
    if (status[0] !== 1) throw new AuthError(`${label}: the server refused this authKey`);
    const proof = await readExactly(sock, PROOF_SIZE, label);
    if (!sameProof(proof, serverProof)) throw new AuthError(`${label}: the server could not prove that it knows the authKey`);
    write(sock, Buffer.from([1]));
  } else {
    const proof = await readExactly(sock, PROOF_SIZE, label);
    if (!sameProof(proof, clientProof)) {
      if (!sock.destroyed) sock.end(Buffer.from([0]));
      throw new AuthError(`${label}: the client's authKey is wrong`);
    }
    write(sock, Buffer.concat([Buffer.from([1]), serverProof]));
    const status = await readExactly(sock, 1, label);
    if (status[0] !== 1) throw new AuthError(`${label}: the client refused the server's proof`);
  }
  return { maxMessageSize: agreed, authenticated: true };
}

/** The handshake, bounded by `wait`; on timeout or abort the socket is destroyed. */
function handshake(sock: NetSocket, role: 'client' | 'server', key: Buffer | undefined, maxMessageSize: number, label: string, wait: Wait): Promise<HandshakeResult> {
  return waitFor<HandshakeResult>(wait, (resolve, reject) => {
    runHandshake(sock, role, key, maxMessageSize, label).then(resolve, reject);
    return () => sock.destroy();
  });
}

// --- connections ------------------------------------------------------------

function endpoints(sock: NetSocket, target: Target, role: 'client' | 'server'): { local: SocketEndpoint; remote: SocketEndpoint } {
  if (target.kind === 'unix') {
    // Unix clients are unnamed; both ends are known by the listener's path.
    return { local: role === 'server' ? { path: target.path } : {}, remote: role === 'client' ? { path: target.path } : {} };
  }
  const fam = (f: string | undefined): 'IPv4' | 'IPv6' | undefined => (f === 'IPv6' ? 'IPv6' : f === 'IPv4' ? 'IPv4' : undefined);
  return {
    local: { address: sock.localAddress, port: sock.localPort, family: fam(sock.localFamily) },
    remote: { address: sock.remoteAddress, port: sock.remotePort, family: fam(sock.remoteFamily) },
  };
}

/** @internal */
interface SocketChannelInit<T> extends StreamChannelInit<T> {
  local: SocketEndpoint;
  remote: SocketEndpoint;
  authenticated: boolean;
}

/**
 * A Unix or TCP connection: a two-way, framed {@link SocketConnection}.
 * Made by `Socket.connect` and handed out by a {@link SocketServer}.
 */
/** Largest send buffer a Unix connection asks for, for large messages. */
const SEND_BUFFER_MAX = 4 << 20;

export class SocketChannel<T = unknown> extends StreamChannel<T> implements SocketConnection<T> {
  readonly local: SocketEndpoint;
  readonly remote: SocketEndpoint;
  readonly authenticated: boolean;

  /** @internal */
  constructor(init: SocketChannelInit<T>) {
    super(init);
    this.local = init.local;
    this.remote = init.remote;
    this.authenticated = init.authenticated;
    // The handshake read in paused mode; bytes the peer sent right after it
    // (and its end, if it already closed) are still buffered in the socket.
    this.stream.resume();
  }

  /** SO_SNDBUF as last granted (0: not asked yet, -1: asking failed). */
  #sendBuffer = 0;

  /**
   * Unix sockets only (TCP tunes its own buffers): a large message fits
   * one write when the send buffer holds it, up to SEND_BUFFER_MAX and what
   * net.core.wmem_max allows.
   * @internal
   */
  protected override _beforeLargeWrite(bytes: number): void {
    if (this.traits.mechanism !== UNIX_TRAITS.mechanism || this.#sendBuffer < 0) return;
    // The kernel reports twice the payload room it grants.
    const want = Math.min(SEND_BUFFER_MAX, 2 ** Math.ceil(Math.log2(bytes)));
    if (this.#sendBuffer >= 2 * want) return;
    const fd = this._fd();
    if (fd < 0) return;
    try {
      const granted = native.setSendBuffer(fd, want);
      this.#sendBuffer = granted >= 2 * want ? granted : -1;
    } catch {
      this.#sendBuffer = -1;
    }
  }

  /** @see SocketConnection.ref */
  ref(): this {
    (this.stream as NetSocket).ref();
    return this;
  }

  /** @see SocketConnection.unref */
  unref(): this {
    (this.stream as NetSocket).unref();
    return this;
  }
}

function makeChannel<T>(sock: NetSocket, target: Target, role: 'client' | 'server', res: HandshakeResult, codec: StreamChannelInit<T>['codec']): SocketChannel<T> {
  const { local, remote } = endpoints(sock, target, role);
  const peer = role === 'server' ? (target.kind === 'unix' ? 'client' : `client ${remote.address}:${remote.port}`) : 'server';
  return new SocketChannel<T>({
    stream: sock,
    readInto: native.readInto,
    writeFrom: native.writeFrom,
    traits: target.kind === 'unix' ? UNIX_TRAITS : TCP_TRAITS,
    codec,
    maxMessageSize: res.maxMessageSize,
    label: `${target.label} (${peer === 'server' ? 'connection to the server' : peer})`,
    canSend: true,
    canReceive: true,
    local,
    remote,
    authenticated: res.authenticated,
  });
}

// --- the stream server ------------------------------------------------------

interface OwnedFile {
  path: string;
  dev: number;
  ino: number;
  /** This process's lock on the socket file's registry record. */
  hold?: Hold | undefined;
}

/** Socket files this process created, removed at exit if still ours. */
const ownedFiles = new Set<OwnedFile>();
let exitHookInstalled = false;

function isOurs(f: OwnedFile): boolean {
  let st: Stats;
  try {
    st = lstatSync(f.path);
  } catch {
    return false;
  }
  return st.isSocket() && st.dev === f.dev && st.ino === f.ino;
}

function removeOwned(f: OwnedFile): void {
  ownedFiles.delete(f);
  try {
    if (isOurs(f)) unlinkSync(f.path);
  } catch {
    // gone already, or the directory is no longer ours to change
  }
  recordRemoved(f.hold);
  f.hold = undefined;
}

function trackFile(f: OwnedFile): void {
  ownedFiles.add(f);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const o of [...ownedFiles]) removeOwned(o);
    });
  }
}

/** Does anything accept connections on `path`? */
function probe(path: string): Promise<string> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve('live');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'stale' : (err.code ?? 'unknown')));
  });
}

/** Binds a Unix socket (file mode set before bind, see socket.cc); replaces a stale file when asked. */
async function bindUnix(target: Extract<Target, { kind: 'unix' }>, mode: number, backlog: number, replaceStale: boolean): Promise<{ fd: number; owned: OwnedFile | undefined }> {
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = native.unixListen(target.path, mode, backlog);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'EADDRINUSE' || target.abstract || attempt > 0) throw systemError(err, 'unix socket', displayPath(target.path), target.path);
      let st: Stats;
      try {
        st = lstatSync(target.path);
      } catch {
        continue; // removed meanwhile: try again
      }
      if (!st.isSocket()) {
        e.message = `EADDRINUSE: unix socket '${target.path}': the path exists and is not a socket; it was left alone`;
        throw e;
      }
      const state = await probe(target.path);
      if (state === 'live') {
        e.message = `EADDRINUSE: unix socket '${target.path}': another process listens on it`;
        throw e;
      }
      // Only a refused connection proves that nothing listens: a listener
      // whose queue is full answers EAGAIN, and it must keep its path.
      if (state !== 'stale') {
        e.message = `EADDRINUSE: unix socket '${target.path}': it could not be told whether something listens on it (a connection attempt failed with ${state}); it was left alone`;
        throw e;
      }
      if (!replaceStale) {
        e.message = `EADDRINUSE: unix socket '${target.path}': a stale socket file (nothing listens on it) is in the way; remove it or pass replaceStale: true`;
        throw e;
      }
      // Remove it only if it is still the file we probed.
      if (isOurs({ path: target.path, dev: st.dev, ino: st.ino })) {
        try {
          unlinkSync(target.path);
        } catch {
          // someone else removed it
        }
      }
      continue;
    }
    if (target.abstract) return { fd, owned: undefined };
    let st = lstatSync(target.path);
    // bind(2) applied the umask, which only ever narrows: widen to exactly `mode`.
    if ((st.mode & 0o777) !== mode) {
      chmodSync(target.path, mode);
      st = lstatSync(target.path);
    }
    const path = resolvePath(target.path);
    const owned: OwnedFile = { path, dev: st.dev, ino: st.ino, hold: recordCreated('socket', path, { ino: st.ino, dev: st.dev }) };
    trackFile(owned);
    return { fd, owned };
  }
}

/** @internal */
class StreamServer<T> extends SocketServer<T> {
  readonly #server: Server;
  readonly #target: Target;
  readonly #key: Buffer | undefined;
  readonly #codec: StreamChannelInit<T>['codec'];
  readonly #maxMessageSize: number;
  readonly #handshakeTimeout: number;
  readonly #owned: OwnedFile | undefined;
  readonly #pending = new Set<NetSocket>();
  #closed: Promise<void> | undefined;

  constructor(server: Server, target: Target, address: SocketEndpoint, owned: OwnedFile | undefined, key: Buffer | undefined, codec: StreamChannelInit<T>['codec'], maxMessageSize: number, handshakeTimeout: number) {
    super(target.kind === 'unix' ? UNIX_TRAITS : TCP_TRAITS, server, address);
    this.#server = server;
    this.#target = target;
    this.#owned = owned;
    this.#key = key;
    this.#codec = codec;
    this.#maxMessageSize = maxMessageSize;
    this.#handshakeTimeout = handshakeTimeout;
    server.on('connection', (sock: NetSocket) => this.#onConnection(sock));
    server.on('error', (err) => this._error(err));
  }

  #onConnection(sock: NetSocket): void {
    if (this.closed) {
      sock.destroy();
      return;
    }
    if (this.#target.kind === 'tcp') sock.setNoDelay(true);
    this.#pending.add(sock);
    const { remote } = endpoints(sock, this.#target, 'server');
    const who = this.#target.kind === 'unix' ? 'a client' : `client ${remote.address}:${remote.port}`;
    const label = `${this.#target.label} (${who})`;
    const wait = makeWait(this.#handshakeTimeout, undefined, `the handshake of ${who}`);
    handshake(sock, 'server', this.#key, this.#maxMessageSize, label, wait).then(
      (res) => {
        this.#pending.delete(sock);
        if (this.closed || sock.destroyed) {
          sock.destroy();
          return;
        }
        const ch = makeChannel<T>(sock, this.#target, 'server', res, this.#codec);
        sock.once('close', () => this._forget(ch));
        this._accept(ch);
      },
      (err: Error) => {
        this.#pending.delete(sock);
        sock.on('error', () => {});
        sock.destroy();
        this._reject(err, remote);
      },
    );
  }

  protected _stopListening(): void {
    this.#closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#pending) s.destroy();
    this.#pending.clear();
    if (this.#owned !== undefined) removeOwned(this.#owned);
  }

  protected async _release(): Promise<void> {
    // net.Server calls back once its last connection is gone.
    await this.#closed;
  }
}

async function listenStream<T>(target: Target, opts: Partial<SocketListenOptions<T>>): Promise<SocketServer<T>> {
  const key = resolveAuthKey(opts.authKey, 'options.authKey');
  const codec = resolveCodec<T>(opts.codec, 'structured');
  const maxMessageSize = validateMaxMessageSize(opts.maxMessageSize, 2 ** 32 - 1);
  const handshakeTimeout = validateHandshakeTimeout(opts.handshakeTimeout);
  const backlog = opts.backlog === undefined ? 511 : validateInteger(opts.backlog, 'options.backlog', 1, 65535);
  if (target.kind !== 'unix') {
    if (opts.mode !== undefined || opts.replaceStale !== undefined) throw typeError('ERR_INVALID_ARG_VALUE', `'mode' and 'replaceStale' go with a Unix socket 'path'`);
    checkListenHost(key, target.label, target.host);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: target.port, host: target.host, backlog, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      throw systemError(err, 'tcp socket', `${target.host}:${target.port}`);
    });
    const a = server.address();
    if (a === null || typeof a === 'string') throw new Error('tcp listener has no address');
    // A host name may have resolved to a non-loopback address.
    if (key === undefined && !isLoopback(a.address)) {
      server.close();
      throw authRequired(target.label, a.address);
    }
    const address: SocketEndpoint = { address: a.address, port: a.port, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4' };
    const resolved = { ...target, port: a.port, label: `tcp ${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` };
    return new StreamServer<T>(server, resolved, address, undefined, key, codec, maxMessageSize, handshakeTimeout);
  }
  const mode = opts.mode === undefined ? 0o600 : validateInteger(opts.mode, 'options.mode', 0, 0o777);
  const replaceStale = opts.replaceStale === undefined ? true : validateBoolean(opts.replaceStale, 'options.replaceStale');
  const { fd, owned } = await bindUnix(target, mode, backlog, replaceStale);
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    if (owned !== undefined) removeOwned(owned);
    throw err;
  }
  return new StreamServer<T>(server, target, { path: target.path }, owned, key, codec, maxMessageSize, handshakeTimeout);
}

// --- the client ---------------------------------------------------------------

function openStream(target: Target, wait: Wait): Promise<NetSocket> {
  if (target.kind === 'unix' && target.abstract) {
    // Node 20's libuv pads abstract names to the whole sun_path; connect
    // natively, at the exact length the listener (socket.cc) bound.
    try {
      return Promise.resolve(new NetSocket({ fd: native.unixConnect(target.path), readable: true, writable: true }));
    } catch (err) {
      return Promise.reject(err);
    }
  }
  return waitFor<NetSocket>(wait, (resolve, reject) => {
    const sock = target.kind === 'unix' ? createConnection({ path: target.path }) : createConnection({ port: target.port, host: (target as { host: string }).host });
    const onError = (err: Error): void => reject(err);
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(sock);
    });
    return () => sock.destroy();
  });
}

async function connectStream<T>(target: Target, opts: Partial<SocketConnectOptions<T>>): Promise<SocketConnection<T>> {
  const key = resolveAuthKey(opts.authKey, 'options.authKey');
  const codec = resolveCodec<T>(opts.codec, 'structured');
  const maxMessageSize = validateMaxMessageSize(opts.maxMessageSize, 2 ** 32 - 1);
  const { retry, signal, wait } = connectPolicy(opts, target.label);
  const handshakeTimeout = validateHandshakeTimeout(opts.handshakeTimeout);
  checkSignal(signal);
  for (let failures = 0; ; ) {
    let sock: NetSocket | undefined;
    try {
      sock = await openStream(target, wait);
      if (target.kind === 'tcp') sock.setNoDelay(true);
      const res = await handshake(sock, 'client', key, maxMessageSize, target.label, innerWait(wait, handshakeTimeout, `the handshake with ${target.label}`));
      return makeChannel<T>(sock, target, 'client', res, codec);
    } catch (err) {
      if (sock !== undefined) {
        sock.on('error', () => {});
        sock.destroy();
      }
      failures++;
      if (!retriable(err) || failures >= retry.attempts) {
        throw systemError(err, `${target.kind} socket`, target.kind === 'unix' ? displayPath(target.path) : target.label.slice(4));
      }
      await sleep(backoff(retry, failures), wait);
    }
  }
}

// --- the API --------------------------------------------------------------------

/**
 * Unix, TCP and UDP sockets as channels.
 *
 * ```ts
 * const server = await Socket.listen({ path: '/run/user/1000/app.sock' });
 * for await (const conn of server) {
 *   for await (const msg of conn) await conn.send({ echo: msg });
 * }
 * // elsewhere
 * const conn = await Socket.connect({ path: '/run/user/1000/app.sock', retry: true });
 * ```
 */
export const Socket = Object.freeze({
  /**
   * Listens on a Unix socket (`path`, or an abstract name), a TCP port or a
   * UDP port. Loopback unless `host` says otherwise; off loopback `authKey`
   * is required. A Unix socket file gets `mode` (0600) from the moment it
   * exists and is removed on close; a stale file (nothing listens) is
   * replaced unless `replaceStale: false`.
   *
   * Errors (the promise rejects): argument errors (`ERR_INVALID_ARG_TYPE`,
   * `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`; a non-loopback `host`
   * without `authKey` is `ERR_INVALID_ARG_VALUE`), system errors
   * (`EADDRINUSE`, `EACCES`, `EADDRNOTAVAIL`, `ENOENT` for a missing directory).
   */
  async listen<T = unknown>(options: SocketListenOptions<T>): Promise<SocketServer<T>> {
    const opts = validateOptions<SocketListenOptions<T>>(options, 'options', LISTEN_KEYS);
    const target = validateTarget(opts, 'options', true);
    if (target.kind === 'udp') {
      if (opts.mode !== undefined || opts.replaceStale !== undefined || opts.backlog !== undefined) {
        throw typeError('ERR_INVALID_ARG_VALUE', `'mode', 'replaceStale' and 'backlog' do not apply to UDP`);
      }
      return listenUdp<T>(target, opts);
    }
    return listenStream<T>(target, opts);
  },

  /**
   * Connects to a server made by `Socket.listen` and runs the handshake
   * (authentication when the server has an `authKey`). With `retry`, a
   * refused or missing address is tried again with exponential backoff and
   * jitter until `retry.attempts` or `timeout` runs out.
   *
   * Errors (the promise rejects): `ERR_MULTIPROC_AUTH_FAILED` (wrong or
   * missing key on either side), `ERR_MULTIPROC_PROTOCOL` (the peer is not a
   * multiproc socket), `ERR_MULTIPROC_TIMEOUT`, `ABORT_ERR`, system errors
   * of the last attempt (`ECONNREFUSED`, `ENOENT`, ...), argument errors.
   */
  async connect<T = unknown>(options: SocketConnectOptions<T>): Promise<SocketConnection<T>> {
    const opts = validateOptions<SocketConnectOptions<T>>(options, 'options', CONNECT_KEYS);
    const target = validateTarget(opts, 'options', false);
    if (target.kind === 'udp') return connectUdp<T>(target, opts);
    return connectStream<T>(target, opts);
  },
});

export { SocketServer };
export type { SocketConnection, SocketEndpoint, RetryOptions };
