/**
 * Memory-mapped files (open + mmap), exposed as SharedArrayBuffers that alias
 * the file's pages in the page cache.
 */
import { closeSync, constants as fsConstants, fdatasyncSync, fstatSync, ftruncateSync, openSync, unlinkSync, type Stats } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { native } from '../binding/native.js';
import { maxBufferSize, type CreationMode } from '../shm/shared-memory.js';
import {
  BusyError,
  ClosedError,
  SizeMismatchError,
  systemError,
  validatePath,
  rangeError,
  validateBoolean,
  validateInteger,
  validateOneOf,
  validateOptions,
  type SystemError,
} from '../errors.js';

/**
 * How a {@link MemoryMap} reaches the file:
 *
 * - `'readWrite'`: a shared mapping. Writes change the file and are seen at
 *   once by every process that maps or reads it. Needs write permission.
 * - `'read'`: the file is opened read-only and mapped private
 *   (copy-on-write). Writes from JavaScript cannot fault; they stay in this
 *   process and never reach the file. Pages this process has not written keep
 *   showing the file, including later changes by other processes (Linux).
 *   As no writes are expected, no memory is set aside for copies
 *   (MAP_NORESERVE), so maps larger than RAM + swap work.
 * - `'copyOnWrite'`: the same private mapping, for callers that mean to
 *   modify their copy: the kernel accounts the memory the copies may need
 *   when the file is mapped, so a map larger than the system can back fails
 *   with ENOMEM at `open` rather than at a later write (unless
 *   vm.overcommit_memory = 1). Neither private access is a snapshot: pages
 *   not yet written still follow the file.
 */
export type MemoryMapAccess = 'read' | 'readWrite' | 'copyOnWrite';
const accesses: readonly MemoryMapAccess[] = ['read', 'readWrite', 'copyOnWrite'];
const creationModes: readonly CreationMode[] = ['create', 'open', 'openOrCreate', 'purgeAndCreate'];

/** Options of {@link MemoryMap.open}. */
export interface MemoryMapOpenOptions {
  /** See {@link MemoryMapAccess}. Default `'readWrite'`. */
  access?: MemoryMapAccess;
  /** Where the map starts in the file, a multiple of {@link MemoryMap.pageSize}. Default 0. */
  offset?: number;
  /** Bytes to map, at least 1. Default: from `offset` to the end of the file. */
  length?: number;
}

/** Options of {@link MemoryMap.create}. */
export interface MemoryMapCreateOptions {
  /** Permission bits of a new file (the process umask applies). Default `0o600`. */
  mode?: number;
  /**
   * - `'create'` (default): fail with EEXIST if the path exists.
   * - `'open'`: map an existing file (its size must equal `size`).
   * - `'openOrCreate'`: map the file if it exists (size must equal), else create it.
   * - `'purgeAndCreate'`: remove the path, then create a new file. Processes
   *   that mapped the old file keep the old file's pages.
   */
  creation?: CreationMode;
}

/** Options of {@link MemoryMap.flush}. */
export interface MemoryMapFlushOptions {
  /** Start of the range, relative to the map. Default 0. */
  offset?: number;
  /** Bytes from `offset`. Default: to the end of the map. */
  length?: number;
  /**
   * `true` (default): wait until the range is written to storage (MS_SYNC).
   * `false`: only schedule the write-back (MS_ASYNC) and return at once.
   */
  sync?: boolean;
}

const PAGE = native.PAGE_SIZE;
// O_NONBLOCK: opening a FIFO by mistake must fail fast, not wait for a writer.
const OPEN_READ = fsConstants.O_RDONLY | fsConstants.O_NONBLOCK;
const OPEN_WRITE = fsConstants.O_RDWR | fsConstants.O_NONBLOCK;

// Private maps are writable too: a stray write from JavaScript then changes
// this process's copy instead of faulting (a fault would kill the process).
const PROT = native.PROT_READ | native.PROT_WRITE;

function mapFlags(access: MemoryMapAccess): number {
  if (access === 'readWrite') return native.MAP_SHARED;
  // 'read' expects no writes, so it reserves no memory for copies: large
  // read-only maps must not count against the commit limit. (Under
  // vm.overcommit_memory = 2 the kernel ignores MAP_NORESERVE.)
  if (access === 'read') return native.MAP_PRIVATE | native.MAP_NORESERVE;
  return native.MAP_PRIVATE;
}

