/**
 * multiproc: multiprocessing and inter-process communication for Node.js.
 * Public exports only; see docs/api.md.
 */
export { SharedMemory, maxBufferSize } from './shm/shared-memory.js';
export type { CreationMode, SharedMemoryCreateOptions, SharedMemoryOpenOptions } from './shm/shared-memory.js';
export { MemoryMap } from './mmap/memory-map.js';
export type { MemoryMapAccess, MemoryMapCreateOptions, MemoryMapFlushOptions, MemoryMapOpenOptions } from './mmap/memory-map.js';
export { Mutex, MutexGuard } from './sync/mutex.js';
export type { NamedCreateOptions, WaitOptions, WaitSyncOptions } from './sync/placement.js';
export {
  IpcError,
  ClosedError,
  TimeoutError,
  AbortError,
  DeadlockError,
  NotOwnerError,
  SemaphoreOverflowError,
  BrokenBarrierError,
  SizeMismatchError,
  IncompatibleError,
  BusyError,
  NativeLoadError,
  codes,
} from './errors.js';
export type { SystemError } from './errors.js';
