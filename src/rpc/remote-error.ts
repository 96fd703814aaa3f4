/**
 * Errors across the wire. An error thrown by an exposed method travels as a
 * plain object (so that every object codec carries it) and is re-created on
 * the caller's side:
 *
 * - built-in classes (Error, TypeError, RangeError, ..., AggregateError) and
 *   DOMException come back as themselves;
 * - multiproc's own IpcError subclasses come back as themselves, with their
 *   properties (`timeout`, `size`, `method`, ...);
 * - anything else becomes a RemoteError whose `name` is the remote class name.
 *
 * Every re-created error keeps `message`, `code`, its own enumerable
 * properties and its `cause` chain (as far as the codec can carry them), has
 * the remote stack in `remoteStack`, and has that stack appended to its own.
 *
 * @internal
 */
import * as errors from '../errors.js';
import { IpcError, RemoteError } from '../errors.js';

/** An error as it travels. @internal */
export interface WireError {
  /** How to re-create it: a built-in class, an IpcError subclass, a DOMException, another class, or a thrown non-error value. */
  kind: 'builtin' | 'ipc' | 'dom' | 'other' | 'value';
  /** The class to re-create (kinds builtin and ipc). */
  className?: string;
  name: string;
  message: string;
  stack?: string;
  code?: string | number;
  props?: Record<string, unknown>;
  cause?: WireError;
  /** The errors of an AggregateError. */
  errors?: WireError[];
  /** Kind 'value': what was thrown. */
  value?: unknown;
}

const builtins: Record<string, new (message?: string) => Error> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

// Every IpcError subclass errors.ts exports, by class name.
const ipcClasses = new Map<string, new (...args: any[]) => IpcError>();
for (const value of Object.values(errors)) {
  if (typeof value === 'function' && (value === IpcError || value.prototype instanceof IpcError)) {
    ipcClasses.set(value.name, value as unknown as new (...args: any[]) => IpcError);
  }
}

const MAX_DEPTH = 8;

// Frames of the RPC machinery itself (this directory) say nothing to the caller.
const rpcDir = new URL('.', import.meta.url).href;

function trimStack(stack: string): string {
  if (!stack.includes(rpcDir)) return stack;
  return stack
    .split('\n')
    .filter((line) => !line.includes(rpcDir))
    .join('\n');
}
const RESERVED = new Set(['name', 'message', 'stack', 'cause', 'code', 'errors']);

