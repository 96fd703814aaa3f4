import { fileURLToPath } from 'node:url';

/**
 * Errors. Three families (see docs/errors.md):
 *
 * 1. Misuse: `TypeError` / `RangeError` with Node's codes (`ERR_INVALID_ARG_TYPE`,
 *    `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`), thrown before any native call.
 * 2. System failures: `Error` with the kernel's `code` ('ENOENT'), `errno`,
 *    `syscall` and the object's `name`, plus a hint on what to do.
 * 3. Library failures: subclasses of {@link IpcError} with stable codes.
 */

/** Every stable code of the library's own errors. */
export const codes = {
  CLOSED: 'ERR_MULTIPROC_CLOSED',
  TIMEOUT: 'ERR_MULTIPROC_TIMEOUT',
  ABORTED: 'ABORT_ERR',
  DEADLOCK: 'ERR_MULTIPROC_DEADLOCK',
  NOT_OWNER: 'ERR_MULTIPROC_NOT_OWNER',
  SEMAPHORE_OVERFLOW: 'ERR_MULTIPROC_SEMAPHORE_OVERFLOW',
  BARRIER_BROKEN: 'ERR_MULTIPROC_BARRIER_BROKEN',
  SIZE_MISMATCH: 'ERR_MULTIPROC_SIZE_MISMATCH',
  INCOMPATIBLE: 'ERR_MULTIPROC_INCOMPATIBLE',
  BUSY: 'ERR_MULTIPROC_BUSY',
  NATIVE_LOAD: 'ERR_MULTIPROC_NATIVE_LOAD',
  MESSAGE_TOO_LARGE: 'ERR_MULTIPROC_MESSAGE_TOO_LARGE',
  PROTOCOL: 'ERR_MULTIPROC_PROTOCOL',
  DECODE: 'ERR_MULTIPROC_DECODE',
  AUTH_FAILED: 'ERR_MULTIPROC_AUTH_FAILED',
  PEER_CLOSED: 'ERR_MULTIPROC_PEER_CLOSED',
  REMOTE: 'ERR_MULTIPROC_REMOTE',
  NO_SUCH_METHOD: 'ERR_MULTIPROC_NO_SUCH_METHOD',
  PROCESS_EXITED: 'ERR_MULTIPROC_PROCESS_EXITED',
  SUPERVISOR_FAILED: 'ERR_MULTIPROC_SUPERVISOR_FAILED',
  WORKER_EXITED: 'ERR_MULTIPROC_WORKER_EXITED',
  NATS_UNAVAILABLE: 'ERR_MULTIPROC_NATS_UNAVAILABLE',
  JETSTREAM: 'ERR_MULTIPROC_JETSTREAM',
} as const;

/** Base class of every error the library itself raises. */
export class IpcError extends Error {
  /** Stable, documented code; switch on this, not on the message. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
  override get name(): string {
    return this.constructor.name;
  }
}

/** The object was closed; methods called after `close()` and waits pending at close. */
export class ClosedError extends IpcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(codes.CLOSED, message, options);
  }
}

/** A wait ran past its `timeout`. */
export class TimeoutError extends IpcError {
  /** The timeout that elapsed, in milliseconds. */
  readonly timeout: number;
  constructor(message: string, timeout: number) {
    super(codes.TIMEOUT, message);
    this.timeout = timeout;
  }
}

/** A wait was cancelled through its `AbortSignal`; `cause` is the signal's reason. */
export class AbortError extends IpcError {
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(codes.ABORTED, message, options);
  }
  override get name(): string {
    return 'AbortError';
  }
}

/** The calling thread already holds the mutex it is waiting for: waiting would never end. */
export class DeadlockError extends IpcError {
  constructor(message: string) {
    super(codes.DEADLOCK, message);
  }
}

/** A lock was released by a thread that does not hold it. */
export class NotOwnerError extends IpcError {
  constructor(message: string) {
    super(codes.NOT_OWNER, message);
  }
}

/** A bounded semaphore was released above its bound. */
export class SemaphoreOverflowError extends IpcError {
  constructor(message: string) {
    super(codes.SEMAPHORE_OVERFLOW, message);
  }
}

