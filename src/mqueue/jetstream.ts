/**
 * JetStreamQueue: the message queue of message-queue.ts, kept by NATS
 * JetStream so that producers and consumers may sit on any host.
 *
 * One queue is:
 * - a work-queue stream `MPQ_<name>` on the subjects `mpq.<name>.<type>`
 *   (a message is removed once acknowledged);
 * - one durable pull consumer `workers` that every handle shares, so each
 *   message goes to one handle at a time (many producers, many consumers);
 * - a dead-letter stream `MPQ_<name>_DEAD` on `mpq-dead.<name>`, for messages
 *   whose handler failed `maxDeliver` times.
 *
 * Types and priorities: the type is the last subject token (so tools can
 * filter on it) and the priority a header. JetStream delivers in stream
 * order; each handle takes up to `prefetch` messages and picks among those by
 * the System V rule and priority, as the POSIX backend picks among what it
 * set aside. So selection and priority hold within that window, not across
 * the whole queue; `prefetch: 1` gives strict stream order.
 *
 * Delivery: `receive()` acknowledges at once (the message is gone, as with a
 * kernel queue). `consume(handler)` acknowledges after the handler resolves
 * and asks for redelivery after a delay (nak) when it throws; a handle that
 * dies has its unacknowledged messages redelivered after `ackWait`. So
 * messages are processed at least once: a duplicate is a message whose ack
 * was lost.
 */
import { setMaxListeners } from 'node:events';
import type { Msg, Subscription } from '@nats-io/transport-node';
import type { Consumer, JetStreamClient, JetStreamManager, JsMsg, StreamInfo } from '@nats-io/jetstream';
import { loadJetStream, natsClient } from '../nats/lib.js';
import { BaseChannel, selectFrame, validateMaxMessageSize, waitFor, waitInQueue, type ChannelOptions, type TypeSelector, type Wait } from '../channel/base-channel.js';
import type { Channel, ChannelStats, ChannelTraits } from '../channel/channel.js';
import { resolveCodec, type Codec } from '../channel/codec.js';
import type { Frame } from '../channel/framing.js';
import { NATS_HEADER_RESERVE, PRIORITY_HEADER, TYPE_HEADER, natsMessageLimit } from '../channel/transports/nats.js';
import { AbortError, ClosedError, IpcError, JetStreamError, typeError, validateBoolean, validateFunction, validateInteger, validateOneOf, validateOptions, validateSignal, validateString } from '../errors.js';
import { CONNECT_KEYS, Nats, connectionFor, type NatsConnectOptions } from '../nats/connection.js';
import type { CreationMode } from '../shm/shared-memory.js';

/** Options of {@link JetStreamQueue.create} and {@link JetStreamQueue.open}. */
export interface JetStreamQueueOptions<T> extends ChannelOptions<T>, NatsConnectOptions {
  /** A connection to share; without it the queue opens its own from the connect options and closes it with itself. */
  connection?: Nats;
  /** `'openOrCreate'` (default here: queues across hosts are met, not owned), `'create'`, `'open'`, `'purgeAndCreate'`. */
  creation?: CreationMode;
  /** Copies of each message across a cluster (1 to 5, default 1). */
  replicas?: number;
  /** `'file'` (default) or `'memory'`. */
  storage?: 'file' | 'memory';
  /** Capacity in messages (stream max_msgs); a full queue makes `send` wait. Default unbounded. */
  capacity?: number;
  /** Capacity in bytes (stream max_bytes). Default unbounded. */
  capacityBytes?: number;
  /** Ms a delivered message may stay unacknowledged before it is redelivered (default 30000). */
  ackWait?: number;
  /** Deliveries of one message before it goes to the dead-letter stream (default 5). */
  maxDeliver?: number;
  /** Delay before redelivery after a failed handler, in ms: a number, or a function of the delivery count (default 1000 x 2^(n-1), at most 60000). */
  retryDelay?: number | ((deliveries: number) => number);
  /** Messages this handle fetches ahead; type selection and priority act within them (default 64). */
  prefetch?: number;
  /** Bytes of `trySend` publishes not yet stored (default 8 MiB); beyond it `trySend` says false. */
  sendWindow?: number;
}

/** Options of {@link JetStreamQueue.consume}. */
export interface ConsumeOptions {
  /** Handlers running at once in this process (default 1). */
  concurrency?: number;
  /** Which messages, by the System V rule (see `receive`). Default 0: any. */
  type?: number;
  /** Stops consuming (messages in hand are finished first). Already aborted: `consume` throws ABORT_ERR. */
  signal?: AbortSignal;
  /**
   * Keep a message from redelivery while its handler runs (progress acks
   * every `ackWait / 3`), so that only the messages of a process that died
   * come back after `ackWait`, however long a handler takes. Default false:
   * a handler slower than `ackWait` sees its message redelivered elsewhere.
   */
  keepAlive?: boolean;
}

