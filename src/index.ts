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
export { Semaphore, SemaphoreGuard } from './sync/semaphore.js';
export type { SemaphoreParams } from './sync/semaphore.js';
export { Event } from './sync/event.js';
export { Condition } from './sync/condition.js';
export { Barrier } from './sync/barrier.js';
export type { BarrierResult } from './sync/barrier.js';
export { RWLock, RWLockGuard } from './sync/rwlock.js';
export type { RWLockMode } from './sync/rwlock.js';
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
  PeerClosedError,
  codes,
} from './errors.js';
export type { SystemError } from './errors.js';
export { ShmRing, ShmRingDuplex } from './channel/transports/shm-ring.js';
export type { ShmRingCommitOptions, ShmRingCreateOptions, ShmRingMode, ShmRingOpenOptions, ShmRingRole, ShmRingSyncOptions } from './channel/transports/shm-ring.js';
export { FileChannel } from './channel/transports/file-channel.js';
export type { FileReaderOptions, FileWriterOptions, OffsetStore } from './channel/transports/file-channel.js';