/** A barrier was broken (a party timed out, aborted or called `abort()`). */
export class BrokenBarrierError extends IpcError {
  constructor(message: string) {
    super(codes.BARRIER_BROKEN, message);
  }
}

/** An existing object's size differs from the size the caller required. */
export class SizeMismatchError extends IpcError {
  constructor(message: string) {
    super(codes.SIZE_MISMATCH, message);
  }
}

/** A named object exists but is of another kind or layout version. */
export class IncompatibleError extends IpcError {
  constructor(message: string) {
    super(codes.INCOMPATIBLE, message);
  }
}

/** The object is in use in a way that forbids the operation (e.g. closing a segment while holding a lock in it). */
export class BusyError extends IpcError {
  constructor(message: string) {
    super(codes.BUSY, message);
  }
}

/** The native addon is missing or was built for another Node.js. */
export class NativeLoadError extends IpcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(codes.NATIVE_LOAD, message, options);
  }
}

/** A failed system call, shaped like Node's own system errors. */
export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  /** The multiproc object's name, when there is one. */
  objectName?: string;
  path?: string;
}

const hints: Record<string, string> = {
  ENOENT: 'it does not exist: create it first, or check the name',
  EEXIST: 'it already exists: open it, or use creation "openOrCreate" or "purgeAndCreate"',
  EACCES: 'permission denied: it belongs to another user or its mode forbids this access',
  EPERM: 'operation not permitted',
  ENAMETOOLONG: 'the name is too long',
  ENOMEM: 'not enough memory',
  ENOSPC: 'no space left (for shared memory: /dev/shm is full)',
  EMFILE: 'too many open files in this process',
  ECONNREFUSED: 'nothing is listening there: start the listener first, or pass retry to wait for it',
  EADDRINUSE: 'the address is in use by another listener',
  ECONNRESET: 'the peer reset the connection',
  ENFILE: 'too many open files on this system',
};

/**
 * Rewrites an error thrown by the addon (code, errno, syscall) into a system
 * error that also names the object and says what to do. Other errors pass through.
 * @internal
 */
export function systemError(err: unknown, kind: string, name: string, path?: string): unknown {
  if (!(err instanceof Error) || typeof (err as Partial<SystemError>).syscall !== 'string') return err;
  const e = err as SystemError;
  const hint = hints[e.code];
  e.message = `${e.code}: ${kind} '${name}': ${e.message}, ${e.syscall}` + (hint ? ` (${hint})` : '');
  e.objectName = name;
  if (path !== undefined) e.path = path;
  return e;
}

// ---------------------------------------------------------------------------
// Argument validation, Node style. @internal

/** @internal */
export function typeError(code: string, message: string): TypeError {
  const e = new TypeError(message) as TypeError & { code: string };
  e.code = code;
  return e;
}

/** @internal */
export function rangeError(message: string): RangeError {
  const e = new RangeError(message) as RangeError & { code: string };
  e.code = 'ERR_OUT_OF_RANGE';
  return e;
}

/** How Node describes a received value in argument errors. @internal */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `type string ('${value.length > 40 ? value.slice(0, 40) + '...' : value}')`;
  if (typeof value === 'object') return `an instance of ${(value as object).constructor?.name ?? 'Object'}`;
  return `type ${typeof value} (${String(value)})`;
}

/** @internal */
export function validateInteger(value: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${what}" argument must be of type number. Received ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw rangeError(`The value of "${what}" is out of range. It must be an integer >= ${min} and <= ${max}. Received ${value}`);
  }
  return value;
}

/** @internal */
export function validateString(value: unknown, what: string): string {
  if (typeof value !== 'string') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${what}" argument must be of type string. Received ${describe(value)}`);
  }
  return value;
}

/** @internal */
export function validateFunction(value: unknown, what: string): void {
  if (typeof value !== 'function') throw typeError('ERR_INVALID_ARG_TYPE', `The "${what}" argument must be of type function. Received ${describe(value)}`);
}

/** @internal */
export function validateBoolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${what}" argument must be of type boolean. Received ${describe(value)}`);
  }
  return value;
}

