/**
 * Named pipes (FIFOs, mkfifo(3)) as channels between unrelated processes.
 *
 * Opening never blocks and never takes a libuv threadpool thread (opening a
 * FIFO through fs.open would hold one until the other side appears,
 * nodejs/node#23220): the addon opens with O_NONBLOCK. A reader's open
 * returns at once; a writer's fails with ENXIO while no reader exists, and is
 * retried on a timer with backoff until its timeout or signal. The
 * descriptor then goes to a StreamChannel over net.Socket, like a Pipe's.
 */
import { lstatSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { recordCreated, recordDisowned, recordOpened, recordRemoved, recordUnlinked, releaseHold, type Hold } from '../../resources/registry.js';
import { native } from '../../binding/native.js';
import { ClosedError, IncompatibleError, validateBoolean, validateInteger, validateOneOf, validateOptions, validatePath, validateSignal, validateTimeout } from '../../errors.js';
import type { CreationMode } from '../../shm/shared-memory.js';
import { checkAborted, makeWait, waitFor } from '../base-channel.js';
import type { BytesReceiver, ChannelTraits, Receiver, Sender } from '../channel.js';
import { FRAME_HEADER } from '../framing.js';
import { checkPipeFd, closeQuietly, fileError, PipeChannel, resolveChannelOptions, type PipeChannelOptions, type ResolvedChannelOptions } from './pipe.js';

/** Options of {@link NamedPipe.create}. */
export interface NamedPipeCreateOptions {
  /** Permission bits of a new FIFO, applied exactly whatever the umask. Default `0o600` (owner only). */
  mode?: number;
  /**
   * - `'create'` (default): fail with `EEXIST` if the path exists.
   * - `'open'`: use an existing FIFO (never creates, never owns).
   * - `'openOrCreate'`: use the FIFO at `path` if there is one, else create it (and own it).
   * - `'purgeAndCreate'`: remove a FIFO at `path`, then create a new one.
   *   Anything else at `path` is left alone (`ERR_MULTIPROC_INCOMPATIBLE`).
   */
  creation?: CreationMode;
}

/** Options of {@link NamedPipe.reader}. */
export interface NamedPipeReaderOptions<T> extends PipeChannelOptions<T> {
  /**
   * Keep listening when every writer has gone (default `false`: the
   * channel ends, and `for await` loops finish, when the last writer closes).
   * A persistent reader also holds the FIFO open for writing itself, so it
   * never sees the end of the stream and later writers can come and go. It
   * then cannot notice a writer that died in the middle of a message either:
   * pair it with `shared` writers, whose messages are written whole.
   */
  persistent?: boolean;
}

/** Options of {@link NamedPipe.writer}. */
export interface NamedPipeWriterOptions<T> extends PipeChannelOptions<T> {
  /**
   * Other processes write to this FIFO at the same time (default `false`).
   * Every message then goes out in writes of at most PIPE_BUF (4096) bytes
   * holding whole messages, which the kernel keeps in one piece, so
   * concurrent writers never interleave inside a message. Messages are then
   * limited to {@link NamedPipe.maxSharedMessageSize} (4080) bytes with
   * framing, 4096 without; `maxMessageSize` defaults to that and may not
   * exceed it.
   */
  shared?: boolean;
  /** Milliseconds to wait for a reader before `ERR_MULTIPROC_TIMEOUT`. Default: no limit. */
  timeout?: number;
  /** Aborts the wait for a reader with `ABORT_ERR`. */
  signal?: AbortSignal;
}

const FIFO_TRAITS: ChannelTraits = Object.freeze({
  mechanism: 'fifo',
  medium: 'file',
  unit: 'stream',
  direction: 'one-way',
  scope: 'same-host',
  use: 'unrelated processes, by name, one-way',
});

const creationModes: readonly CreationMode[] = ['create', 'open', 'openOrCreate', 'purgeAndCreate'];
const PIPE_BUF = native.PIPE_BUF;
/** Backoff of a writer waiting for a reader: from 1 ms, doubling, up to this. */
const MAX_RETRY_MS = 50;

// Owned FIFOs still on disk; removed if the process exits without close().
const owned = new Set<NamedPipe>();
let exitHook = false;
function ownPath(p: NamedPipe): void {
  owned.add(p);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const o of owned) o.unlinkIfOwner();
  });
}

