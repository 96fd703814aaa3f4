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
  /** Detaches the mapping from its object; the buffer then aliases private zero pages. */
  release(buffer: SharedArrayBuffer): void;
  msync(buffer: SharedArrayBuffer, offset: number, length: number, flags: number): void;
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

  // mutex.cc
  mutexTryLock(buffer: SharedArrayBuffer, offset: number, flags: number): LockResult;
  mutexLock(buffer: SharedArrayBuffer, offset: number, timeoutMs: number, spins: number): LockResult;
  mutexUnlock(buffer: SharedArrayBuffer, offset: number): LockResult;
  mutexGiveUp(buffer: SharedArrayBuffer, offset: number): void;
  mutexHeldIn(buffer: SharedArrayBuffer): number;
  threadInfo(): { tid: number; robust: boolean };
  readonly MUTEX_SIZE: number;

  // file_lock.cc
  /** flock(fd, LOCK_EX), without LOCK_NB when `wait`. False when another open file description holds the lock. */
  fileLock(fd: number, wait: boolean): boolean;
  fileUnlock(fd: number): void;
}

/** The loaded addon. @internal */
export const native: NativeAddon = loadAddon() as NativeAddon;
