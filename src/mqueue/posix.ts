/**
 * The `posix` backend: a kernel queue from mq_open, visible in /dev/mqueue.
 *
 * - Priorities are the kernel's own (0 .. MQ_PRIO_MAX-1): mq_receive always
 *   returns the oldest message of the highest priority.
 * - Types travel in an 8-byte header inside each message ('MPQ1' + int32 LE).
 *   The kernel cannot select by type, so a receive that asks for one takes
 *   messages out of the kernel queue until it meets a match, and keeps the
 *   others aside in this handle (the "stash"), where later receives of this
 *   handle find them first. Type selection is therefore per process: a
 *   message set aside by one handle is no longer visible to other processes.
 *   Priority order and the System V type rule hold across stash and kernel
 *   queue together (see `tryReceive`). The stash is bounded; once full, a
 *   typed receive waits for this handle's other receives to drain it.
 * - The descriptor is a file descriptor: the event loop polls it (uv_poll_t)
 *   only while someone waits, readable for receives and writable for sends.
 *
 * @internal
 */
import { native } from '../binding/native.js';
import { ClosedError, IncompatibleError, ProtocolError, systemError } from '../errors.js';
import { selectFrame, waitFor, type Wait } from '../channel/base-channel.js';
import type { Frame } from '../channel/framing.js';
import type { CreationMode } from '../shm/shared-memory.js';
import { fstatSync, readFileSync } from 'node:fs';
import type { Backend, MessageQueueStat } from './backend.js';
import { mqOpenError } from './limits.js';
import { recordCreated, recordDisowned, recordOpened, recordRemoved, recordUnlinked, releaseHold, type Hold } from '../resources/registry.js';

/** Bytes of the type header in every message. */
const HEADER = native.MQ_HEADER;
/** Most messages, and bytes, a handle sets aside for type selection. */
const STASH_MESSAGES = 1024;
const STASH_BYTES = 16 * 1024 * 1024;

interface Sleeper {
  wake: () => void;
  /** Whether kernel readability can help this waiter (false: it waits for the stash to drain). */
  pollable: boolean;
}

/** @internal */
export interface PosixParams {
  creation: CreationMode;
  mode: number;
  /** 0: kernel defaults. */
  capacity: number;
  /** Payload bytes (0: kernel default). */
  maxMessageSize: number;
  defaults: { capacity: number; maxMessageSize: number };
}

/** @internal */
export class PosixBackend implements Backend {
  readonly kind = 'posix' as const;
  readonly name: string;
  readonly label: string;
  readonly maxMessageSize: number;
  readonly minPriority = 0;
  readonly maxPriority = native.MQ_PRIO_MAX - 1;
  #owner: boolean;
  #closed = false;
  readonly #mqd: number;
  readonly #msgsize: number;
  readonly #capacity: number;
  readonly #out = new Int32Array(new ArrayBuffer(12));
  #watch = 0;
  #events = 0;
  #stash: Frame[] = [];
  #stashBytes = 0;
  #readers: Sleeper[] = [];
  #writers: Sleeper[] = [];
  /** This process's lock on the queue's registry record. */
  #hold: Hold | undefined;

