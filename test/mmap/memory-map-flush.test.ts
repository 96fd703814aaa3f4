import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { MemoryMap } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const tmp = tempDir('mmap-flush');

test('after flush() and close() the file on disk holds the data', () => {
  const file = tmp.file('flushed');
  const map = MemoryMap.create(file, 10000);
  const bytes = new Uint8Array(map.buffer);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
  map.flush();
  map.close();

  const disk = readFileSync(file);
  assert.equal(disk.length, 10000);
  for (let i = 0; i < disk.length; i++) assert.equal(disk[i], i % 251, `byte ${i}`);
});

test('flush() of a range, synchronous or not, writes that range to the file', () => {
  const file = tmp.file('range');
  writeFileSync(file, Buffer.alloc(3 * MemoryMap.pageSize));
  using map = MemoryMap.open(file);
  const bytes = new Uint8Array(map.buffer);
  bytes.fill(1, 10, 20);
  bytes.fill(2, MemoryMap.pageSize + 7, MemoryMap.pageSize + 9);
  // Unaligned ranges are fine: the library widens them to whole pages.
  map.flush({ offset: 10, length: 10 });
  map.flush({ offset: MemoryMap.pageSize + 7, length: 2, sync: false });
  map.flush({ offset: map.length, length: 0 });

  const disk = readFileSync(file);
  assert.deepEqual([...disk.subarray(9, 21)], [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
  assert.deepEqual([...disk.subarray(MemoryMap.pageSize + 6, MemoryMap.pageSize + 10)], [0, 2, 2, 0]);
});

test('flush() of a private map does nothing and the file keeps its bytes', () => {
  const file = tmp.file('private');
  writeFileSync(file, Buffer.alloc(100, 7));
  for (const access of ['read', 'copyOnWrite'] as const) {
    using map = MemoryMap.open(file, { access });
    new Uint8Array(map.buffer).fill(9);
    map.flush();
    map.flush({ sync: false });
  }
  assert.deepEqual(readFileSync(file), Buffer.alloc(100, 7));
});