function fifoError(err: unknown, path: string): unknown {
  return fileError(err, 'fifo', path, path);
}

function describeKind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a FIFO';
}

/** Throws unless `path` is a FIFO (following symbolic links). Nothing is opened. */
function checkIsFifo(path: string): void {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (err) {
    throw fifoError(err, path);
  }
  if (!st.isFIFO()) throw notFifo(path, st);
}

function notFifo(path: string, st: Stats): IncompatibleError {
  return new IncompatibleError(`'${path}' is ${describeKind(st)}, not a FIFO: create it with NamedPipe.create (or mkfifo), or check the path`);
}

function isCode(err: unknown, code: string): boolean {
  return (err as { code?: unknown } | null)?.code === code;
}

/**
 * A named pipe: a FIFO in the file system that unrelated processes open by
 * path, one way, from writers to readers. This object stands for the name;
 * {@link NamedPipe.reader} and {@link NamedPipe.writer} open channels on it.
 *
 * The creator owns the path: its `close()` removes it (unless it called
 * {@link NamedPipe.disown}); an opener never removes it. A FIFO holds no
 * data on disk: bytes live in the kernel's pipe buffer while a reader or a
 * writer has it open, and are lost when the last one closes.
 *
 * Several writers: writes of at most PIPE_BUF (4096) bytes are atomic, so
 * writers opened with `{ shared: true }` (messages up to 4080 bytes) never
 * interleave. Writers that are not shared may send messages of any size,
 * but must then be the only writer at a time.
 *
 * Plain bytes: with `{ framing: 'none' }` a reader gets whatever the shell
 * writes (`echo hello > path` arrives as 'hello\n') and a writer's bytes go
 * out unframed.
 *
 * @example
 * ```ts
 * // process A
 * await using fifo = NamedPipe.create('/tmp/jobs.fifo');
 * for await (const job of fifo.reader()) console.log(job);
 *
 * // process B
 * const fifo = NamedPipe.open('/tmp/jobs.fifo');
 * const writer = await fifo.writer({ timeout: 5000 });
 * await writer.send({ id: 1 });
 * await writer.close();
 * ```
 */
export class NamedPipe {
  /** Writes of at most this many bytes are atomic (PIPE_BUF, 4096 on Linux). */
  static readonly atomicWriteSize: number = PIPE_BUF;
  /** Largest message of a `shared` writer with framing: PIPE_BUF less the 16-byte frame header. */
  static readonly maxSharedMessageSize: number = PIPE_BUF - FRAME_HEADER;

  readonly #path: string;
  #owner: boolean;
  #closing: Promise<void> | undefined;
  readonly #channels = new Set<PipeChannel<any>>();
  /** This process's lock on the FIFO's registry record. */
  #hold: Hold | undefined;

  private constructor(path: string, owner: boolean, hold: Hold | undefined) {
    this.#path = path;
    this.#owner = owner;
    this.#hold = hold;
    if (owner) ownPath(this);
  }

  /**
   * Creates a FIFO at `path` (mkfifo), or uses one per `options.creation`.
   *
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`,
   * `ERR_OUT_OF_RANGE` (bad arguments, checked before the file system is
   * touched); system errors `EEXIST`, `ENOENT` (a missing directory),
   * `EACCES`, `ENOTDIR`, `EROFS`, `ENOSPC`, `ENAMETOOLONG`;
   * `ERR_MULTIPROC_INCOMPATIBLE` when an existing path that `creation` would
   * use or purge is not a FIFO.
   */
  static create(path: string | URL, options?: NamedPipeCreateOptions): NamedPipe {
    const file = validatePath(path);
    const opts = validateOptions<NamedPipeCreateOptions>(options, 'options', ['mode', 'creation']);
    const mode = opts.mode === undefined ? 0o600 : validateInteger(opts.mode, 'options.mode', 0, 0o777);
    const creation = opts.creation === undefined ? 'create' : validateOneOf(opts.creation, 'options.creation', creationModes);
    if (creation === 'open') return NamedPipe.open(file);
    if (creation === 'purgeAndCreate') {
      let st: Stats | undefined;
      try {
        st = lstatSync(file);
      } catch (err) {
        if (!isCode(err, 'ENOENT')) throw fifoError(err, file);
      }
      if (st !== undefined) {
        if (!st.isFIFO()) throw notFifo(file, st);
        try {
          unlinkSync(file);
        } catch (err) {
          if (!isCode(err, 'ENOENT')) throw fifoError(err, file);
        }
      }
    }
    try {
      native.mkfifo(file, mode);
    } catch (err) {
      if (creation === 'openOrCreate' && isCode(err, 'EEXIST')) return NamedPipe.open(file);
      throw fifoError(err, file);
    }
    let hold: Hold | undefined;
    try {
      const st = lstatSync(file);
      hold = recordCreated('fifo', resolvePath(file), { ino: st.ino, dev: st.dev });
    } catch {
      // removed at once by someone else: nothing to record
    }
    return new NamedPipe(file, true, hold);
  }