/** What a handler learns about its message. */
export interface DeliveryInfo {
  type: number;
  priority: number;
  /** 1 on the first delivery. */
  deliveries: number;
  /** Stream sequence: the same across redeliveries of one message. */
  sequence: number;
  size: number;
}

/** A running {@link JetStreamQueue.consume}. */
export interface QueueConsumer {
  /** Resolves when consuming stopped and in-hand messages are settled. */
  readonly done: Promise<void>;
  /** Stops fetching; resolves when the handlers in progress have finished. */
  stop(): Promise<void>;
  readonly processed: number;
  readonly failed: number;
  readonly deadLettered: number;
}

/** The queue's state, from the server's stream and consumer info. */
export interface JetStreamQueueStat {
  backend: 'jetstream';
  name: string;
  stream: string;
  /** Messages in the queue (stored, not yet acknowledged). */
  messages: number;
  bytes: number;
  capacityMessages: number | null;
  capacityBytes: number | null;
  maxMessageSize: number;
  /** Messages not yet delivered to any handle. */
  pending: number;
  /** Delivered, awaiting acknowledgement. */
  inFlight: number;
  /** Messages delivered more than once so far. */
  redelivered: number;
  /** Messages in the dead-letter stream. */
  deadLetters: number;
  replicas: number;
  lastSendTime: Date | null;
  changeTime: Date | null;
}

const QUEUE_KEYS = ['connection', 'creation', 'replicas', 'storage', 'capacity', 'capacityBytes', 'ackWait', 'maxDeliver', 'retryDelay', 'prefetch', 'sendWindow', 'codec', 'maxMessageSize'];
const NAME_RE = /^[A-Za-z0-9_-]{1,200}$/;
const CONSUMER = 'workers';
/** trySend publishes awaiting their stored-ack at most (each holds a timer in the client). */
const MAX_IN_FLIGHT = 512;
/** Ms a publish waits for its stored-ack before it counts as failed (and `send` sends it again). */
const PUBLISH_TIMEOUT = 5000;
/** Ms a JetStream API request (stream and consumer info, fetch) may take: a cluster electing a new leader needs a few seconds. */
const JS_API_TIMEOUT = 15_000;
const DEAD_ERROR = 'Mp-Error';
const DEAD_DELIVERIES = 'Mp-Deliveries';
const DEAD_SEQUENCE = 'Mp-Sequence';

const TRAITS: ChannelTraits = {
  mechanism: 'mqueue-jetstream',
  medium: 'socket',
  unit: 'message',
  direction: 'two-way',
  scope: 'network',
  use: 'A durable work queue across hosts (NATS JetStream): at-least-once with ack after the handler, redelivery, dead letters, replicas',
};

interface Held {
  msg: JsMsg;
  frame: Frame;
}

/** A receive waiting for a held message. */
interface HeldWaiter {
  selector: TypeSelector;
  resolve: (h: Held) => void;
  reject: (e: unknown) => void;
}

/**
 * Sends an ack/nak/term. With the connection gone it cannot be sent; the
 * server then redelivers after ackWait, which is what at-least-once means.
 */
function settle(f: () => void): void {
  try {
    f();
  } catch {
    // connection closed
  }
}

function ms2ns(ms: number): number {
  return ms * 1_000_000;
}

function apiCode(err: unknown): number | undefined {
  const c = (err as { code?: unknown })?.code;
  return typeof c === 'number' ? c : undefined;
}

