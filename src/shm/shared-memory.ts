/**
 * POSIX shared memory (shm_open + mmap), exposed as a SharedArrayBuffer that
 * aliases the segment itself.
 */
import { fstatSync, ftruncateSync } from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import { native } from '../binding/native.js';
import { recordCreated, recordDisowned, recordHandedOver, recordOpened, recordRemoved, recordUnlinked, releaseHold, type Hold } from '../resources/registry.js';
import {
  BusyError,
  ClosedError,
  SizeMismatchError,
  rangeError,
  systemError,
  typeError,
  validateBoolean,
  validateInteger,
  validateOneOf,
  validateOptions,
  validateString,
} from '../errors.js';

/** How `create` treats an existing name (after iceoryx2's CreationMode). */
export type CreationMode = 'create' | 'open' | 'openOrCreate' | 'purgeAndCreate';
const creationModes: readonly CreationMode[] = ['create', 'open', 'openOrCreate', 'purgeAndCreate'];

/** Options of {@link SharedMemory.create}. */
export interface SharedMemoryCreateOptions {
  /** Permission bits of a new segment. Default `0o600` (owner only). */
  mode?: number;
  /**
   * - `'create'` (default): fail with EEXIST if the name exists.
   * - `'open'`: open an existing segment (its size must equal `size`).
   * - `'openOrCreate'`: open if it exists (size must equal), else create.
   * - `'purgeAndCreate'`: remove an existing segment of that name, then create.
   */
  creation?: CreationMode;
}

/** Options of {@link SharedMemory.open}. */
export interface SharedMemoryOpenOptions {
  /** Require this exact size; otherwise a {@link SizeMismatchError}. */
  size?: number;
  /** Map read-only. Writes through the buffer then stay private to this process. */
  readOnly?: boolean;
}

/** Largest single buffer the engine can hold; bigger segments are used through windows. */
export const maxBufferSize: number = Math.min(bufferConstants.MAX_LENGTH, native.MAX_BUFFER);

const NAME_RE = /^\/?[^/\0]{1,250}$/;

/** Normalizes a POSIX shared-memory name: 'jobs' and '/jobs' are the same segment. @internal */
export function normalizeShmName(name: unknown): string {
  validateString(name, 'name');
  const n = name as string;
  if (!NAME_RE.test(n) || n === '/.' || n === '/..' || n === '.' || n === '..') {
    throw typeError(
      'ERR_INVALID_ARG_VALUE',
      `The argument 'name' is not a valid shared-memory name: '${n}'. Use 1 to 250 characters without '/' (one leading '/' is allowed)`,
    );
  }
  return n.startsWith('/') ? n : `/${n}`;
}

/** How long an open waits for a segment's creator to size it (ms). */
const SIZED_WAIT_MS = 250;
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * The size of the segment open at `fd`. A creator makes a segment in two
 * steps (shm_open, then ftruncate): one opened in between has 0 bytes for a
 * moment. Wait for the size, in short sleeps, for at most SIZED_WAIT_MS.
 */
function sizedSize(fd: number): number {
  let size = fstatSync(fd).size;
  const deadline = performance.now() + SIZED_WAIT_MS;
  for (let sleep = 0.05; size === 0 && performance.now() < deadline; sleep = Math.min(sleep * 2, 10)) {
    Atomics.wait(pause, 0, 0, sleep);
    size = fstatSync(fd).size;
  }
  return size;
}

/**
 * A named POSIX shared-memory segment, mapped into this process.
 *
 * The creator owns the name: its `close()` also removes the name (unless it
 * called {@link SharedMemory.disown}); an opener's `close()` only unmaps.
 * Python's `multiprocessing.shared_memory.SharedMemory(name=...)` and any C
 * program using `shm_open` attach to the same bytes.
 *
 * @example
 * ```ts
 * using shm = SharedMemory.create('jobs', 4096);
 * new Int32Array(shm.buffer)[0] = 42;
 * ```
 */
export class SharedMemory {
  readonly #name: string;
  readonly #size: number;
  readonly #readOnly: boolean;
  #owner: boolean;
  #unlinked = false;
  #buffer: SharedArrayBuffer | undefined;
  // Held weakly: a window nobody uses any more is unmapped when collected,
  // so many view() calls do not pile up mappings (the kernel caps them).
  #windows: WeakRef<SharedArrayBuffer>[] = [];
  #closed = false;
  /** This process's lock on the segment's registry record (see src/resources/registry.ts). */
  #hold: Hold | undefined;

  private constructor(name: string, size: number, owner: boolean, readOnly: boolean, buffer: SharedArrayBuffer | undefined, hold: Hold | undefined) {
    this.#name = name;
    this.#size = size;
    this.#owner = owner;
    this.#readOnly = readOnly;
    this.#buffer = buffer;
    this.#hold = hold;
  }