/** @internal */
export function validateOneOf<T extends string>(value: unknown, what: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The argument '${what}' must be one of: ${allowed.map((a) => `'${a}'`).join(', ')}. Received ${describe(value)}`);
  }
  return value as T;
}

/**
 * Checks that `options` is undefined or a plain object with only known keys,
 * so a misspelled option fails loudly instead of being ignored.
 * @internal
 */
export function validateOptions<T extends object>(options: unknown, what: string, known: readonly string[]): Partial<T> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${what}" argument must be of type object. Received ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw typeError('ERR_INVALID_ARG_VALUE', `The option '${key}' of "${what}" is not recognized; known options: ${known.join(', ')}`);
    }
  }
  return options as Partial<T>;
}

/** A file path: a string, or a file: URL; non-empty, without NUL bytes. @internal */
export function validatePath(value: unknown): string {
  let path: unknown = value;
  if (value instanceof URL) {
    try {
      path = fileURLToPath(value);
    } catch (err) {
      throw typeError('ERR_INVALID_ARG_VALUE', `The argument 'path' must be a file: URL. Received '${value.href}' (${(err as Error).message})`);
    }
  }
  if (typeof path !== 'string') {
    const got = path === null ? 'null' : typeof path === 'object' ? `an instance of ${(path as object).constructor?.name ?? 'Object'}` : `type ${typeof path} (${String(path)})`;
    throw typeError('ERR_INVALID_ARG_TYPE', `The "path" argument must be of type string or an instance of URL. Received ${got}`);
  }
  if (path.length === 0 || path.includes('\0')) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The argument 'path' must be a non-empty string without null bytes. Received ${JSON.stringify(path)}`);
  }
  return path;
}

/** Validates a `timeout` option: milliseconds, >= 0, or Infinity (the default). @internal */
export function validateTimeout(value: unknown, what = 'options.timeout'): number {
  if (value === undefined) return Infinity;
  if (typeof value !== 'number') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${what}" argument must be of type number. Received ${describe(value)}`);
  }
  if (Number.isNaN(value) || value < 0) {
    throw rangeError(`The value of "${what}" is out of range. It must be >= 0 (milliseconds) or Infinity. Received ${value}`);
  }
  return value;
}

/** @internal */
export function validateSignal(value: unknown, what = 'options.signal'): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${what}" argument must be an instance of AbortSignal. Received ${describe(value)}`);
  }
  return value;
}

/** A message is larger than the channel's `maxMessageSize` (or the kernel's limit); nothing was sent. */
export class MessageTooLargeError extends IpcError {
  readonly size: number;
  readonly limit: number;
  constructor(message: string, size: number, limit: number) {
    super(codes.MESSAGE_TOO_LARGE, message);
    this.size = size;
    this.limit = limit;
  }
}

/** A peer sent bytes that are not a valid frame; that connection was closed. */
export class ProtocolError extends IpcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(codes.PROTOCOL, message, options);
  }
}

/**
 * An exposed method threw an error of a class this side cannot re-create (a
 * user-defined class): `name` is the remote class name, `code` the remote
 * error's `code` (or `ERR_MULTIPROC_REMOTE` when it had none), and
 * `remoteStack` the stack where it was thrown. Errors of built-in classes
 * and of multiproc's own classes come back as their own class instead.
 */
export class RemoteError extends IpcError {
  readonly #name: string;
  constructor(message: string, options?: { name?: string; code?: string; cause?: unknown }) {
    super(options?.code ?? codes.REMOTE, message, options);
    this.#name = options?.name ?? 'RemoteError';
  }
  override get name(): string {
    return this.#name;
  }
}

/** An RPC call named a method the exposed object does not have, or one that may not be called remotely. */
export class NoSuchMethodError extends IpcError {
  /** The requested method name. */
  readonly method: string;
  constructor(message: string, method: string) {
    super(codes.NO_SUCH_METHOD, message);
    this.method = method;
  }
}

/**
 * A child process exited (or could not be started) while something waited
 * for it, e.g. `handle.ready`. `reason` classifies the exit; `cause` is the
 * error the child reported, when it reported one.
 */
