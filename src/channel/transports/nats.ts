/**
 * The NATS transport: a channel whose messages travel as NATS messages, so
 * that the same code talks across hosts. Subjects are the channel names: a
 * channel publishes on its `send` subject and subscribes to its `receive`
 * subject (which may hold the wildcards `*` and `>`). A two-way channel has
 * both; its peer swaps them.
 *
 * The envelope rides in NATS headers, only when it differs from the
 * defaults so that plain NATS publishers interoperate:
 *
 *   Mp-Type      the message type (absent: 1)
 *   Mp-Priority  the priority (absent: 0)
 *
 * Core NATS delivers in order per publisher, at most once: a subscriber that
 * is not connected at the time misses the message, and the server drops a
 * client that falls too far behind (slow consumer). For every message to be
 * kept until someone takes it, use the JetStream queue (src/mqueue/jetstream.ts).
 */
import type { Msg, MsgHdrs, Subscription } from '@nats-io/transport-node';
import { natsClient } from '../../nats/lib.js';
import { ClosedError, ProtocolError, typeError, validateOptions, validateString } from '../../errors.js';
import { CONNECT_KEYS, Nats, connectionFor, type NatsConnectOptions } from '../../nats/connection.js';
import { InboxChannel, capMaxMessageSize, validateMaxMessageSize, type ChannelOptions, type Wait } from '../base-channel.js';
import type { Channel, ChannelStats, ChannelTraits } from '../channel.js';
import { json, resolveCodec, structured } from '../codec.js';
import type { Frame } from '../framing.js';

/** Header names of the envelope. */
export const TYPE_HEADER = 'Mp-Type';
export const PRIORITY_HEADER = 'Mp-Priority';

/**
 * Bytes kept free of the server's max_payload for the envelope headers
 * (NATS counts headers in the payload limit).
 */
export const NATS_HEADER_RESERVE = 128;

/**
 * The largest message over `nats`: its max_payload less the envelope
 * headers, or `requested` (already checked) when that is no larger; a
 * larger one is a RangeError.
 * @internal
 */
export function natsMessageLimit(nats: Nats, requested: number | undefined): number {
  const limit = nats.maxPayload - NATS_HEADER_RESERVE;
  return requested === undefined ? limit : capMaxMessageSize(requested, limit, "NATS server's max_payload (less the envelope headers)");
}

/** Options of {@link NatsChannel.open}. */
export interface NatsChannelOptions<T> extends ChannelOptions<T>, NatsConnectOptions {
  /** Subject to publish on (no wildcards). Omit for a receive-only channel. */
  send?: string;
  /** Subject to subscribe to (wildcards allowed). Omit for a send-only channel. */
  receive?: string;
  /**
   * Queue group of the subscription: each message goes to one member of
   * the group instead of every subscriber (load balancing).
   */
  queue?: string;
  /**
   * A connection to share. Without it the channel opens its own from the
   * connect options (`servers`, `user`, `pass`, `token`, `tls`, ...) and
   * closes it with itself.
   */
  connection?: Nats;
}

const CHANNEL_KEYS = ['send', 'receive', 'queue', 'connection', 'codec', 'maxMessageSize'];

const SUBJECT_RE = /^[^\s*>.]+(\.[^\s*>.]+)*$/;
const PATTERN_RE = /^([^\s*>.]+|\*)(\.([^\s*>.]+|\*))*(\.>)?$|^>$/;

function traitsOf(direction: 'one-way' | 'two-way'): ChannelTraits {
  return {
    mechanism: 'nats',
    medium: 'socket',
    unit: 'message',
    direction,
    scope: 'network',
    use: 'Processes on several hosts through a NATS server: subjects as names, wildcards, queue groups; at most once (use the JetStream queue to keep messages)',
    reliable: false,
  };
}

function validateSubject(value: unknown, what: string, wildcards: boolean): string {
  const s = validateString(value, what);
  if (!(wildcards ? PATTERN_RE : SUBJECT_RE).test(s)) {
    throw typeError(
      'ERR_INVALID_ARG_VALUE',
      `The argument '${what}' is not a valid NATS subject${wildcards ? ' pattern' : ''}: '${s}'. Use dot-separated tokens without spaces` +
        (wildcards ? "; '*' matches one token, a final '>' the rest" : ' and without the wildcards * and >'),
    );
  }
  return s;
}

