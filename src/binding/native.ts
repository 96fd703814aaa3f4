/**
 * Typed view of everything the C++ addon exports. This file and `load.ts` are
 * the only TypeScript that touches the addon; the rest of the library calls
 * through `native`, after validating its arguments.
 *
 * @internal
 */
import { loadAddon } from './load.js';

/** Results of `mutexTryLock` / `mutexLock` (see src/native/mutex.cc). @internal */
export const enum LockResult {
  WaitWord = 0,
  Acquired = 1,
  AcquiredOwnerDied = 2,
  WaitHandoff = 3,
  Deadlock = -1,
  TimedOut = -2,
  NotOwner = -3,
}

/** Flags of `mutexTryLock`. @internal */
export const enum LockFlags {
  Woken = 1,
  Starving = 2,
  CheckHandoff = 4,
  NoSleep = 8,
}

/** Results of `futexWait`. @internal */
export const enum WaitResult {
  Woken = 0,
  NotEqual = 1,
  TimedOut = 2,
}

/** @internal */
export interface NativeAddon {
  // mapping.cc
  /** mmap(2) of `length` bytes of `fd` at `offset` (page-aligned), as a SharedArrayBuffer. */
  map(fd: number, offset: number, length: number, prot: number, flags: number): SharedArrayBuffer;
  /**
   * Detaches the mappings from their objects; the buffers then alias private
   * zero pages. Returns false, releasing none, while any thread of the
   * process holds a mutex inside one of them.
   */
  release(...buffers: SharedArrayBuffer[]): boolean;
  msync(buffer: SharedArrayBuffer, offset: number, length: number, flags: number): void;
  /** memmove of `length` bytes between two views (either may be shared); bounds are checked. */
  copyBytes(dst: ArrayBufferView, dstOffset: number, src: ArrayBufferView, srcOffset: number, length: number): void;
  /** Largest buffer the engine can hold; larger regions are mapped by windows. */
  readonly MAX_BUFFER: number;
  readonly PAGE_SIZE: number;
  readonly PROT_READ: number;
  readonly PROT_WRITE: number;
  readonly MAP_SHARED: number;
  readonly MAP_PRIVATE: number;
  readonly MAP_NORESERVE: number;
  readonly MAP_POPULATE: number;
  readonly MS_ASYNC: number;
  readonly MS_SYNC: number;
  readonly MS_INVALIDATE: number;

  // shm.cc
  shmOpen(name: string, oflag: number, mode: number): number;
  shmUnlink(name: string): void;
  readonly O_RDONLY: number;
  readonly O_RDWR: number;
  readonly O_CREAT: number;
  readonly O_EXCL: number;

  // futex.cc
  /** Blocks the calling thread. timeoutMs < 0 waits forever. */
  futexWait(buffer: SharedArrayBuffer, offset: number, expected: number, timeoutMs: number): WaitResult;
  /** count < 0 wakes all. Returns how many were woken. */
  futexWake(buffer: SharedArrayBuffer, offset: number, count: number): number;
  /** 0: registered, `id` will be passed to the callback once; 1: value already differs. */
  futexWaitAsync(buffer: SharedArrayBuffer, offset: number, expected: number, id: number): 0 | 1;
  futexCancelAsync(id: number): boolean;
  futexSetCallback(callback: (ids: number[]) => void): void;

  // bell.cc (this environment's doorbell: an autobound abstract datagram socket the event loop polls)
  /** Opens the doorbell once (later calls return the same id); `callback` gets the tokens rung, or null once if the socket fails. Unreferenced at first. */
  bellOpen(callback: (tokens: number[] | null) => void): number;
  /** Whether the doorbell keeps the event loop alive. */
  bellRef(on: boolean): void;
  /** Rings doorbell `id` with `token`: 0, or an errno (ECONNREFUSED: gone; EAGAIN: its queue is full). */
  bellRing(id: number, token: number): number;

  // mutex.cc
  mutexTryLock(buffer: SharedArrayBuffer, offset: number, flags: number): LockResult;
  mutexLock(buffer: SharedArrayBuffer, offset: number, timeoutMs: number, spins: number): LockResult;
  mutexUnlock(buffer: SharedArrayBuffer, offset: number): LockResult;
  mutexGiveUp(buffer: SharedArrayBuffer, offset: number): void;
  /** Mutexes held inside `buffer` by any thread of the process. */
  mutexHeldIn(buffer: SharedArrayBuffer): number;
  threadInfo(): { tid: number; robust: boolean };
  readonly MUTEX_SIZE: number;

