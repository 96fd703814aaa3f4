/**
 * The `shm` backend's queue, laid out in one shared-memory segment. Every
 * method here runs with the queue's robust mutex held (see shm.ts).
 *
 * Layout (byte offsets):
 *
 *     0  header: 32-bit words (H_* below), then f64 times at 96..119
 *   128  the robust Mutex (64 bytes)
 *   192  descriptors: `capacity` entries of 6 words
 *        [next, type, priority, block, length, spare]
 *     A  arena: variable-size blocks holding the payloads
 *
 * Messages: one singly linked list of descriptors, sorted by priority (high
 * first) and, within a priority, by arrival. A receive without type takes
 * the head, O(1); a send of the lowest priority present appends at the tail,
 * O(1); a higher priority walks past the messages that outrank it. Receives
 * by type walk the list (as the kernel's System V queue does).
 *
 * Arena: blocks with boundary tags (header and footer word: size | used), a
 * doubly linked first-fit free list, splitting from the end of a free block
 * and coalescing with both neighbours on free. Used block: [tag, length,
 * payload..., tag]; free block: [tag, next, prev, ..., tag]; sizes are
 * multiples of 8, at least 16.
 *
 * Crash safety. A process may die at any point while holding the lock; the
 * next holder sees `ownerDied` and calls `repair()`. The writes are ordered
 * so that the message list is always whole:
 * - send: allocate a block, copy the payload, take a descriptor, fill it,
 *   and only then link it in with ONE store (the commit);
 * - receive: copy the payload out, unlink with ONE store (the commit), then
 *   free the block and the descriptor.
 * Everything else (tail, counters, free lists, block tags of free space) is
 * derived, and `repair()` rebuilds it from the list: a message is either in
 * the list, complete, or it was never sent / already received. Entries that
 * fail validation (which ordered writes should make impossible) are dropped
 * and counted in `lost`.
 *
 * @internal
 */

import type { MessageQueueStat } from './backend.js';
import { copyInto, copyOf } from '../shm/copy.js';

export const MAGIC = 0x5153504d; // 'MPSQ'
export const VERSION = 1;

// Header words.
export const H_MAGIC = 0;
export const H_VERSION = 1;
export const H_READY = 2;
const H_CAP_MSGS = 4;
const H_CAP_BYTES = 5;
const H_MAX_MSG = 6;
const H_ARENA = 7;
const H_ARENA_END = 8;
const H_COUNT = 10;
const H_BYTES = 11;
const H_HEAD = 12;
const H_TAIL = 13;
const H_FREE_DESC = 14;
const H_FREE_BLOCK = 15;
/** Doorbells (see backend.ts): rung after a send / after a receive. */
export const H_NOT_EMPTY = 16;
export const H_NOT_FULL = 17;
const H_LSPID = 18;
const H_LRPID = 19;
const H_REPAIRS = 20;
const H_LOST = 21;
const H_CREATOR = 22;
// f64 indices.
const F_STIME = 12;
const F_RTIME = 13;
const F_CTIME = 14;

export const MUTEX_OFFSET = 128;
const DESC_OFFSET = 192;
const DESC_WORDS = 6;
const D_NEXT = 0;
const D_TYPE = 1;
const D_PRIO = 2;
const D_BLOCK = 3;
const D_LEN = 4;

/** Word index of descriptor `d`. */
function desc(d: number): number {
  return DESC_OFFSET / 4 + d * DESC_WORDS;
}

const MIN_BLOCK = 16;
/** Bytes a used block needs around a payload of `len` bytes. */
function need(len: number): number {
  return Math.max(MIN_BLOCK, (len + 12 + 7) & ~7);
}

/** Segment size for a queue of these capacities. @internal */
export function segmentSize(capacity: number, capacityBytes: number): { size: number; arena: number; arenaEnd: number } {
  const arena = (DESC_OFFSET + capacity * DESC_WORDS * 4 + 7) & ~7;
  // Room for every message's tags and rounding, so the byte capacity is
  // reachable when the arena is not fragmented.
  const arenaSize = Math.ceil(capacityBytes / 8) * 8 + capacity * 24 + MIN_BLOCK;
  return { size: arena + arenaSize, arena, arenaEnd: arena + arenaSize };
}

/** A taken message. */
export interface StoredMessage {
  payload: Uint8Array;
  type: number;
  priority: number;
}

/** @internal */
export class ShmStore {
  readonly i32: Int32Array;
  readonly #u8: Uint8Array;
  readonly #f64: Float64Array;
  readonly #pid = process.pid;

  constructor(buffer: SharedArrayBuffer) {
    this.i32 = new Int32Array(buffer);
    this.#u8 = new Uint8Array(buffer);
    this.#f64 = new Float64Array(buffer, 0, 16);
  }