// A map larger than one buffer keeps its file descriptor for view(); if the
// map is dropped without close(), the descriptor is closed when it is collected.
const descriptors = new FinalizationRegistry<number>((fd) => {
  try {
    closeSync(fd);
  } catch {
    // nothing useful to do in a finalizer
  }
});

function validateFileOffset(value: unknown, what: string): number {
  const offset = validateInteger(value, what, 0);
  if (offset % PAGE !== 0) {
    throw rangeError(`The value of "${what}" is out of range. It must be a multiple of the page size (${PAGE}). Received ${offset}`);
  }
  return offset;
}

/**
 * Gives a node:fs or addon failure the library's system-error shape (code,
 * errno, syscall, path, and a message naming the file and what to do).
 */
function fileError(err: unknown, path: string): unknown {
  const e = err as Partial<SystemError>;
  if (err instanceof Error && typeof e.syscall === 'string' && typeof e.errno === 'number' && err.message.startsWith(`${e.code}: `)) {
    // node:fs messages already carry code, syscall and path; keep only the description.
    const description = getSystemErrorMap().get(e.errno)?.[1];
    if (description !== undefined) err.message = description;
    if (e.code === 'EISDIR') err.message += ' (only regular files can be mapped)';
  }
  return systemError(err, 'file', path, path);
}

/** mmap refuses what is not a regular file with ENODEV; say why instead. Raw: pass it through fileError. */
function notRegularFile(stats: Stats): Error {
  const code = stats.isDirectory() ? 'EISDIR' : 'ENODEV';
  const message = stats.isDirectory()
    ? 'illegal operation on a directory (only regular files can be mapped)'
    : 'not a regular file (only regular files can be mapped)';
  return Object.assign(new Error(message), { code, errno: -osConstants.errno[code], syscall: 'mmap' });
}

function isCode(err: unknown, code: string): boolean {
  return (err as { code?: unknown } | null)?.code === code;
}

interface Window {
  ref: WeakRef<SharedArrayBuffer>;
  /** Offset of the window's first byte, relative to the map. */
  start: number;
}

/**
 * A file mapped into this process: its bytes as a SharedArrayBuffer that
 * aliases the page cache, with no copy. Every process that maps the same file
 * with `access: 'readWrite'` shares the same memory, and `read()`/`write()`
 * on the file see it too (the page cache is one).
 *
 * Files, and ranges of files, larger than one buffer ({@link maxBufferSize})
 * are used through windows ({@link MemoryMap.view}).
 *
 * The file belongs to the caller: closing a map never removes it (unlike
 * {@link SharedMemory}, whose creator owns the name).
 *
 * Hazards:
 * - **SIGBUS.** If any process truncates the file below the mapped range
 *   while it is mapped (`ftruncate`, or rewriting it with
 *   `fs.writeFileSync`, which truncates first), touching the pages beyond
 *   the new end kills this process with SIGBUS, whatever the access; no
 *   JavaScript error can be raised. Only map files whose size the
 *   cooperating processes agree on (grow, never shrink); to replace a
 *   mapped file, write a new one and rename it over the old path.
 * - **Full disk.** {@link MemoryMap.create} makes a sparse file. Writing into
 *   a hole needs a new block; when the file system is full the write raises
 *   SIGBUS as well. Preallocate (write the file) if that matters.
 * - **Durability.** Writes reach the page cache at once; they reach storage
 *   when the kernel writes them back, or at {@link MemoryMap.flush}.
 *   `close()` does not flush.
 *
 * @example
 * ```ts
 * using map = MemoryMap.create('/var/tmp/counters.bin', 4096, { creation: 'openOrCreate' });
 * Atomics.add(new Int32Array(map.buffer), 0, 1);
 * map.flush();
 * ```
 */
export class MemoryMap {
  /** The system page size; `offset` options must be multiples of it. */
  static readonly pageSize: number = PAGE;

  readonly #path: string;
  readonly #access: MemoryMapAccess;
  readonly #offset: number;
  readonly #length: number;
  #buffer: SharedArrayBuffer | undefined;
  /** Held only when the map is larger than one buffer (windows need it). */
  #fd: number | undefined;
  #windows: Window[] = [];
  #closed = false;

