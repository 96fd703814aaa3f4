import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { ClosedError, MemoryMap, Mutex } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const tmp = tempDir('mmap-close');
const closed = { name: 'ClosedError', code: 'ERR_MULTIPROC_CLOSED' };

test('use after close throws ERR_MULTIPROC_CLOSED; close is idempotent', () => {
  const file = tmp.file('closed');
  const map = MemoryMap.create(file, 4096);
  assert.equal(map.closed, false);
  map.close();
  assert.equal(map.closed, true);
  map.close();
  map[Symbol.dispose]();
  assert.throws(() => map.buffer, closed);
  assert.throws(() => map.view(0, 1), closed);
  assert.throws(() => map.flush(), closed);
  assert.throws(() => map.flush({ sync: false }), (err) => err instanceof ClosedError);
  // What was known about the map stays readable.
  assert.equal(map.path, file);
  assert.equal(map.length, 4096);
  assert.equal(map.offset, 0);
  assert.equal(map.access, 'readWrite');
});

test('using disposes the map at the end of the block', () => {
  const file = tmp.file('using');
  let outer: MemoryMap;
  {
    using map = MemoryMap.create(file, 100);
    outer = map;
    assert.equal(map.closed, false);
  }
  assert.equal(outer.closed, true);
});

test('a buffer kept past close() is harmless: it reads zeros and its writes do not reach the file', () => {
  const file = tmp.file('stale');
  writeFileSync(file, Buffer.alloc(4096, 3));
  const map = MemoryMap.open(file);
  const stale = new Uint8Array(map.buffer);
  map.close();
  assert.equal(stale[0], 0);
  stale.fill(9);
  assert.equal(stale[100], 9);
  assert.deepEqual(readFileSync(file), Buffer.alloc(4096, 3));
});

test('close() refuses while this thread holds a mutex inside the map', () => {
  const file = tmp.file('mutex');
  const map = MemoryMap.create(file, 4096);
  const mutex = new Mutex(map.buffer, 0);
  const guard = mutex.tryAcquire();
  assert.ok(guard);
  assert.throws(() => map.close(), { name: 'BusyError', code: 'ERR_MULTIPROC_BUSY' });
  assert.equal(map.closed, false);
  guard.release();
  map.close();
  assert.equal(map.closed, true);
});
