/**
 * Single-producer, single-consumer ring: a byte ring with two indexes.
 *
 * The sender owns `tail`, the receiver owns `head`; both are byte positions
 * that only grow (modulo 2^32; the capacity is a power of two up to 2^30, so
 * `tail - head` never wraps wrong). Records are 16-byte aligned, so the space
 * left before the end of the data area is either 0 or room for at least a
 * header: a record that does not fit there is preceded by a PAD record that
 * fills it, and starts again at offset 0.
 *
 * Publication: the sender writes header and payload with plain stores and
 * then stores `tail` with Atomics (sequentially consistent, so it is ordered
 * after the data); the receiver loads `tail` with Atomics before it reads.
 * A reader therefore never sees a record that is not complete. The receiver
 * frees space the same way, by storing `head` after it is done with a record.
 * Each side keeps a private copy of the other's index and reloads it only
 * when it seems to be out of room or out of records.
 *
 * Atomics calls are not inlined by V8 here (tens of ns each, against a few
 * for a plain access), so the hot path keeps them few: the sender stores its
 * tail and loads the receivers' waiting flag once per message; the receiver
 * publishes `head` in batches (every PUBLISH_BYTES, and whenever it finds the
 * ring empty). A waiting flag read after an index store is an Atomics load
 * too: on arm64 a plain load may be served before the store (stlr) is
 * visible, and the side that set the flag would then sleep through the
 * wake-up it needs. A system call costs far more than a message, so a sender that
 * sleeps for room is woken only once a quarter of the ring is free (or the
 * ring is empty): one wake per many messages instead of one per message.
 *
 * A reservation (zero-copy send) is invisible until committed. A sender that
 * dies with one open leaves nothing in the ring; its entry records the
 * position it was writing at, so whoever finds it dead can tell whether the
 * message was lost and count it in P_LOST, which the receiver reports.
 *
 * @internal
 */
import { ProtocolError } from '../errors.js';
import { poolSpace } from './copy-out.js';
import { RingEngine, type DeadSender } from './engine.js';
import {
  C_HEAD,
  C_LAST_PID,
  C_RECEIVED,
  C_RECEIVED_BYTES,
  E_PID,
  E_POS,
  E_STATE,
  P_LAST_PID,
  P_LOST,
  P_SENT,
  P_SENT_BYTES,
  P_TAIL,
  PAD,
  R_WAITING,
  W_WAITING,
  type Geometry,
} from './layout.js';

const pid = process.pid;
/** Bytes of ready records copied out in one go by copyPayload. */
const STAGE_BYTES = 16 * 1024;
/** The receiver publishes its head at least this often (bytes), or on the events above. */
const PUBLISH_BYTES = 16 * 1024;

/** @internal */
export class SpscEngine extends RingEngine {
  readonly #base: number;
  readonly #capacity: number;
  readonly #mask: number;
  // Sender side.
  #tail = 0;
  #headSeen = 0;
  // Receiver side.
  #head = 0;
  #tailSeen = 0;
  #span = 0;
  #length = 0;
  #lostSeen = 0;
  #unpublished = 0;
  // Messages and bytes taken since the head was last published: counted in
  // the shared totals together with it, so that a successor that gets them
  // again (the head did not pass them) does not find them counted already.
  #unpublishedCount = 0;
  #unpublishedBytes = 0;
  // Records copied out ahead (copyPayload): positions [stagePos, stagePos + stageLength) at stageOffset of stageBuffer.
  #stageBuffer: ArrayBuffer | undefined;
  #stagePos = 0;
  #stageLength = 0;
  #stageOffset = 0;
  readonly #publishEvery: number;
  /** Wake a waiting sender once at most this much is used. */
  readonly #wakeBelow: number;

  constructor(buffer: SharedArrayBuffer, geometry: Geometry, label: string) {
    super(buffer, geometry, label);
    this.#base = geometry.dataByte;
    this.#capacity = geometry.capacity;
    this.#mask = geometry.capacity - 1;
    this.#publishEvery = Math.min(PUBLISH_BYTES, geometry.capacity >> 3);
    this.#wakeBelow = geometry.capacity - (geometry.capacity >> 2);
  }

  attachSender(): void {
    this.#tail = Atomics.load(this.i32, P_TAIL);
    this.#headSeen = Atomics.load(this.i32, C_HEAD);
  }