export class ProcessExitedError extends IpcError {
  /** Exit code, or null when a signal ended the process or it never started. */
  readonly exitCode: number | null;
  /** The signal that ended the process, or null. */
  readonly signal: NodeJS.Signals | null;
  /** An `ExitReason`: 'clean-exit', 'error-exit', 'killed', 'crashed', 'out-of-memory', 'launch-failed' or 'hung'. */
  readonly reason: string;
  constructor(message: string, exit: { code: number | null; signal: NodeJS.Signals | null; reason: string }, options?: { cause?: unknown }) {
    super(codes.PROCESS_EXITED, message, options);
    this.exitCode = exit.code;
    this.signal = exit.signal;
    this.reason = exit.reason;
  }
}

/** Shared-secret authentication failed (wrong or missing `authKey` on one side); that connection was closed. */
export class AuthError extends IpcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(codes.AUTH_FAILED, message, options);
  }
}

/**
 * The peer went away in a way the receiver should hear about separately
 * from a local close: for example a shared-memory ring sender that died
 * while writing a message (that message is lost; `pid` is the writer's).
 */
export class PeerClosedError extends IpcError {
  /** Pid of the peer, when known. */
  readonly pid: number | undefined;
  constructor(message: string, pid?: number) {
    super(codes.PEER_CLOSED, message);
    this.pid = pid;
  }
}

/**
 * A supervisor gave up: a child could not be started, or children exited
 * more than `maxRestarts` times within `period` ms. Its children were
 * stopped. `child` names the child whose exit (or failed start) tipped it
 * over; `cause` is that child's error, when known.
 */
export class SupervisorFailedError extends IpcError {
  /** The supervisor's name. */
  readonly supervisor: string;
  /** The child (`name#index`) whose exit or failed start made it give up. */
  readonly child: string | undefined;
  /** Restarts within the last `period` ms when it gave up. */
  readonly restarts: number;
  constructor(message: string, info: { supervisor: string; child?: string; restarts: number }, options?: { cause?: unknown }) {
    super(codes.SUPERVISOR_FAILED, message, options);
    this.supervisor = info.supervisor;
    this.child = info.child;
    this.restarts = info.restarts;
  }
}

/**
 * No NATS server could be reached (refused, unresolvable, timed out), or the
 * connection was lost for good (reconnect attempts used up). `servers` lists
 * what was tried; `cause` is the client's own error.
 */
export class NatsUnavailableError extends IpcError {
  /** The server URLs that were tried. */
  readonly servers: readonly string[];
  constructor(message: string, servers: readonly string[], options?: { cause?: unknown }) {
    super(codes.NATS_UNAVAILABLE, message, options);
    this.servers = servers;
  }
}

/**
 * A pool worker process ended (killed, crashed, out of memory, exited, or
 * never started) while it ran a task, and the task was not retried (or ran
 * out of retries). `reason` classifies the exit like {@link ProcessExitedError};
 * `cause` is the error the worker reported, when it reported one.
 */
export class WorkerExitedError extends IpcError {
  /** Exit code, or null when a signal ended the worker or it never started. */
  readonly exitCode: number | null;
  /** The signal that ended the worker, or null. */
  readonly signal: NodeJS.Signals | null;
  /** 'clean-exit', 'error-exit', 'killed', 'crashed', 'out-of-memory' or 'launch-failed'; across hosts 'host-lost' (a pool host went silent; `pid` is the host's). */
  readonly reason: string;
  /** The worker's process id, when it started. */
  readonly pid: number | undefined;
  constructor(
    message: string,
    exit: { code: number | null; signal: NodeJS.Signals | null; reason: string; pid?: number | undefined },
    options?: { cause?: unknown },
  ) {
    super(codes.WORKER_EXITED, message, options);
    this.exitCode = exit.code;
    this.signal = exit.signal;
    this.reason = exit.reason;
    this.pid = exit.pid;
  }
}

/**
 * The NATS server refused a JetStream request (JetStream not enabled, stream
 * limits, a stream or consumer with other settings). `apiCode` is
 * JetStream's own error code (`err_code`), when the server gave one.
 */
export class JetStreamError extends IpcError {
  readonly apiCode: number | undefined;
  constructor(message: string, apiCode?: number, options?: { cause?: unknown }) {
    super(codes.JETSTREAM, message, options);
    this.apiCode = apiCode;
  }
}
