/**
 * Large binary values of a task (typed arrays, Buffers, DataViews,
 * ArrayBuffers) travel through one shared-memory segment per task and
 * direction instead of through the task channel: the message carries the
 * segment's name and, per value, where it sat in the argument tree and where
 * its bytes are in the segment.
 *
 * @internal
 */
import { Buffer } from 'node:buffer';
import { recordUnlinked } from '../resources/registry.js';
import { native } from '../binding/native.js';
import { SharedMemory } from '../shm/shared-memory.js';
import { copyInto } from '../shm/copy.js';

/** Where one value went: its path in the tree, its kind, and its bytes in the segment. */
export type ShmRef = [path: (string | number)[], kind: string, offset: number, byteLength: number];

/** What the task message carries instead of the values: the segment and the refs. */
export interface ShmPack {
  name: string;
  refs: ShmRef[];
}

const MAX_DEPTH = 4;
const ALIGN = 16;

type Binary = ArrayBufferView | ArrayBuffer;

function kindOf(v: Binary): string | undefined {
  if (v instanceof ArrayBuffer) return 'ArrayBuffer';
  if (Buffer.isBuffer(v)) return 'Buffer';
  if (v instanceof DataView) return 'DataView';
  const name = (v as { constructor?: { name?: string } }).constructor?.name;
  return name !== undefined && name in ctors ? name : undefined;
}

const ctors: Record<string, new (buffer: ArrayBufferLike, offset: number, length: number) => ArrayBufferView> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};

function isPlain(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

interface Found {
  path: (string | number)[];
  value: Binary;
  kind: string;
}

/**
 * Replaces the large binary values in `root` (up to 4 levels deep into arrays
 * and plain objects) by `null`, copying only the containers on their path so
 * that the caller's objects stay untouched. A value goes when its size is at
 * least `threshold`, or when it is in `force`.
 */
function extract(root: unknown, threshold: number, force: ReadonlySet<unknown> | undefined): { value: unknown; found: Found[] } {
  const found: Found[] = [];
  const path: (string | number)[] = [];
  const walk = (v: unknown, depth: number): unknown => {
    if (v === null || typeof v !== 'object') return v;
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
      if (v.byteLength >= threshold || (force !== undefined && force.has(v))) {
        const kind = kindOf(v);
        if (kind !== undefined) {
          found.push({ path: path.slice(), value: v, kind });
          return null;
        }
      }
      return v;
    }
    if (depth >= MAX_DEPTH) return v;
    if (Array.isArray(v)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        path.push(i);
        const r = walk(v[i], depth + 1);
        path.pop();
        if (r !== v[i]) (copy ??= v.slice())[i] = r;
      }
      return copy ?? v;
    }
    if (!isPlain(v)) return v;
    let copy: Record<string, unknown> | undefined;
    for (const key of Object.keys(v)) {
      const item = (v as Record<string, unknown>)[key];
      path.push(key);
      const r = walk(item, depth + 1);
      path.pop();
      if (r !== item) (copy ??= { ...(v as Record<string, unknown>) })[key] = r;
    }
    return copy ?? v;
  };
  const value = walk(root, 0);
  return { value, found };
}

