/**
 * The Channel contract. Every transport (pipe, FIFO, message queue, socket,
 * file, shared-memory ring, NATS) implements it and passes one conformance
 * suite (test/conformance/).
 *
 * Rules every transport keeps:
 * 1. Message boundaries are preserved: one `send` is one `receive`.
 * 2. `send` resolves when the transport has accepted the message; when it is
 *    full, `send` waits (backpressure), it never drops. `trySend` returns false instead.
 * 3. Receiving never blocks the event loop and takes no thread per channel.
 * 4. Messages larger than `maxMessageSize` are refused before anything is
 *    sent (`ERR_MULTIPROC_MESSAGE_TOO_LARGE`); a peer that announces one is
 *    a protocol error that closes that connection only.
 * 5. Every wait takes `timeout` and `signal`.
 * 6. `close()` is graceful (accepted sends are delivered) and idempotent;
 *    `destroy(err)` is immediate. Afterwards, methods fail with
 *    `ERR_MULTIPROC_CLOSED`, pending receives reject, `for await` ends.
 * 7. `type` and `priority` follow the message-queue rules (see {@link ReceiveOptions}).
 */

/** Options of `send` / `trySend`. */
export interface SendOptions {
  /**
   * Message type, a positive integer (default 1). Receivers may select by
   * type (see {@link ReceiveOptions.type}).
   */
  type?: number;
  /**
   * Priority, an integer (default 0). Higher is delivered first among the
   * messages waiting for a receiver; equal priorities keep their order.
   */
  priority?: number;
  /** Milliseconds to wait for room before `ERR_MULTIPROC_TIMEOUT` (0: send only if there is room now). */
  timeout?: number;
  /** Aborts the wait for room with `ABORT_ERR`. */
  signal?: AbortSignal;
}

/** Options of `receive`. */
export interface ReceiveOptions {
  /**
   * Which message to take, by the System V rule:
   * - omitted or `0`: the first message (highest priority first);
   * - `type > 0`: the first message of exactly that type;
   * - `type < 0`: the first message of the lowest type that is `<= -type`.
   */
  type?: number;
  /** Milliseconds to wait before `ERR_MULTIPROC_TIMEOUT` (0: take only a message that is ready now). */
  timeout?: number;
  /** Aborts the wait with `ABORT_ERR`. */
  signal?: AbortSignal;
}

/** A received message with its envelope. */
export interface Message<T> {
  data: T;
  type: number;
  priority: number;
  /** Encoded size in bytes. */
  size: number;
}

/**
 * Statistics in the spirit of System V `msqid_ds`. Fields a transport cannot
 * know are `null`.
 */
export interface ChannelStats {
  /** Messages accepted by the transport and not yet received (msg_qnum). */
  messagesQueued: number | null;
  /** Bytes of those messages (msg_cbytes). */
  bytesQueued: number | null;
  /** Capacity in bytes (msg_qbytes), or null when unbounded or unknown. */
  capacityBytes: number | null;
  /** Capacity in messages, or null. */
  capacityMessages: number | null;
  /** Pid of the last sender (msg_lspid). */
  lastSendPid: number | null;
  /** Pid of the last receiver (msg_lrpid). */
  lastReceivePid: number | null;
  /** Time of the last send (msg_stime). */
  lastSendTime: Date | null;
  /** Time of the last receive (msg_rtime). */
  lastReceiveTime: Date | null;
  /** Totals through this handle. */
  messagesSent: number;
  messagesReceived: number;
  bytesSent: number;
  bytesReceived: number;
}

/** The seeds' comparison table, as data. */
export interface ChannelTraits {
  /** Transport name: 'pipe', 'fifo', 'mqueue-posix', 'mqueue-sysv', 'mqueue-shm', 'unix', 'tcp', 'udp', 'file', 'shm-ring', 'nats'. */
  mechanism: string;
  /** What carries the data. */
  medium: 'file' | 'memory' | 'file+memory' | 'socket';
  /** What the mechanism moves natively (framing makes every one message-based). */
  unit: 'stream' | 'message' | 'page';
  direction: 'one-way' | 'two-way';
  scope: 'same-host' | 'network';
  /** When to use it, in one line. */
  use: string;
  /**
   * `false` when the transport may lose messages (UDP: rule 2's "never
   * drops" holds only while no datagram is lost). Omitted means reliable.
   */
  reliable?: boolean;
}

