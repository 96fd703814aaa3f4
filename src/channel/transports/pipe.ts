/**
 * Anonymous pipes (pipe(2)) as channels: between a parent and the child it
 * spawns, through an extra file descriptor in the child's stdio array.
 *
 * Each end is a StreamChannel over `net.Socket({ fd })`: libuv opens a pipe
 * descriptor with uv_pipe_open, makes it non-blocking and polls it on the
 * event loop, so a pipe costs no thread.
 */
import { closeSync, fstatSync } from 'node:fs';
import { Socket } from 'node:net';
import { getSystemErrorMap } from 'node:util';
import { native } from '../../binding/native.js';
import { IncompatibleError, systemError, typeError, validateInteger, validateOneOf, validateOptions } from '../../errors.js';
import { validateMaxMessageSize, type BaseChannelInit, type ChannelOptions } from '../base-channel.js';
import type { BytesReceiver, Channel, ChannelStats, ChannelTraits, Message, ReceiveIntoOptions, ReceiveOptions, Receiver, SendOptions, Sender } from '../channel.js';
import { resolveCodec, type CodecOption } from '../codec.js';
import { StreamChannel } from '../stream-channel.js';

/** Which end of a pipe: the one you read from, or the one you write to. */
export type PipeEnd = 'reader' | 'writer';
const pipeEnds: readonly PipeEnd[] = ['reader', 'writer'];

/** Which side of a {@link DuplexPipe}. */
export type DuplexSide = 'a' | 'b';
const duplexSides: readonly DuplexSide[] = ['a', 'b'];

/**
 * How messages are delimited on the bytes:
 * - `'frames'` (default): a 16-byte header per message; boundaries, type and
 *   priority are kept.
 * - `'none'`: plain bytes, for programs that know no framing (`echo`, `cat`,
 *   a shell's `>&3`). Each chunk read is one message (a chunk is whatever
 *   the kernel had: boundaries between sends are not kept), each message is
 *   written as is, and type and priority are not carried (every chunk
 *   arrives as type 1, priority 0). The codec defaults to `'raw'`.
 */
export type Framing = 'frames' | 'none';
const framings: readonly Framing[] = ['frames', 'none'];

/** Options of a pipe end (`pipe.reader()`, `pipe.writer()`, `Pipe.fromFd()`, ...). */
export interface PipeChannelOptions<T> extends ChannelOptions<T> {
  /** See {@link Framing}. Default `'frames'`. */
  framing?: Framing;
}

/** Options of {@link Pipe.create} and {@link Pipe.duplex}. */
export interface PipeCreateOptions {
  /**
   * Kernel buffer of each pipe, in bytes (F_SETPIPE_SZ). The kernel rounds
   * it up to a power-of-two number of pages. Default: the system's (64 KiB).
   * Above /proc/sys/fs/pipe-max-size (1 MiB) an unprivileged process gets EPERM.
   */
  capacity?: number;
}

const PIPE_TRAITS: ChannelTraits = Object.freeze({
  mechanism: 'pipe',
  medium: 'file',
  unit: 'stream',
  direction: 'one-way',
  scope: 'same-host',
  use: 'parent-child one-way streaming',
});

const DUPLEX_TRAITS: ChannelTraits = Object.freeze({ ...PIPE_TRAITS, direction: 'two-way' as const, use: 'parent-child two-way messaging over a pair of pipes' });

const channelOptionKeys = ['codec', 'maxMessageSize', 'framing'] as const;

/** Validated channel options. @internal */
export interface ResolvedChannelOptions<T> {
  codec: import('../codec.js').Codec<T>;
  maxMessageSize: number;
  raw: boolean;
}

/** Checks the options every pipe end takes. @internal */
export function resolveChannelOptions<T>(opts: Partial<PipeChannelOptions<T>>, maxLimit?: number): ResolvedChannelOptions<T> {
  const framing = opts.framing === undefined ? 'frames' : validateOneOf(opts.framing, 'options.framing', framings);
  const raw = framing === 'none';
  const codec = resolveCodec<T>(opts.codec as CodecOption<T> | undefined, raw ? 'raw' : 'structured');
  const maxMessageSize = validateMaxMessageSize(opts.maxMessageSize, maxLimit);
  return { codec, maxMessageSize, raw };
}

