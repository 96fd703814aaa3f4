/**
 * FileChannel: messages appended to a file that other processes follow.
 *
 * The file is a sequence of records: a framing.ts frame (16-byte header and
 * payload) followed by a CRC-32 of header and payload (4 bytes). Both sides
 * survive restarts: the file keeps the messages, and a reader stores how far
 * it got (its offset) and resumes from there.
 *
 * Writers. Each record goes to the file with one write(2) on a descriptor
 * opened with O_APPEND, under an exclusive flock(2) on the file:
 * - On Linux local file systems (ext4, xfs, btrfs, tmpfs) a write(2) to a
 *   regular file holds the inode lock for its whole length, so O_APPEND
 *   writes of any size do not interleave (PIPE_BUF only concerns pipes).
 *   What O_APPEND cannot prevent is a short write: a writer killed by a
 *   signal half-way through a large write, a full disk, a file size limit.
 *   The rest of that record never comes, and a record appended after it by
 *   another writer would sit inside its announced length. NFS does not keep
 *   O_APPEND atomic across clients at all.
 * - Hence the lock. A writer holds it for one append; the kernel drops it
 *   when the writer dies. The next writer, holding it, checks that the file
 *   ends on a record boundary (walking the records appended since its own
 *   last one) and cuts off a partial record left by a dead writer before it
 *   appends. Records therefore only ever end in a partial one at the very end
 *   of the file, while its writer is still writing it.
 *
 * Readers. A reader reads from its offset (always a record boundary), hands
 * complete records to receivers and waits for the rest: it never delivers a
 * record before its last byte and its checksum are there, so a partial record
 * (a writer in mid-write, or one that died) is waited for, never delivered
 * torn. New data is noticed through fs.watch (inotify), with a periodic
 * re-check in case an event is missed. A checksum mismatch is read again
 * once (a dead writer's partial record may have been cut and replaced while
 * it was read); a second mismatch means a damaged file (ERR_MULTIPROC_PROTOCOL).
 *
 * Offsets. By default the offset lives in a sidecar file `<path>.offset`
 * (two slots written alternately, each with a sequence number, the data
 * file's inode and a CRC, so a torn write of the sidecar leaves the other
 * slot valid, and a replaced data file is noticed). A caller can supply its
 * own {@link OffsetStore}. The offset passes a record once it and every
 * record before it were received, by whichever receive method. With
 * `commit: 'auto'` the offset is stored when the next receive is called (and
 * on close), so a message whose processing was cut short by a crash is
 * delivered again: at-least-once.
 */
import { closeSync, fstatSync, ftruncateSync, fdatasyncSync, openSync, readSync, writeSync, watch, read as readAsync, constants as fsConstants, type FSWatcher } from 'node:fs';
import { crc32 } from 'node:zlib';
import { native } from '../../binding/native.js';
import {
  ClosedError,
  ProtocolError,
  systemError,
  typeError,
  validateBoolean,
  validateInteger,
  validateOneOf,
  validateOptions,
  validateString,
} from '../../errors.js';
import { InboxChannel, checkWait, validateMaxMessageSize, type ChannelOptions, type Wait } from '../base-channel.js';
import type { ChannelStats, ChannelTraits } from '../channel.js';
import { resolveCodec } from '../codec.js';
import { FRAME_HEADER, writeHeader, type Frame } from '../framing.js';

const MAGIC = 0x4d50;
const VERSION = 1;
const TRAILER = 4;
/** Bytes read at a time when catching up. */
const CHUNK = 256 * 1024;
const DEFAULT_POLL_MS = 1000;
/** A busy lock is retried this often by async sends, ms. */
const LOCK_RETRY_MS = 1;

const traits: ChannelTraits = Object.freeze({
  mechanism: 'file',
  medium: 'file',
  unit: 'stream',
  direction: 'one-way',
  scope: 'same-host',
  use: 'messages that must outlive both processes: a log that readers follow and resume from where they stopped',
});

