// Copies to and from shared memory: both paths (V8's below the threshold, the
// addon's memcpy from it on) give the same bytes, and the native call refuses
// bad arguments with an error instead of touching memory it does not own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { native } from '../../src/binding/native.js';
import { NATIVE_COPY_MIN, copyInto, copyOf } from '../../src/shm/copy.js';

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

test('copyInto and copyOf move the same bytes on both sides of the native threshold', () => {
  const shared = new Uint8Array(new SharedArrayBuffer(4 * NATIVE_COPY_MIN + 64));
  for (const n of [0, 1, 100, NATIVE_COPY_MIN - 1, NATIVE_COPY_MIN, 3 * NATIVE_COPY_MIN + 5]) {
    const src = pattern(n, n);
    shared.fill(0xee);
    copyInto(shared, 7, src);
    assert.deepEqual(shared.subarray(7, 7 + n), src, `copyInto of ${n} bytes`);
    assert.equal(shared[6], 0xee, 'the byte before is untouched');
    assert.equal(shared[7 + n], 0xee, 'the byte after is untouched');
    const out = copyOf(shared, 7, n);
    assert.deepEqual(out, src, `copyOf of ${n} bytes`);
    assert.ok(!(out.buffer instanceof SharedArrayBuffer), 'the copy is private memory');
    assert.equal(out.buffer.byteLength, n, 'a buffer of its own (not a pool shared with other buffers)');
    shared[7] = 0x11;
    if (n > 0) assert.equal(out[0], src[0], 'the copy does not alias the shared memory');
  }
});

test('native.copyBytes checks its arguments before copying', () => {
  const dst = new Uint8Array(new SharedArrayBuffer(64));
  const src = pattern(64, 3);
  assert.throws(() => native.copyBytes({} as Uint8Array, 0, src, 0, 1), TypeError);
  assert.throws(() => native.copyBytes(dst, 0, 'abc' as unknown as Uint8Array, 0, 1), TypeError);
  assert.throws(() => native.copyBytes(dst, 0, src, 0, 65), RangeError);
  assert.throws(() => native.copyBytes(dst, 60, src, 0, 5), RangeError);
  assert.throws(() => native.copyBytes(dst, 0, src, 60, 5), RangeError);
  assert.throws(() => native.copyBytes(dst, -1, src, 0, 1), RangeError);
  assert.throws(() => native.copyBytes(dst, 0, src, 0, 1.5), RangeError);
  // Views start where their view starts, not at their buffer's start.
  native.copyBytes(dst.subarray(10), 0, src.subarray(20), 0, 8);
  assert.deepEqual(dst.subarray(10, 18), src.subarray(20, 28));
  const detached = new Uint8Array(16);
  structuredClone(detached.buffer, { transfer: [detached.buffer] });
  assert.throws(() => native.copyBytes(detached, 0, src, 0, 1), RangeError);
  native.copyBytes(detached, 0, src, 0, 0);
  assert.equal(dst.every((v, i) => (i >= 10 && i < 18) || v === 0), true, 'nothing else was written');
});