function bytesOf(v: Binary): Uint8Array {
  return v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Where packed bytes go: a segment of at least `size` bytes and its name. */
export type SegmentSource = (size: number) => { segment: SharedMemory; name: string; owned: boolean };

/** A source that creates a new segment called `name` for every pack (owned: the caller closes it, which removes the name). */
export function newSegment(name: string): SegmentSource {
  return (size) => ({ segment: SharedMemory.create(name, Math.max(size, 1)), name, owned: true });
}

/**
 * Moves the large binary values of `root` into a segment from `source`.
 * Returns the tree to send, the pack, and the segment when it was created for
 * this pack alone (`owned`); nothing is copied when no value qualifies.
 */
export function pack(
  root: unknown,
  source: SegmentSource,
  threshold: number,
  force?: ReadonlySet<unknown>,
): { value: unknown; pack: ShmPack | null; segment: SharedMemory | undefined } {
  if (threshold === Infinity && force === undefined) return { value: root, pack: null, segment: undefined };
  const { value, found } = extract(root, threshold, force);
  if (found.length === 0) return { value: root, pack: null, segment: undefined };
  let size = 0;
  const refs: ShmRef[] = [];
  for (const f of found) {
    refs.push([f.path, f.kind, size, f.value.byteLength]);
    size += Math.ceil(f.value.byteLength / ALIGN) * ALIGN;
  }
  const { segment, name, owned } = source(size);
  try {
    const all = new Uint8Array(segment.buffer);
    for (let i = 0; i < found.length; i++) copyInto(all, refs[i]![2], bytesOf(found[i]!.value));
  } catch (err) {
    if (owned) segment.close();
    throw err;
  }
  return { value, pack: { name, refs }, segment: owned ? segment : undefined };
}

function place(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  let o = root as Record<string | number, unknown>;
  for (let i = 0; i < path.length - 1; i++) o = o[path[i]!] as Record<string | number, unknown>;
  o[path[path.length - 1]!] = value;
  return root;
}

/**
 * Puts the values of `p` back into `root` (which the codec gave us, so it may
 * be changed in place), from `opened` or from the segment `p.name` opened
 * now. With `copy`, each value gets memory of its own and a segment opened
 * here is closed before returning; without, typed arrays, Buffers and
 * DataViews are views of the segment (valid while it stays open and its
 * bytes are not reused), and a segment opened here is returned for the
 * caller to close.
 */
export function unpack(root: unknown, p: ShmPack, copy: boolean, opened?: SharedMemory): { value: unknown; segment: SharedMemory | undefined } {
  const segment = opened ?? SharedMemory.open(p.name);
  const sab = segment.buffer;
  let value = root;
  try {
    for (const [path, kind, offset, length] of p.refs) {
      let v: unknown;
      if (kind === 'ArrayBuffer' || copy) {
        const bytes = new Uint8Array(length);
        copyInto(bytes, 0, new Uint8Array(sab, offset, length));
        const ab = bytes.buffer;
        v = kind === 'ArrayBuffer' ? ab : kind === 'Buffer' ? Buffer.from(ab) : kind === 'DataView' ? new DataView(ab) : new ctors[kind]!(ab, 0, length / bytesPer(kind));
      } else {
        v = kind === 'Buffer' ? Buffer.from(sab, offset, length) : kind === 'DataView' ? new DataView(sab, offset, length) : new ctors[kind]!(sab, offset, length / bytesPer(kind));
      }
      value = place(value, path, v);
    }
  } catch (err) {
    if (opened === undefined) segment.close();
    throw err;
  }
  if (copy && opened === undefined) {
    segment.close();
    return { value, segment: undefined };
  }
  return { value, segment };
}

function bytesPer(kind: string): number {
  return (ctors[kind] as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
}

/** Removes a segment name if it exists; true when it did. */
export function unlinkQuietly(name: string): boolean {
  const n = name.startsWith('/') ? name : `/${name}`;
  try {
    native.shmUnlink(n);
  } catch {
    return false;
  }
  // The registry's record of a removed name goes too (multiproc ls would list it as gone).
  recordUnlinked('shm', n);
  return true;
}

// Names this process created and has not removed yet. If the process exits while some still exist
// (process.exit() while a worker starts, say), the exit hook removes them: nothing is left in /dev/shm.
const pending = new Set<string>();
let hooked = false;

/** Remembers a segment name to remove at process exit unless {@link forget} is called first. */
export function remember(name: string): void {
  pending.add(name.startsWith('/') ? name : `/${name}`);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const n of pending) unlinkQuietly(n);
    });
  }
}

/** The name was removed (or handed over): no need to remove it at exit. */
export function forget(name: string): void {
  pending.delete(name.startsWith('/') ? name : `/${name}`);
}
