// The frame parser on its own: frames split at every possible place come out
// whole and in order, and a large payload that spans chunks is assembled in
// a buffer of its own, also when the rest of it is read straight into that
// buffer (directSpace / directFilled), as stream channels do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { native } from '../../src/binding/native.js';
import { FRAME_HEADER, FrameParser, header, type Frame } from '../../src/channel/framing.js';
import { tempDir } from '../helpers/temp-files.js';

const tmp = tempDir('framing');

function frame(length: number, type: number, seed: number): Buffer {
  const payload = Buffer.alloc(length);
  for (let i = 0; i < length; i++) payload[i] = (i * 13 + seed) & 0xff;
  return Buffer.concat([header(length, type, seed), payload]);
}

function check(frames: Frame[], expected: Array<[number, number, number]>): void {
  assert.equal(frames.length, expected.length);
  frames.forEach((f, k) => {
    const [length, type, seed] = expected[k]!;
    assert.equal(f.payload.length, length, `frame ${k} length`);
    assert.equal(f.type, type);
    assert.equal(f.priority, seed);
    for (let i = 0; i < length; i++) if (f.payload[i] !== ((i * 13 + seed) & 0xff)) assert.fail(`frame ${k} byte ${i}`);
  });
}

test('frames split at any place come out whole, small and large alike', () => {
  const spec: Array<[number, number, number]> = [[5, 1, 1], [200_000, 2, 2], [0, 3, 3], [70_000, 4, 4], [17, 5, 5]];
  const stream = Buffer.concat(spec.map(([l, t, s]) => frame(l, t, s)));
  for (const piece of [1, 7, 16, 4096, 65536, 100_000, stream.length]) {
    const p = new FrameParser(1 << 20);
    const out: Frame[] = [];
    for (let at = 0; at < stream.length; at += piece) p.push(stream.subarray(at, at + piece), out);
    check(out, spec);
    assert.equal(p.partial, false);
    assert.equal(p.buffered, 0);
  }
});

test('the rest of a large payload can be written straight into its buffer', () => {
  const big = frame(300_000, 7, 9);
  const after = frame(10, 1, 4);
  const p = new FrameParser(1 << 20);
  const out: Frame[] = [];
  assert.equal(p.directSpace(), undefined);
  // The first chunk carries the header and 1000 bytes of the payload.
  p.push(big.subarray(0, FRAME_HEADER + 1000), out);
  assert.equal(out.length, 0);
  assert.equal(p.partial, true);
  assert.equal(p.buffered, 1000);
  let space = p.directSpace()!;
  assert.equal(space.length, 299_000);
  // A reader fills part of it, then the stream delivers more, then the reader finishes.
  space.set(big.subarray(FRAME_HEADER + 1000, FRAME_HEADER + 51_000));
  p.directFilled(50_000, out);
  assert.equal(out.length, 0);
  p.push(big.subarray(FRAME_HEADER + 51_000, FRAME_HEADER + 60_000), out);
  space = p.directSpace()!;
  assert.equal(space.length, 240_000);
  space.set(big.subarray(FRAME_HEADER + 60_000));
  p.directFilled(space.length, out);
  check(out, [[300_000, 7, 9]]);
  assert.ok(out[0]!.payload.buffer.byteLength === 300_000, 'the payload has a buffer of its own');
  assert.equal(Object.getPrototypeOf(out[0]!.payload), Uint8Array.prototype, 'a plain Uint8Array, as other payloads');
  assert.equal(p.directSpace(), undefined);
  assert.equal(p.partial, false);
  // What follows is parsed as usual.
  out.length = 0;
  p.push(after, out);
  check(out, [[10, 1, 4]]);
});

test('a chunk that finishes a large payload goes on with the frames after it', () => {
  const stream = Buffer.concat([frame(100_000, 2, 1), frame(3, 1, 2), frame(80_000, 3, 3)]);
  const p = new FrameParser(1 << 20);
  const out: Frame[] = [];
  p.push(stream.subarray(0, 50_000), out);
  p.push(stream.subarray(50_000, 150_000), out);
  p.push(stream.subarray(150_000), out);
  check(out, [[100_000, 2, 1], [3, 1, 2], [80_000, 3, 3]]);
});

test('native readInto: -1 when nothing is ready, the bytes, 0 at the end; bad arguments throw', () => {
  const fifo = tmp.file('fifo');
  native.mkfifo(fifo, 0o600);
  const r = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const w = openSync(fifo, constants.O_WRONLY);
  const view = new Uint8Array(16);
  assert.equal(native.readInto(r, view), -1);
  writeSync(w, Buffer.from('hello'));
  assert.equal(native.readInto(r, view.subarray(3)), 5);
  assert.equal(Buffer.from(view.subarray(3, 8)).toString(), 'hello');
  assert.equal(native.readInto(r, new Uint8Array(0)), 0, 'an empty view reads nothing');
  closeSync(w);
  assert.equal(native.readInto(r, view), 0, 'the end of the stream');
  assert.throws(() => native.readInto(-1, view), RangeError);
  assert.throws(() => native.readInto(r, 'x' as unknown as Uint8Array), TypeError);
  closeSync(r);
  assert.throws(() => native.readInto(r, view), (e: { code?: string; syscall?: string }) => e.code === 'EBADF' && e.syscall === 'read');
});

test('native writeFrom: header and body in one writev, -1 when the pipe is full; bad arguments throw', () => {
  const fifo = tmp.file('fifo');
  native.mkfifo(fifo, 0o600);
  const r = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const w = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  assert.equal(native.writeFrom(w, Buffer.from('ab'), Buffer.from('cde')), 5);
  const view = new Uint8Array(8);
  assert.equal(native.readInto(r, view), 5);
  assert.equal(Buffer.from(view.subarray(0, 5)).toString(), 'abcde');
  // Fill the pipe: the kernel takes what fits, then nothing.
  const big = new Uint8Array(1 << 20);
  let total = 0;
  for (let n = native.writeFrom(w, new Uint8Array(0), big); n > 0; n = native.writeFrom(w, new Uint8Array(0), big)) total += n;
  assert.ok(total >= 4096 && total <= 1 << 20, `the pipe took ${total} bytes`);
  assert.equal(native.writeFrom(w, new Uint8Array(0), big), -1);
  assert.throws(() => native.writeFrom(w, 'x' as unknown as Uint8Array, big), TypeError);
  assert.throws(() => native.writeFrom(-1, big, big), RangeError);
  closeSync(r);
  assert.throws(() => native.writeFrom(w, big, big), (e: { code?: string }) => e.code === 'EPIPE');
  closeSync(w);
});

test('native setSendBuffer refuses what is not a socket, with the errno', () => {
  const fifo = tmp.file('fifo');
  native.mkfifo(fifo, 0o600);
  const r = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    assert.throws(() => native.setSendBuffer(-1, 1 << 20), RangeError);
    assert.throws(() => native.setSendBuffer(r, 0), RangeError);
    assert.throws(() => native.setSendBuffer(r, 1 << 20), (e: { code?: string; syscall?: string }) => e.code === 'ENOTSOCK' && e.syscall === 'setsockopt');
  } finally {
    closeSync(r);
  }
});