/** The sending side of a channel. */
export interface Sender<T> {
  readonly traits: ChannelTraits;
  readonly maxMessageSize: number;
  readonly closed: boolean;
  /**
   * Sends one message; resolves when the transport accepted it.
   * Errors: `ERR_MULTIPROC_MESSAGE_TOO_LARGE`, `ERR_MULTIPROC_TIMEOUT`,
   * `ABORT_ERR`, `ERR_MULTIPROC_CLOSED`, argument errors, system errors.
   */
  send(message: T, options?: SendOptions): Promise<void>;
  /** Sends without waiting: false when the transport is full. Errors: as `send`, without waits. */
  trySend(message: T, options?: Omit<SendOptions, 'timeout' | 'signal'>): boolean;
  stats(): ChannelStats;
  /** Graceful close: accepted messages are delivered first. Idempotent. */
  close(): Promise<void>;
  /** Immediate close; pending operations reject with `err` (or ERR_MULTIPROC_CLOSED). */
  destroy(err?: Error): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The receiving side of a channel. */
export interface Receiver<T> extends AsyncIterable<T> {
  readonly traits: ChannelTraits;
  readonly maxMessageSize: number;
  readonly closed: boolean;
  /**
   * Receives one message. Errors: `ERR_MULTIPROC_TIMEOUT`, `ABORT_ERR`,
   * `ERR_MULTIPROC_CLOSED` (closed, or the peer closed and nothing is left),
   * `ERR_MULTIPROC_PROTOCOL` (the peer sent a malformed frame), argument errors.
   */
  receive(options?: ReceiveOptions): Promise<T>;
  /** Like `receive`, with type, priority and size. */
  receiveMessage(options?: ReceiveOptions): Promise<Message<T>>;
  /**
   * Receives the message `options.type` selects if one is here now, else
   * returns `undefined` without waiting: a consumer drains what arrived
   * without a promise per message. Errors: as `receive`, without waits
   * (`ERR_MULTIPROC_CLOSED` once nothing more can come).
   */
  tryReceive(options?: Pick<ReceiveOptions, 'type'>): T | undefined;
  stats(): ChannelStats;
  close(): Promise<void>;
  destroy(err?: Error): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A two-way channel. */
export interface Channel<T> extends Sender<T>, Receiver<T> {}

/** Options of {@link BytesReceiver.receiveInto}. */
export interface ReceiveIntoOptions {
  /** Where in the target the message goes (bytes). Default 0. */
  offset?: number;
  /** Milliseconds before `ERR_MULTIPROC_TIMEOUT`. Default: no limit. */
  timeout?: number;
  signal?: AbortSignal;
}

/**
 * A receiver that copies a message's bytes into a buffer of the caller's
 * instead of allocating one per message (Python's `recv_bytes_into`): the
 * stream transports (pipes, FIFOs, Unix and TCP sockets), UDP, FileChannel,
 * NATS, MessageQueue and ShmRing. The bytes are the encoded payload, as the `raw` codec
 * would return them; there is no type selection.
 */
export interface BytesReceiver {
  /**
   * Copies the next message's bytes into `target` from `offset` (default 0)
   * and returns how many there were, or `undefined` when none is here.
   * Errors: as `tryReceive`; `ERR_MULTIPROC_MESSAGE_TOO_LARGE` when the
   * message does not fit (it stays queued, first in line; the error's `size`
   * is its length), `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE` (`offset`).
   */
  tryReceiveInto(target: ArrayBufferView, offset?: number): number | undefined;
  /** Like `tryReceiveInto`, waiting for a message. Errors: also as `receive`. */
  receiveInto(target: ArrayBufferView, options?: ReceiveIntoOptions): Promise<number>;
}
