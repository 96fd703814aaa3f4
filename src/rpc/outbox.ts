/**
 * Sends RPC messages in order with one waiter per channel: a message goes
 * out at once when the channel has room (`trySend`), otherwise it joins a
 * queue that one loop drains, awaiting `send` for the head only. Thousands
 * of calls in flight thus never mean thousands of sends waiting on the
 * transport, and a cancel never overtakes its call.
 *
 * @internal
 */
import type { Sender } from '../channel/channel.js';
import { vouchForArrays } from '../channel/structured-fast.js';

/** A queued message. Setting `withdrawn` before it goes out drops it. @internal */
export interface OutboxEntry {
  message: unknown;
  options: { type: number };
  withdrawn: boolean;
  onSent: (() => void) | undefined;
  onError: (err: unknown) => void;
}

/** @internal */
export class Outbox {
  readonly #sender: Sender<any>;
  #queue: OutboxEntry[] = [];
  #head = 0;
  #pumping = false;

  constructor(sender: Sender<any>) {
    this.#sender = sender;
  }

  /**
   * Sends `message` now if nothing is queued and the channel has room (true),
   * else does nothing (false). Throws what `trySend` throws: codec errors,
   * closed, too large.
   */
  sendNow(message: unknown, options: { type: number }): boolean {
    return this.#head === this.#queue.length && this.#sender.trySend(message, options);
  }

  /** Queues `message` behind the others; `onSent` or `onError` is called later. */
  enqueue(message: unknown, options: { type: number }, onError: (err: unknown) => void, onSent?: () => void): OutboxEntry {
    const entry: OutboxEntry = { message, options, withdrawn: false, onSent, onError };
    this.#queue.push(entry);
    if (!this.#pumping) void this.#pump();
    return entry;
  }

  /**
   * {@link Outbox.sendNow}, else {@link Outbox.enqueue}: null when it went
   * out at once, else the queued entry. Throws what `trySend` throws.
   */
  post(message: unknown, options: { type: number }, onError: (err: unknown) => void, onSent?: () => void): OutboxEntry | null {
    return this.sendNow(message, options) ? null : this.enqueue(message, options, onError, onSent);
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    while (this.#head < this.#queue.length) {
      const entry = this.#queue[this.#head]!;
      if (!entry.withdrawn) {
        try {
          if (!this.#sender.trySend(entry.message, entry.options)) await this.#sender.send(entry.message, entry.options);
          entry.onSent?.();
        } catch (err) {
          entry.onError(err);
        }
      }
      this.#queue[this.#head++] = undefined as unknown as OutboxEntry;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
    }
    this.#queue = [];
    this.#head = 0;
    this.#pumping = false;
  }
}

const outboxes = new WeakMap<Sender<any>, Outbox>();

/** The one outbox of `sender`, shared by every RPC client and server that sends on it. @internal */
export function outboxFor(sender: Sender<any>): Outbox {
  let outbox = outboxes.get(sender);
  if (outbox === undefined) outboxes.set(sender, (outbox = new Outbox(sender)));
  return outbox;
}

/**
 * `outbox.sendNow(message)` for a message array RPC just made, with `inner`
 * another fresh array in it (rest arguments): the structured codec may then
 * skip its check of these arrays for extra properties.
 * @internal
 */
export function sendOwn(outbox: Outbox, message: unknown[], inner: unknown[] | undefined, options: { type: number }): boolean {
  vouchForArrays(message, inner);
  try {
    return outbox.sendNow(message, options);
  } finally {
    // Not encoded (queued, or another codec): keep nothing.
    vouchForArrays();
  }
}
