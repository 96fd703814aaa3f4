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
export type { Channel, Sender, Receiver, BytesReceiver, SendOptions, ReceiveOptions, ReceiveIntoOptions, Message, ChannelStats, ChannelTraits } from './channel/channel.js';
export { codecs, raw, json, structured, msgpack } from './channel/codec.js';
export type { Codec, CodecOption } from './channel/codec.js';
export type { ChannelOptions } from './channel/base-channel.js';
export { MessageQueue } from './mqueue/message-queue.js';
export type { MessageQueueBackend, MessageQueueCreateOptions, MessageQueueLimits, MessageQueueOpenOptions, MessageQueueStat } from './mqueue/message-queue.js';
export { spawn, ChildHandle } from './process/spawn.js';
export type { SpawnOptions, ChildExit, ChannelSpec, StreamChannelSpec, ProcessPermissions, StdioSpec } from './process/spawn.js';
export { exitReason, exitReasons } from './process/exit-reason.js';
export type { ExitReason } from './process/exit-reason.js';
export { parent, parentChannel, ready, onShutdown, ParentPort } from './process/child.js';
export type { ShutdownHandler, ParentChannelOptions } from './process/child.js';
export { registerTransport } from './process/transports.js';
export type { ChannelDescriptor, DescribeContext, OpenContext, TransportRegistration } from './process/transports.js';
export { Pipe, DuplexPipe } from './channel/transports/pipe.js';
export type { PipeEnd, DuplexSide, Framing, PipeChannelOptions, PipeCreateOptions } from './channel/transports/pipe.js';
export { NamedPipe } from './channel/transports/named-pipe.js';
export type { NamedPipeCreateOptions, NamedPipeReaderOptions, NamedPipeWriterOptions } from './channel/transports/named-pipe.js';
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
  RemoteError,
  NoSuchMethodError,
  MessageTooLargeError,
  ProtocolError,
  ProcessExitedError,
  PeerClosedError,
  SupervisorFailedError,
  WorkerExitedError,
  NatsUnavailableError,
  JetStreamError,
  codes,
} from './errors.js';
export type { SystemError } from './errors.js';
export { expose, callContext, RpcServer } from './rpc/expose.js';
export type { CallContext, ExposeOptions } from './rpc/expose.js';
export { connect, rpcClient, RpcClient } from './rpc/connect.js';
export type { CallOptions, ConnectOptions, Remote, RemoteMethod, RemoteFunction } from './rpc/connect.js';
export { defaultMessageTypes } from './rpc/protocol.js';
export type { MessageTypes, RpcChannel } from './rpc/protocol.js';
export { Socket, SocketChannel, SocketServer } from './channel/transports/socket.js';
export type { SocketConnectOptions, SocketListenOptions, SocketConnection, SocketEndpoint, RetryOptions } from './channel/transports/socket.js';
export type { SocketServerEvents } from './channel/transports/socket-server.js';
export { UdpChannel, UDP_MAX_PAYLOAD, UDP_MAX_PAYLOAD_AUTH } from './channel/transports/udp.js';
export { AuthError } from './errors.js';
export { ShmRing, ShmRingDuplex } from './channel/transports/shm-ring.js';
export type { ShmRingCommitOptions, ShmRingCreateOptions, ShmRingMode, ShmRingOpenOptions, ShmRingRole, ShmRingSyncOptions } from './channel/transports/shm-ring.js';
export { FileChannel } from './channel/transports/file-channel.js';
export type { FileReaderOptions, FileWriterOptions, OffsetStore } from './channel/transports/file-channel.js';
export { Supervisor } from './supervisor/supervisor.js';
export type {
  SupervisorOptions,
  SupervisorState,
  SupervisorSnapshot,
  SupervisorEvents,
  ChildSpec,
  ChildState,
  ChildInfo,
  ChildEvent,
  ChildExitEvent,
  RestartStrategy,
  RestartType,
  HeartbeatOptions,
} from './supervisor/supervisor.js';
export { connectRole, roleChannel, serveRole } from './supervisor/child.js';
export { Pool } from './pool/pool.js';
export type { PoolOptions, PoolStats, PoolTransport, RunOptions, MapOptions } from './pool/pool.js';
export type { LatencySummary } from './pool/histogram.js';
export { taskContext } from './pool/context.js';
export { NatsPool } from './pool/nats-pool.js';
export type { NatsPoolOptions } from './pool/nats-pool.js';
export { servePool, PoolHost } from './pool/nats-host.js';
export type { PoolHostOptions, PoolHostStats } from './pool/nats-host.js';
export type { TaskContext } from './pool/context.js';
export { listResources, statResource, cleanResources } from './resources/inspect.js';
export type { ResourceInfo, ResourceStat, ResourceKind, CleanOptions, CleanResult } from './resources/inspect.js';
export { Nats } from './nats/connection.js';
export type { NatsConnectOptions, NatsReconnectOptions, NatsState } from './nats/connection.js';
export { NatsChannel, NATS_HEADER_RESERVE } from './channel/transports/nats.js';
export type { NatsChannelOptions } from './channel/transports/nats.js';
export { JetStreamQueue } from './mqueue/jetstream.js';
export type { JetStreamQueueOptions, JetStreamQueueStat, ConsumeOptions, DeliveryInfo, QueueConsumer } from './mqueue/jetstream.js';