  attachReceiver(): void {
    this.#head = Atomics.load(this.i32, C_HEAD);
    this.#tailSeen = Atomics.load(this.i32, P_TAIL);
    this.#span = 0;
    this.#unpublished = 0;
    this.#unpublishedCount = 0;
    this.#unpublishedBytes = 0;
    this.#stageBuffer = undefined;
    this.#lostSeen = Atomics.load(this.i32, P_LOST);
  }

  #fits(t: number, n: number): boolean {
    if (((t - this.#headSeen) >>> 0) + n <= this.#capacity) return true;
    this.#headSeen = Atomics.load(this.i32, C_HEAD);
    return ((t - this.#headSeen) >>> 0) + n <= this.#capacity;
  }

  reserve(length: number): number {
    const i32 = this.i32;
    const span = (length + 31) & ~15;
    let t = this.#tail;
    let off = t & this.#mask;
    const room = this.#capacity - off;
    if (span > room) {
      if (!this.#fits(t, room)) return -1;
      const x = (this.#base + off) >> 2;
      i32[x] = 0;
      i32[x + 1] = PAD;
      i32[x + 2] = 0;
      i32[x + 3] = room;
      t = (t + room) | 0;
      this.#tail = t;
      Atomics.store(i32, P_TAIL, t);
      // A parked receiver must take the pad even when the message still does
      // not fit: taking it frees the space this sender will wait for.
      if (Atomics.load(i32, R_WAITING) !== 0) this.wakeReceivers();
      off = 0;
    }
    if (!this.#fits(t, span)) return -1;
    const e = this.sender;
    i32[e + E_POS] = t;
    i32[e + E_STATE] = 1;
    return this.#base + off + 16;
  }

  hasRoom(length: number): boolean {
    const span = (length + 31) & ~15;
    const t = this.#tail;
    const room = this.#capacity - (t & this.#mask);
    // When a pad is needed, publishing it is progress too.
    return this.#fits(t, span > room ? room : span);
  }

  commit(length: number, type: number, priority: number): void {
    const i32 = this.i32;
    const t = this.#tail;
    const x = (this.#base + (t & this.#mask)) >> 2;
    const span = (length + 31) & ~15;
    i32[x] = length;
    i32[x + 1] = type;
    i32[x + 2] = priority;
    i32[x + 3] = span;
    const next = (t + span) | 0;
    this.#tail = next;
    Atomics.store(i32, P_TAIL, next);
    i32[this.sender + E_STATE] = 0;
    i32[P_SENT] = (i32[P_SENT]! + 1) | 0;
    i32[P_SENT_BYTES] = (i32[P_SENT_BYTES]! + length) | 0;
    if (i32[P_LAST_PID] !== pid) i32[P_LAST_PID] = pid;
    if (Atomics.load(i32, R_WAITING) !== 0) this.wakeReceivers();
  }

  discard(): void {
    if (this.sender >= 0) this.i32[this.sender + E_STATE] = 0;
  }

  claim(): number {
    const i32 = this.i32;
    for (;;) {
      const h = this.#head;
      if (h === this.#tailSeen) {
        this.#tailSeen = Atomics.load(i32, P_TAIL);
        if (h === this.#tailSeen) {
          // About to report empty: let the sender have the space.
          if (this.#unpublished !== 0) this.#publish();
          return -1;
        }
      }
      const o = this.#base + (h & this.#mask);
      const x = o >> 2;
      const span = i32[x + 3]!;
      const length = i32[x]!;
      if (span < 16 || (span & 15) !== 0 || span > ((this.#tailSeen - h) >>> 0) || length < 0 || length > span - 16) {
        throw new ProtocolError(`${this.label} is corrupted: a record at position ${h >>> 0} claims ${span} bytes (length ${length})`);
      }
      if (i32[x + 1] === PAD) {
        this.#head = (h + span) | 0;
        this.#publish();
        continue;
      }
      this.#span = span;
      this.#length = length;
      return o;
    }
  }

  /**
   * A copy the caller owns of the payload (`length` bytes) of the record
   * taken by claim(), or undefined when it is not cheaper this way. The
   * records that are ready after it are copied along in the same memcpy, so
   * small messages cost one bulk copy between them instead of one each. The
   * copy stays right: those bytes cannot change before the head passes them.
   */
  copyPayload(length: number): Uint8Array | undefined {
    const h = this.#head;
    const need = 16 + length;
    if (this.#stageBuffer === undefined || ((h - this.#stagePos) >>> 0) + need > this.#stageLength) {
      const off = h & this.#mask;
      const n = Math.min(this.#capacity - off, (this.#tailSeen - h) >>> 0, STAGE_BYTES);
      if (need > n || need > STAGE_BYTES >> 1) return undefined;
      const space = poolSpace(n);
      space.bytes.set(this.u8.subarray(this.#base + off, this.#base + off + n), space.offset);
      this.#stageBuffer = space.buffer;
      this.#stageOffset = space.offset;
      this.#stagePos = h;
      this.#stageLength = n;
    }
    return new Uint8Array(this.#stageBuffer, this.#stageOffset + ((h - this.#stagePos) >>> 0) + 16, length);
  }

  #publish(): void {
    const i32 = this.i32;
    this.#unpublished = 0;
    if (this.#unpublishedCount !== 0) {
      i32[C_RECEIVED] = (i32[C_RECEIVED]! + this.#unpublishedCount) | 0;
      i32[C_RECEIVED_BYTES] = (i32[C_RECEIVED_BYTES]! + this.#unpublishedBytes) | 0;
      this.#unpublishedCount = 0;
      this.#unpublishedBytes = 0;
    }
    const head = this.#head;
    Atomics.store(i32, C_HEAD, head);
    if (Atomics.load(i32, W_WAITING) !== 0 && (head === this.#tailSeen || ((this.#tailSeen - head) >>> 0) <= this.#wakeBelow)) this.wakeSenders();
  }

  release(): void {
    const i32 = this.i32;
    const span = this.#span;
    this.#head = (this.#head + span) | 0;
    this.#span = 0;
    this.#unpublishedCount++;
    this.#unpublishedBytes += this.#length;
    if (i32[C_LAST_PID] !== pid) i32[C_LAST_PID] = pid;
    this.#unpublished += span;
    if (this.#unpublished >= this.#publishEvery) this.#publish();
  }

  /** Publishes the head now (before the receiver goes away or to sleep). */
  override flush(): void {
    if (this.#unpublished !== 0) this.#publish();
  }

  ready(): boolean {
    if (this.#head !== this.#tailSeen) return true;
    this.#tailSeen = Atomics.load(this.i32, P_TAIL);
    if (this.#head !== this.#tailSeen) return true;
    if (this.#unpublished !== 0) this.#publish();
    return false;
  }

  empty(): boolean {
    // A receiver of this handle knows its head better than the shared word.
    const head = this.receiver >= 0 ? this.#head : Atomics.load(this.i32, C_HEAD);
    return head === Atomics.load(this.i32, P_TAIL);
  }

  blockedBy(): number {
    return -1;
  }

  /** Messages lost to dead senders since this receiver last asked. */
  takeLost(): number {
    const lost = Atomics.load(this.i32, P_LOST);
    const n = (lost - this.#lostSeen) | 0;
    this.#lostSeen = lost;
    return n;
  }

  protected cleanupSender(_j: number, e: number): DeadSender {
    const i32 = this.i32;
    const lost = Atomics.load(i32, e + E_STATE) === 1 && Atomics.load(i32, P_TAIL) === Atomics.load(i32, e + E_POS);
    if (lost) Atomics.add(i32, P_LOST, 1);
    return { pid: Atomics.load(i32, e + E_PID), lost };
  }

  protected cleanupReceiver(): void {
    // The head stays where the dead receiver left it: its next receiver gets
    // the message it was reading again.
  }

  protected afterTakeover(): void {
    // Counted in P_LOST by cleanupSender; the receiver reports it.
  }

  queued(): { messages: number; bytes: number } {
    const i32 = this.i32;
    // This handle's receiver knows what it took since it last published.
    const mine = this.receiver >= 0;
    const taken = mine ? this.#unpublishedCount : 0;
    const takenBytes = mine ? this.#unpublishedBytes : 0;
    // The sender counts a message after moving the tail, so the receiver's
    // count may be ahead for a moment: never below zero.
    return {
      messages: Math.max(0, (Atomics.load(i32, P_SENT) - Atomics.load(i32, C_RECEIVED) - taken) | 0),
      bytes: Math.max(0, (Atomics.load(i32, P_SENT_BYTES) - Atomics.load(i32, C_RECEIVED_BYTES) - takenBytes) | 0),
    };
  }
}