/**
 * A {@link Channel} over NATS. Make one with {@link NatsChannel.open}.
 *
 * @example
 * ```ts
 * // host A
 * const tasks = await NatsChannel.open<Task>({ servers: 'nats://hub:4222', send: 'tasks', receive: 'results' });
 * // host B
 * const worker = await NatsChannel.open<Task>({ servers: 'nats://hub:4222', send: 'results', receive: 'tasks' });
 * ```
 */
export class NatsChannel<T = unknown> extends InboxChannel<T> implements Channel<T> {
  readonly #nats: Nats;
  readonly #owned: boolean;
  readonly #sendSubject: string | undefined;
  readonly #receiveSubject: string | undefined;
  /**
   * The client keeps a reference to a published payload until it writes it
   * out, but a sender may reuse its buffer once `send` returns: copy, unless
   * the codec made fresh bytes.
   */
  readonly #copy: boolean;
  readonly #headerCache = new Map<string, MsgHdrs>();
  #sub: Subscription | undefined;
  #untrack: () => void;

  private constructor(nats: Nats, owned: boolean, send: string | undefined, receive: string | undefined, codec: import('../codec.js').Codec<T>, maxMessageSize: number) {
    const label = `nats channel (${[send && `send '${send}'`, receive && `receive '${receive}'`].filter(Boolean).join(', ')})`;
    super({ traits: traitsOf(send !== undefined && receive !== undefined ? 'two-way' : 'one-way'), codec, maxMessageSize, label, canSend: send !== undefined, canReceive: receive !== undefined });
    this.#nats = nats;
    this.#owned = owned;
    this.#sendSubject = send;
    this.#receiveSubject = receive;
    this.#untrack = nats.track(this);
    this.#copy = codec !== (json as unknown) && codec !== (structured as unknown);
  }

  /**
   * Opens a channel. Resolves once the subscription is registered with the
   * server, so that anything published after that reaches it.
   *
   * `maxMessageSize` defaults to the server's max_payload less
   * {@link NATS_HEADER_RESERVE}; a larger one is a RangeError.
   *
   * Errors: `ERR_MULTIPROC_NATS_UNAVAILABLE`, `ERR_MULTIPROC_AUTH_FAILED`,
   * `ERR_MULTIPROC_TIMEOUT`, `ABORT_ERR`, argument errors.
   */
  static async open<T = unknown>(options: NatsChannelOptions<T>): Promise<NatsChannel<T>> {
    const opts = validateOptions<NatsChannelOptions<T>>(options, 'options', [...CHANNEL_KEYS, ...CONNECT_KEYS]);
    const send = opts.send === undefined ? undefined : validateSubject(opts.send, 'options.send', false);
    const receive = opts.receive === undefined ? undefined : validateSubject(opts.receive, 'options.receive', true);
    if (send === undefined && receive === undefined) throw typeError('ERR_INVALID_ARG_VALUE', "A NATS channel needs a 'send' subject, a 'receive' subject, or both");
    const queue = opts.queue === undefined ? undefined : validateSubject(opts.queue, 'options.queue', false);
    if (queue !== undefined && receive === undefined) throw typeError('ERR_INVALID_ARG_VALUE', "The option 'queue' needs a 'receive' subject");
    const codec = resolveCodec<T>(opts.codec, 'structured');
    const requested = opts.maxMessageSize === undefined ? undefined : validateMaxMessageSize(opts.maxMessageSize);
    const { nats, owned } = await connectionFor(opts as { connection?: unknown } & Record<string, unknown>);
    try {
      const max = natsMessageLimit(nats, requested);
      const ch = new NatsChannel<T>(nats, owned, send, receive, codec, max);
      if (receive !== undefined) {
        ch.#sub = nats.connection.subscribe(receive, { ...(queue !== undefined ? { queue } : {}), callback: (err, msg) => ch.#onMessage(err, msg) });
        // The server has the subscription once this round trip is back.
        await nats.connection.flush();
      }
      return ch;
    } catch (err) {
      if (owned) await nats.close();
      throw err;
    }
  }

  /** The connection this channel uses. */
  get connection(): Nats {
    return this.#nats;
  }

  /** The subject this channel publishes on, if it sends. */
  get sendSubject(): string | undefined {
    return this.#sendSubject;
  }

  /** The subject (pattern) this channel subscribes to, if it receives. */
  get receiveSubject(): string | undefined {
    return this.#receiveSubject;
  }