  /**
   * Uses the existing FIFO at `path`. Nothing is opened yet; this process
   * will never remove the path.
   *
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`; `ENOENT`,
   * `EACCES`, `ENOTDIR`; `ERR_MULTIPROC_INCOMPATIBLE` when `path` is not a FIFO.
   */
  static open(path: string | URL): NamedPipe {
    const file = validatePath(path);
    // Held before the check: no sweep removes the FIFO while this object uses it.
    const hold = recordOpened('fifo', resolvePath(file));
    try {
      checkIsFifo(file);
    } catch (err) {
      releaseHold(hold);
      throw err;
    }
    return new NamedPipe(file, false, hold);
  }

  /** The FIFO's path. */
  get path(): string {
    return this.#path;
  }

  /** True when this object created the FIFO and will remove it on close. */
  get owner(): boolean {
    return this.#owner;
  }

  /** True after {@link NamedPipe.close}. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Opens the FIFO for reading. Returns at once, whether or not a writer is
   * there: messages arrive as writers send them. Without `persistent`, the
   * channel ends (receives fail with `ERR_MULTIPROC_CLOSED`, `for await`
   * finishes) when the last writer has closed, after every message sent
   * before; a writer that died inside a message shows as
   * `ERR_MULTIPROC_PROTOCOL` after the whole messages before it.
   *
   * Several readers may open one FIFO, but each byte goes to one of them:
   * with framing, use one reader per FIFO.
   *
   * Errors: `ERR_MULTIPROC_CLOSED` (this object is closed), option errors;
   * `ENOENT` (the FIFO was removed), `EACCES`, `EMFILE`;
   * `ERR_MULTIPROC_INCOMPATIBLE` (the path is no longer a FIFO).
   */
  reader<T = unknown>(options?: NamedPipeReaderOptions<T>): Receiver<T> & BytesReceiver {
    const opts = validateOptions<NamedPipeReaderOptions<T>>(options, 'options', ['codec', 'maxMessageSize', 'framing', 'persistent']);
    const persistent = opts.persistent === undefined ? false : validateBoolean(opts.persistent, 'options.persistent');
    const o = resolveChannelOptions<T>(opts);
    this.#checkOpen();
    checkIsFifo(this.#path);
    const fd = this.#openFd(native.O_RDONLY);
    const extraFds: number[] = [];
    try {
      checkPipeFd(fd, 'reader', `fifo '${this.#path}'`);
      if (persistent) {
        // We are a reader, so this open succeeds; it keeps the stream from
        // ending when the last real writer goes.
        extraFds.push(this.#openFd(native.O_WRONLY));
      }
      return this.#track(fd, 'reader', { ...o, extraFds });
    } catch (err) {
      for (const f of [fd, ...extraFds]) closeQuietly(f);
      throw err;
    }
  }

  /**
   * Opens the FIFO for writing, once a reader has it open: until then the
   * open is retried on a timer (1 ms, doubling up to 50 ms), so the event
   * loop keeps running and no thread waits.
   *
   * Errors: `ERR_MULTIPROC_TIMEOUT` (no reader within `timeout`), `ABORT_ERR`,
   * `ERR_MULTIPROC_CLOSED` (this object closed meanwhile), option errors
   * (`ERR_OUT_OF_RANGE` for a `shared` writer's `maxMessageSize` above its
   * limit); `ENOENT`, `EACCES`, `EMFILE`; `ERR_MULTIPROC_INCOMPATIBLE`.
   * Sending after every reader has gone fails with `ERR_MULTIPROC_CLOSED`
   * (its `cause` is the kernel's `EPIPE`).
   */
  async writer<T = unknown>(options?: NamedPipeWriterOptions<T>): Promise<Sender<T>> {
    const opts = validateOptions<NamedPipeWriterOptions<T>>(options, 'options', ['codec', 'maxMessageSize', 'framing', 'shared', 'timeout', 'signal']);
    const shared = opts.shared === undefined ? false : validateBoolean(opts.shared, 'options.shared');
    const raw = opts.framing === 'none';
    const o = resolveChannelOptions<T>(opts, shared ? (raw ? PIPE_BUF : PIPE_BUF - FRAME_HEADER) : undefined);
    const timeout = validateTimeout(opts.timeout);
    const signal = validateSignal(opts.signal);
    this.#checkOpen();
    checkIsFifo(this.#path);
    const wait = makeWait(timeout, signal, `a reader on fifo '${this.#path}'`);
    // As every wait: an aborted signal fails the call, even when a reader is there.
    checkAborted(wait);
    let delay = 1;
    let fd: number;
    for (;;) {
      try {
        fd = native.openFifo(this.#path, native.O_WRONLY);
        break;
      } catch (err) {
        if (!isCode(err, 'ENXIO')) throw fifoError(err, this.#path);
      }
      await waitFor<void>(wait, (resolve) => {
        const t = setTimeout(resolve, delay);
        return () => clearTimeout(t);
      });
      delay = Math.min(delay * 2, MAX_RETRY_MS);
      this.#checkOpen();
    }
    try {
      checkPipeFd(fd, 'writer', `fifo '${this.#path}'`);
      // A shared writer keeps one write in flight, so Node never merges
      // queued chunks into a writev larger than PIPE_BUF.
      return this.#track(fd, 'writer', shared ? { ...o, batchSize: PIPE_BUF, writableHighWaterMark: 1 } : o);
    } catch (err) {
      closeQuietly(fd);
      throw err;
    }
  }

  /** Gives up ownership: `close()` will no longer remove the path. */
  disown(): void {
    if (this.#owner) recordDisowned(this.#hold);
    this.#owner = false;
    owned.delete(this);
  }

  /**
   * Removes the path now. Channels already open keep working; new opens
   * fail with ENOENT. Anyone may unlink.
   *
   * Errors: `ENOENT` (already removed), `EACCES`, `EPERM`.
   */
  unlink(): void {
    this.#owner = false;
    owned.delete(this);
    try {
      unlinkSync(this.#path);
    } catch (err) {
      throw fifoError(err, this.#path);
    }
    this.#dropRecord();
  }

  /** Removes the path if this object owns it; never throws. @internal */
  unlinkIfOwner(): void {
    if (!this.#owner) return;
    this.#owner = false;
    owned.delete(this);
    try {
      unlinkSync(this.#path);
    } catch {
      // someone else removed it already: the goal is reached
    }
    this.#dropRecord();
  }

  #dropRecord(): void {
    if (this.#hold !== undefined) {
      recordRemoved(this.#hold);
      this.#hold = undefined;
    } else {
      recordUnlinked('fifo', resolvePath(this.#path));
    }
  }

  /**
   * Removes the path if this object owns it, then closes the channels opened
   * through it, gracefully (a writer's accepted messages are handed to the
   * kernel first). Idempotent: a second call returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.unlinkIfOwner();
      await Promise.allSettled([...this.#channels].map((c) => c.close()));
      releaseHold(this.#hold);
      this.#hold = undefined;
    })();
    return this.#closing;
  }

  /** Same as {@link NamedPipe.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #checkOpen(): void {
    if (this.#closing !== undefined) throw new ClosedError(`fifo '${this.#path}' is closed`);
  }

  #openFd(accmode: number): number {
    try {
      return native.openFifo(this.#path, accmode);
    } catch (err) {
      throw fifoError(err, this.#path);
    }
  }

  #track<T>(fd: number, end: 'reader' | 'writer', init: ResolvedChannelOptions<T> & { extraFds?: number[]; batchSize?: number; writableHighWaterMark?: number }): PipeChannel<T> {
    const channel: PipeChannel<T> = new PipeChannel<T>({
      ...init,
      fd,
      end,
      traits: FIFO_TRAITS,
      label: `fifo '${this.#path}' ${end}`,
      onClosed: () => this.#channels.delete(channel),
    });
    this.#channels.add(channel);
    return channel;
  }
}
