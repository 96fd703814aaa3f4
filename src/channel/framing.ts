/**
 * Length-prefixed framing for stream transports (pipes, FIFOs, stream
 * sockets, files). A frame is a 16-byte header and the payload:
 *
 *    0  u32  payload length (little endian)
 *    4  u16  magic 0x4d50 ('MP')
 *    6  u16  version (1)
 *    8  i32  type
 *   12  i32  priority
 *
 * The magic catches a peer that is not speaking this protocol; the length is
 * checked against the receiver's maxMessageSize before any payload is buffered.
 */
import { ProtocolError } from '../errors.js';

export const FRAME_HEADER = 16;
/** Payloads from this size on that span chunks are assembled in a buffer of their own as they arrive. */
const DIRECT_MIN = 64 * 1024;
const MAGIC = 0x4d50;
const VERSION = 1;

/** A message as transports carry it. @internal */
export interface Frame {
  payload: Uint8Array;
  type: number;
  priority: number;
}

/** Writes a frame header into `target` at `offset`. @internal */
export function writeHeader(target: Uint8Array, offset: number, length: number, type: number, priority: number): void {
  // Byte stores: a DataView per frame costs an allocation on the hot path.
  const o = offset;
  target[o] = length;
  target[o + 1] = length >>> 8;
  target[o + 2] = length >>> 16;
  target[o + 3] = length >>> 24;
  target[o + 4] = MAGIC & 0xff;
  target[o + 5] = MAGIC >>> 8;
  target[o + 6] = VERSION;
  target[o + 7] = 0;
  target[o + 8] = type;
  target[o + 9] = type >>> 8;
  target[o + 10] = type >>> 16;
  target[o + 11] = type >>> 24;
  target[o + 12] = priority;
  target[o + 13] = priority >>> 8;
  target[o + 14] = priority >>> 16;
  target[o + 15] = priority >>> 24;
}

function readInt32(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
}

/** A frame header as a fresh 16-byte Buffer. @internal */
export function header(length: number, type: number, priority: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER);
  writeHeader(b, 0, length, type, priority);
  return b;
}

/** @internal A buffer of its own for a payload: uninitialized (every byte is written before it is handed out), a plain Uint8Array like the other payloads. */
export function freshPayload(length: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(length);
  return new Uint8Array(b.buffer, b.byteOffset, length);
}

/**
 * Incremental parser: feed it chunks as they arrive, get whole frames back.
 * Payloads that arrive in one chunk are returned as views (no copy); split
 * payloads are assembled once.
 * @internal
 */
export class FrameParser {
  readonly #max: number;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #need = FRAME_HEADER;
  #head: { length: number; type: number; priority: number } | undefined;
  // A large payload split across chunks is assembled in place: `#direct`
  // is its buffer, `#filled` the bytes in it so far (see directSpace()).
  #direct: Uint8Array | undefined;
  #filled = 0;

  readonly #allocate: (length: number) => Uint8Array;

  /**
   * `allocate` gives the buffer a large payload is assembled in (default: a
   * fresh one); a receiver may lend its own (see InboxChannel.receiveInto).
   */
  constructor(maxMessageSize: number, allocate: (length: number) => Uint8Array = freshPayload) {
    this.#max = maxMessageSize;
    this.#allocate = allocate;
  }