  #onMessage(err: Error | null, msg: Msg): void {
    if (err !== null) {
      this._end(err);
      return;
    }
    let type = 1;
    let priority = 0;
    const h = msg.headers;
    if (h !== undefined) {
      const t = h.get(TYPE_HEADER);
      const p = h.get(PRIORITY_HEADER);
      if (t !== '') type = Number(t);
      if (p !== '') priority = Number(p);
      if (!Number.isInteger(type) || type < 1 || type > 2 ** 31 - 1 || !Number.isInteger(priority) || priority < -(2 ** 31) || priority > 2 ** 31 - 1) {
        this.#fail(new ProtocolError(`${this.label}: a message on '${msg.subject}' has a bad envelope (${TYPE_HEADER} '${t}', ${PRIORITY_HEADER} '${p}')`));
        return;
      }
    }
    if (msg.data.length > this.maxMessageSize) {
      this.#fail(new ProtocolError(`${this.label}: a ${msg.data.length}-byte message on '${msg.subject}' exceeds this end's maxMessageSize of ${this.maxMessageSize} bytes`));
      return;
    }
    this._deliver({ payload: msg.data, type, priority });
  }

  /** A bad message ends receiving (like a bad frame on a stream); the connection stays. */
  #fail(err: Error): void {
    this.#sub?.unsubscribe();
    this.#sub = undefined;
    this._end(err);
  }

  #headers(frame: Frame): MsgHdrs | undefined {
    if (frame.type === 1 && frame.priority === 0) return undefined;
    // The client encodes headers when it publishes, so one object per
    // (type, priority) can be reused; building them per message costs more
    // than the publish itself.
    const key = `${frame.type}:${frame.priority}`;
    let h = this.#headerCache.get(key);
    if (h === undefined) {
      h = natsClient().headers();
      if (frame.type !== 1) h.set(TYPE_HEADER, String(frame.type));
      if (frame.priority !== 0) h.set(PRIORITY_HEADER, String(frame.priority));
      if (this.#headerCache.size >= 64) this.#headerCache.clear();
      this.#headerCache.set(key, h);
    }
    return h;
  }

  /** @internal */
  protected _trySend(frame: Frame): boolean {
    this.#nats.checkUsable();
    if (!this.#nats.hasRoom(frame.payload.length)) return false;
    this.#nats.publish(this.#sendSubject!, this.#copy ? new Uint8Array(frame.payload) : frame.payload, this.#headers(frame));
    return true;
  }

  /** @internal */
  protected async _send(frame: Frame, wait: Wait): Promise<void> {
    if (!this.#nats.hasRoom(frame.payload.length)) await this.#nats.waitRoom(frame.payload.length, wait);
    if (this.closed) throw new ClosedError(`${this.label} is closed`);
    this.#nats.checkUsable();
    this.#nats.publish(this.#sendSubject!, this.#copy ? new Uint8Array(frame.payload) : frame.payload, this.#headers(frame));
  }

  /**
   * Core NATS cannot pause a subscription; the server protects itself by
   * dropping a client that does not keep up. So the inbox is not bounded here.
   * @internal
   */
  protected _pause(): void {}
  /** @internal */
  protected _resume(): void {}

  /** @internal */
  protected override _stats(): Partial<ChannelStats> {
    return {
      messagesQueued: this.inboxLength,
      bytesQueued: this.inboxBytes,
      capacityBytes: null,
      capacityMessages: null,
      lastSendPid: null,
      lastReceivePid: null,
    };
  }

  /** @internal */
  protected async _close(): Promise<void> {
    this.#untrack();
    const sub = this.#sub;
    this.#sub = undefined;
    sub?.unsubscribe();
    this._failReceivers(new ClosedError(`${this.label} is closed`));
    // Graceful: what was published reaches the server before we go.
    if (this.#sendSubject !== undefined) await this.#nats.confirm();
    // When the connection itself is closing (it closes us), it must not be awaited from here.
    if (this.#owned && !this.#nats.closing) await this.#nats.close();
  }

  /** @internal */
  protected _destroy(err: Error | undefined): void {
    this.#untrack();
    try {
      this.#sub?.unsubscribe();
    } catch {
      // connection already closed
    }
    this.#sub = undefined;
    this._failReceivers(err ?? new ClosedError(`${this.label} was destroyed`));
    if (this.#owned && !this.#nats.closing) this.#nats.destroy();
  }
}