  constructor(name: string, p: PosixParams) {
    this.name = name;
    this.label = `message queue '${name}' (posix)`;
    const path = `/${name}`;
    let mqd = -1;
    let owner = false;
    const rw = native.O_RDWR;
    const wantsAttr = p.capacity > 0 || p.maxMessageSize > 0;
    const maxmsg = wantsAttr ? p.capacity || p.defaults.capacity : 0;
    const msgsize = wantsAttr ? (p.maxMessageSize || p.defaults.maxMessageSize) + HEADER : 0;
    const create = (): number => native.mqOpen(path, rw | native.O_CREAT | native.O_EXCL, p.mode, maxmsg, msgsize);
    // An opener holds the record before it opens: no sweep removes the queue under it.
    const openExisting = (): number => {
      this.#hold = recordOpened('mqueue', name);
      return native.mqOpen(path, rw, 0, 0, 0);
    };
    try {
      if (p.creation === 'open') {
        mqd = openExisting();
      } else {
        if (p.creation === 'purgeAndCreate') {
          try {
            native.mqUnlink(path);
          } catch (err) {
            if ((err as { code?: string }).code !== 'ENOENT') throw err;
          }
        }
        try {
          mqd = create();
          owner = true;
        } catch (err) {
          if (p.creation !== 'openOrCreate' || (err as { code?: string }).code !== 'EEXIST') throw err;
          mqd = openExisting();
        }
      }
    } catch (err) {
      releaseHold(this.#hold);
      this.#hold = undefined;
      throw mqOpenError(err, name, maxmsg, msgsize, p.creation !== 'open');
    }
    this.#mqd = mqd;
    this.#owner = owner;
    try {
      native.mqGetattr(mqd, this.#out);
    } catch (err) {
      this.#release();
      releaseHold(this.#hold);
      throw systemError(err, 'POSIX message queue', path);
    }
    this.#capacity = this.#out[0]!;
    this.#msgsize = this.#out[1]!;
    if (owner) {
      let ino: number | undefined;
      try {
        ino = fstatSync(mqd).ino;
      } catch {
        // recorded without identity
      }
      this.#hold = recordCreated('mqueue', name, { ...(ino === undefined ? {} : { ino }), size: this.#capacity * this.#msgsize });
    }
    if (this.#msgsize <= HEADER) {
      this.#release();
      releaseHold(this.#hold);
      throw new IncompatibleError(
        `POSIX message queue '${path}' carries messages of at most ${this.#msgsize} bytes, too small for the ${HEADER}-byte type header`,
      );
    }
    this.maxMessageSize = this.#msgsize - HEADER;
    this.#watch = native.mqWatch(mqd, (events) => this.#onPoll(events));
  }

  get owner(): boolean {
    return this.#owner;
  }

  get closed(): boolean {
    return this.#closed;
  }

  disown(): void {
    if (this.#owner) recordDisowned(this.#hold);
    this.#owner = false;
  }

  // --- sending ------------------------------------------------------------

  trySend(frame: Frame): boolean {
    this.#check();
    try {
      return native.mqSend(this.#mqd, frame.type, frame.payload, frame.priority);
    } catch (err) {
      throw systemError(err, 'POSIX message queue', `/${this.name}`);
    }
  }

  async send(frame: Frame, wait: Wait): Promise<void> {
    for (;;) {
      if (this.trySend(frame)) return;
      await this.#sleep(this.#writers, wait, true);
    }
  }

  // --- receiving ----------------------------------------------------------

  /**
   * Takes the message `selector` chooses from stash and kernel queue together.
   * Stash messages left the kernel queue before anything now in it of the same
   * priority (the kernel hands out the oldest of the highest priority first),
   * so on equal priority the stash wins.
   */
  tryReceive(selector: number): Frame | undefined {
    this.#check();
    const stash = this.#stash;
    if (selector === 0) {
      const k = this.#pull();
      const i = selectFrame(stash, 0);
      if (k === undefined) return i < 0 ? undefined : this.#unstash(i);
      if (i < 0 || k.priority > stash[i]!.priority) return k;
      this.#stashPush(k);
      return this.#unstash(i);
    }
    if (selector > 0) {
      let k: Frame | undefined;
      while (!this.#stashFull()) {
        const f = this.#pull();
        if (f === undefined) break;
        if (f.type === selector) {
          k = f;
          break;
        }
        this.#stashPush(f);
      }
      const i = selectFrame(stash, selector);
      if (k === undefined) return i < 0 ? undefined : this.#unstash(i);
      if (i >= 0 && stash[i]!.priority >= k.priority) {
        this.#stashPush(k);
        return this.#unstash(i);
      }
      return k;
    }
    // The lowest type comes first whatever its priority: look at everything.
    while (!this.#stashFull()) {
      const f = this.#pull();
      if (f === undefined) break;
      this.#stashPush(f);
    }
    const i = selectFrame(stash, selector);
    return i < 0 ? undefined : this.#unstash(i);
  }

  async receive(selector: number, wait: Wait): Promise<Frame> {
    for (;;) {
      const f = this.tryReceive(selector);
      if (f !== undefined) return f;
      await this.#sleep(this.#readers, wait, selector === 0 || !this.#stashFull());
    }
  }

  #pull(): Frame | undefined {
    let payload: Buffer | null;
    try {
      payload = native.mqReceive(this.#mqd, this.#msgsize, this.#out);
    } catch (err) {
      throw systemError(err, 'POSIX message queue', `/${this.name}`);
    }
    if (payload === null) return undefined;
    // Room was made: a waiting sender of this handle may go on.
    if (this.#writers.length > 0) this.#wakeAll(this.#writers);
    const type = this.#out[0]!;
    if (type <= 0) {
      throw new ProtocolError(
        `${this.label}: received a ${this.#out[2]}-byte message without the multiproc header ` +
          `('MPQ1' and a positive int32 type); it was dropped`,
      );
    }
    return { payload, type, priority: this.#out[1]! };
  }

  #stashFull(): boolean {
    return this.#stash.length >= STASH_MESSAGES || this.#stashBytes >= STASH_BYTES;
  }

  #stashPush(f: Frame): void {
    this.#stash.push(f);
    this.#stashBytes += f.payload.length;
    // Another receive of this handle may be waiting for exactly this one.
    if (this.#readers.length > 0) this.#wakeAll(this.#readers);
  }

  #unstash(i: number): Frame {
    const wasFull = this.#stashFull();
    const [f] = this.#stash.splice(i, 1);
    this.#stashBytes -= f!.payload.length;
    if (wasFull && this.#readers.length > 0) this.#wakeAll(this.#readers);
    return f!;
  }

  // --- waiting --------------------------------------------------------------

  #sleep(list: Sleeper[], wait: Wait, pollable: boolean): Promise<void> {
    return waitFor<void>(wait, (resolve) => {
      const s: Sleeper = { wake: () => resolve(), pollable };
      list.push(s);
      this.#updateWatch();
      return () => {
        const k = list.indexOf(s);
        if (k >= 0) list.splice(k, 1);
        this.#updateWatch();
      };
    });
  }

  #wakeAll(list: Sleeper[]): void {
    const woken = list.splice(0, list.length);
    for (const s of woken) s.wake();
    this.#updateWatch();
  }

  #updateWatch(): void {
    if (this.#closed) return;
    let events = 0;
    if (this.#readers.some((r) => r.pollable)) events |= native.UV_READABLE;
    if (this.#writers.length > 0) events |= native.UV_WRITABLE;
    if (events === this.#events) return;
    this.#events = events;
    native.mqWatchSet(this.#watch, events);
  }

  #onPoll(events: number): void {
    // A negative value is a libuv error: wake everyone, whose retry reports it.
    if (events < 0 || (events & native.UV_READABLE) !== 0) this.#wakeAll(this.#readers);
    if (events < 0 || (events & native.UV_WRITABLE) !== 0) this.#wakeAll(this.#writers);
    this.#updateWatch();
  }

  // --- state and lifetime -----------------------------------------------------

  stat(): MessageQueueStat {
    this.#check();
    native.mqGetattr(this.#mqd, this.#out);
    return posixStat(this.#mqd, this.name, this.#out, { messages: this.#stash.length, bytes: this.#stashBytes });
  }

  unlink(): void {
    try {
      native.mqUnlink(`/${this.name}`);
    } catch (err) {
      throw systemError(err, 'POSIX message queue', `/${this.name}`);
    } finally {
      this.#owner = false;
    }
    if (this.#hold !== undefined) {
      recordRemoved(this.#hold);
      this.#hold = undefined;
    } else {
      recordUnlinked('mqueue', this.name);
    }
  }

  close(graceful: boolean): void {
    if (this.#closed) return;
    // Messages set aside for type selection go back to the kernel queue
    // (behind others of their priority) rather than being lost with this
    // handle, as far as it has room: close does not wait for receivers.
    if (graceful) {
      for (const f of this.#stash) {
        try {
          if (!native.mqSend(this.#mqd, f.type, f.payload, f.priority)) break;
        } catch {
          break;
        }
      }
    }
    this.#stash = [];
    this.#stashBytes = 0;
    this.#release();
    const hold = this.#hold;
    this.#hold = undefined;
    if (this.#owner) {
      this.#owner = false;
      try {
        native.mqUnlink(`/${this.name}`);
      } catch {
        // removed by someone else already: the goal is reached
      }
      recordRemoved(hold);
    } else {
      releaseHold(hold);
    }
  }

  #release(): void {
    this.#closed = true;
    if (this.#watch !== 0) native.mqWatchClose(this.#watch);
    this.#watch = 0;
    try {
      native.mqClose(this.#mqd);
    } catch {
      // nothing useful to do about a failed close
    }
  }

  #check(): void {
    if (this.#closed) throw new ClosedError(`${this.label} is closed`);
  }
}

/**
 * A queue's `stat()`: `attr` is what `native.mqGetattr` wrote for `mqd`
 * (capacity, message size, messages queued); `setAside` is what a handle
 * took out of the queue for type selection. For the queue handle, and for
 * `multiproc resources`.
 * @internal
 */
export function posixStat(mqd: number, name: string, attr: Int32Array, setAside = { messages: 0, bytes: 0 }): MessageQueueStat {
  const queued = attr[2]!;
  const maxMessageSize = attr[1]! - HEADER;
  let bytes: number | null = null;
  try {
    // /dev/mqueue/<name> reads "QSIZE:129 NOTIFY:0 ...": bytes of all queued messages.
    const m = /QSIZE:(\d+)/.exec(readFileSync(`/dev/mqueue/${name}`, 'utf8'));
    if (m !== null) bytes = Math.max(0, Number(m[1]) - HEADER * queued) + setAside.bytes;
  } catch {
    // /dev/mqueue is not mounted, or the name is gone
  }
  return {
    backend: 'posix',
    name,
    messages: queued + setAside.messages,
    bytes,
    capacityMessages: attr[0]!,
    capacityBytes: attr[0]! * maxMessageSize,
    maxMessageSize,
    lastSendPid: null,
    lastReceivePid: null,
    lastSendTime: null,
    lastReceiveTime: null,
    changeTime: null,
    // The descriptor is a file descriptor: its inode carries the mode.
    mode: fstatSync(mqd).mode & 0o777,
  };
}