  private constructor(path: string, access: MemoryMapAccess, offset: number, length: number, buffer: SharedArrayBuffer | undefined, fd: number | undefined) {
    this.#path = path;
    this.#access = access;
    this.#offset = offset;
    this.#length = length;
    this.#buffer = buffer;
    this.#fd = fd;
    if (fd !== undefined) descriptors.register(this, fd, this);
  }

  /**
   * Creates a file of `size` bytes (sparse, reading as zeros) and maps all of
   * it with access `'readWrite'`. Per `options.creation`, an existing file of
   * exactly that size is mapped instead.
   *
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`
   * (bad arguments, checked before the file is touched); system errors
   * `EEXIST`, `ENOENT` (missing directory, or `creation: 'open'`), `EACCES`,
   * `EISDIR`, `ENOSPC`, `EFBIG`, `EROFS`, `EMFILE`, `ENOMEM`;
   * `ERR_MULTIPROC_SIZE_MISMATCH` when an existing file has another size.
   * A file this call created is removed again when mapping it fails.
   */
  static create(path: string | URL, size: number, options?: MemoryMapCreateOptions): MemoryMap {
    const file = validatePath(path);
    validateInteger(size, 'size', 1);
    const opts = validateOptions<MemoryMapCreateOptions>(options, 'options', ['mode', 'creation']);
    const mode = opts.mode === undefined ? 0o600 : validateInteger(opts.mode, 'options.mode', 0, 0o777);
    const creation = opts.creation === undefined ? 'create' : validateOneOf(opts.creation, 'options.creation', creationModes);

    if (creation === 'open') return MemoryMap.#openFile(file, 'readWrite', 0, undefined, size);
    if (creation === 'purgeAndCreate') {
      try {
        unlinkSync(file);
      } catch (err) {
        if (!isCode(err, 'ENOENT')) throw fileError(err, file);
      }
    }
    let fd: number;
    try {
      fd = openSync(file, OPEN_WRITE | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
    } catch (err) {
      if (creation === 'openOrCreate' && isCode(err, 'EEXIST')) return MemoryMap.#openFile(file, 'readWrite', 0, undefined, size);
      throw fileError(err, file);
    }
    try {
      try {
        ftruncateSync(fd, size);
      } catch (err) {
        closeSync(fd);
        throw fileError(err, file);
      }
      return MemoryMap.#attach(fd, file, 'readWrite', 0, undefined, undefined);
    } catch (err) {
      try {
        unlinkSync(file);
      } catch {
        // gone already; the original error is what matters
      }
      throw err;
    }
  }

  /**
   * Maps an existing file, or the range `offset`..`offset + length` of it.
   *
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`
   * (bad arguments, misaligned `offset`; checked before the file is opened);
   * `ERR_OUT_OF_RANGE` also when the file is empty, `offset` is at or past
   * its end, or `offset + length` is past its end; system errors `ENOENT`,
   * `EACCES` (no read permission, or no write permission for `'readWrite'`),
   * `EISDIR` (a directory), `ENODEV` (not a regular file), `EROFS`, `EMFILE`,
   * `ENOMEM`.
   */
  static open(path: string | URL, options?: MemoryMapOpenOptions): MemoryMap {
    const file = validatePath(path);
    const opts = validateOptions<MemoryMapOpenOptions>(options, 'options', ['access', 'offset', 'length']);
    const access = opts.access === undefined ? 'readWrite' : validateOneOf(opts.access, 'options.access', accesses);
    const offset = opts.offset === undefined ? 0 : validateFileOffset(opts.offset, 'options.offset');
    const length = opts.length === undefined ? undefined : validateInteger(opts.length, 'options.length', 1);
    return MemoryMap.#openFile(file, access, offset, length, undefined);
  }

  static #openFile(file: string, access: MemoryMapAccess, offset: number, length: number | undefined, requiredSize: number | undefined): MemoryMap {
    let fd: number;
    try {
      // A private mapping needs only read permission, whatever it writes.
      fd = openSync(file, access === 'readWrite' ? OPEN_WRITE : OPEN_READ);
    } catch (err) {
      throw fileError(err, file);
    }
    return MemoryMap.#attach(fd, file, access, offset, length, requiredSize);
  }

