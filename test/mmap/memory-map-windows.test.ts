import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { MemoryMap } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const tmp = tempDir('mmap-windows');
const PAGE = MemoryMap.pageSize;

/** A file whose every byte holds its page number + 1. */
function pagedFile(pages: number, extra = 0): string {
  const file = tmp.file('paged');
  const b = Buffer.alloc(pages * PAGE + extra);
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(i / PAGE) + 1;
  writeFileSync(file, b);
  return file;
}

test('offset and length select a range of the file', () => {
  const file = pagedFile(4);
  using map = MemoryMap.open(file, { offset: PAGE, length: 2 * PAGE });
  assert.equal(map.offset, PAGE);
  assert.equal(map.length, 2 * PAGE);
  const bytes = new Uint8Array(map.buffer);
  assert.equal(bytes.length, 2 * PAGE);
  assert.equal(bytes[0], 2);
  assert.equal(bytes[PAGE], 3);
  assert.equal(bytes[2 * PAGE - 1], 3);

  bytes[0] = 0xf0;
  bytes[2 * PAGE - 1] = 0xf1;
  map.flush();
  const disk = readFileSync(file);
  assert.equal(disk[PAGE - 1], 1);
  assert.equal(disk[PAGE], 0xf0);
  assert.equal(disk[3 * PAGE - 1], 0xf1);
  assert.equal(disk[3 * PAGE], 4);
});

test('without length the map runs from offset to the end of the file, whatever its size', () => {
  const file = pagedFile(3, 123);
  using all = MemoryMap.open(file);
  assert.equal(all.offset, 0);
  assert.equal(all.length, 3 * PAGE + 123);
  using tail = MemoryMap.open(file, { offset: 2 * PAGE });
  assert.equal(tail.length, PAGE + 123);
  assert.equal(tail.buffer.byteLength, PAGE + 123);
  assert.equal(new Uint8Array(tail.buffer)[PAGE + 122], 4);
  using short = MemoryMap.open(file, { length: 100 });
  assert.equal(short.buffer.byteLength, 100);
});

test('view(offset, length) is a window of the map relative to its start', () => {
  const file = pagedFile(4);
  using map = MemoryMap.open(file, { offset: PAGE });
  const view = map.view(PAGE + 10, 20);
  assert.ok(view instanceof Uint8Array);
  assert.equal(view.buffer, map.buffer);
  assert.equal(view.byteOffset, PAGE + 10);
  assert.equal(view.length, 20);
  assert.equal(view[0], 3);
  view[0] = 0x77;
  assert.equal(new Uint8Array(map.buffer)[PAGE + 10], 0x77);
  assert.equal(map.view(map.length, 0).length, 0);
  assert.equal(map.view(0, map.length).length, 3 * PAGE);
  assert.throws(() => map.view(1, map.length), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
});