  /** Lays out an empty queue in zeroed memory (before READY is published). */
  init(capacity: number, capacityBytes: number, maxMessageSize: number): void {
    const i = this.i32;
    const { arena, arenaEnd } = segmentSize(capacity, capacityBytes);
    i[H_CAP_MSGS] = capacity;
    i[H_CAP_BYTES] = capacityBytes;
    i[H_MAX_MSG] = maxMessageSize;
    i[H_ARENA] = arena;
    i[H_ARENA_END] = arenaEnd;
    i[H_HEAD] = -1;
    i[H_TAIL] = -1;
    for (let d = 0; d < capacity; d++) i[desc(d) + D_NEXT] = d + 1 < capacity ? d + 1 : -1;
    i[H_FREE_DESC] = 0;
    i[H_FREE_BLOCK] = -1;
    this.#makeFree(arena, arenaEnd - arena);
    i[H_CREATOR] = this.#pid;
    this.#f64[F_CTIME] = Date.now();
    i[H_MAGIC] = MAGIC;
    i[H_VERSION] = VERSION;
  }

  get capacity(): number {
    return this.i32[H_CAP_MSGS]!;
  }

  get capacityBytes(): number {
    return this.i32[H_CAP_BYTES]!;
  }

  get maxMessageSize(): number {
    return this.i32[H_MAX_MSG]!;
  }

  // --- messages -----------------------------------------------------------