  /** Maps the open `fd`; closes it unless the map needs it for windows. */
  static #attach(
    fd: number,
    file: string,
    access: MemoryMapAccess,
    offset: number,
    requested: number | undefined,
    requiredSize: number | undefined,
  ): MemoryMap {
    let keep = false;
    try {
      const stats = fstatSync(fd);
      if (!stats.isFile()) throw notRegularFile(stats);
      const size = stats.size;
      if (requiredSize !== undefined && size !== requiredSize) {
        throw new SizeMismatchError(
          `file '${file}' has ${size} bytes, not the ${requiredSize} required: open it with MemoryMap.open, or recreate it with creation 'purgeAndCreate'`,
        );
      }
      if (size === 0) {
        throw rangeError(`file '${file}' is empty (0 bytes): there is nothing to map; give it a size first (MemoryMap.create, or fs.truncateSync)`);
      }
      if (offset >= size) {
        throw rangeError(`The value of "options.offset" is out of range. It must be less than the size of file '${file}' (${size} bytes). Received ${offset}`);
      }
      // Pages past the end of the file cannot be touched without SIGBUS: never map them.
      if (requested !== undefined && requested > size - offset) {
        throw rangeError(
          `The value of "options.length" is out of range. It must be <= ${size - offset} (file '${file}' has ${size} bytes, the map starts at ${offset}). Received ${requested}`,
        );
      }
      const length = requested ?? size - offset;
      let buffer: SharedArrayBuffer | undefined;
      if (length <= maxBufferSize) buffer = native.map(fd, offset, length, PROT, mapFlags(access));
      else keep = true;
      return new MemoryMap(file, access, offset, length, buffer, keep ? fd : undefined);
    } catch (err) {
      keep = false;
      throw fileError(err, file);
    } finally {
      if (!keep) closeSync(fd);
    }
  }

  /** The path the map was opened with. */
  get path(): string {
    return this.#path;
  }

  /** How the file is mapped; see {@link MemoryMapAccess}. */
  get access(): MemoryMapAccess {
    return this.#access;
  }

  /** Where the map starts in the file, in bytes. */
  get offset(): number {
    return this.#offset;
  }

  /** Bytes mapped. */
  get length(): number {
    return this.#length;
  }

  /** True after {@link MemoryMap.close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The whole map as a SharedArrayBuffer aliasing the file's pages: byte 0
   * is byte `offset` of the file. `Atomics` on it are atomic across processes
   * (for `'readWrite'`).
   *
   * Errors: `ERR_MULTIPROC_CLOSED`; `ERR_OUT_OF_RANGE` when the map is larger
   * than {@link maxBufferSize} (use {@link MemoryMap.view}).
   */
  get buffer(): SharedArrayBuffer {
    this.#checkOpen();
    if (this.#buffer === undefined) {
      throw rangeError(
        `the map of file '${this.#path}' has ${this.#length} bytes, more than one buffer can hold (${maxBufferSize}): use view(offset, length)`,
      );
    }
    return this.#buffer;
  }

  /**
   * `length` bytes of the map from `offset` (relative to the map) as a
   * Uint8Array, for maps of any size. When the map fits one buffer this is a
   * view of {@link MemoryMap.buffer}; otherwise the window is mapped on its
   * own, unmapped when it is garbage collected or at `close()`.
   *
   * Errors: `ERR_MULTIPROC_CLOSED`; `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE`
   * (the range must lie inside the map and, for a window, fit one buffer);
   * system error `ENOMEM`.
   */
  view(offset: number, length: number): Uint8Array {
    this.#checkOpen();
    validateInteger(offset, 'offset', 0, this.#length);
    if (this.#buffer !== undefined) {
      validateInteger(length, 'length', 0, this.#length - offset);
      return new Uint8Array(this.#buffer, offset, length);
    }
    // A window starts on a page boundary, so the bytes before `offset` on its
    // first page count against the largest buffer.
    const lead = (this.#offset + offset) % PAGE;
    validateInteger(length, 'length', 0, Math.min(this.#length - offset, maxBufferSize - lead));
    if (length === 0) return new Uint8Array(new SharedArrayBuffer(0));
    const start = offset - lead;
    let window: SharedArrayBuffer;
    try {
      window = native.map(this.#fd!, this.#offset + start, lead + length, PROT, mapFlags(this.#access));
    } catch (err) {
      throw fileError(err, this.#path);
    }
    this.#windows = this.#windows.filter((w) => w.ref.deref() !== undefined);
    this.#windows.push({ ref: new WeakRef(window), start });
    return new Uint8Array(window, lead, length);
  }

  /**
   * Writes the modified pages of a range of a `'readWrite'` map back to the
   * file (msync). Other processes do not need this to see the writes; it is
   * for durability across a system crash or power loss. For `'read'` and
   * `'copyOnWrite'` maps, whose writes never reach the file, it does nothing.
   *
   * With `sync: true` (the default) this blocks the calling thread until the
   * storage device has the data, which can take milliseconds to seconds;
   * there is no asynchronous variant yet: call it from a worker thread to
   * keep an event loop responsive, or use `sync: false`. For a map larger
   * than one buffer, a synchronous flush also syncs the file's data as a
   * whole (fdatasync), which covers windows already unmapped.
   *
   * Errors: `ERR_MULTIPROC_CLOSED`; `ERR_INVALID_ARG_TYPE`,
   * `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE` (bad options); system errors
   * `EIO`, `ENOSPC`, `EDQUOT` from the write-back.
   */
  flush(options?: MemoryMapFlushOptions): void {
    this.#checkOpen();
    const opts = validateOptions<MemoryMapFlushOptions>(options, 'options', ['offset', 'length', 'sync']);
    const offset = opts.offset === undefined ? 0 : validateInteger(opts.offset, 'options.offset', 0, this.#length);
    const length = opts.length === undefined ? this.#length - offset : validateInteger(opts.length, 'options.length', 0, this.#length - offset);
    const sync = opts.sync === undefined ? true : validateBoolean(opts.sync, 'options.sync');
    if (this.#access !== 'readWrite' || length === 0) return;
    const flags = sync ? native.MS_SYNC : native.MS_ASYNC;
    try {
      if (this.#buffer !== undefined) {
        native.msync(this.#buffer, offset, length, flags);
        return;
      }
      for (const w of this.#windows) {
        const buffer = w.ref.deref();
        if (buffer === undefined) continue;
        const from = Math.max(offset, w.start);
        const to = Math.min(offset + length, w.start + buffer.byteLength);
        if (from < to) native.msync(buffer, from - w.start, to - from, flags);
      }
      if (sync) fdatasyncSync(this.#fd!);
    } catch (err) {
      throw fileError(err, this.#path);
    }
  }

  /**
   * Unmaps the file from this process (all threads). Idempotent. The file
   * stays; so do the writes (the page cache has them), but `close()` does
   * not wait for storage: call {@link MemoryMap.flush} first for that.
   * Buffers and views obtained earlier stay valid memory but no longer alias
   * the file: they read zeros and their writes go nowhere.
   *
   * Errors: `ERR_MULTIPROC_BUSY` when a thread of this process (this one or
   * a worker) holds a {@link Mutex} inside the map (release it first); the
   * map then stays open.
   */
  close(): void {
    if (this.#closed) return;
    const live: SharedArrayBuffer[] = [];
    if (this.#buffer !== undefined) live.push(this.#buffer);
    for (const w of this.#windows) {
      const buffer = w.ref.deref();
      if (buffer !== undefined) live.push(buffer);
    }
    let failure: unknown;
    let released: boolean;
    // The check and the unmapping are one native step, so that no worker can
    // take a mutex inside in between.
    try {
      released = native.release(...live);
    } catch (err) {
      released = true;
      failure = fileError(err, this.#path);
    }
    if (!released) {
      throw new BusyError(`file '${this.#path}': a thread of this process holds a mutex inside its map; release it before closing`);
    }
    this.#closed = true;
    this.#buffer = undefined;
    this.#windows = [];
    if (this.#fd !== undefined) {
      descriptors.unregister(this);
      try {
        closeSync(this.#fd);
      } catch {
        // the mappings are gone either way; write errors surface in flush()
      }
      this.#fd = undefined;
    }
    if (failure !== undefined) throw failure;
  }

  /** Same as {@link MemoryMap.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError(`the map of file '${this.#path}' is closed`);
  }
}