function read(obj: object, key: string): unknown {
  try {
    return (obj as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

/** The class name to report: `name`, or the constructor's name when `name` is the generic 'Error'. */
function remoteName(err: Error): string {
  const name = read(err, 'name');
  const ctor = read(err, 'constructor') as { name?: unknown } | undefined;
  const ctorName = typeof ctor === 'function' ? ctor.name : undefined;
  if (typeof name !== 'string' || name === '') return typeof ctorName === 'string' && ctorName !== '' ? ctorName : 'Error';
  if (name === 'Error' && typeof ctorName === 'string' && ctorName !== '' && ctorName !== 'Error') return ctorName;
  return name;
}

function preview(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    const text = JSON.stringify(value);
    if (text !== undefined) return text.length > 200 ? `${text.slice(0, 200)}...` : text;
  } catch {
    // not JSON: fall through
  }
  return String(value);
}

/**
 * Turns a thrown value into a WireError. `detail` 2 keeps everything, 1 drops
 * properties, causes and aggregated errors, 0 keeps name, message, code and
 * stack only (fallbacks for a codec that cannot carry the richer forms).
 * @internal
 */
export function serializeError(thrown: unknown, detail = 2, depth = 0, seen = new Set<unknown>()): WireError {
  if (!(thrown instanceof Error)) {
    const wire: WireError = { kind: 'value', name: 'Error', message: preview(thrown) };
    if (detail > 0) wire.value = thrown;
    return wire;
  }
  seen.add(thrown);
  const err = thrown;
  const name = remoteName(err);
  const message = String(read(err, 'message') ?? '');
  const stack = read(err, 'stack');
  const wire: WireError = { kind: 'other', name, message };
  if (typeof stack === 'string') wire.stack = trimStack(stack);
  const code = read(err, 'code');
  if (typeof code === 'string' || typeof code === 'number') wire.code = code;

  if (typeof DOMException === 'function' && err instanceof DOMException) {
    wire.kind = 'dom';
    delete wire.code; // DOMException's legacy numeric code follows from its name
  } else if (err instanceof IpcError && ipcClasses.has(err.constructor.name)) {
    wire.kind = 'ipc';
    wire.className = err.constructor.name;
  } else if (err instanceof AggregateError && name === 'AggregateError') {
    wire.kind = 'builtin';
    wire.className = 'AggregateError';
  } else {
    const ctor = read(err, 'constructor') as Function | undefined;
    const ctorName = typeof ctor === 'function' ? ctor.name : '';
    if (Object.hasOwn(builtins, ctorName) && ctor === builtins[ctorName]) {
      // A built-in class itself, whatever `name` the instance was given.
      wire.kind = 'builtin';
      wire.className = ctorName;
    } else if (Object.hasOwn(builtins, name) && err instanceof builtins[name]!) {
      // A subclass that does not name itself (Node's internal errors, say): its built-in.
      wire.kind = 'builtin';
      wire.className = name;
    }
  }
  if (detail < 2) return wire;

  const props: Record<string, unknown> = {};
  let any = false;
  for (const key of Object.keys(err)) {
    if (RESERVED.has(key)) continue;
    props[key] = read(err, key);
    any = true;
  }
  if (any) wire.props = props;
  if (depth < MAX_DEPTH) {
    if ('cause' in err) {
      const cause = read(err, 'cause');
      if (!seen.has(cause)) wire.cause = serializeError(cause, detail, depth + 1, seen);
    }
    if (err instanceof AggregateError && Array.isArray(err.errors)) {
      wire.errors = err.errors.filter((e) => !seen.has(e)).map((e) => serializeError(e, detail, depth + 1, seen));
    }
  }
  return wire;
}

function isWireError(x: unknown): x is WireError {
  return x !== null && typeof x === 'object' && typeof (x as WireError).kind === 'string' && typeof (x as WireError).message === 'string';
}

function define(target: object, key: string, value: unknown, enumerable: boolean): void {
  try {
    Object.defineProperty(target, key, { value, enumerable, writable: true, configurable: true });
  } catch {
    // a frozen or exotic property: leave it
  }
}

function construct(wire: WireError, depth: number): Error {
  const name = typeof wire.name === 'string' ? wire.name : 'Error';
  const code = typeof wire.code === 'string' ? wire.code : undefined;
  if (wire.kind === 'value') {
    const e = new RemoteError(`the remote method threw a non-error value: ${wire.message}`, { name: 'Error' });
    if ('value' in wire) define(e, 'value', wire.value, true);
    return e;
  }
  if (wire.kind === 'dom' && typeof DOMException === 'function') return new DOMException(wire.message, name);
  if (wire.kind === 'builtin' && wire.className === 'AggregateError') {
    const inner = Array.isArray(wire.errors) && depth < MAX_DEPTH ? wire.errors.map((w) => deserialize(w, depth + 1, undefined)) : [];
    return new AggregateError(inner, wire.message);
  }
  if (wire.kind === 'builtin' && typeof wire.className === 'string' && Object.hasOwn(builtins, wire.className)) {
    return new builtins[wire.className]!(wire.message);
  }
  if (wire.kind === 'ipc' && typeof wire.className === 'string') {
    const Class = ipcClasses.get(wire.className);
    if (Class === RemoteError) return new RemoteError(wire.message, { name, ...(code !== undefined ? { code } : {}) });
    if (Class === IpcError) return new IpcError(code ?? errors.codes.REMOTE, wire.message);
    if (Class !== undefined) {
      try {
        // Subclasses take the message first; their own properties follow from `props`.
        const e = new Class(wire.message);
        if (e.message !== wire.message) define(e, 'message', wire.message, false);
        return e;
      } catch {
        // a constructor that wants other arguments: fall back to RemoteError
      }
    }
  }
  return new RemoteError(wire.message, { name, ...(code !== undefined ? { code } : {}) });
}

function deserialize(wire: unknown, depth: number, localTop: Function | undefined): unknown {
  if (!isWireError(wire)) return wire;
  // A non-error cause (or aggregated value) is itself again; only a thrown value becomes a RemoteError.
  if (wire.kind === 'value' && depth > 0 && 'value' in wire) return wire.value;
  const e = construct(wire, depth) as Error & Record<string, unknown>;
  // A built-in given another name on the instance (`err.name = 'ConfigError'`) keeps it.
  if (wire.kind === 'builtin' && typeof wire.name === 'string' && e.name !== wire.name) define(e, 'name', wire.name, false);
  if (wire.code !== undefined && !(e instanceof DOMException) && e.code !== wire.code) define(e, 'code', wire.code, true);
  if (wire.props !== null && typeof wire.props === 'object') {
    for (const [key, value] of Object.entries(wire.props)) {
      if (key === '__proto__' || key === 'constructor') continue;
      define(e, key, value, key !== 'name');
    }
  }
  if (wire.cause !== undefined && depth < MAX_DEPTH) define(e, 'cause', deserialize(wire.cause, depth + 1, undefined), false);
  if (typeof wire.stack === 'string') define(e, 'remoteStack', wire.stack, false);
  if (localTop !== undefined) {
    // The local part starts at the caller's code (recaptured now that `name` is final).
    Error.captureStackTrace(e, localTop);
    if (typeof wire.stack === 'string') define(e, 'stack', `${String(e.stack)}\nFrom the remote side: ${wire.stack}`, false);
  } else if (typeof wire.stack === 'string') {
    // A cause or an aggregated error: only the remote side has a stack worth showing.
    define(e, 'stack', wire.stack, false);
  }
  return e;
}

/**
 * Re-creates a thrown error from its WireError. The local stack starts at
 * the caller of `localTop` (the frames of the RPC machinery are cut).
 * @internal
 */
export function deserializeError(wire: unknown, localTop?: Function): unknown {
  return deserialize(wire, 0, localTop);
}
