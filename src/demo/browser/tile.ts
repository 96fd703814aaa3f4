/**
 * A frame in shared memory, as the browser demo's processes pass them: one
 * segment per tab, one for the plugin, one for the composited screen.
 *
 * Layout: bytes 0..63 a robust Mutex that guards the rest; 64.. a header of
 * int32s; pixels (RGBA) from byte 128. Writers draw under the lock; readers
 * copy under it. A writer that dies holding the lock is seen by the next
 * reader as `ownerDied`: the frame may be half drawn.
 */
import { Mutex, SharedMemory } from '../../index.js';
import type { Frame } from './raster.js';

const HEADER = 64;
const PIXELS = 128;

/** Header fields (int32 indexes). */
const SEQ = 0;
const WIDTH = 1;
const HEIGHT = 2;
const EMBED = 3; // x, y, w, h of a plugin area: 4 slots

export class Tile implements Frame {
  readonly shm: SharedMemory;
  readonly lock: Mutex;
  readonly width: number;
  readonly height: number;
  readonly pixels: Uint8Array;
  readonly #header: Int32Array;

  private constructor(shm: SharedMemory) {
    this.shm = shm;
    this.lock = new Mutex(shm, 0);
    this.#header = new Int32Array(shm.buffer, HEADER, 16);
    this.width = this.#header[WIDTH]!;
    this.height = this.#header[HEIGHT]!;
    this.pixels = new Uint8Array(shm.buffer, PIXELS, this.width * this.height * 4);
  }

  static bytes(width: number, height: number): number {
    return PIXELS + width * height * 4;
  }

  /** Creates the segment (the caller owns the name). */
  static create(name: string, width: number, height: number): Tile {
    const shm = SharedMemory.create(name, Tile.bytes(width, height));
    const h = new Int32Array(shm.buffer, HEADER, 16);
    h[WIDTH] = width;
    h[HEIGHT] = height;
    return new Tile(shm);
  }

  static open(name: string): Tile {
    return new Tile(SharedMemory.open(name));
  }

  /** Frames published so far. */
  get seq(): number {
    return Atomics.load(this.#header, SEQ);
  }

  /** Marks a new frame as complete; call with the lock held. */
  publish(): number {
    return Atomics.add(this.#header, SEQ, 1) + 1;
  }

  /** The area the page reserved for the plugin, or null. */
  get embed(): { x: number; y: number; w: number; h: number } | null {
    const h = this.#header;
    if (h[EMBED + 2]! <= 0) return null;
    return { x: h[EMBED]!, y: h[EMBED + 1]!, w: h[EMBED + 2]!, h: h[EMBED + 3]! };
  }

  set embed(r: { x: number; y: number; w: number; h: number } | null) {
    const h = this.#header;
    h[EMBED] = r?.x ?? 0;
    h[EMBED + 1] = r?.y ?? 0;
    h[EMBED + 2] = r?.w ?? 0;
    h[EMBED + 3] = r?.h ?? 0;
  }

  close(): void {
    this.lock.close();
    this.shm.close();
  }
}