/** Where a reader keeps its offset. Calls are synchronous and may throw. */
export interface OffsetStore {
  /** The stored offset, or `undefined` when none is stored. */
  load(): number | undefined;
  /** Stores `offset`: everything before it has been received. */
  save(offset: number): void;
}

/** Options of {@link FileChannel.openWriter}. */
export interface FileWriterOptions<T> extends ChannelOptions<T> {
  /** Permission bits when the file is created. Default `0o600`. */
  mode?: number;
  /** `fdatasync` after each append (and each stored offset), for durability across a power loss. Default false. */
  fsync?: boolean;
}

/** Options of {@link FileChannel.openReader}. */
export interface FileReaderOptions<T> extends ChannelOptions<T> {
  /**
   * Where the offset is kept: a sidecar file path (default `<path>.offset`),
   * an {@link OffsetStore}, or `false` (not kept: start from `from` each time).
   * Independent readers of one file need one store each.
   */
  offsetStore?: string | OffsetStore | false;
  /** Where to start when no offset is stored: `'start'` (default), `'end'` (only new messages) or a record boundary. */
  from?: 'start' | 'end' | number;
  /**
   * `'auto'` (default): the offset past a message is stored when the next
   * receive is called, and on close (at-least-once). `'manual'`: only by
   * {@link FileChannel.commit}.
   */
  commit?: 'auto' | 'manual';
  /** Milliseconds between re-checks of the file besides inotify events. Default 1000. */
  pollInterval?: number;
  /** Permission bits when the file (or sidecar) is created. Default `0o600`. */
  mode?: number;
  /** `fdatasync` the sidecar after each stored offset. Default false. */
  fsync?: boolean;
}

interface Pending {
  end: number;
  taken: boolean;
}

/** The sidecar offset file: two 24-byte slots [seq, offset lo, offset hi, ino lo, ino hi, crc]. */
class SidecarStore implements OffsetStore {
  readonly #fd: number;
  readonly #ino: number;
  readonly #fsync: boolean;
  #seq = 0;
  constructor(path: string, ino: number, mode: number, fsync: boolean) {
    try {
      this.#fd = openSync(path, fsConstants.O_RDWR | fsConstants.O_CREAT, mode);
    } catch (err) {
      throw systemError(err, 'file channel offset', path, path);
    }
    this.#ino = ino;
    this.#fsync = fsync;
  }

