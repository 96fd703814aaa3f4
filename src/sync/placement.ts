/**
 * Where a synchronization primitive lives: inside a caller's SharedMemory (or
 * any SharedArrayBuffer) at an offset, or in a small named segment of its own.
 *
 * A named primitive's segment is `/mp.<kind>.<name>` and starts with a
 * 64-byte header (magic, kind, layout version, ready flag, parameters) so an
 * opener can check what it opened; the primitive itself follows the header.
 *
 * @internal
 */
import { SharedMemory, type CreationMode } from '../shm/shared-memory.js';
import {
  IncompatibleError,
  TimeoutError,
  typeError,
  validateInteger,
  validateOneOf,
  validateOptions,
  validateString,
} from '../errors.js';
import { native } from '../binding/native.js';

/** Kinds of named primitives, stored in the header. @internal */
export const enum Kind {
  Mutex = 1,
  Semaphore = 2,
  Event = 3,
  Condition = 4,
  Barrier = 5,
  RWLock = 6,
}

const MAGIC = 0x4d505359; // 'MPSY'
const VERSION = 1;
/** Bytes before the primitive in a named segment. @internal */
export const HEADER = 64;
const H_MAGIC = 0;
const H_KIND = 1;
const H_VERSION = 2;
const H_READY = 3;
const H_PARAMS = 4; // four u32 parameters

/** Options shared by every `create` of a named primitive. */
export interface NamedCreateOptions {
  /** Permission bits of the segment. Default `0o600`. */
  mode?: number;
  /** See {@link CreationMode}; `'openOrCreate'` ignores the parameters of an existing object. */
  creation?: CreationMode;
}

/** The memory a primitive works in. @internal */
export interface Placement {
  buffer: SharedArrayBuffer;
  offset: number;
  /** The named segment, owned by the primitive; undefined when placed by the caller. */
  segment: SharedMemory | undefined;
  /** The caller's SharedMemory it is placed in: once that is closed, so is the primitive. */
  memory?: SharedMemory | undefined;
  /** The parameters stored in the header (named) or given (placed). */
  params: Uint32Array;
  /** A label for messages: "mutex 'jobs'" or "mutex at offset 64". */
  label: string;
}

const kindNames: Record<Kind, string> = {
  [Kind.Mutex]: 'mutex',
  [Kind.Semaphore]: 'semaphore',
  [Kind.Event]: 'event',
  [Kind.Condition]: 'condition',
  [Kind.Barrier]: 'barrier',
  [Kind.RWLock]: 'rwlock',
};

const NAME_RE = /^[A-Za-z0-9_.-]{1,200}$/;