  /**
   * Creates (or, per `options.creation`, opens) a segment of `size` bytes,
   * zero-filled when new.
   *
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`
   * (bad arguments); system errors `EEXIST`, `ENOENT`, `EACCES`, `ENOSPC`,
   * `EMFILE`; `ERR_MULTIPROC_SIZE_MISMATCH` when an opened segment has another size.
   */
  static create(name: string, size: number, options?: SharedMemoryCreateOptions): SharedMemory {
    const shmName = normalizeShmName(name);
    validateInteger(size, 'size', 1);
    const opts = validateOptions<SharedMemoryCreateOptions>(options, 'options', ['mode', 'creation']);
    const mode = opts.mode === undefined ? 0o600 : validateInteger(opts.mode, 'options.mode', 0, 0o777);
    const creation = opts.creation === undefined ? 'create' : validateOneOf(opts.creation, 'options.creation', creationModes);

    if (creation === 'open') return SharedMemory.#openExisting(shmName, size, false);
    if (creation === 'purgeAndCreate') {
      try {
        native.shmUnlink(shmName);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOENT') throw systemError(err, 'shared memory', shmName);
      }
    }
    let fd: number;
    // Another process may create and remove the name over and over (a
    // segment per job): keep trying both ways for a while.
    const until = performance.now() + 1000;
    for (;;) {
      try {
        fd = native.shmOpen(shmName, native.O_RDWR | native.O_CREAT | native.O_EXCL, mode);
        break;
      } catch (err) {
        if (creation !== 'openOrCreate' || (err as { code?: string }).code !== 'EEXIST') throw systemError(err, 'shared memory', shmName);
      }
      try {
        return SharedMemory.#openExisting(shmName, size, false);
      } catch (err) {
        // Removed between our create and our open: create it after all.
        if ((err as { code?: string }).code !== 'ENOENT' || performance.now() > until) throw err;
      }
    }
    try {
      ftruncateSync(fd, size);
      const buffer = size <= maxBufferSize ? native.map(fd, 0, size, native.PROT_READ | native.PROT_WRITE, native.MAP_SHARED) : undefined;
      const st = fstatSync(fd);
      return new SharedMemory(shmName, size, true, false, buffer, recordCreated('shm', shmName, { size, ino: st.ino, dev: st.dev }));
    } catch (err) {
      try {
        native.shmUnlink(shmName);
      } catch {
        // the name is gone already; the original error is what matters
      }
      throw systemError(err, 'shared memory', shmName);
    } finally {
      native.closeFd(fd);
    }
  }

  /**
   * Opens an existing segment. Its size is read from the segment.
   *
   * Errors: `ENOENT` (no such segment), `EACCES`, `ERR_MULTIPROC_SIZE_MISMATCH`
   * (with `options.size`), and the argument errors of {@link SharedMemory.create}.
   */
  static open(name: string, options?: SharedMemoryOpenOptions): SharedMemory {
    const shmName = normalizeShmName(name);
    const opts = validateOptions<SharedMemoryOpenOptions>(options, 'options', ['size', 'readOnly']);
    const size = opts.size === undefined ? undefined : validateInteger(opts.size, 'options.size', 1);
    const readOnly = opts.readOnly === undefined ? false : validateBoolean(opts.readOnly, 'options.readOnly');
    return SharedMemory.#openExisting(shmName, size, readOnly);
  }

