/**
 * What the socket transports (socket.ts, udp.ts) share: addresses and
 * traits, option checks, shared-secret authentication and retry with backoff.
 *
 * @internal
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { AbortError, typeError, validateBoolean, validateInteger, validateOneOf, validateOptions, validateSignal, validateString, validateTimeout } from '../../errors.js';
import { makeWait, waitFor, type Wait } from '../base-channel.js';
import type { ChannelTraits } from '../channel.js';

/** Unix-domain stream sockets. @internal */
export const UNIX_TRAITS: ChannelTraits = Object.freeze({
  mechanism: 'unix',
  medium: 'socket',
  unit: 'stream',
  direction: 'two-way',
  scope: 'same-host',
  use: 'a local server for many clients, guarded by file permissions (or an abstract name)',
});

/** TCP. @internal */
export const TCP_TRAITS: ChannelTraits = Object.freeze({
  mechanism: 'tcp',
  medium: 'socket',
  unit: 'stream',
  direction: 'two-way',
  scope: 'network',
  use: 'clients on other hosts (loopback by default; authKey required off loopback)',
});

/** UDP. @internal */
export const UDP_TRAITS: ChannelTraits = Object.freeze({
  mechanism: 'udp',
  medium: 'socket',
  unit: 'message',
  direction: 'two-way',
  scope: 'network',
  use: 'small messages at the lowest latency, where losing one is acceptable',
  reliable: false,
});

/** Where a socket is bound or connected. */
export interface SocketEndpoint {
  /** Unix socket path; an abstract name starts with '\0'. */
  path?: string;
  /** IP address (TCP, UDP). */
  address?: string;
  port?: number;
  family?: 'IPv4' | 'IPv6';
}

/** Retry policy of `Socket.connect`. */
export interface RetryOptions {
  /** Connection attempts in all, the first included (default 10; `Infinity` retries until `timeout`). */
  attempts?: number;
  /** Delay before the second attempt, in ms (default 50); it doubles after each failure. */
  minDelay?: number;
  /** Longest delay between attempts, in ms (default 2000). */
  maxDelay?: number;
}

/** @internal */
export interface ResolvedRetry {
  attempts: number;
  minDelay: number;
  maxDelay: number;
}

/** A validated address. @internal */
export type Target =
  | { kind: 'unix'; path: string; abstract: boolean; label: string }
  | { kind: 'tcp' | 'udp'; host: string; port: number; label: string };

/** sun_path holds 108 bytes; a file path needs one of them for its terminating NUL. */
const SUN_PATH = 108;

/** Default host: loopback. Listening elsewhere must be asked for. @internal */
export const DEFAULT_HOST = '127.0.0.1';

/** Default handshake timeout, ms. @internal */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10000;

/** Shows an abstract name as '@name', like ss(8) does. @internal */
export function displayPath(path: string): string {
  return path.startsWith('\0') ? `@${path.slice(1)}` : path;
}

/**
 * Checks the address options shared by `listen` and `connect`: exactly one
 * of `path` and `port`; `abstract` and `host`/`protocol` where they apply.
 * @internal
 */