  load(): number | undefined {
    const b = Buffer.alloc(48);
    const n = readSync(this.#fd, b, 0, 48, 0);
    let best: { seq: number; offset: number } | undefined;
    for (let s = 0; s + 24 <= n; s += 24) {
      const slot = b.subarray(s, s + 24);
      if (crc32(slot.subarray(0, 20)) !== slot.readUInt32LE(20)) continue;
      const seq = slot.readUInt32LE(0);
      const ino = slot.readUInt32LE(12) + slot.readUInt32LE(16) * 2 ** 32;
      if (ino !== this.#ino) continue;
      if (best === undefined || seq > best.seq) best = { seq, offset: slot.readUInt32LE(4) + slot.readUInt32LE(8) * 2 ** 32 };
    }
    if (best === undefined) return undefined;
    this.#seq = best.seq;
    return best.offset;
  }

  save(offset: number): void {
    const seq = (this.#seq + 1) >>> 0;
    const slot = Buffer.alloc(24);
    slot.writeUInt32LE(seq, 0);
    slot.writeUInt32LE(offset % 2 ** 32, 4);
    slot.writeUInt32LE(Math.floor(offset / 2 ** 32), 8);
    slot.writeUInt32LE(this.#ino % 2 ** 32, 12);
    slot.writeUInt32LE(Math.floor(this.#ino / 2 ** 32), 16);
    slot.writeUInt32LE(crc32(slot.subarray(0, 20)), 20);
    writeSync(this.#fd, slot, 0, 24, (seq & 1) * 24);
    if (this.#fsync) fdatasyncSync(this.#fd);
    this.#seq = seq;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** Reads `length` bytes at `position` (sync), fewer at the end of the file. */
function preadSync(fd: number, length: number, position: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, b, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? b : b.subarray(0, got);
}

function preadAsync(fd: number, length: number, position: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const b = Buffer.allocUnsafe(length);
    let got = 0;
    const step = (): void => {
      readAsync(fd, b, got, length - got, position + got, (err, n) => {
        if (err) return reject(err);
        got += n;
        if (n === 0 || got === length) return resolve(got === length ? b : b.subarray(0, got));
        step();
      });
    };
    step();
  });
}

/** Header fields at `offset` of `b`, or throws ProtocolError. */
function readHeader(b: Uint8Array, offset: number, max: number, where: number, label: string): { length: number; type: number; priority: number } {
  const v = new DataView(b.buffer, b.byteOffset + offset, FRAME_HEADER);
  const length = v.getUint32(0, true);
  if (v.getUint16(4, true) !== MAGIC || v.getUint16(6, true) !== VERSION) {
    throw new ProtocolError(`${label}: no record starts at byte ${where} (bad magic or version): not a multiproc channel file, or a wrong offset`);
  }
  if (length > max) throw new ProtocolError(`${label}: the record at byte ${where} announces ${length} bytes; this reader accepts at most ${max} (maxMessageSize)`);
  const type = v.getInt32(8, true);
  if (type <= 0) throw new ProtocolError(`${label}: the record at byte ${where} has type ${type}; types are positive`);
  return { length, type, priority: v.getInt32(12, true) };
}

/**
 * End of the last whole record at or after `from`, walking headers up to
 * `size`; records past it are partial. Throws ProtocolError on a bad header.
 */
function lastBoundary(fd: number, from: number, size: number, label: string): number {
  let p = from;
  while (size - p >= FRAME_HEADER) {
    const h = preadSync(fd, FRAME_HEADER, p);
    if (h.length < FRAME_HEADER) break;
    const { length } = readHeader(h, 0, 2 ** 32 - 1, p, label);
    const end = p + FRAME_HEADER + length + TRAILER;
    if (end > size) break;
    p = end;
  }
  return p;
}

/**
 * A one-way channel through an append-only file: writers append messages,
 * readers follow the file and resume after restarts from a stored offset.
 *
 * Open the writing end with {@link FileChannel.openWriter} and the reading
 * end with {@link FileChannel.openReader}; either may start first (both
 * create the file if needed), and any number of writers may append to one
 * file. Each reader gets every message (give each its own offset store).
 * Closing a writer does not end readers: the file outlives its writers.
 *
 * @example
 * ```ts
 * // process A
 * const log = FileChannel.openWriter('/var/tmp/jobs.mpc', { codec: 'json' });
 * await log.send({ job: 1 });
 * // process B, restarted any number of times
 * const jobs = FileChannel.openReader('/var/tmp/jobs.mpc', { codec: 'json' });
 * for await (const job of jobs) await handle(job); // resumes after the last one handled
 * ```
 */
export class FileChannel<T = unknown> extends InboxChannel<T> {
  readonly #path: string;
  readonly #fd: number;
  readonly #writer: boolean;
  readonly #fsync: boolean;
  // Writer state.
  #knownEnd = -1;
  #queue: Promise<void> = Promise.resolve();
  #queued = 0;
  // Reader state.
  #position = 0;
  #committed = 0;
  #saved = -1;
  readonly #pending = new Map<Frame, Pending>();
  #order: Pending[] = [];
  #orderHead = 0;
  #store: OffsetStore | undefined;
  #sidecar: SidecarStore | undefined;
  #manual = false;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reading = false;
  #again = false;
  #paused = false;
  #failed = false;
  #saveScheduled = false;
  /** Offset acknowledged by the latest receive call (auto commit). */
  #acked = 0;
  #isClosed = false;

  private constructor(path: string, fd: number, writer: boolean, codecOption: unknown, maxMessageSize: number, fsync: boolean) {
    super({
      traits,
      codec: resolveCodec<T>(codecOption, 'structured'),
      maxMessageSize,
      label: `file channel '${path}'`,
      canSend: writer,
      canReceive: !writer,
    });
    this.#path = path;
    this.#fd = fd;
    this.#writer = writer;
    this.#fsync = fsync;
  }

  /**
   * Opens `path` for appending messages, creating it if needed.
   *
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`
   * (bad arguments); system errors of open(2) (`EACCES`, `ENOENT` for a
   * missing directory, `EISDIR`).
   */
  static openWriter<T = unknown>(path: string, options?: FileWriterOptions<T>): FileChannel<T> {
    validateString(path, 'path');
    const opts = validateOptions<FileWriterOptions<T>>(options, 'options', ['codec', 'maxMessageSize', 'mode', 'fsync']);
    const max = validateMaxMessageSize(opts.maxMessageSize, 2 ** 32 - 1 - FRAME_HEADER - TRAILER);
    const mode = opts.mode === undefined ? 0o600 : validateInteger(opts.mode, 'options.mode', 0, 0o777);
    const fsync = opts.fsync === undefined ? false : validateBoolean(opts.fsync, 'options.fsync');
    const codec = resolveCodec<T>(opts.codec, 'structured');
    let fd: number;
    try {
      fd = openSync(path, fsConstants.O_RDWR | fsConstants.O_APPEND | fsConstants.O_CREAT, mode);
    } catch (err) {
      throw systemError(err, 'file channel', path, path);
    }
    return new FileChannel<T>(path, fd, true, codec, max, fsync);
  }

  /**
   * Opens `path` for reading messages, creating it (empty) if needed, and
   * starts following it from the stored offset (else from `options.from`).
   *
   * Errors: argument errors; system errors of open(2) for the file or the
   * sidecar; `ERR_MULTIPROC_PROTOCOL` when `from: 'end'` finds a file that is
   * not a channel file.
   */
  static openReader<T = unknown>(path: string, options?: FileReaderOptions<T>): FileChannel<T> {
    validateString(path, 'path');
    const opts = validateOptions<FileReaderOptions<T>>(options, 'options', ['codec', 'maxMessageSize', 'offsetStore', 'from', 'commit', 'pollInterval', 'mode', 'fsync']);
    const max = validateMaxMessageSize(opts.maxMessageSize, 2 ** 32 - 1 - FRAME_HEADER - TRAILER);
    const mode = opts.mode === undefined ? 0o600 : validateInteger(opts.mode, 'options.mode', 0, 0o777);
    const fsync = opts.fsync === undefined ? false : validateBoolean(opts.fsync, 'options.fsync');
    const commit = opts.commit === undefined ? 'auto' : validateOneOf(opts.commit, 'options.commit', ['auto', 'manual'] as const);
    const poll = opts.pollInterval === undefined ? DEFAULT_POLL_MS : validateInteger(opts.pollInterval, 'options.pollInterval', 1, 2 ** 31 - 1);
    let from: 'start' | 'end' | number = 'start';
    if (opts.from !== undefined) {
      from = typeof opts.from === 'number' ? validateInteger(opts.from, 'options.from', 0) : validateOneOf(opts.from, 'options.from', ['start', 'end'] as const);
    }
    const storeOpt = opts.offsetStore;
    if (storeOpt !== undefined && storeOpt !== false && typeof storeOpt !== 'string') {
      if (storeOpt === null || typeof storeOpt !== 'object' || typeof storeOpt.load !== 'function' || typeof storeOpt.save !== 'function') {
        throw typeError('ERR_INVALID_ARG_TYPE', `The option 'offsetStore' must be a path, false, or an object with load() and save()`);
      }
    }
    const codec = resolveCodec<T>(opts.codec, 'structured');
    let fd: number;
    try {
      fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_CREAT, mode);
    } catch (err) {
      throw systemError(err, 'file channel', path, path);
    }
    const ch = new FileChannel<T>(path, fd, false, codec, max, fsync);
    try {
      ch.#startReading(storeOpt, from, commit === 'manual', poll, mode);
    } catch (err) {
      ch.destroy();
      throw err;
    }
    return ch;
  }

  /** The file's path. */
  get path(): string {
    return this.#path;
  }

  /**
   * Reader: the offset up to which every message has been received (what
   * `commit()` stores). Writer: the end of its last append (or -1).
   */
  get offset(): number {
    return this.#writer ? this.#knownEnd : this.#committed;
  }

  // --- writing ------------------------------------------------------------

  #record(frame: Frame): Buffer {
    const n = frame.payload.length;
    const b = Buffer.allocUnsafe(FRAME_HEADER + n + TRAILER);
    writeHeader(b, 0, n, frame.type, frame.priority);
    b.set(frame.payload, FRAME_HEADER);
    b.writeUInt32LE(crc32(b.subarray(0, FRAME_HEADER + n)), FRAME_HEADER + n);
    return b;
  }

  /** Appends one record; the caller holds the lock. */
  #append(record: Buffer): void {
    const fd = this.#fd;
    let size: number;
    try {
      size = fstatSync(fd).size;
    } catch (err) {
      throw systemError(err, 'file channel', this.#path, this.#path);
    }
    let boundary = size;
    if (size !== this.#knownEnd) {
      // Someone else appended (or this writer is new): make sure the file
      // ends on a record boundary, cutting off what a dead writer left.
      const from = this.#knownEnd >= 0 && this.#knownEnd <= size ? this.#knownEnd : 0;
      boundary = lastBoundary(fd, from, size, this.label);
      if (boundary !== size) ftruncateSync(fd, boundary);
    }
    let done = 0;
    try {
      while (done < record.length) done += writeSync(fd, record, done, record.length - done);
      if (this.#fsync) fdatasyncSync(fd);
    } catch (err) {
      // A short write (ENOSPC, EFBIG): take the partial record back.
      if (done > 0) {
        try {
          ftruncateSync(fd, boundary);
        } catch {
          // the next writer cuts it off
        }
      }
      this.#knownEnd = -1;
      throw systemError(err, 'file channel', this.#path, this.#path);
    }
    this.#knownEnd = boundary + record.length;
  }

  #locked(record: Buffer): void {
    try {
      this.#append(record);
    } finally {
      native.fileUnlock(this.#fd);
    }
  }

  /** @internal */
  protected _trySend(frame: Frame): boolean {
    if (this.#isClosed) throw new ClosedError(`${this.label} is closed`);
    // Queued sends go first, in order.
    if (this.#queued > 0 || !native.fileLock(this.#fd, false)) return false;
    this.#locked(this.#record(frame));
    return true;
  }

  /** @internal */
  protected _send(frame: Frame, wait: Wait): Promise<void> {
    if (this.#isClosed) return Promise.reject(new ClosedError(`${this.label} is closed`));
    const record = this.#record(frame);
    this.#queued++;
    const run = this.#queue.then(async () => {
      try {
        for (;;) {
          // destroy() closes the descriptor at once, and its number may
          // already belong to another file: never lock or write through it then.
          if (this.#isClosed) throw new ClosedError(`${this.label} was destroyed before this send was written`);
          if (native.fileLock(this.#fd, false)) break;
          checkWait(wait);
          await new Promise((r) => setTimeout(r, LOCK_RETRY_MS));
        }
        this.#locked(record);
      } finally {
        this.#queued--;
      }
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Writes one message, blocking this thread while another writer holds the
   * file lock (meant for worker threads and short scripts).
   * Errors: as `send`, without `ERR_MULTIPROC_TIMEOUT` and `ABORT_ERR`;
   * `ERR_INVALID_STATE` while async sends of this handle are queued.
   */
  sendSync(message: T, options?: { type?: number; priority?: number }): void {
    const lock = this.#writer && !this.#isClosed && this.#queued === 0;
    // Taken blocking here, the lock is then already ours in trySend (flock locks belong to the open file).
    if (lock) native.fileLock(this.#fd, true);
    try {
      if (!this.trySend(message, options)) throw typeError('ERR_INVALID_STATE', `${this.label} has async sends queued; await them before sendSync`);
    } finally {
      if (lock && !this.#isClosed) native.fileUnlock(this.#fd);
    }
  }

  // --- reading ------------------------------------------------------------

  #startReading(storeOpt: string | OffsetStore | false | undefined, from: 'start' | 'end' | number, manual: boolean, poll: number, mode: number): void {
    this.#manual = manual;
    const st = fstatSync(this.#fd);
    if (storeOpt === undefined || typeof storeOpt === 'string') {
      this.#sidecar = new SidecarStore(storeOpt ?? `${this.#path}.offset`, st.ino, mode, this.#fsync);
      this.#store = this.#sidecar;
    } else if (storeOpt !== false) {
      this.#store = storeOpt;
    }
    let start = this.#store?.load();
    if (start !== undefined && (!Number.isSafeInteger(start) || start < 0)) {
      throw new ProtocolError(`${this.label}: the offset store returned ${String(start)}, not a byte offset`);
    }
    if (start === undefined) {
      start = from === 'start' ? 0 : from === 'end' ? lastBoundary(this.#fd, 0, st.size, this.label) : from;
    }
    this.#position = start;
    this.#committed = start;
    this.#saved = start;
    try {
      this.#watcher = watch(this.#path, { persistent: true }, () => this.#kick());
      this.#watcher.on('error', () => {
        // inotify gone (file removed, limits): the periodic re-check carries on.
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch {
      // No inotify watch available (ENOSPC: too many watches): poll only.
    }
    this.#timer = setInterval(() => this.#kick(), poll);
    if (this.#watcher === undefined) this.#timer.ref();
    else this.#timer.unref();
    this.#kick();
  }

  #kick(): void {
    if (this.#paused || this.#isClosed || this.#failed) return;
    if (this.#reading) {
      this.#again = true;
      return;
    }
    this.#reading = true;
    this.#pump().then(
      () => {
        this.#reading = false;
        if (this.#again) {
          this.#again = false;
          this.#kick();
        }
      },
      (err: Error) => {
        this.#reading = false;
        if (this.#isClosed) return;
        this.#failed = true;
        this._end(err instanceof ProtocolError ? err : (systemError(err, 'file channel', this.#path, this.#path) as Error));
      },
    );
  }

  /** Reads whole records from the position onwards and delivers them. */
  async #pump(): Promise<void> {
    let mismatchAt = -1;
    let need = 0;
    for (;;) {
      if (this.#paused || this.#isClosed) return;
      const size = fstatSync(this.#fd).size;
      const pos = this.#position;
      if (size < pos) {
        throw new ProtocolError(`${this.label}: the file shrank to ${size} bytes, below the read position ${pos}: it was truncated or replaced`);
      }
      const avail = size - pos;
      if (avail < FRAME_HEADER + TRAILER || avail < need) return;
      const chunk = await preadAsync(this.#fd, Math.min(avail, Math.max(CHUNK, need)), pos);
      if (this.#isClosed) return;
      need = 0;
      let at = 0;
      let mismatch = false;
      while (chunk.length - at >= FRAME_HEADER) {
        const h = readHeader(chunk, at, this.maxMessageSize, pos + at, this.label);
        const total = FRAME_HEADER + h.length + TRAILER;
        if (chunk.length - at < total) {
          need = total;
          break;
        }
        const body = chunk.subarray(at, at + FRAME_HEADER + h.length);
        if (crc32(body) !== chunk.readUInt32LE(at + FRAME_HEADER + h.length)) {
          mismatch = true;
          break;
        }
        this.#deliver({ payload: body.subarray(FRAME_HEADER), type: h.type, priority: h.priority }, pos + at + total);
        at += total;
        if (this.#paused) return;
      }
      if (mismatch) {
        // Perhaps read while a dead writer's partial record was being cut
        // off and replaced: read it again once before calling it damage.
        if (mismatchAt === pos + at) {
          throw new ProtocolError(`${this.label}: the record at byte ${pos + at} fails its checksum: the file is damaged`);
        }
        mismatchAt = pos + at;
        continue;
      }
      // A record larger than the chunk is read whole on the next round, once it is all there.
      if (need > 0 || chunk.length < avail) continue;
      return;
    }
  }

  #deliver(frame: Frame, end: number): void {
    this.#position = end;
    const p: Pending = { end, taken: false };
    this.#pending.set(frame, p);
    this.#order.push(p);
    this._deliver(frame);
  }

  /**
   * Every receive call passes here once its arguments are checked (receive()
   * without options first tries _takeReady): asking for the next message
   * acknowledges the ones received before.
   * @internal
   */
  protected override _checkReceiving(): void {
    super._checkReceiving();
    this.#ack();
  }

  /** @internal */
  protected override _takeReady(): Frame | undefined {
    this.#ack();
    return super._takeReady();
  }

  /**
   * Schedules storing the offset past every message received so far (auto
   * commit). Stored once per event-loop turn: a crash in between only means
   * more messages delivered again, never one lost.
   */
  #ack(): void {
    if (this.#manual || this.#store === undefined) return;
    this.#acked = this.#committed;
    if (!this.#saveScheduled && this.#acked !== this.#saved) {
      this.#saveScheduled = true;
      setImmediate(() => {
        this.#saveScheduled = false;
        if (!this.#isClosed) this.#trySave(this.#acked);
      });
    }
  }

  /**
   * Whichever receive method took it, a received record lets the offset
   * pass it, and the reader drops its hold on the record (and on the read
   * chunk the payload is a view of).
   * @internal
   */
  protected override _taken(frame: Frame): void {
    const p = this.#pending.get(frame);
    if (p === undefined) return;
    this.#pending.delete(frame);
    p.taken = true;
    // The offset can only pass messages that were all received.
    const order = this.#order;
    let i = this.#orderHead;
    while (i < order.length && order[i]!.taken) this.#committed = order[i++]!.end;
    this.#orderHead = i;
    if (i > 1024 && i * 2 > order.length) {
      this.#order = order.slice(i);
      this.#orderHead = 0;
    }
  }

  /** A failed store reaches the receivers: nobody awaits the scheduled save. */
  #trySave(offset: number): void {
    try {
      this.#save(offset);
    } catch (err) {
      this.#failed = true;
      this._end(err as Error);
    }
  }

  #save(offset: number): void {
    if (this.#store === undefined || offset === this.#saved) return;
    this.#store.save(offset);
    this.#saved = offset;
  }

  /**
   * Reader: stores the offset past every message received so far, now (with
   * `commit: 'manual'` this is the only way it is stored).
   * Errors: `ERR_INVALID_STATE` on a writer; `ERR_MULTIPROC_CLOSED`; the store's errors.
   */
  commit(): void {
    if (this.#writer) throw typeError('ERR_INVALID_STATE', `${this.label} is a writer; commit() is for readers`);
    if (this.#isClosed) throw new ClosedError(`${this.label} is closed`);
    this.#save(this.#committed);
  }

  /** @internal */
  protected _pause(): void {
    this.#paused = true;
  }

  /** @internal */
  protected _resume(): void {
    this.#paused = false;
    this.#kick();
  }

  /** @internal */
  protected override _stats(): Partial<ChannelStats> {
    if (this.#isClosed) return {};
    let size: number;
    try {
      size = fstatSync(this.#fd).size;
    } catch {
      return {};
    }
    if (this.#writer) return {};
    // Read but not yet received (the inbox), plus what the file holds past the read position.
    return { messagesQueued: this.inboxLength, bytesQueued: this.inboxBytes + Math.max(0, size - this.#position) };
  }

  // --- lifetime -----------------------------------------------------------

  #release(): void {
    this.#isClosed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    try {
      closeSync(this.#fd);
    } catch {
      // already closed
    }
    this.#sidecar?.close();
  }

  /** @internal */
  protected async _close(): Promise<void> {
    if (this.#writer) {
      // Accepted sends are written first.
      await this.#queue;
      this.#release();
      return;
    }
    this._failReceivers(new ClosedError(`${this.label} is closed`));
    try {
      // Closing acknowledges every message received.
      if (!this.#manual) this.#save(this.#committed);
    } finally {
      this.#release();
    }
  }

  /** @internal */
  protected _destroy(err: Error | undefined): void {
    this._failReceivers(err ?? new ClosedError(`${this.label} was destroyed`));
    this.#release();
  }
}
