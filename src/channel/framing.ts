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
  const v = new DataView(target.buffer, target.byteOffset + offset, FRAME_HEADER);
  v.setUint32(0, length, true);
  v.setUint16(4, MAGIC, true);
  v.setUint16(6, VERSION, true);
  v.setInt32(8, type, true);
  v.setInt32(12, priority, true);
}

/** A frame header as a fresh 16-byte Buffer. @internal */
export function header(length: number, type: number, priority: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER);
  writeHeader(b, 0, length, type, priority);
  return b;
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

  constructor(maxMessageSize: number) {
    this.#max = maxMessageSize;
  }

  /** Bytes received but not yet part of a whole frame. */
  get buffered(): number {
    return this.#pendingBytes;
  }

  /** Consumes `chunk`; returns the frames it completes. Throws ProtocolError on a bad header. */
  push(chunk: Uint8Array, out: Frame[] = []): Frame[] {
    let data = chunk;
    for (;;) {
      if (this.#pendingBytes + data.length < this.#need) {
        if (data.length > 0) {
          this.#pending.push(data);
          this.#pendingBytes += data.length;
        }
        return out;
      }
      let block: Uint8Array;
      if (this.#pendingBytes === 0) {
        block = data.subarray(0, this.#need);
        data = data.subarray(this.#need);
      } else {
        const take = this.#need - this.#pendingBytes;
        this.#pending.push(data.subarray(0, take));
        block = Buffer.concat(this.#pending, this.#need);
        data = data.subarray(take);
        this.#pending = [];
        this.#pendingBytes = 0;
      }
      if (this.#head === undefined) {
        const v = new DataView(block.buffer, block.byteOffset, FRAME_HEADER);
        const length = v.getUint32(0, true);
        if (v.getUint16(4, true) !== MAGIC || v.getUint16(6, true) !== VERSION) {
          throw new ProtocolError('the peer sent bytes that are not a multiproc frame (bad magic or version)');
        }
        if (length > this.#max) {
          throw new ProtocolError(`the peer announced a ${length}-byte message; this end accepts at most ${this.#max} (maxMessageSize)`);
        }
        const type = v.getInt32(8, true);
        if (type <= 0) throw new ProtocolError(`the peer sent a frame of type ${type}; types are positive`);
        this.#head = { length, type, priority: v.getInt32(12, true) };
        this.#need = length;
        if (length > 0) continue;
        block = new Uint8Array(0);
      }
      out.push({ payload: block, type: this.#head.type, priority: this.#head.priority });
      this.#head = undefined;
      this.#need = FRAME_HEADER;
    }
  }

  /** True when a frame was cut off (bytes of an unfinished frame remain). */
  get partial(): boolean {
    return this.#pendingBytes > 0 || this.#head !== undefined;
  }
}