export function validateTarget(opts: { path?: unknown; abstract?: unknown; port?: unknown; host?: unknown; protocol?: unknown }, what: string, listening: boolean): Target {
  const hasPath = opts.path !== undefined;
  const hasPort = opts.port !== undefined;
  if (hasPath === hasPort) {
    throw typeError('ERR_INVALID_ARG_VALUE', `${what} needs exactly one of 'path' (a Unix socket) and 'port' (TCP or UDP)`);
  }
  if (hasPath) {
    if (opts.host !== undefined || opts.protocol !== undefined) {
      throw typeError('ERR_INVALID_ARG_VALUE', `${what}: 'host' and 'protocol' go with 'port', not with a Unix socket 'path'`);
    }
    let path = validateString(opts.path, `${what}.path`);
    const abstract = opts.abstract === undefined ? path.startsWith('\0') : validateBoolean(opts.abstract, `${what}.abstract`);
    if (abstract && !path.startsWith('\0')) path = `\0${path}`;
    if (!abstract && path.startsWith('\0')) {
      throw typeError('ERR_INVALID_ARG_VALUE', `${what}.path starts with '\\0' (an abstract name) but abstract is false`);
    }
    if (path.length === (abstract ? 1 : 0)) throw typeError('ERR_INVALID_ARG_VALUE', `${what}.path must not be empty`);
    if (!abstract && path.includes('\0')) throw typeError('ERR_INVALID_ARG_VALUE', `${what}.path must not contain NUL bytes`);
    const bytes = Buffer.byteLength(path);
    const limit = abstract ? SUN_PATH : SUN_PATH - 1;
    if (bytes > limit) {
      throw typeError(
        'ERR_INVALID_ARG_VALUE',
        `${what}.path is ${bytes} bytes; a Unix socket ${abstract ? 'name' : 'path'} holds at most ${limit} (use a shorter directory, or a relative path)`,
      );
    }
    return { kind: 'unix', path, abstract, label: `unix socket '${displayPath(path)}'` };
  }
  if (opts.abstract !== undefined) throw typeError('ERR_INVALID_ARG_VALUE', `${what}: 'abstract' goes with 'path'`);
  const port = validateInteger(opts.port, `${what}.port`, listening ? 0 : 1, 65535);
  const host = opts.host === undefined ? DEFAULT_HOST : validateString(opts.host, `${what}.host`);
  if (host.length === 0) throw typeError('ERR_INVALID_ARG_VALUE', `${what}.host must not be empty`);
  const kind = opts.protocol === undefined ? 'tcp' : validateOneOf(opts.protocol, `${what}.protocol`, ['tcp', 'udp'] as const);
  return { kind, host, port, label: `${kind} ${formatHostPort(host, port)}` };
}

/** 'host:port', with brackets around IPv6. @internal */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * True for 127.0.0.0/8, ::1 and IPv4-mapped loopback. Host names are not
 * resolved here: listeners check the address they actually bound.
 * @internal
 */
export function isLoopback(address: string): boolean {
  let a = address.toLowerCase();
  if (a.startsWith('::ffff:')) a = a.slice(7);
  if (isIP(a) === 4) return a.startsWith('127.');
  if (isIP(a) === 6) {
    const canonical = new URL(`http://[${a}]/`).hostname;
    return canonical === '[::1]';
  }
  return false;
}

/** The refusal for a network listener without a key. @internal */
export function authRequired(label: string, address: string): TypeError {
  return typeError(
    'ERR_INVALID_ARG_VALUE',
    `${label}: listening on ${address}, which is not a loopback address, requires options.authKey ` +
      '(a shared secret every client must also pass); bind to 127.0.0.1 or ::1 to listen without one',
  );
}

/**
 * Refuses a network listener without a key on a host that is not loopback,
 * before binding ('localhost' passes: the address it bound is checked then).
 * @internal
 */
export function checkListenHost(key: Buffer | undefined, label: string, host: string): void {
  if (key === undefined && host !== 'localhost' && !isLoopback(host)) throw authRequired(label, host);
}

/** `handshakeTimeout` (ms), or its default. @internal */
export function validateHandshakeTimeout(value: unknown): number {
  return value === undefined ? DEFAULT_HANDSHAKE_TIMEOUT : validateTimeout(value, 'options.handshakeTimeout');
}

/** `authKey` as bytes (a string is taken as UTF-8), or undefined. @internal */
export function resolveAuthKey(value: unknown, what: string): Buffer | undefined {
  if (value === undefined) return undefined;
  let key: Buffer;
  if (typeof value === 'string') key = Buffer.from(value, 'utf8');
  else if (value instanceof Uint8Array) key = Buffer.from(value);
  else throw typeError('ERR_INVALID_ARG_TYPE', `The "${what}" argument must be a string, Buffer or Uint8Array`);
  if (key.length === 0) throw typeError('ERR_INVALID_ARG_VALUE', `${what} must not be empty`);
  return key;
}