  /** Appends a message; false when the queue is full. */
  put(type: number, priority: number, payload: Uint8Array): boolean {
    const i = this.i32;
    const len = payload.length;
    const count = i[H_COUNT]!;
    if (count >= i[H_CAP_MSGS]! || i[H_BYTES]! + len > i[H_CAP_BYTES]!) return false;
    const d = i[H_FREE_DESC]!;
    if (d < 0) return false;
    const b = this.#alloc(len);
    if (b < 0) return false;
    try {
      copyInto(this.#u8, b + 8, payload);
    } catch (err) {
      // A payload that cannot be read (a detached buffer): nothing was linked, give the block back.
      this.#free(b);
      throw err;
    }
    const dw = desc(d);
    i[H_FREE_DESC] = i[dw + D_NEXT]!;
    i[dw + D_TYPE] = type;
    i[dw + D_PRIO] = priority;
    i[dw + D_BLOCK] = b;
    i[dw + D_LEN] = len;
    this.#link(d, dw, priority);
    i[H_COUNT] = count + 1;
    i[H_BYTES] = i[H_BYTES]! + len;
    i[H_LSPID] = this.#pid;
    this.#f64[F_STIME] = Date.now();
    return true;
  }

  /** Takes the message `selector` chooses (System V rule), or undefined. */
  take(selector: number): StoredMessage | undefined {
    const i = this.i32;
    let pred = -1;
    let d = i[H_HEAD]!;
    if (selector > 0) {
      d = -1;
      this.#walk((x, p) => {
        if (i[desc(x) + D_TYPE] !== selector) return false;
        d = x;
        pred = p;
        return true;
      });
    } else if (selector < 0) {
      // The lowest type <= -selector; its first occurrence is its highest priority, oldest.
      d = -1;
      let bestType = -selector + 1;
      this.#walk((x, p) => {
        const t = i[desc(x) + D_TYPE]!;
        if (t >= bestType) return false;
        d = x;
        pred = p;
        bestType = t;
        return t === 1;
      });
    }
    if (d < 0) return undefined;
    const dw = desc(d);
    const b = i[dw + D_BLOCK]!;
    const len = i[dw + D_LEN]!;
    const payload = copyOf(this.#u8, b + 8, len);
    const type = i[dw + D_TYPE]!;
    const priority = i[dw + D_PRIO]!;
    const next = i[dw + D_NEXT]!;
    if (pred < 0) i[H_HEAD] = next;
    else i[desc(pred) + D_NEXT] = next;
    if (i[H_TAIL] === d) i[H_TAIL] = pred;
    this.#free(b);
    i[dw + D_NEXT] = i[H_FREE_DESC]!;
    i[H_FREE_DESC] = d;
    i[H_COUNT] = i[H_COUNT]! - 1;
    i[H_BYTES] = i[H_BYTES]! - len;
    i[H_LRPID] = this.#pid;
    this.#f64[F_RTIME] = Date.now();
    return { payload, type, priority };
  }

  /**
   * Calls `visit(d, pred)` for the messages in list order (`pred`: the one
   * before, -1 for the head) until it returns true; at most `capacity` steps,
   * so that a damaged list cannot loop forever.
   */
  #walk(visit: (d: number, pred: number) => boolean): void {
    const i = this.i32;
    const limit = i[H_CAP_MSGS]!;
    let pred = -1;
    let d = i[H_HEAD]!;
    for (let n = 0; d >= 0 && n < limit; n++) {
      if (visit(d, pred)) return;
      pred = d;
      d = i[desc(d) + D_NEXT]!;
    }
  }

  /** Links descriptor `d` (word index `dw`) into the sorted list; the store to its predecessor commits. */
  #link(d: number, dw: number, priority: number): void {
    const i = this.i32;
    const head = i[H_HEAD]!;
    const tail = i[H_TAIL]!;
    if (head < 0) {
      i[dw + D_NEXT] = -1;
      i[H_HEAD] = d;
      i[H_TAIL] = d;
      return;
    }
    if (i[desc(tail) + D_PRIO]! >= priority) {
      i[dw + D_NEXT] = -1;
      i[desc(tail) + D_NEXT] = d;
      i[H_TAIL] = d;
      return;
    }
    if (i[desc(head) + D_PRIO]! < priority) {
      i[dw + D_NEXT] = head;
      i[H_HEAD] = d;
      return;
    }
    // head >= priority > tail: insert after the last message that is not outranked.
    let pred = head;
    for (;;) {
      const next = i[desc(pred) + D_NEXT]!;
      if (next < 0 || i[desc(next) + D_PRIO]! < priority) break;
      pred = next;
    }
    i[dw + D_NEXT] = i[desc(pred) + D_NEXT]!;
    i[desc(pred) + D_NEXT] = d;
  }

  // --- arena ----------------------------------------------------------------

  #tags(b: number, size: number, used: number): void {
    this.i32[b >> 2] = size | used;
    this.i32[(b + size - 4) >> 2] = size | used;
  }

  /** Free block `b` of `size` bytes, pushed on the free list. */
  #makeFree(b: number, size: number): void {
    const i = this.i32;
    this.#tags(b, size, 0);
    const head = i[H_FREE_BLOCK]!;
    i[(b + 4) >> 2] = head;
    i[(b + 8) >> 2] = -1;
    if (head >= 0) i[(head + 8) >> 2] = b;
    i[H_FREE_BLOCK] = b;
  }

  #unlinkFree(f: number): void {
    const i = this.i32;
    const next = i[(f + 4) >> 2]!;
    const prev = i[(f + 8) >> 2]!;
    if (prev >= 0) i[(prev + 4) >> 2] = next;
    else i[H_FREE_BLOCK] = next;
    if (next >= 0) i[(next + 8) >> 2] = prev;
  }

  /** First fit; returns the block offset, or -1. */
  #alloc(len: number): number {
    const i = this.i32;
    const want = need(len);
    const limit = (i[H_ARENA_END]! - i[H_ARENA]!) >> 4;
    let f = i[H_FREE_BLOCK]!;
    for (let n = 0; f >= 0 && n <= limit; n++) {
      const size = i[f >> 2]! & ~7;
      if (size >= want) {
        let b: number;
        if (size - want >= MIN_BLOCK) {
          // Split from the end: the free block keeps its place in the list.
          this.#tags(f, size - want, 0);
          b = f + size - want;
          this.#tags(b, want, 1);
        } else {
          this.#unlinkFree(f);
          this.#tags(f, size, 1);
          b = f;
        }
        i[(b + 4) >> 2] = len;
        return b;
      }
      f = i[(f + 4) >> 2]!;
    }
    return -1;
  }

  #free(b: number): void {
    const i = this.i32;
    let size = i[b >> 2]! & ~7;
    const next = b + size;
    if (next < i[H_ARENA_END]! && (i[next >> 2]! & 1) === 0) {
      this.#unlinkFree(next);
      size += i[next >> 2]! & ~7;
    }
    if (b > i[H_ARENA]!) {
      const prevTag = i[(b - 4) >> 2]!;
      if ((prevTag & 1) === 0) {
        // The free neighbour before absorbs this block and keeps its list place.
        const p = b - (prevTag & ~7);
        this.#tags(p, (prevTag & ~7) + size, 0);
        return;
      }
    }
    this.#makeFree(b, size);
  }

  // --- recovery -------------------------------------------------------------

  /**
   * Rebuilds everything derived from the message list after a lock holder
   * died (see the file comment). Returns the number of messages dropped.
   */
  repair(): number {
    const i = this.i32;
    const cap = i[H_CAP_MSGS]!;
    const arena = i[H_ARENA]!;
    const arenaEnd = i[H_ARENA_END]!;
    const maxMsg = i[H_MAX_MSG]!;
    const seen = new Uint8Array(cap);
    const live: number[] = [];
    let lost = 0;
    let d = i[H_HEAD]!;
    while (d !== -1) {
      const ok = Number.isInteger(d) && d >= 0 && d < cap && seen[d] === 0 && this.#validMessage(d, arena, arenaEnd, maxMsg);
      if (!ok) {
        // The rest of the chain cannot be trusted.
        lost++;
        break;
      }
      seen[d] = 1;
      live.push(d);
      d = i[desc(d) + D_NEXT]!;
    }
    // Blocks must not overlap; keep the first of any that do.
    const byBlock = live.map((x) => ({ d: x, b: i[desc(x) + D_BLOCK]! })).sort((a, b) => a.b - b.b);
    const drop = new Set<number>();
    let end = arena;
    for (const e of byBlock) {
      if (e.b < end) {
        drop.add(e.d);
        continue;
      }
      end = e.b + (i[e.b >> 2]! & ~7);
    }
    lost += drop.size;
    const kept = live.filter((x) => !drop.has(x));
    // The list, counters and free descriptors.
    let bytes = 0;
    for (let k = 0; k < kept.length; k++) {
      const dw = desc(kept[k]!);
      i[dw + D_NEXT] = k + 1 < kept.length ? kept[k + 1]! : -1;
      bytes += i[dw + D_LEN]!;
    }
    i[H_HEAD] = kept.length > 0 ? kept[0]! : -1;
    i[H_TAIL] = kept.length > 0 ? kept[kept.length - 1]! : -1;
    i[H_COUNT] = kept.length;
    i[H_BYTES] = bytes;
    const inList = new Uint8Array(cap);
    for (const x of kept) inList[x] = 1;
    let freeDesc = -1;
    for (let x = cap - 1; x >= 0; x--) {
      if (inList[x] === 1) continue;
      i[desc(x) + D_NEXT] = freeDesc;
      freeDesc = x;
    }
    i[H_FREE_DESC] = freeDesc;
    // The arena: kept blocks stay where they are, every gap becomes free space.
    i[H_FREE_BLOCK] = -1;
    let pos = arena;
    let lastUsed = -1;
    for (const e of byBlock) {
      if (drop.has(e.d)) continue;
      if (e.b > pos) this.#gap(pos, e.b - pos, lastUsed);
      const size = i[e.b >> 2]! & ~7;
      this.#tags(e.b, size, 1);
      lastUsed = e.b;
      pos = e.b + size;
    }
    if (pos < arenaEnd) this.#gap(pos, arenaEnd - pos, lastUsed);
    i[H_REPAIRS] = i[H_REPAIRS]! + 1;
    i[H_LOST] = i[H_LOST]! + lost;
    return lost;
  }

  #validMessage(d: number, arena: number, arenaEnd: number, maxMsg: number): boolean {
    const i = this.i32;
    const dw = desc(d);
    const b = i[dw + D_BLOCK]!;
    const len = i[dw + D_LEN]!;
    if (len < 0 || len > maxMsg || b < arena || b % 8 !== 0 || b + MIN_BLOCK > arenaEnd) return false;
    const tag = i[b >> 2]!;
    const size = tag & ~7;
    if ((tag & 1) !== 1 || size < need(len) || b + size > arenaEnd) return false;
    return i[(b + size - 4) >> 2] === tag && i[(b + 4) >> 2] === len && i[dw + D_TYPE]! > 0;
  }

  /** Turns `[at, at + n)` into free space. */
  #gap(at: number, n: number, lastUsed: number): void {
    if (n >= MIN_BLOCK) {
      this.#makeFree(at, n);
      return;
    }
    // An 8-byte sliver cannot hold free-list links: give it to the block before.
    if (lastUsed >= 0) {
      const size = (this.i32[lastUsed >> 2]! & ~7) + n;
      this.#tags(lastUsed, size, 1);
    } else {
      this.#tags(at, n, 1);
    }
  }

  // --- stats ------------------------------------------------------------------

  /** The queue's `stat()` (for the queue handle, and for `multiproc resources`). */
  stat(name: string, maxMessageSize: number, mode: number | null): MessageQueueStat {
    const i = this.i32;
    const f = this.#f64;
    const date = (ms: number): Date | null => (ms > 0 ? new Date(ms) : null);
    return {
      backend: 'shm',
      name,
      messages: i[H_COUNT]!,
      bytes: i[H_BYTES]!,
      capacityMessages: this.capacity,
      capacityBytes: this.capacityBytes,
      maxMessageSize,
      lastSendPid: i[H_LSPID]! || null,
      lastReceivePid: i[H_LRPID]! || null,
      lastSendTime: date(f[F_STIME]!),
      lastReceiveTime: date(f[F_RTIME]!),
      changeTime: date(f[F_CTIME]!),
      mode,
      repairs: i[H_REPAIRS]!,
      lost: i[H_LOST]!,
    };
  }
}