  // mqueue.cc (descriptors are opened O_NONBLOCK; messages carry an 8-byte header)
  /** mq_open. `maxmsg` 0 uses the kernel's defaults. Returns the descriptor. */
  mqOpen(name: string, oflag: number, mode: number, maxmsg: number, msgsize: number): number;
  mqClose(mqd: number): void;
  mqUnlink(name: string): void;
  /** out = [mq_maxmsg, mq_msgsize, mq_curmsgs]. */
  mqGetattr(mqd: number, out: Int32Array): void;
  /** false when the queue is full. */
  mqSend(mqd: number, type: number, payload: Uint8Array, priority: number): boolean;
  /** null when empty; out = [type (0: no header), priority, raw length]. */
  mqReceive(mqd: number, msgsize: number, out: Int32Array): Buffer | null;
  /** A uv_poll_t on the descriptor; `callback` gets UV_READABLE/UV_WRITABLE bits, or a negative libuv error. */
  mqWatch(fd: number, callback: (events: number) => void): number;
  /** Events to watch; 0 stops (and lets the loop exit). */
  mqWatchSet(id: number, events: number): void;
  mqWatchClose(id: number): void;
  readonly MQ_PRIO_MAX: number;
  readonly MQ_HEADER: number;
  readonly O_WRONLY: number;
  readonly UV_READABLE: number;
  readonly UV_WRITABLE: number;

  // sysv_msg.cc (always IPC_NOWAIT; mtype = type * MSG_PRIORITIES + (MSG_PRIORITIES - 1 - priority))
  msgGet(key: number, flags: number): number;
  msgRemove(id: number): void;
  /** out = [key, mode, uid, qnum, cbytes, qbytes, lspid, lrpid, stime, rtime, ctime, cuid] (times in seconds). */
  msgStat(id: number, out: Float64Array): void;
  msgSetQbytes(id: number, qbytes: number): void;
  /** false when the queue is full. */
  msgSend(id: number, type: number, priority: number, payload: Uint8Array): boolean;
  /**
   * Takes the message `selector` chooses (System V rule, priorities from the
   * bitmap at `bitmapOffset`); null when none. out = [type (0: foreign mtype), priority, mtype].
   */
  msgReceive(id: number, selector: number, bufsize: number, bitmap: SharedArrayBuffer, bitmapOffset: number, out: Float64Array): Buffer | null;
  readonly MSG_PRIORITIES: number;
  readonly MSG_BITMAP_BYTES: number;
  readonly IPC_CREAT: number;
  readonly IPC_EXCL: number;

  // process.cc
  /** prctl(PR_SET_PDEATHSIG, sig); returns getppid() right after, to detect a parent that died first. */
  setParentDeathSignal(sig: number): number;
  /** prctl(PR_GET_PDEATHSIG): 0 when none is set. */
  getParentDeathSignal(): number;
  /** Sets or clears FD_CLOEXEC on `fd`. */
  setCloseOnExec(fd: number, on: boolean): void;
  // fd.cc
  /** pipe2(O_CLOEXEC): [readFd, writeFd]. */
  pipe(): [number, number];
  /** mkfifo with exactly `mode` (chmod after, whatever the umask). */
  mkfifo(path: string, mode: number): void;
  /** open(path, accmode | O_NONBLOCK | O_CLOEXEC | O_NOCTTY). */
  openFifo(path: string, accmode: number): number;
  /** fcntl(F_GETFL) & O_ACCMODE. */
  /** close(2) of a descriptor this addon opened (fs.closeSync would make a worker thread warn). */
  closeFd(fd: number): void;
  fdAccessMode(fd: number): number;
  /** Bytes in the pipe not yet read (FIONREAD). */
  pipeQueued(fd: number): number;
  /** The pipe's buffer size (F_GETPIPE_SZ). */
  pipeCapacity(fd: number): number;
  /** F_SETPIPE_SZ; returns the size the kernel chose. */
  setPipeCapacity(fd: number, size: number): number;
  /** read(2) into `view`: bytes read, 0 at the end of the stream, -1 when nothing is ready (EAGAIN). */
  readInto(fd: number, view: ArrayBufferView): number;
  /** SO_SNDBUF of a socket: asks for `bytes`, returns what the kernel granted (clamped to wmem_max, doubled). */
  setSendBuffer(fd: number, bytes: number): number;
  /** One writev(2) of `head` then `body`: bytes written, -1 when nothing could be (EAGAIN). */
  writeFrom(fd: number, head: ArrayBufferView, body: ArrayBufferView): number;
  /** Writes of at most this many bytes to a pipe are atomic. */
  readonly PIPE_BUF: number;
  // socket.cc
  /**
   * socket + fchmod(mode) + bind + listen of a Unix stream socket; returns the
   * listening fd (non-blocking, close-on-exec). A path starting with NUL is abstract.
   */
  unixListen(path: string, mode: number, backlog: number): number;
  /** A connected Unix stream socket (non-blocking, close-on-exec); abstract names at their exact length. */
  unixConnect(path: string): number;

  // file_lock.cc
  /**
   * flock(fd, LOCK_EX), or LOCK_SH when `shared`; without LOCK_NB when `wait`.
   * False when another open file description holds a conflicting lock.
   */
  fileLock(fd: number, wait: boolean, shared?: boolean): boolean;
  fileUnlock(fd: number): void;
}

/** The loaded addon. @internal */
export const native: NativeAddon = loadAddon() as NativeAddon;