/** Bytes of a handshake nonce. @internal */
export const NONCE_SIZE = 32;
/** Bytes of a proof (HMAC-SHA256). @internal */
export const PROOF_SIZE = 32;

/**
 * HMAC-SHA256 of `label` and the parts under `key`. The label names the role
 * and transport, so that a proof made for one direction or transport cannot
 * be reflected back as another.
 * @internal
 */
export function hmac(key: Uint8Array, label: string, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha256', key);
  h.update(label);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Constant-time comparison of two proofs. @internal */
export function sameProof(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Checks `retry` (`true` means the defaults). @internal */
export function validateRetry(value: unknown, what: string): ResolvedRetry {
  if (value === undefined || value === false) return { attempts: 1, minDelay: 0, maxDelay: 0 };
  const opts = value === true ? {} : validateOptions<RetryOptions>(value, what, ['attempts', 'minDelay', 'maxDelay']);
  const attempts = opts.attempts === undefined ? 10 : opts.attempts === Infinity ? Infinity : validateInteger(opts.attempts, `${what}.attempts`, 1);
  const minDelay = opts.minDelay === undefined ? 50 : validateInteger(opts.minDelay, `${what}.minDelay`, 0);
  const maxDelay = opts.maxDelay === undefined ? Math.max(2000, minDelay) : validateInteger(opts.maxDelay, `${what}.maxDelay`, minDelay);
  return { attempts, minDelay, maxDelay };
}

/**
 * Delay before attempt `failures + 1`: exponential (minDelay * 2^(failures-1),
 * capped at maxDelay) with "equal jitter" (between half and all of it), so
 * that clients started together do not retry in lockstep.
 * @internal
 */
export function backoff(retry: ResolvedRetry, failures: number): number {
  const base = Math.min(retry.maxDelay, retry.minDelay * 2 ** Math.min(failures - 1, 30));
  return base / 2 + Math.random() * (base / 2);
}

/** Error codes after which another connection attempt may succeed. @internal */
const RETRIABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EAGAIN', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

/** @internal */
export function retriable(err: unknown): boolean {
  return typeof (err as { code?: unknown })?.code === 'string' && RETRIABLE.has((err as { code: string }).code);
}

/** Sleeps `ms`, bounded by `wait`. @internal */
export function sleep(ms: number, wait: Wait): Promise<void> {
  return waitFor<void>(wait, (resolve) => {
    const t = setTimeout(resolve, ms);
    return () => clearTimeout(t);
  });
}

/**
 * The sooner of `outer` and a fresh `timeout` (a handshake's own bound
 * inside a connect's overall timeout).
 * @internal
 */
export function innerWait(outer: Wait | undefined, timeout: number, what: string): Wait {
  const own = makeWait(timeout, outer?.signal, what);
  if (outer !== undefined && outer.deadline < own.deadline) return { ...outer, what };
  return own;
}

/**
 * Checks the `retry`, `timeout` and `signal` options of a connect; `wait`
 * bounds the whole connect to `label`, retries and handshakes included.
 * @internal
 */
export function connectPolicy(opts: { retry?: unknown; timeout?: unknown; signal?: unknown }, label: string): { retry: ResolvedRetry; signal: AbortSignal | undefined; wait: Wait } {
  const retry = validateRetry(opts.retry, 'options.retry');
  const timeout = validateTimeout(opts.timeout);
  const signal = validateSignal(opts.signal);
  return { retry, signal, wait: makeWait(timeout, signal, `a connection to ${label}`) };
}

/** Throws ABORT_ERR when `signal` is already aborted. @internal */
export function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
}