  static #openExisting(shmName: string, size: number | undefined, readOnly: boolean): SharedMemory {
    // Held before the open: no sweep can remove the segment under us.
    const hold = recordOpened('shm', shmName);
    let fd: number;
    try {
      fd = native.shmOpen(shmName, readOnly ? native.O_RDONLY : native.O_RDWR, 0);
    } catch (err) {
      releaseHold(hold);
      throw systemError(err, 'shared memory', shmName);
    }
    let ok = false;
    try {
      const actual = sizedSize(fd);
      if (size !== undefined && actual !== size) {
        throw new SizeMismatchError(
          `shared memory '${shmName}' has ${actual} bytes, not the ${size} required: open it without a size, or recreate it with creation 'purgeAndCreate'`,
        );
      }
      if (actual === 0) {
        throw new SizeMismatchError(`shared memory '${shmName}' is empty (0 bytes): its creator has not sized it (within ${SIZED_WAIT_MS} ms)`);
      }
      // A read-only segment is mapped copy-on-write: a stray write from
      // JavaScript then changes this process's copy instead of faulting.
      const prot = native.PROT_READ | native.PROT_WRITE;
      const flags = readOnly ? native.MAP_PRIVATE : native.MAP_SHARED;
      const buffer = actual <= maxBufferSize ? native.map(fd, 0, actual, prot, flags) : undefined;
      const shm = new SharedMemory(shmName, actual, false, readOnly, buffer, hold);
      ok = true;
      return shm;
    } catch (err) {
      throw systemError(err, 'shared memory', shmName);
    } finally {
      native.closeFd(fd);
      if (!ok) releaseHold(hold);
    }
  }

  /** The POSIX name, with its leading '/' (as in /dev/shm). */
  get name(): string {
    return this.#name;
  }

  /** Size in bytes. */
  get size(): number {
    return this.#size;
  }

  /** True when this handle created the segment and will remove its name on close. */
  get owner(): boolean {
    return this.#owner;
  }

  /** True when mapped read-only (writes stay private to this process). */
  get readOnly(): boolean {
    return this.#readOnly;
  }

  /** True after {@link SharedMemory.close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The whole segment as a SharedArrayBuffer aliasing the shared pages: no
   * copy. `Atomics` on it are atomic across processes; posting it to a worker
   * shares the same memory with that worker.
   *
   * Errors: `ERR_MULTIPROC_CLOSED`; `ERR_OUT_OF_RANGE` when the segment is
   * larger than {@link maxBufferSize} (use {@link SharedMemory.view}).
   */
  get buffer(): SharedArrayBuffer {
    this.#checkOpen();
    if (this.#buffer === undefined) {
      throw rangeError(`shared memory '${this.#name}' has ${this.#size} bytes, more than one buffer can hold (${maxBufferSize}): use view(offset, length)`);
    }
    return this.#buffer;
  }

  /**
   * A window of the segment as a Uint8Array, for segments of any size.
   * Within the first {@link maxBufferSize} bytes this is a view of
   * {@link SharedMemory.buffer}; beyond, the window is mapped on its own and
   * unmapped with the segment.
   */
  view(offset: number, length: number): Uint8Array {
    this.#checkOpen();
    validateInteger(offset, 'offset', 0, this.#size);
    const page = native.PAGE_SIZE;
    // A window starts on a page boundary, so its slack counts against the buffer limit.
    const slack = this.#buffer === undefined ? offset % page : 0;
    validateInteger(length, 'length', 0, Math.min(this.#size - offset, maxBufferSize - slack));
    if (this.#buffer !== undefined) return new Uint8Array(this.#buffer, offset, length);
    const start = Math.floor(offset / page) * page;
    const span = offset - start + length;
    let fd: number;
    try {
      fd = native.shmOpen(this.#name, this.#readOnly ? native.O_RDONLY : native.O_RDWR, 0);
    } catch (err) {
      throw systemError(err, 'shared memory', this.#name);
    }
    try {
      const prot = native.PROT_READ | native.PROT_WRITE;
      const window = native.map(fd, start, Math.max(span, 1), prot, this.#readOnly ? native.MAP_PRIVATE : native.MAP_SHARED);
      this.#windows = this.#windows.filter((w) => w.deref() !== undefined);
      this.#windows.push(new WeakRef(window));
      return new Uint8Array(window, offset - start, length);
    } catch (err) {
      throw systemError(err, 'shared memory', this.#name);
    } finally {
      native.closeFd(fd);
    }
  }

  /**
   * Gives up ownership: `close()` will no longer remove the name, so the
   * segment outlives this process until someone calls `unlink()`.
   */
  disown(): void {
    if (this.#owner) recordDisowned(this.#hold);
    this.#owner = false;
  }

  /**
   * Like `disown()`, but the registry names the live process `owner` as the
   * new owner instead of none: sweeps remove the segment once that process
   * is dead and nobody has it open. @internal
   */
  handOver(owner: { pid: number; start: number }): void {
    if (this.#owner) recordHandedOver(this.#hold, owner);
    this.#owner = false;
  }

  /**
   * Removes the name (shm_unlink). Processes that have it mapped keep their
   * mapping; new `open` calls fail with ENOENT. Anyone may unlink.
   *
   * Errors: `ENOENT` when the name is already gone (unlinking twice), `EACCES`.
   */
  unlink(): void {
    try {
      native.shmUnlink(this.#name);
    } catch (err) {
      throw systemError(err, 'shared memory', this.#name);
    } finally {
      this.#owner = false;
    }
    this.#unlinked = true;
    if (this.#hold !== undefined) {
      recordRemoved(this.#hold);
      this.#hold = undefined;
    } else {
      recordUnlinked('shm', this.#name);
    }
  }

  /**
   * Unmaps the segment from this process (all threads), and removes the name
   * if this handle owns it. Idempotent. Buffers obtained earlier stay valid
   * memory but no longer alias the segment.
   *
   * Errors: `ERR_MULTIPROC_BUSY` when a thread of this process (this one or
   * a worker) holds a {@link Mutex} inside the segment (release it first);
   * the segment then stays open.
   */
  close(): void {
    if (this.#closed) return;
    const buffers = [this.#buffer, ...this.#windows.map((w) => w.deref())].filter((b) => b !== undefined);
    // The check and the unmapping are one native step, so that no worker can
    // take a mutex inside in between.
    if (!native.release(...buffers)) {
      throw new BusyError(`shared memory '${this.#name}': a thread of this process holds a mutex inside it; release it before closing`);
    }
    this.#closed = true;
    this.#windows = [];
    const hold = this.#hold;
    this.#hold = undefined;
    if (this.#owner && !this.#unlinked) {
      try {
        native.shmUnlink(this.#name);
      } catch {
        // someone else removed it already: the goal is reached
      }
      this.#unlinked = true;
      recordRemoved(hold);
    } else {
      releaseHold(hold);
    }
  }

  /** Same as {@link SharedMemory.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError(`shared memory '${this.#name}' is closed`);
  }
}
