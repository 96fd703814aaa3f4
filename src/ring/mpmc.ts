/**
 * Multi-producer, multi-consumer ring: fixed slots with one sequence word
 * each (after Dmitry Vyukov's bounded MPMC queue), extended to records that
 * span several consecutive slots and to parties that die half-way.
 *
 * Positions count slots and only grow; slot `p & mask` serves position `p`.
 * The sequence word of a slot is `pos << 8 | state` (24 bits of position, so
 * comparisons are done modulo 2^24 and at most 2^22 slots are allowed):
 *
 *    FREE(p)            the slot is free for the record written at position p
 *    CLAIMED(p, j)      sender entry j is writing a record that starts at p
 *    COMMITTED(p)       a complete record starts at p
 *    READING(p, j)      receiver entry j took that record and is reading it
 *    CLEANING(p)        a party is cleaning up after a dead one, at p
 *
 * Sending a record of k slots at tail position t: check that slots t..t+k-1
 * are FREE(t+i); announce (t, k) in our sender entry; CAS the first slot from
 * FREE(t) to CLAIMED(t, j) - this is the reservation, and since the word names
 * the entry, every other party knows who owns it and how long it is; then
 * advance `tail` from t to t+k by CAS (anyone who sees CLAIMED(t, j) with tail
 * still at t does it for us from our announcement, so a sender stalled or
 * killed here does not stop the others). Write header and payload, then store
 * COMMITTED(t): that release store publishes the record, so a reader never
 * sees a torn one. Slots t+1..t+k-1 keep FREE(t+i) while the record lives:
 * no sender can claim them, as `tail` is already past.
 *
 * Receiving at head position h: when the first slot holds COMMITTED(h), CAS it
 * to READING(h, j) (after announcing h in our receiver entry), advance `head`
 * by the record's slot count (read from its header; others may do it for us),
 * read, then free every slot: FREE(h+i+N). Records never wrap: a record that
 * does not fit before the end is preceded by a PAD record up to the end.
 *
 * Crashes. A sender killed between claim and commit leaves CLAIMED(t, j); a
 * receiver that waits on it for a while checks whether entry j's thread is
 * alive, and if not, CASes the slot to CLEANING, writes an ABANDONED record of
 * the announced length there and commits it: receivers report one lost
 * message and go on. A receiver killed while READING leaves its slots in use;
 * a sender waiting for room cleans them up the same way (that message is lost).
 *
 * @internal
 */
import { ProtocolError } from '../errors.js';
import { RingEngine, type DeadSender } from './engine.js';
import {
  ABANDONED,
  C_HEAD,
  C_LAST_PID,
  E_PID,
  E_POS,
  E_SPAN,
  entryIndex,
  P_LAST_PID,
  P_TAIL,
  PAD,
  R_WAITING,
  W_WAITING,
  type Geometry,
} from './layout.js';

const FREE = 0;
const COMMITTED = 1;
const CLEANING = 2;
const CLAIMED = 0x40;
const READING = 0x80;
const KIND = 0xc0;

const pid = process.pid;

function word(pos: number, state: number): number {
  return (pos << 8) | state;
}

/** Signed distance of the word's position from `pos`, modulo 2^24. */
function distance(w: number, pos: number): number {
  return (((w >>> 8) - pos) << 8) >> 8;
}

/** @internal */
export class MpmcEngine extends RingEngine {
  readonly #base: number;
  readonly #shift: number;
  readonly #slots: number;
  readonly #mask: number;
  readonly #seq: number;
  #claimTag = 0;
  #readTag = 0;
  // Open reservation.
  #resPos = 0;
  #resSlots = 0;
  // Record being read.
  #readPos = 0;
  #readSlots = 0;
  #freed = 0;

  constructor(buffer: SharedArrayBuffer, geometry: Geometry, label: string) {
    super(buffer, geometry, label);
    this.#base = geometry.dataByte;
    this.#shift = Math.log2(geometry.slotSize);
    this.#slots = geometry.slots;
    this.#mask = geometry.slots - 1;
    this.#seq = geometry.seqByte >> 2;
  }

  /** Writes the initial sequence words of a new ring. */
  static initialize(i32: Int32Array, g: Geometry): void {
    const seq = g.seqByte >> 2;
    for (let i = 0; i < g.slots; i++) i32[seq + i] = word(i, FREE);
  }

  attachSender(): void {
    this.#claimTag = CLAIMED + this.senderSlot;
  }

  attachReceiver(): void {
    this.#readTag = READING + this.receiverSlot;
  }