function segmentName(kind: Kind, name: unknown): string {
  validateString(name, 'name');
  if (!NAME_RE.test(name as string)) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The argument 'name' must be 1 to 200 characters of A-Z, a-z, 0-9, '_', '.', '-'. Received '${String(name)}'`);
  }
  return `/mp.${kindNames[kind]}.${name as string}`;
}

/**
 * Places a primitive of `size` bytes (alignment `align`) in caller memory.
 * @internal
 */
export function placeIn(kind: Kind, memory: unknown, offset: unknown, size: number, align: number, params: number[]): Placement {
  let buffer: SharedArrayBuffer;
  if (memory instanceof SharedMemory) buffer = memory.buffer;
  else if (memory instanceof SharedArrayBuffer) buffer = memory;
  else {
    throw typeError('ERR_INVALID_ARG_TYPE', 'The "memory" argument must be a SharedMemory or a SharedArrayBuffer');
  }
  const off = validateInteger(offset ?? 0, 'offset', 0, Math.max(0, buffer.byteLength - size));
  if (off % align !== 0) {
    const e = new RangeError(`The value of "offset" must be a multiple of ${align} for a ${kindNames[kind]}. Received ${off}`) as RangeError & { code: string };
    e.code = 'ERR_OUT_OF_RANGE';
    throw e;
  }
  if (buffer.byteLength < size) {
    const e = new RangeError(`a ${kindNames[kind]} needs ${size} bytes; the memory has ${buffer.byteLength}`) as RangeError & { code: string };
    e.code = 'ERR_OUT_OF_RANGE';
    throw e;
  }
  return {
    buffer,
    offset: off,
    segment: undefined,
    memory: memory instanceof SharedMemory ? memory : undefined,
    params: Uint32Array.from(params),
    label: `${kindNames[kind]} at offset ${off}`,
  };
}

/** Creates (or opens, per `creation`) a named primitive. `init` runs once, on fresh zeroed memory. @internal */
export function createNamed(
  kind: Kind,
  name: unknown,
  size: number,
  params: number[],
  options: unknown,
  extraKeys: readonly string[] = [],
): Placement {
  const segName = segmentName(kind, name);
  const opts = validateOptions<NamedCreateOptions>(options, 'options', ['mode', 'creation', ...extraKeys]);
  const creation = opts.creation === undefined ? 'create' : validateOneOf(opts.creation, 'options.creation', ['create', 'open', 'openOrCreate', 'purgeAndCreate'] as const);
  if (creation === 'open') return openNamed(kind, name);
  const shm = SharedMemory.create(segName, HEADER + size, {
    ...(opts.mode === undefined ? {} : { mode: opts.mode }),
    creation,
  });
  if (!shm.owner) return attach(kind, shm, name as string);
  const header = new Uint32Array(shm.buffer, 0, HEADER / 4);
  header[H_MAGIC] = MAGIC;
  header[H_KIND] = kind;
  header[H_VERSION] = VERSION;
  header.set(params, H_PARAMS);
  Atomics.store(header, H_READY, 1);
  native.futexWake(shm.buffer, H_READY * 4, -1);
  return { buffer: shm.buffer, offset: HEADER, segment: shm, params: header.slice(H_PARAMS, H_PARAMS + 4), label: `${kindNames[kind]} '${name as string}'` };
}

/** Opens an existing named primitive. @internal */
export function openNamed(kind: Kind, name: unknown): Placement {
  const segName = segmentName(kind, name);
  return attach(kind, SharedMemory.open(segName), name as string);
}

function attach(kind: Kind, shm: SharedMemory, name: string): Placement {
  try {
    const header = new Uint32Array(shm.buffer, 0, HEADER / 4);
    // The creator may still be writing the header: wait for its ready flag.
    if (Atomics.load(header, H_READY) === 0) {
      native.futexWait(shm.buffer, H_READY * 4, 0, 2000);
      if (Atomics.load(header, H_READY) === 0) throw new TimeoutError(`${kindNames[kind]} '${name}' was never initialized by its creator`, 2000);
    }
    if (header[H_MAGIC] !== MAGIC || header[H_KIND] !== kind || header[H_VERSION] !== VERSION) {
      const found = kindNames[header[H_KIND] as Kind] ?? 'unknown object';
      throw new IncompatibleError(`'${shm.name}' is a ${found} (layout ${header[H_VERSION]}), not a ${kindNames[kind]} of layout ${VERSION}`);
    }
    return { buffer: shm.buffer, offset: HEADER, segment: shm, params: header.slice(H_PARAMS, H_PARAMS + 4), label: `${kindNames[kind]} '${name}'` };
  } catch (err) {
    shm.close();
    throw err;
  }
}

/**
 * Wraps a placement so that a primitive's public constructor can also be
 * used by its static `create`/`open`. @internal
 */
export class Placed {
  constructor(readonly placement: Placement) {}
}

/** Common options of every wait. */
export interface WaitOptions {
  /** Milliseconds to wait before failing with `ERR_MULTIPROC_TIMEOUT`. Default: no limit. */
  timeout?: number;
  /** Aborts the wait with an `AbortError` (`ABORT_ERR`). */
  signal?: AbortSignal;
}

/** Options of blocking waits. */
export interface WaitSyncOptions {
  /** Milliseconds to wait before failing with `ERR_MULTIPROC_TIMEOUT`. Default: no limit. */
  timeout?: number;
}