function wrap(err: unknown, what: string): Error {
  if (err instanceof IpcError) return err;
  const name = (err as Error)?.constructor?.name ?? '';
  if (/JetStream|StreamNotFound|ConsumerNotFound/.test(name) || /jetstream/i.test((err as Error)?.message ?? '')) {
    return new JetStreamError(`${what}: ${(err as Error).message}`, apiCode(err), { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * A message queue kept by NATS JetStream, with the API of
 * {@link MessageQueue} (a two-way {@link Channel} with `name`, `stat()`,
 * `unlink()`), plus {@link JetStreamQueue.consume} for at-least-once
 * processing. What differs: creation is async (a server is asked),
 * `stat()` is async, and `close()` never removes the queue (`unlink()` does).
 *
 * @example
 * ```ts
 * const q = await JetStreamQueue.create<Job>('jobs', { servers: 'nats://hub:4222', codec: 'json' });
 * await q.send({ id: 1 }, { priority: 5 });
 * q.consume(async (job) => { await run(job); }, { concurrency: 4 });
 * ```
 */
export class JetStreamQueue<T = unknown> extends BaseChannel<T> implements Channel<T> {
  readonly #nats: Nats;
  readonly #owned: boolean;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #consumer: Consumer;
  readonly #name: string;
  readonly #stream: string;
  readonly #deadStream: string;
  readonly #maxDeliver: number;
  readonly #ackWait: number;
  readonly #retryDelay: (n: number) => number;
  readonly #prefetch: number;
  readonly #sendWindow: number;
  readonly #copy: boolean;
  #held: Held[] = [];
  #waiters: HeldWaiter[] = [];
  #pumping = false;
  #dispatchScheduled = false;
  #inFlightBytes = 0;
  #sendError: Error | undefined;
  #publishes = new Set<Promise<unknown>>();
  /**
   * Stored-acks of our publishes arrive on one subscription, matched by id
   * (the client's own js.publish makes a request with a timer per message,
   * several times slower).
   */
  readonly #ackPrefix = natsClient().createInbox();
  #ackSub: Subscription | undefined;
  #acks = new Map<number, { resolve: () => void; reject: (e: Error) => void; at: number }>();
  #nextId = 0;
  readonly #idPrefix = natsClient().nuid.next();
  #ackSweep: NodeJS.Timeout | undefined;
  #roomWaiters = new Set<() => void>();
  #keepAlive: NodeJS.Timeout | undefined;
  #consumers = new Set<{ stop(): Promise<void>; abort(): void }>();
  #ended: Error | undefined;
  #untrack: () => void;

  private constructor(init: {
    nats: Nats;
    owned: boolean;
    js: JetStreamClient;
    jsm: JetStreamManager;
    consumer: Consumer;
    name: string;
    codec: Codec<T>;
    maxMessageSize: number;
    maxDeliver: number;
    ackWait: number;
    retryDelay: (n: number) => number;
    prefetch: number;
    sendWindow: number;
  }) {
    super({ traits: TRAITS, codec: init.codec, maxMessageSize: init.maxMessageSize, label: `jetstream queue '${init.name}'`, canSend: true, canReceive: true });
    this.#nats = init.nats;
    this.#owned = init.owned;
    this.#js = init.js;
    this.#jsm = init.jsm;
    this.#consumer = init.consumer;
    this.#name = init.name;
    this.#stream = `MPQ_${init.name}`;
    this.#deadStream = `MPQ_${init.name}_DEAD`;
    this.#maxDeliver = init.maxDeliver;
    this.#ackWait = init.ackWait;
    this.#retryDelay = init.retryDelay;
    this.#prefetch = init.prefetch;
    this.#sendWindow = init.sendWindow;
    this.#copy = init.codec.name !== 'json' && init.codec.name !== 'structured';
    this.#untrack = init.nats.track(this);
    // Messages held for a later receive must not time out into redelivery.
    this.#keepAlive = setInterval(() => {
      for (const h of this.#held) h.msg.working();
    }, Math.max(100, Math.floor(init.ackWait / 3)));
    this.#keepAlive.unref();
    this.#ackSub = init.nats.connection.subscribe(`${this.#ackPrefix}.*`, { callback: (err, msg) => this.#onAck(err, msg) });
    this.#ackSweep = setInterval(() => this.#sweepAcks(), 1000);
    this.#ackSweep.unref();
  }

  #onAck(err: Error | null, msg: Msg): void {
    if (err !== null) return;
    const id = Number(msg.subject.slice(this.#ackPrefix.length + 1));
    const entry = this.#acks.get(id);
    if (entry === undefined) return;
    this.#acks.delete(id);
    if (msg.headers?.hasError) {
      entry.reject(new JetStreamError(`${this.label}: the server did not store the message (${msg.headers.code} ${msg.headers.description})`, msg.headers.code));
      return;
    }
    try {
      const r = JSON.parse(new TextDecoder().decode(msg.data)) as { error?: { code: number; err_code?: number; description: string } };
      if (r.error !== undefined) entry.reject(new JetStreamError(`${this.label}: ${r.error.description}`, r.error.err_code ?? r.error.code));
      else entry.resolve();
    } catch (e) {
      entry.reject(new JetStreamError(`${this.label}: a malformed publish ack`, undefined, { cause: e }));
    }
  }

  /** Publishes whose ack did not come (server away, leader moving) fail, to be sent again. */
  #sweepAcks(): void {
    const old = performance.now() - PUBLISH_TIMEOUT;
    for (const [id, e] of this.#acks) {
      if (e.at > old) continue;
      this.#acks.delete(id);
      e.reject(new JetStreamError(`${this.label}: no stored-ack within ${PUBLISH_TIMEOUT} ms (timeout)`));
    }
  }

  /**
   * Creates (by default: opens or creates) the queue `name` on the server.
   * Errors: `ERR_MULTIPROC_NATS_UNAVAILABLE`, `ERR_MULTIPROC_AUTH_FAILED`,
   * `ERR_MULTIPROC_JETSTREAM` (JetStream off, the queue exists with
   * `creation: 'create'` or is missing with `'open'`), argument errors.
   */
  static async create<T = unknown>(name: string, options: JetStreamQueueOptions<T> = {}): Promise<JetStreamQueue<T>> {
    validateString(name, 'name');
    if (!NAME_RE.test(name)) {
      throw typeError('ERR_INVALID_ARG_VALUE', `The argument 'name' is not a valid JetStream queue name: '${name}'. Use 1 to 200 characters of A-Z, a-z, 0-9, '_', '-'`);
    }
    const opts = validateOptions<JetStreamQueueOptions<T>>(options, 'options', [...QUEUE_KEYS, ...CONNECT_KEYS]);
    const creation = opts.creation === undefined ? 'openOrCreate' : validateOneOf(opts.creation, 'options.creation', ['create', 'open', 'openOrCreate', 'purgeAndCreate'] as const);
    const replicas = opts.replicas === undefined ? 1 : validateInteger(opts.replicas, 'options.replicas', 1, 5);
    const storage = opts.storage === undefined ? 'file' : validateOneOf(opts.storage, 'options.storage', ['file', 'memory'] as const);
    const capacity = opts.capacity === undefined ? -1 : validateInteger(opts.capacity, 'options.capacity', 1);
    const capacityBytes = opts.capacityBytes === undefined ? -1 : validateInteger(opts.capacityBytes, 'options.capacityBytes', 1);
    const ackWait = opts.ackWait === undefined ? 30_000 : validateInteger(opts.ackWait, 'options.ackWait', 100, 2 ** 31 - 1);
    const maxDeliver = opts.maxDeliver === undefined ? 5 : validateInteger(opts.maxDeliver, 'options.maxDeliver', 1, 1_000_000);
    const prefetch = opts.prefetch === undefined ? 64 : validateInteger(opts.prefetch, 'options.prefetch', 1, 10_000);
    const sendWindow = opts.sendWindow === undefined ? 8 * 1024 * 1024 : validateInteger(opts.sendWindow, 'options.sendWindow', 1024, 2 ** 31 - 1);
    let retryDelay: (n: number) => number;
    if (opts.retryDelay === undefined) retryDelay = (n) => Math.min(60_000, 1000 * 2 ** Math.min(n - 1, 16));
    else if (typeof opts.retryDelay === 'function') retryDelay = opts.retryDelay;
    else {
      const d = validateInteger(opts.retryDelay, 'options.retryDelay', 0, 2 ** 31 - 1);
      retryDelay = () => d;
    }
    const codec = resolveCodec<T>(opts.codec, 'structured');
    const requested = opts.maxMessageSize === undefined ? undefined : validateMaxMessageSize(opts.maxMessageSize);

    const { nats, owned } = await connectionFor(opts as { connection?: unknown } & Record<string, unknown>);
    try {
      const maxMessageSize = natsMessageLimit(nats, requested);
      const { AckPolicy, DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager } = await loadJetStream();
      const jsm = await jetstreamManager(nats.connection, { timeout: JS_API_TIMEOUT }).catch((err: unknown) => {
        throw wrap(err, `JetStream is not available on ${nats.servers.join(', ')} (start nats-server with -js)`);
      });
      const stream = `MPQ_${name}`;
      let exists = true;
      try {
        await jsm.streams.info(stream);
      } catch (err) {
        if ((err as Error)?.constructor?.name !== 'StreamNotFoundError' && apiCode(err) !== 10059) throw wrap(err, `jetstream queue '${name}'`);
        exists = false;
      }
      if (exists && creation === 'create') throw new JetStreamError(`jetstream queue '${name}' already exists (creation: 'create'); use 'openOrCreate' or 'open'`);
      if (!exists && creation === 'open') throw new JetStreamError(`jetstream queue '${name}' does not exist (creation: 'open')`, 10059);
      if (exists && creation === 'purgeAndCreate') {
        await jsm.streams.delete(stream);
        await jsm.streams.delete(`${stream}_DEAD`).catch(() => {});
        exists = false;
      }
      if (!exists) {
        try {
          await jsm.streams.add({
            name: stream,
            subjects: [`mpq.${name}.*`],
            retention: RetentionPolicy.Workqueue,
            storage: storage === 'memory' ? StorageType.Memory : StorageType.File,
            num_replicas: replicas,
            max_msgs: capacity,
            max_bytes: capacityBytes,
            max_msg_size: maxMessageSize + NATS_HEADER_RESERVE,
            discard: DiscardPolicy.New,
          });
          await jsm.streams.add({
            name: `${stream}_DEAD`,
            subjects: [`mpq-dead.${name}`],
            retention: RetentionPolicy.Limits,
            storage: storage === 'memory' ? StorageType.Memory : StorageType.File,
            num_replicas: replicas,
          });
        } catch (err) {
          // Another process created it meanwhile: fine unless 'create'.
          if (creation === 'create') throw wrap(err, `creating jetstream queue '${name}'`);
          await jsm.streams.info(stream).catch(() => {
            throw wrap(err, `creating jetstream queue '${name}'`);
          });
        }
      }
      // One more delivery than maxDeliver: a message whose last handler died
      // with its process comes back once more, to go to the dead letters.
      try {
        await jsm.consumers.add(stream, {
          durable_name: CONSUMER,
          ack_policy: AckPolicy.Explicit,
          ack_wait: ms2ns(ackWait),
          max_deliver: maxDeliver + 1,
          max_ack_pending: -1,
          filter_subject: `mpq.${name}.*`,
        });
      } catch (err) {
        // Exists with other settings (another handle's ackWait): use it as it is.
        try {
          await jsm.consumers.info(stream, CONSUMER);
        } catch {
          throw wrap(err, `creating the consumer of jetstream queue '${name}'`);
        }
      }
      const js = jetstream(nats.connection, { timeout: JS_API_TIMEOUT });
      const consumer = await js.consumers.get(stream, CONSUMER);
      return new JetStreamQueue<T>({ nats, owned, js, jsm, consumer, name, codec, maxMessageSize, maxDeliver, ackWait, retryDelay, prefetch, sendWindow });
    } catch (err) {
      if (owned) await nats.close();
      throw wrap(err, `jetstream queue '${name}'`);
    }
  }

  /** Opens an existing queue (`creation: 'open'`). */
  static open<T = unknown>(name: string, options: Omit<JetStreamQueueOptions<T>, 'creation'> = {}): Promise<JetStreamQueue<T>> {
    return JetStreamQueue.create<T>(name, { ...options, creation: 'open' });
  }

  /** The queue's name. */
  get name(): string {
    return this.#name;
  }

  /** Always `'jetstream'`. */
  get backend(): 'jetstream' {
    return 'jetstream';
  }

  /** The stream that holds the messages. */
  get stream(): string {
    return this.#stream;
  }

  /** The subject dead letters are published on (stream `MPQ_<name>_DEAD`). */
  get deadLetterSubject(): string {
    return `mpq-dead.${this.#name}`;
  }

  /** The connection the queue uses. */
  get connection(): Nats {
    return this.#nats;
  }

  /** The queue's state, from the server. */
  async stat(): Promise<JetStreamQueueStat> {
    this.#checkOpen();
    let si: StreamInfo;
    let dead = 0;
    let ci;
    try {
      si = await this.#jsm.streams.info(this.#stream);
      ci = await this.#jsm.consumers.info(this.#stream, CONSUMER);
      dead = (await this.#jsm.streams.info(this.#deadStream)).state.messages;
    } catch (err) {
      throw wrap(err, `stat of ${this.label}`);
    }
    const s = si.state;
    return {
      backend: 'jetstream',
      name: this.#name,
      stream: this.#stream,
      messages: s.messages,
      bytes: s.bytes,
      capacityMessages: si.config.max_msgs > 0 ? si.config.max_msgs : null,
      capacityBytes: si.config.max_bytes > 0 ? si.config.max_bytes : null,
      maxMessageSize: this.maxMessageSize,
      pending: ci.num_pending,
      inFlight: ci.num_ack_pending,
      redelivered: ci.num_redelivered,
      deadLetters: dead,
      replicas: si.config.num_replicas,
      lastSendTime: s.last_ts && !s.last_ts.startsWith('0001') ? new Date(s.last_ts) : null,
      changeTime: new Date(si.created),
    };
  }

  /** Reads the dead letters (without removing them): data, the last error, deliveries. */
  async deadLetters(options: { limit?: number } = {}): Promise<Array<{ data: T; error: string; deliveries: number; sequence: number; type: number }>> {
    const limit = options.limit === undefined ? 100 : validateInteger(options.limit, 'options.limit', 1, 100_000);
    const out: Array<{ data: T; error: string; deliveries: number; sequence: number; type: number }> = [];
    const info = await this.#jsm.streams.info(this.#deadStream);
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && out.length < limit; seq++) {
      const m = await this.#jsm.streams.getMessage(this.#deadStream, { seq }).catch(() => null);
      if (m === null) continue;
      out.push({
        data: this.codec.decode(m.data),
        error: m.header?.get(DEAD_ERROR) ?? '',
        deliveries: Number(m.header?.get(DEAD_DELIVERIES) ?? 0),
        sequence: Number(m.header?.get(DEAD_SEQUENCE) ?? 0),
        type: Number(m.header?.get(TYPE_HEADER) || 1),
      });
    }
    return out;
  }

  /** Deletes the queue's streams on the server (its messages and dead letters). */
  async unlink(): Promise<void> {
    await this.#jsm.streams.delete(this.#stream).catch((err: unknown) => {
      if ((err as Error)?.constructor?.name !== 'StreamNotFoundError') throw wrap(err, `unlink of ${this.label}`);
    });
    await this.#jsm.streams.delete(this.#deadStream).catch(() => {});
  }

  // --- sending ------------------------------------------------------------

  /**
   * Publishes one message and resolves once the stream stored it. `msgId`
   * (Nats-Msg-Id) lets the stream drop a resend of a message it already has.
   */
  #publish(frame: Frame, msgId: string): Promise<void> {
    const h = natsClient().headers();
    h.set('Nats-Msg-Id', msgId);
    if (frame.priority !== 0) h.set(PRIORITY_HEADER, String(frame.priority));
    const payload = this.#copy ? new Uint8Array(frame.payload) : frame.payload;
    const id = ++this.#nextId;
    return new Promise<void>((resolve, reject) => {
      this.#acks.set(id, { resolve, reject, at: performance.now() });
      try {
        this.#nats.connection.publish(`mpq.${this.#name}.${frame.type}`, payload, { headers: h, reply: `${this.#ackPrefix}.${id}` });
      } catch (err) {
        this.#acks.delete(id);
        reject(err);
      }
    });
  }

  #newMsgId(): string {
    return `${this.#idPrefix}-${++this.#nextId}`;
  }

  /** @internal */
  protected _trySend(frame: Frame): boolean {
    this.#checkOpen();
    if (this.#sendError !== undefined) throw this.#sendError;
    const size = frame.payload.length + 64;
    if (this.#inFlightBytes > 0 && (this.#inFlightBytes + size > this.#sendWindow || this.#publishes.size >= MAX_IN_FLIGHT)) return false;
    this.#inFlightBytes += size;
    const p = this.#publish(frame, this.#newMsgId()).then(
      () => {},
      (err: unknown) => {
        // Not stored: the next operation reports it (like a failed write on a stream).
        this.#sendError ??= wrap(err, `a message sent with trySend to ${this.label} was not stored`);
      },
    );
    this.#publishes.add(p);
    void p.finally(() => {
      this.#publishes.delete(p);
      this.#inFlightBytes -= size;
      const w = [...this.#roomWaiters];
      this.#roomWaiters.clear();
      for (const f of w) f();
    });
    return true;
  }

  /** @internal */
  protected async _send(frame: Frame, wait: Wait): Promise<void> {
    if (this.#sendError !== undefined) throw this.#sendError;
    // Full (capacity with discard-new), or no ack (a server going away):
    // wait and send again, never drop; the same Nats-Msg-Id keeps a resend
    // of a message that was stored after all from being stored twice.
    const msgId = this.#newMsgId();
    for (let attempt = 0; ; attempt++) {
      this.#checkOpen();
      try {
        await this.#publish(frame, msgId);
        return;
      } catch (err) {
        const text = (err as Error)?.message ?? '';
        const full = /maximum (messages|bytes)|resource limits exceeded|no space/i.test(text);
        const unavailable = /no responders|timeout|503|not available|no suitable peers|leader/i.test(text) || (err as Error)?.constructor?.name === 'TimeoutError';
        if (!full && !unavailable) throw wrap(err, `send to ${this.label}`);
        const delay = Math.min(1000, 10 * 2 ** attempt);
        await waitFor<void>(wait, (resolve) => {
          const t = setTimeout(resolve, delay);
          return () => clearTimeout(t);
        });
      }
    }
  }

  // --- receiving ----------------------------------------------------------

  #parse(msg: JsMsg): Held {
    const tok = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    const type = Number(tok);
    const p = msg.headers?.get(PRIORITY_HEADER);
    const priority = p === undefined || p === '' ? 0 : Number(p);
    return { msg, frame: { payload: msg.data, type: Number.isInteger(type) && type >= 1 ? type : 1, priority: Number.isInteger(priority) ? priority : 0 } };
  }

  #take(selector: TypeSelector): Held | undefined {
    if (this.#held.length === 0) return undefined;
    const i = selectFrame(
      this.#held.map((h) => h.frame),
      selector,
    );
    if (i < 0) return undefined;
    return this.#held.splice(i, 1)[0];
  }

  /**
   * Holds an arrived message; waiters are served a moment later, once the
   * rest of its batch (usually read in the same chunk) is here too, so that
   * priority picks among all of them.
   */
  #offer(h: Held): void {
    this.#held.push(h);
    if (this.#dispatchScheduled) return;
    this.#dispatchScheduled = true;
    setImmediate(() => {
      this.#dispatchScheduled = false;
      for (let i = 0; i < this.#waiters.length && this.#held.length > 0; ) {
        const w = this.#waiters[i]!;
        const taken = this.#take(w.selector);
        if (taken === undefined) {
          i++;
          continue;
        }
        this.#waiters.splice(i, 1);
        w.resolve(taken);
      }
      // Taking made room in the window: fetch for those still waiting.
      if (this.#waiters.length > 0 && this.#held.length < this.#prefetch) this.#pump();
    });
  }

  /** A tryReceive found nothing held: fetch once even with nobody waiting. */
  #fetchOnce = false;

  /** Fetches while someone waits (or once for a tryReceive) and the window has room. */
  #pump(): void {
    if (this.#pumping || this.#ended !== undefined) return;
    this.#pumping = true;
    void (async () => {
      try {
        while (this.#ended === undefined && (this.#waiters.length > 0 || this.#fetchOnce) && this.#held.length < this.#prefetch) {
          this.#fetchOnce = false;
          const want = this.#prefetch - this.#held.length;
          try {
            const batch = await this.#consumer.fetch({ max_messages: want, expires: 1000 });
            for await (const m of batch) {
              if (this.#ended !== undefined) {
                m.nak();
                continue;
              }
              this.#offer(this.#parse(m));
            }
          } catch {
            if (this.#ended !== undefined) return;
            // Server away (reconnecting), the consumer not ready or deleted: try again shortly.
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      } finally {
        this.#pumping = false;
        if (this.#ended === undefined && this.#waiters.length > 0 && this.#held.length < this.#prefetch) this.#pump();
      }
    })();
  }

  /** Takes one held message (not acknowledged yet). */
  #next(selector: TypeSelector, wait: Wait): Promise<Held> {
    const h = this.#take(selector);
    if (h !== undefined) return Promise.resolve(h);
    if (this.#ended !== undefined) return Promise.reject(this.#ended);
    const p = waitInQueue<Held, HeldWaiter>(wait, this.#waiters, (resolve, reject) => ({ selector, resolve, reject }));
    this.#pump();
    return p;
  }

  /** @internal */
  protected _tryReceive(selector: TypeSelector): Frame | undefined {
    const h = this.#take(selector);
    if (h !== undefined) {
      settle(() => h.msg.ack());
      return h.frame;
    }
    if (this.#ended !== undefined) throw this.#ended;
    // Fetch ahead, so that a later call finds what the server has.
    this.#fetchOnce = true;
    this.#pump();
    return undefined;
  }

  /** @internal */
  protected async _receive(selector: TypeSelector, wait: Wait): Promise<Frame> {
    const h = await this.#next(selector, wait);
    settle(() => h.msg.ack());
    return h.frame;
  }

  /**
   * Processes messages with `handler` until stopped: acknowledged after the
   * handler resolves; when it throws, redelivered after `retryDelay`; after
   * `maxDeliver` failed deliveries, published to the dead-letter stream.
   * Returns at once; see {@link QueueConsumer}.
   * Errors: `ABORT_ERR` (`options.signal` is aborted already: nothing is
   * consumed), `ERR_MULTIPROC_CLOSED`, argument errors.
   */
  consume(handler: (data: T, info: DeliveryInfo) => unknown, options: ConsumeOptions = {}): QueueConsumer {
    validateFunction(handler, 'handler');
    const opts = validateOptions<ConsumeOptions>(options, 'options', ['concurrency', 'type', 'signal', 'keepAlive']);
    const keepAlive = opts.keepAlive === undefined ? false : validateBoolean(opts.keepAlive, 'options.keepAlive');
    const concurrency = opts.concurrency === undefined ? 1 : validateInteger(opts.concurrency, 'options.concurrency', 1, 10_000);
    const selector = opts.type === undefined ? 0 : validateInteger(opts.type, 'options.type', -(2 ** 31 - 1), 2 ** 31 - 1);
    const signal = validateSignal(opts.signal);
    this.#checkOpen();
    // As receive() does; a listener added now would never fire, and consuming would never stop.
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
    const stopper = new AbortController();
    // One listener per worker.
    setMaxListeners(0, stopper.signal);
    const stats = { processed: 0, failed: 0, deadLettered: 0 };
    const onAbort = (): void => stopper.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const worker = async (): Promise<void> => {
      while (!stopper.signal.aborted) {
        let h: Held;
        try {
          h = await this.#next(selector, { deadline: Infinity, timeout: Infinity, signal: stopper.signal, what: `a message on ${this.label}` });
        } catch {
          return; // stopped or closed
        }
        await this.#handle(h, handler, stats, keepAlive);
      }
    };
    const done = Promise.all(Array.from({ length: concurrency }, worker)).then(() => {
      signal?.removeEventListener('abort', onAbort);
      this.#consumers.delete(entry);
    });
    const entry = {
      abort: () => stopper.abort(),
      stop: async () => {
        stopper.abort();
        await done;
      },
    };
    this.#consumers.add(entry);
    return {
      done,
      stop: entry.stop,
      get processed() {
        return stats.processed;
      },
      get failed() {
        return stats.failed;
      },
      get deadLettered() {
        return stats.deadLettered;
      },
    };
  }

  async #handle(h: Held, handler: (data: T, info: DeliveryInfo) => unknown, stats: { processed: number; failed: number; deadLettered: number }, keepAlive: boolean): Promise<void> {
    const deliveries = h.msg.info.deliveryCount;
    const info: DeliveryInfo = { type: h.frame.type, priority: h.frame.priority, deliveries, sequence: h.msg.seq, size: h.frame.payload.length };
    if (deliveries > this.#maxDeliver) {
      // Its last handler died with its process: no more tries.
      await this.#deadLetter(h, 'the handler did not finish (its process died) on the last delivery', deliveries - 1);
      stats.deadLettered++;
      return;
    }
    this.counters.messagesReceived++;
    this.counters.bytesReceived += h.frame.payload.length;
    this.counters.lastReceiveMs = Date.now();
    const alive = keepAlive ? setInterval(() => this.#working(h), Math.max(100, Math.floor(this.#ackWait / 3))) : undefined;
    alive?.unref();
    try {
      await handler(this.codec.decode(h.frame.payload), info);
    } catch (err) {
      clearInterval(alive);
      stats.failed++;
      if (deliveries >= this.#maxDeliver) {
        await this.#deadLetter(h, err instanceof Error ? `${err.name}: ${err.message}` : String(err), deliveries);
        stats.deadLettered++;
      } else {
        settle(() => h.msg.nak(this.#retryDelay(deliveries)));
      }
      return;
    }
    clearInterval(alive);
    settle(() => h.msg.ack());
    stats.processed++;
  }

  #working(h: Held): void {
    try {
      h.msg.working();
    } catch {
      // connection closed: the message comes back after ackWait
    }
  }

  async #deadLetter(h: Held, error: string, deliveries: number): Promise<void> {
    const hd = natsClient().headers();
    hd.set(TYPE_HEADER, String(h.frame.type));
    hd.set(PRIORITY_HEADER, String(h.frame.priority));
    hd.set(DEAD_ERROR, error.replace(/[\r\n]+/g, ' ').slice(0, 1000));
    hd.set(DEAD_DELIVERIES, String(deliveries));
    hd.set(DEAD_SEQUENCE, String(h.msg.seq));
    try {
      await this.#js.publish(this.deadLetterSubject, h.frame.payload, { headers: hd });
      settle(() => h.msg.term('dead-lettered'));
    } catch {
      // Not stored: let it come back rather than lose it.
      settle(() => h.msg.nak(this.#retryDelay(deliveries)));
    }
  }

  /** @internal */
  protected override _stats(): Partial<ChannelStats> {
    return {
      messagesQueued: null,
      bytesQueued: null,
      lastSendPid: null,
      lastReceivePid: null,
    };
  }

  #checkOpen(): void {
    if (this.closed) throw new ClosedError(`${this.label} is closed`);
    this.#nats.checkUsable();
  }

  #end(err: Error): void {
    this.#ended ??= err;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(this.#ended);
    if (this.#keepAlive !== undefined) clearInterval(this.#keepAlive);
    // Held but not taken: back to the queue now rather than after ackWait.
    for (const h of this.#held) {
      try {
        h.msg.nak();
      } catch {
        // connection gone: the server redelivers after ackWait
      }
    }
    this.#held = [];
  }

  #stopAcks(err: Error): void {
    if (this.#ackSweep !== undefined) clearInterval(this.#ackSweep);
    try {
      this.#ackSub?.unsubscribe();
    } catch {
      // connection closed
    }
    for (const e of this.#acks.values()) e.reject(err);
    this.#acks.clear();
  }

  /** @internal */
  protected async _close(): Promise<void> {
    this.#untrack();
    const stopping = [...this.#consumers].map((c) => c.stop());
    this.#end(new ClosedError(`${this.label} is closed`));
    await Promise.allSettled(stopping);
    await Promise.allSettled([...this.#publishes]);
    this.#stopAcks(new ClosedError(`${this.label} is closed`));
    await this.#nats.confirm();
    // When the connection itself is closing (it closes us), it must not be awaited from here.
    if (this.#owned && !this.#nats.closing) await this.#nats.close();
  }

  /** @internal */
  protected _destroy(err: Error | undefined): void {
    this.#untrack();
    for (const c of this.#consumers) c.abort();
    this.#end(err ?? new ClosedError(`${this.label} was destroyed`));
    this.#stopAcks(err ?? new ClosedError(`${this.label} was destroyed`));
    if (this.#owned && !this.#nats.closing) this.#nats.destroy();
  }

  /** @internal Exposed for tests: ms before an unacknowledged message comes back. */
  get ackWait(): number {
    return this.#ackWait;
  }
}