  #slotsFor(length: number): number {
    return (length + 16 + (1 << this.#shift) - 1) >> this.#shift;
  }

  /**
   * One attempt at claiming `k` slots at the current tail. Returns the tail
   * position claimed, -1 when full, -2 when the state moved (retry).
   */
  #claim(k: number, pad: { is: boolean; slots: number }): number {
    const i32 = this.i32;
    const seq = this.#seq;
    const t = Atomics.load(i32, P_TAIL);
    const idx = t & this.#mask;
    let kk = k;
    pad.is = false;
    if (idx + k > this.#slots) {
      kk = this.#slots - idx;
      pad.is = true;
    }
    const s0 = Atomics.load(i32, seq + idx);
    const d = distance(s0, t);
    if (d < 0) return -1;
    if (d > 0) return -2;
    const st = s0 & 0xff;
    if (st !== FREE) {
      if ((st & KIND) === CLAIMED) this.#helpTail(t, st - CLAIMED);
      return -2;
    }
    for (let i = 1; i < kk; i++) {
      const si = Atomics.load(i32, seq + idx + i);
      if (si !== word(t + i, FREE)) return distance(si, t + i) < 0 ? -1 : -2;
    }
    const e = this.sender;
    Atomics.store(i32, e + E_SPAN, kk);
    Atomics.store(i32, e + E_POS, t);
    if (Atomics.compareExchange(i32, seq + idx, s0, word(t, this.#claimTag)) !== s0) return -2;
    Atomics.compareExchange(i32, P_TAIL, t, (t + kk) | 0);
    pad.slots = kk;
    return t;
  }

  /** Advances the tail over sender j's claim at t, from j's announcement. */
  #helpTail(t: number, j: number): void {
    const e = entryIndex(this.geometry, false, j);
    if (Atomics.load(this.i32, e + E_POS) !== t) return;
    const k = Atomics.load(this.i32, e + E_SPAN);
    if (k >= 1 && k <= this.#slots) Atomics.compareExchange(this.i32, P_TAIL, t, (t + k) | 0);
  }

  readonly #pad = { is: false, slots: 0 };

  reserve(length: number): number {
    const k = this.#slotsFor(length);
    const pad = this.#pad;
    for (;;) {
      const t = this.#claim(k, pad);
      if (t === -1) return -1;
      if (t === -2) continue;
      const idx = t & this.#mask;
      if (pad.is) {
        this.#writeHeader(idx, 0, PAD, 0, pad.slots);
        Atomics.store(this.i32, this.#seq + idx, word(t, COMMITTED));
        // A parked receiver must take the pad even when the message still
        // does not fit: taking it frees the slots this sender will wait for.
        if (Atomics.load(this.i32, R_WAITING) !== 0) this.wakeReceivers();
        continue;
      }
      this.#resPos = t;
      this.#resSlots = pad.slots;
      return this.#base + (idx << this.#shift) + 16;
    }
  }

  hasRoom(length: number): boolean {
    const i32 = this.i32;
    const k = this.#slotsFor(length);
    const t = Atomics.load(i32, P_TAIL);
    const idx = t & this.#mask;
    const kk = idx + k > this.#slots ? this.#slots - idx : k;
    for (let i = 0; i < kk; i++) {
      if (distance(Atomics.load(i32, this.#seq + idx + i), t + i) < 0) return false;
    }
    return true;
  }

  #writeHeader(idx: number, length: number, type: number, priority: number, slots: number): void {
    const x = (this.#base + (idx << this.#shift)) >> 2;
    const i32 = this.i32;
    i32[x] = length;
    i32[x + 1] = type;
    i32[x + 2] = priority;
    i32[x + 3] = slots;
  }

  commit(length: number, type: number, priority: number): void {
    const i32 = this.i32;
    const t = this.#resPos;
    const idx = t & this.#mask;
    this.#writeHeader(idx, length, type, priority, this.#resSlots);
    Atomics.store(i32, this.#seq + idx, word(t, COMMITTED));
    if (i32[P_LAST_PID] !== pid) i32[P_LAST_PID] = pid;
    // An atomic load: on arm64 only that (ldar) is ordered after the store above (stlr).
    if (Atomics.load(i32, R_WAITING) !== 0) this.wakeReceivers();
  }

  discard(): void {
    // The slots are claimed: hand them to the receivers as padding.
    const t = this.#resPos;
    const idx = t & this.#mask;
    this.#writeHeader(idx, 0, PAD, 0, this.#resSlots);
    Atomics.store(this.i32, this.#seq + idx, word(t, COMMITTED));
    if (Atomics.load(this.i32, R_WAITING) !== 0) this.wakeReceivers();
  }

  claim(): number {
    const i32 = this.i32;
    const seq = this.#seq;
    for (;;) {
      const h = Atomics.load(i32, C_HEAD);
      const idx = h & this.#mask;
      const s0 = Atomics.load(i32, seq + idx);
      const d = distance(s0, h);
      if (d < 0) return -1;
      if (d > 0) continue;
      const st = s0 & 0xff;
      if (st === COMMITTED) {
        Atomics.store(i32, this.receiver + E_POS, h);
        if (Atomics.compareExchange(i32, seq + idx, s0, word(h, this.#readTag)) !== s0) continue;
        const x = (this.#base + (idx << this.#shift)) >> 2;
        const k = i32[x + 3]!;
        const length = i32[x]!;
        if (k < 1 || idx + k > this.#slots || length < 0 || length > (k << this.#shift) - 16) {
          throw new ProtocolError(`${this.label} is corrupted: a record at slot ${idx} claims ${k} slots (length ${length})`);
        }
        Atomics.compareExchange(i32, C_HEAD, h, (h + k) | 0);
        if (i32[x + 1] === PAD) {
          this.#free(h, idx, k);
          continue;
        }
        this.#readPos = h;
        this.#readSlots = k;
        return x << 2;
      }
      if ((st & KIND) === READING) {
        // Taken, but the head has not moved yet: move it for the reader. The
        // header is intact while the head is still at h (the reader frees
        // only after the head moved), and a stale read fails the CAS.
        const k = i32[((this.#base + (idx << this.#shift)) >> 2) + 3]!;
        if (k >= 1 && idx + k <= this.#slots) Atomics.compareExchange(i32, C_HEAD, h, (h + k) | 0);
        continue;
      }
      return -1;
    }
  }

  #free(h: number, idx: number, k: number): void {
    const i32 = this.i32;
    const seq = this.#seq;
    const n = this.#slots;
    for (let i = k - 1; i >= 0; i--) Atomics.store(i32, seq + idx + i, word(h + i + n, FREE));
    // Wake a sleeping sender only after a quarter of the ring was freed here, or it is empty.
    this.#freed += k;
    // An Atomics load: a plain one may pass the stores above on arm64 (see spsc.ts).
    if (Atomics.load(i32, W_WAITING) !== 0 && (this.#freed >= n >> 2 || this.empty())) {
      this.#freed = 0;
      this.wakeSenders();
    }
  }

  release(): void {
    const i32 = this.i32;
    const h = this.#readPos;
    this.#free(h, h & this.#mask, this.#readSlots);
    if (i32[C_LAST_PID] !== pid) i32[C_LAST_PID] = pid;
  }

  ready(): boolean {
    const i32 = this.i32;
    const h = Atomics.load(i32, C_HEAD);
    const s = Atomics.load(i32, this.#seq + (h & this.#mask));
    if (distance(s, h) !== 0) return false;
    const st = s & 0xff;
    return st === COMMITTED || (st & KIND) === READING;
  }

  empty(): boolean {
    return Atomics.load(this.i32, C_HEAD) === Atomics.load(this.i32, P_TAIL);
  }

  blockedBy(): number {
    const i32 = this.i32;
    const h = Atomics.load(i32, C_HEAD);
    const s = Atomics.load(i32, this.#seq + (h & this.#mask));
    if (distance(s, h) !== 0 || ((s & 0xff) & KIND) !== CLAIMED) return -1;
    return (s & 0xff) - CLAIMED;
  }

  /** Turns dead sender j's open claim, if any, into an ABANDONED record. */
  protected cleanupSender(j: number, e: number): DeadSender {
    const i32 = this.i32;
    const deadPid = Atomics.load(i32, e + E_PID);
    const t = Atomics.load(i32, e + E_POS);
    const k = Atomics.load(i32, e + E_SPAN);
    const idx = t & this.#mask;
    const claimed = word(t, CLAIMED + j);
    if (k < 1 || idx + k > this.#slots) return { pid: deadPid, lost: false };
    if (Atomics.compareExchange(i32, this.#seq + idx, claimed, word(t, CLEANING)) !== claimed) return { pid: deadPid, lost: false };
    Atomics.compareExchange(i32, P_TAIL, t, (t + k) | 0);
    this.#writeHeader(idx, 0, ABANDONED, deadPid, k);
    Atomics.store(i32, this.#seq + idx, word(t, COMMITTED));
    this.wakeReceivers(true);
    return { pid: deadPid, lost: true };
  }

  /** Frees the slots dead receiver j was reading (that message is lost). */
  protected cleanupReceiver(j: number, e: number): void {
    const i32 = this.i32;
    const h = Atomics.load(i32, e + E_POS);
    const idx = h & this.#mask;
    const reading = word(h, READING + j);
    if (Atomics.compareExchange(i32, this.#seq + idx, reading, word(h, CLEANING)) !== reading) return;
    const k = i32[((this.#base + (idx << this.#shift)) >> 2) + 3]!;
    if (k < 1 || idx + k > this.#slots) return;
    Atomics.compareExchange(i32, C_HEAD, h, (h + k) | 0);
    this.#free(h, idx, k);
  }

  protected afterTakeover(): void {
    // cleanupSender already left an ABANDONED record in the ring.
  }

  /** Walks the committed records from head to tail (a snapshot; stops at anything in motion). */
  queued(): { messages: number; bytes: number } {
    const i32 = this.i32;
    let h = Atomics.load(i32, C_HEAD);
    const t = Atomics.load(i32, P_TAIL);
    let messages = 0;
    let bytes = 0;
    for (let guard = this.#slots; guard > 0 && ((t - h) | 0) > 0; guard--) {
      const idx = h & this.#mask;
      const s = Atomics.load(i32, this.#seq + idx);
      if (distance(s, h) !== 0 || (s & 0xff) !== COMMITTED) break;
      const x = (this.#base + (idx << this.#shift)) >> 2;
      const k = i32[x + 3]!;
      if (k < 1 || idx + k > this.#slots) break;
      const type = i32[x + 1]!;
      if (type !== PAD && type !== ABANDONED) {
        messages++;
        bytes += i32[x]!;
      }
      h = (h + k) | 0;
    }
    return { messages, bytes };
  }
}