  /**
   * Moves the payload being assembled into a fresh buffer, with the bytes
   * read so far: the memory it was lent is to be left alone from now on.
   */
  relocateDirect(): void {
    const d = this.#direct;
    if (d === undefined) return;
    const fresh = freshPayload(d.length);
    fresh.set(d.subarray(0, this.#filled));
    this.#direct = fresh;
  }

  /** Bytes received but not yet part of a whole frame. */
  get buffered(): number {
    return this.#pendingBytes + this.#filled;
  }

  /**
   * Where the rest of a large payload goes, when one is being assembled: a
   * reader may read(2) straight into it and report with directFilled().
   */
  directSpace(): Uint8Array | undefined {
    return this.#direct === undefined ? undefined : this.#direct.subarray(this.#filled);
  }

  /** `n` bytes were written into directSpace(); pushes the frame to `out` when they complete it. */
  directFilled(n: number, out: Frame[]): void {
    this.#filled += n;
    if (this.#filled === this.#direct!.length) this.#finishDirect(out);
  }

  #finishDirect(out: Frame[]): void {
    const head = this.#head!;
    out.push({ payload: this.#direct!, type: head.type, priority: head.priority });
    this.#direct = undefined;
    this.#filled = 0;
    this.#head = undefined;
    this.#need = FRAME_HEADER;
  }

  /** Consumes `chunk`; returns the frames it completes. Throws ProtocolError on a bad header. */
  push(chunk: Uint8Array, out: Frame[] = []): Frame[] {
    // Walks the chunk by offset: payloads wholly inside it become views of
    // its memory (one typed array each, no copy); only frames split across
    // chunks are assembled.
    const end = chunk.length;
    let pos = 0;
    if (this.#direct !== undefined) {
      const take = Math.min(end, this.#direct.length - this.#filled);
      this.#direct.set(take === end ? chunk : chunk.subarray(0, take), this.#filled);
      this.#filled += take;
      pos = take;
      if (this.#filled < this.#direct.length) return out;
      this.#finishDirect(out);
    }
    for (;;) {
      const avail = end - pos;
      if (this.#pendingBytes + avail < this.#need) {
        if (avail > 0) {
          this.#pending.push(pos === 0 ? chunk : chunk.subarray(pos));
          this.#pendingBytes += avail;
        }
        return out;
      }
      let block: Uint8Array;
      let at: number;
      if (this.#pendingBytes === 0) {
        block = chunk;
        at = pos;
        pos += this.#need;
      } else {
        const take = this.#need - this.#pendingBytes;
        this.#pending.push(chunk.subarray(pos, pos + take));
        block = Buffer.concat(this.#pending, this.#need);
        at = 0;
        pos += take;
        this.#pending = [];
        this.#pendingBytes = 0;
      }
      const head = this.#head;
      if (head === undefined) {
        const length = readInt32(block, at) >>> 0;
        if ((block[at + 4]! | (block[at + 5]! << 8)) !== MAGIC || (block[at + 6]! | (block[at + 7]! << 8)) !== VERSION) {
          throw new ProtocolError('the peer sent bytes that are not a multiproc frame (bad magic or version)');
        }
        if (length > this.#max) {
          throw new ProtocolError(`the peer announced a ${length}-byte message; this end accepts at most ${this.#max} (maxMessageSize)`);
        }
        const type = readInt32(block, at + 8);
        if (type <= 0) throw new ProtocolError(`the peer sent a frame of type ${type}; types are positive`);
        const priority = readInt32(block, at + 12);
        if (length === 0) {
          out.push({ payload: new Uint8Array(0), type, priority });
          continue;
        }
        // The common case, a whole payload in this chunk: no second pass through the loop.
        if (this.#pendingBytes === 0 && end - pos >= length) {
          out.push({ payload: new Uint8Array(chunk.buffer, chunk.byteOffset + pos, length), type, priority });
          pos += length;
          continue;
        }
        this.#head = { length, type, priority };
        this.#need = length;
        if (length >= DIRECT_MIN) {
          // Here nothing is pending and the chunk ends inside the payload.
          this.#direct = this.#allocate(length);
          this.#filled = end - pos;
          this.#direct.set(chunk.subarray(pos), 0);
          return out;
        }
        continue;
      }
      const payload = block === chunk ? new Uint8Array(chunk.buffer, chunk.byteOffset + at, this.#need) : block;
      out.push({ payload, type: head.type, priority: head.priority });
      this.#head = undefined;
      this.#need = FRAME_HEADER;
    }
  }

  /** True when a frame was cut off (bytes of an unfinished frame remain). */
  get partial(): boolean {
    return this.#pendingBytes > 0 || this.#head !== undefined;
  }
}