/** @internal */
export interface PipeChannelInit<T> extends Omit<BaseChannelInit<T>, 'canSend' | 'canReceive'> {
  fd: number;
  end: PipeEnd;
  raw: boolean;
  /** Coalesced writes stay at or below this size. */
  batchSize?: number;
  /** The socket's writable high-water mark (1: never more than one write pending). */
  writableHighWaterMark?: number;
  /** More descriptors this channel owns; closed with it. */
  extraFds?: number[];
  /** Called once, when the channel's stream has closed. */
  onClosed?: () => void;
}

/** A writer grows its pipe up to this many bytes for large messages (the default pipe-max-size). */
const GROW_MAX = 1 << 20;

/**
 * One end of a pipe or FIFO as a channel: a StreamChannel over a net.Socket
 * that owns the descriptor (closing the channel closes it).
 * @internal
 */
export class PipeChannel<T> extends StreamChannel<T> {
  readonly #fd: number;
  readonly #reader: boolean;

  /** Wraps `fd`; on failure nothing is closed (the caller decides). */
  constructor(init: PipeChannelInit<T>) {
    const reader = init.end === 'reader';
    let stream: Socket;
    try {
      stream = new Socket({
        fd: init.fd,
        readable: reader,
        writable: !reader,
        ...(init.writableHighWaterMark === undefined ? {} : { writableHighWaterMark: init.writableHighWaterMark }),
      } as ConstructorParameters<typeof Socket>[0]);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'EEXIST') {
        (err as Error).message = `EEXIST: ${init.label}: this process already uses that descriptor (another channel or net.Socket wraps it)`;
        throw err;
      }
      throw fileError(err, 'pipe', `fd ${init.fd}`);
    }
    super({
      traits: init.traits,
      codec: init.codec,
      maxMessageSize: init.maxMessageSize,
      label: init.label,
      canSend: !reader,
      canReceive: reader,
      stream,
      raw: init.raw,
      readInto: native.readInto,
      writeFrom: native.writeFrom,
      ...(init.batchSize === undefined ? {} : { batchSize: init.batchSize }),
    });
    this.#fd = init.fd;
    this.#reader = reader;
    const extra = init.extraFds ?? [];
    stream.once('close', () => {
      for (const fd of extra) closeQuietly(fd);
      init.onClosed?.();
    });
  }

  /** The descriptor, while open. */
  get fd(): number {
    return this.#fd;
  }

  /** The pipe's capacity as last seen or set; -1 once growing it failed. */
  #capacity = 0;

  /**
   * A message larger than the pipe crosses it in pieces of its capacity (64
   * KiB by default), each a wake-up of the reader and then of this writer.
   * Grow the pipe to hold it, up to GROW_MAX, best effort: above
   * /proc/sys/fs/pipe-max-size, or past the user's allowance of pipe
   * buffers, the kernel refuses and the pipe stays as it is.
   * @internal
   */
  protected override _beforeLargeWrite(bytes: number): void {
    if (this.#reader || this.#capacity < 0 || bytes <= this.#capacity) return;
    try {
      if (this.#capacity === 0) {
        this.#capacity = native.pipeCapacity(this.#fd);
        if (bytes <= this.#capacity) return;
      }
      if (this.#capacity >= GROW_MAX) return;
      this.#capacity = native.setPipeCapacity(this.#fd, Math.min(GROW_MAX, 2 ** Math.ceil(Math.log2(bytes))));
    } catch {
      this.#capacity = -1;
    }
  }

  /** Graceful close; resolves once the descriptor itself is closed. @internal */
  protected override async _close(): Promise<void> {
    await super._close();
    // A stream that ended by itself is destroyed but may not have closed its
    // descriptor yet; until it has, this end still counts as open (a FIFO
    // writer could still connect to it).
    if (!this.stream.closed) await new Promise<void>((resolve) => this.stream.once('close', () => resolve()));
  }

  /** @internal */
  protected override _stats(): Partial<ChannelStats> {
    if (this.stream.destroyed) return {};
    let inKernel: number;
    let capacity: number;
    try {
      inKernel = native.pipeQueued(this.#fd);
      capacity = native.pipeCapacity(this.#fd);
    } catch {
      return {};
    }
    const local = this.#reader ? this.inboxBytes : this.stream.writableLength;
    return { bytesQueued: inKernel + local, capacityBytes: capacity };
  }
}

/**
 * A node:fs or addon failure in the library's system-error shape. node:fs
 * messages already carry code, syscall and path: keep only the description,
 * so the message does not say them twice.
 * @internal
 */
export function fileError(err: unknown, kind: string, name: string, path?: string): unknown {
  const e = err as { code?: unknown; errno?: unknown; syscall?: unknown };
  if (err instanceof Error && typeof e.syscall === 'string' && typeof e.errno === 'number' && err.message.startsWith(`${String(e.code)}: `)) {
    const description = getSystemErrorMap().get(e.errno)?.[1];
    if (description !== undefined) err.message = description;
  }
  return systemError(err, kind, name, path);
}

/** @internal */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed: the goal is reached
  }
}

/** Checks that `fd` is an open pipe or FIFO usable as `end`. @internal */
export function checkPipeFd(fd: number, end: PipeEnd, what: string): void {
  let isFifo: boolean;
  let kind: string;
  try {
    const st = fstatSync(fd);
    isFifo = st.isFIFO();
    kind = st.isSocket() ? 'a socket' : st.isFile() ? 'a regular file' : st.isCharacterDevice() ? 'a character device' : st.isDirectory() ? 'a directory' : 'not a pipe';
  } catch (err) {
    throw fileError(err, 'pipe', what);
  }
  if (!isFifo) {
    throw new IncompatibleError(`${what} is ${kind}, not a pipe: pass the descriptor a Pipe gave the child (childEnd) or a FIFO's`);
  }
  const acc = native.fdAccessMode(fd);
  if (end === 'reader' && acc === native.O_WRONLY) {
    throw typeError('ERR_INVALID_ARG_VALUE', `${what} is open for writing only (the write end of its pipe): open it as 'writer'`);
  }
  if (end === 'writer' && acc === native.O_RDONLY) {
    throw typeError('ERR_INVALID_ARG_VALUE', `${what} is open for reading only (the read end of its pipe): open it as 'reader'`);
  }
}

function validateFd(fd: unknown, what: string): number {
  // 0, 1 and 2 belong to process.stdin/stdout/stderr; wrapping them twice breaks both.
  return validateInteger(fd, what, 3, 2 ** 31 - 1);
}

function newPipe(capacity: number | undefined): [number, number] {
  let fds: [number, number];
  try {
    fds = native.pipe();
  } catch (err) {
    throw systemError(err, 'pipe', 'pipe2');
  }
  if (capacity !== undefined) {
    try {
      native.setPipeCapacity(fds[1], capacity);
    } catch (err) {
      closeQuietly(fds[0]);
      closeQuietly(fds[1]);
      throw systemError(err, 'pipe', `pipe (capacity ${capacity})`);
    }
  }
  return fds;
}

function validateCreateOptions(options: unknown): number | undefined {
  const opts = validateOptions<PipeCreateOptions>(options, 'options', ['capacity']);
  return opts.capacity === undefined ? undefined : validateInteger(opts.capacity, 'options.capacity', 1, 2 ** 31 - 1);
}

function channelOptions<T>(options: unknown): ResolvedChannelOptions<T> {
  return resolveChannelOptions<T>(validateOptions<PipeChannelOptions<T>>(options, 'options', channelOptionKeys));
}

/** Wraps `fd`. When `owned`, a failure closes it; a caller's descriptor is left as it was. */
function wrap<T>(fd: number, end: PipeEnd, o: ResolvedChannelOptions<T>, what: string, owned: boolean): PipeChannel<T> {
  try {
    return new PipeChannel<T>({ fd, end, traits: PIPE_TRAITS, label: `pipe ${end} (${what})`, ...o });
  } catch (err) {
    if (owned) closeQuietly(fd);
    throw err;
  }
}

/** Wraps a read and a write descriptor into one two-way channel. */
function wrapDuplex<T>(readFd: number, writeFd: number, o: ResolvedChannelOptions<T>, what: string, owned: boolean): DuplexPipeChannel<T> {
  let reader: PipeChannel<T>;
  try {
    reader = wrap<T>(readFd, 'reader', o, `${what}, fd ${readFd}`, owned);
  } catch (err) {
    if (owned) closeQuietly(writeFd);
    throw err;
  }
  let writer: PipeChannel<T>;
  try {
    writer = wrap<T>(writeFd, 'writer', o, `${what}, fd ${writeFd}`, owned);
  } catch (err) {
    // Half a channel is no use: the reader's socket owns its descriptor now and closes it.
    reader.destroy();
    throw err;
  }
  return new DuplexPipeChannel<T>(reader, writer);
}

/**
 * An anonymous pipe (pipe(2)): one-way bytes from a write end to a read end,
 * framed into messages. Between a parent and the child it spawns: the child
 * gets one end as an extra file descriptor (fd 3 and up, never
 * stdin/stdout/stderr), the parent keeps the other.
 *
 * Both descriptors are created close-on-exec, so other children never
 * inherit them; only the end passed in a child's `stdio` array reaches it.
 *
 * @example
 * ```ts
 * // parent
 * const pipe = Pipe.create();
 * const child = spawn(process.execPath, ['child.js'], {
 *   stdio: ['inherit', 'inherit', 'inherit', pipe.childEnd('writer')], // fd 3 in the child
 * });
 * const reader = pipe.reader();
 * for await (const m of reader) console.log(m); // ends when the child closes or exits
 *
 * // child.js
 * const writer = Pipe.fromFd(3, 'writer');
 * await writer.send({ hello: 'parent' });
 * await writer.close();
 * ```
 */
export class Pipe {
  #readFd: number | undefined;
  #writeFd: number | undefined;
  #closed = false;

  private constructor(readFd: number, writeFd: number) {
    this.#readFd = readFd;
    this.#writeFd = writeFd;
  }

  /**
   * Creates a pipe. Its two descriptors stay with this object until they
   * are taken by {@link Pipe.reader}, {@link Pipe.writer} or
   * {@link Pipe.childEnd}; {@link Pipe.close} closes those not taken.
   *
   * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`,
   * `ERR_OUT_OF_RANGE` (bad options); system errors `EMFILE`, `ENFILE`,
   * `EPERM` (a `capacity` above the system's limit).
   */
  static create(options?: PipeCreateOptions): Pipe {
    const capacity = validateCreateOptions(options);
    const [r, w] = newPipe(capacity);
    return new Pipe(r, w);
  }

  /**
   * Creates two pipes, one each way, that together make a two-way channel
   * (as Python's `multiprocessing.Pipe()` does).
   *
   * Errors: as {@link Pipe.create}.
   */
  static duplex(options?: PipeCreateOptions): DuplexPipe {
    const capacity = validateCreateOptions(options);
    const ab = newPipe(capacity);
    let ba: [number, number];
    try {
      ba = newPipe(capacity);
    } catch (err) {
      closeQuietly(ab[0]);
      closeQuietly(ab[1]);
      throw err;
    }
    return new DuplexPipe(ab, ba);
  }

  /**
   * In a child: the pipe end it was given as descriptor `fd` (its index in
   * the parent's `stdio` array), as a channel that owns the descriptor.
   *
   * Errors: `ERR_OUT_OF_RANGE` (`fd` below 3 or not an integer),
   * `ERR_INVALID_ARG_VALUE` (an unknown end or option, or a descriptor open
   * in the other direction), `ERR_INVALID_ARG_TYPE`; `EBADF` (no such
   * descriptor); `ERR_MULTIPROC_INCOMPATIBLE` (the descriptor is not a pipe);
   * `EEXIST` (this process already wraps it).
   */
  static fromFd<T = unknown>(fd: number, end: 'reader', options?: PipeChannelOptions<T>): Receiver<T> & BytesReceiver;
  static fromFd<T = unknown>(fd: number, end: 'writer', options?: PipeChannelOptions<T>): Sender<T>;
  static fromFd<T = unknown>(fd: number, end: PipeEnd, options?: PipeChannelOptions<T>): Receiver<T> | Sender<T>;
  static fromFd<T = unknown>(fd: number, end: PipeEnd, options?: PipeChannelOptions<T>): Receiver<T> | Sender<T> {
    validateFd(fd, 'fd');
    validateOneOf(end, 'end', pipeEnds);
    const o = channelOptions<T>(options);
    checkPipeFd(fd, end, `fd ${fd}`);
    return wrap<T>(fd, end, o, `fd ${fd}`, false);
  }

  /**
   * In a child: the two-way channel made of the ends of a {@link DuplexPipe}
   * it was given (see {@link DuplexPipe.childEnd}).
   *
   * Errors: as {@link Pipe.fromFd}; `ERR_INVALID_ARG_VALUE` when both
   * descriptors are the same.
   */
  static fromFds<T = unknown>(readFd: number, writeFd: number, options?: PipeChannelOptions<T>): Channel<T> & BytesReceiver {
    validateFd(readFd, 'readFd');
    validateFd(writeFd, 'writeFd');
    if (readFd === writeFd) throw typeError('ERR_INVALID_ARG_VALUE', `readFd and writeFd must differ. Received ${readFd} for both`);
    const o = channelOptions<T>(options);
    checkPipeFd(readFd, 'reader', `fd ${readFd}`);
    checkPipeFd(writeFd, 'writer', `fd ${writeFd}`);
    return wrapDuplex<T>(readFd, writeFd, o, 'inherited', false);
  }

  /** The read end's descriptor in this process, or `undefined` once taken or closed. */
  get readFd(): number | undefined {
    return this.#readFd;
  }

  /** The write end's descriptor in this process, or `undefined` once taken or closed. */
  get writeFd(): number | undefined {
    return this.#writeFd;
  }

  /** True after {@link Pipe.close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The read end, as a channel in this process. Each end is taken once.
   * The loop `for await (const m of reader)` ends when every write end is
   * closed (the writer closed, or the child holding it exited).
   *
   * Errors: `ERR_INVALID_STATE` (the end was taken already, or the pipe is
   * closed), option errors.
   */
  reader<T = unknown>(options?: PipeChannelOptions<T>): Receiver<T> & BytesReceiver {
    const o = channelOptions<T>(options);
    const fd = this.#take('reader');
    return wrap<T>(fd, 'reader', o, `fd ${fd}`, true);
  }

  /**
   * The write end, as a channel in this process. Each end is taken once.
   *
   * Errors: as {@link Pipe.reader}. Sending after the read end is gone
   * fails with `ERR_MULTIPROC_CLOSED` (its `cause` is the kernel's `EPIPE`).
   */
  writer<T = unknown>(options?: PipeChannelOptions<T>): Sender<T> {
    const o = channelOptions<T>(options);
    const fd = this.#take('writer');
    return wrap<T>(fd, 'writer', o, `fd ${fd}`, true);
  }

  /**
   * Gives an end to a child: returns its descriptor, to place in the
   * `stdio` array of `child_process.spawn` or `fork` (its index there is its
   * number in the child, 3 or more).
   *
   * This process's copy is closed when the current synchronous code has
   * finished (process.nextTick), by which time `spawn` has duplicated it
   * into the child. So call it while building the `stdio` array, in the same
   * synchronous block as `spawn` (no `await` in between). Closing the copy
   * is what lets the other end see the end of the stream when the child
   * exits.
   *
   * Errors: `ERR_INVALID_ARG_VALUE` (unknown end), `ERR_INVALID_STATE` (the
   * end was taken already, or the pipe is closed).
   */
  childEnd(end: PipeEnd): number {
    validateOneOf(end, 'end', pipeEnds);
    const fd = this.#take(end);
    process.nextTick(closeQuietly, fd);
    return fd;
  }

  /** Closes the descriptors not taken yet. Idempotent. Channels already taken stay open. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of [this.#readFd, this.#writeFd]) if (fd !== undefined) closeQuietly(fd);
    this.#readFd = undefined;
    this.#writeFd = undefined;
  }

  /** Same as {@link Pipe.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #take(end: PipeEnd): number {
    if (this.#closed) throw typeError('ERR_INVALID_STATE', 'the pipe is closed');
    const fd = end === 'reader' ? this.#readFd : this.#writeFd;
    if (fd === undefined) throw typeError('ERR_INVALID_STATE', `the ${end} end of this pipe was taken already (each end is taken once)`);
    if (end === 'reader') this.#readFd = undefined;
    else this.#writeFd = undefined;
    return fd;
  }
}

/**
 * Two pipes, one each way: a two-way channel between sides `'a'` and `'b'`.
 * Typically the parent opens side `'a'` and gives side `'b'` to a child.
 *
 * @example
 * ```ts
 * // parent
 * const pipes = Pipe.duplex();
 * const child = spawn(process.execPath, ['child.js'], {
 *   stdio: ['inherit', 'inherit', 'inherit', ...pipes.childEnd('b')], // fds 3 (read) and 4 (write)
 * });
 * const channel = pipes.open('a');
 * await channel.send('ping');
 * console.log(await channel.receive()); // 'pong'
 *
 * // child.js
 * const channel = Pipe.fromFds(3, 4);
 * await channel.send((await channel.receive()) === 'ping' ? 'pong' : '?');
 * ```
 */
export class DuplexPipe {
  // [readFd, writeFd] of each side, undefined once taken.
  #sides: Record<DuplexSide, [number, number] | undefined>;
  #closed = false;

  /** @internal */
  constructor(ab: [number, number], ba: [number, number]) {
    this.#sides = { a: [ba[0], ab[1]], b: [ab[0], ba[1]] };
  }

  /** True after {@link DuplexPipe.close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Side `side` as a two-way channel in this process. Each side is taken once.
   * Errors: `ERR_INVALID_STATE` (taken already, or closed), argument errors.
   */
  open<T = unknown>(side: DuplexSide, options?: PipeChannelOptions<T>): Channel<T> & BytesReceiver {
    validateOneOf(side, 'side', duplexSides);
    const o = channelOptions<T>(options);
    const [r, w] = this.#take(side);
    return wrapDuplex<T>(r, w, o, `side ${side}`, true);
  }

  /**
   * Gives side `side` to a child: `[readFd, writeFd]`, to spread into the
   * `stdio` array (the child then calls `Pipe.fromFds(3, 4)` if they land at
   * indexes 3 and 4). This process's copies are closed when the current
   * synchronous code has finished, as with {@link Pipe.childEnd}.
   * Errors: as {@link DuplexPipe.open}.
   */
  childEnd(side: DuplexSide): [number, number] {
    validateOneOf(side, 'side', duplexSides);
    const fds = this.#take(side);
    process.nextTick(() => fds.forEach(closeQuietly));
    return [fds[0], fds[1]];
  }

  /** Closes the descriptors of the sides not taken yet. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const side of duplexSides) this.#sides[side]?.forEach(closeQuietly);
    this.#sides = { a: undefined, b: undefined };
  }

  /** Same as {@link DuplexPipe.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #take(side: DuplexSide): [number, number] {
    if (this.#closed) throw typeError('ERR_INVALID_STATE', 'the duplex pipe is closed');
    const fds = this.#sides[side];
    if (fds === undefined) throw typeError('ERR_INVALID_STATE', `side '${side}' of this duplex pipe was taken already (each side is taken once)`);
    this.#sides[side] = undefined;
    return fds;
  }
}

/** A two-way channel over a reading and a writing one-way channel. @internal */
class DuplexPipeChannel<T> implements Channel<T>, BytesReceiver {
  readonly traits: ChannelTraits = DUPLEX_TRAITS;
  readonly #reader: PipeChannel<T>;
  readonly #writer: PipeChannel<T>;
  #closing: Promise<void> | undefined;

  constructor(reader: PipeChannel<T>, writer: PipeChannel<T>) {
    this.#reader = reader;
    this.#writer = writer;
  }

  get maxMessageSize(): number {
    return this.#writer.maxMessageSize;
  }

  get closed(): boolean {
    return this.#closing !== undefined || (this.#reader.closed && this.#writer.closed);
  }

  send(message: T, options?: SendOptions): Promise<void> {
    return this.#writer.send(message, options);
  }

  trySend(message: T, options?: Omit<SendOptions, 'timeout' | 'signal'>): boolean {
    return this.#writer.trySend(message, options);
  }

  receive(options?: ReceiveOptions): Promise<T> {
    return this.#reader.receive(options);
  }

  receiveMessage(options?: ReceiveOptions): Promise<Message<T>> {
    return this.#reader.receiveMessage(options);
  }

  tryReceive(options?: Pick<ReceiveOptions, 'type'>): T | undefined {
    return this.#reader.tryReceive(options);
  }

  tryReceiveInto(target: ArrayBufferView, offset?: number): number | undefined {
    return this.#reader.tryReceiveInto(target, offset);
  }

  receiveInto(target: ArrayBufferView, options?: ReceiveIntoOptions): Promise<number> {
    return this.#reader.receiveInto(target, options);
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this.#reader[Symbol.asyncIterator]();
  }

  stats(): ChannelStats {
    const r = this.#reader.stats();
    const w = this.#writer.stats();
    return {
      ...r,
      lastSendPid: w.lastSendPid,
      lastSendTime: w.lastSendTime,
      messagesSent: w.messagesSent,
      bytesSent: w.bytesSent,
    };
  }

  close(): Promise<void> {
    this.#closing ??= Promise.all([this.#writer.close(), this.#reader.close()]).then(() => undefined);
    return this.#closing;
  }

  destroy(err?: Error): void {
    this.#closing ??= Promise.resolve();
    this.#writer.destroy(err);
    this.#reader.destroy(err);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
