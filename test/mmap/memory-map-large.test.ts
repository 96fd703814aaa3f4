import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, openSync, readSync, statfsSync } from 'node:fs';
import { MemoryMap, maxBufferSize } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const tmp = tempDir('mmap-large');

const FOUR_GIB = 2 ** 32;
const PAGE = MemoryMap.pageSize;
const SIZE = FOUR_GIB + 3 * PAGE + 100;
// The file is sparse: only the pages written below take disk blocks.
const NEEDED = 64 * 1024 * 1024;

function readAt(file: string, position: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    assert.equal(readSync(fd, b, 0, length, position), length);
    return b;
  } finally {
    closeSync(fd);
  }
}

test('a file larger than 4 GiB is reachable through view() beyond the 4 GiB boundary', (t) => {
  const fs = statfsSync(tmp.dir);
  if (fs.bavail * fs.bsize < NEEDED) {
    t.skip(`needs ${NEEDED} free bytes in ${tmp.dir}; ${fs.bavail * fs.bsize} available`);
    return;
  }
  const file = tmp.file('big');
  const fd = openSync(file, 'w+');
  try {
    ftruncateSync(fd, SIZE);
  } catch (err) {
    closeSync(fd);
    if ((err as { code?: string }).code === 'EFBIG') {
      t.skip(`the file system of ${tmp.dir} does not hold files above 4 GiB`);
      return;
    }
    throw err;
  }
  closeSync(fd);

  const map = MemoryMap.open(file);
  assert.equal(map.length, SIZE);
  if (SIZE > maxBufferSize) {
    assert.throws(() => map.buffer, { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  }

  const beyond = map.view(FOUR_GIB + PAGE + 7, 16);
  assert.equal(beyond.length, 16);
  assert.deepEqual([...beyond], new Array(16).fill(0));
  beyond.set(Buffer.from('beyond four GiB!'));
  const across = map.view(FOUR_GIB - 8, 16);
  across.set(Buffer.from('across-boundary!'));
  map.view(SIZE - 10, 10).fill(0xab);
  assert.equal(map.view(SIZE, 0).length, 0);
  assert.throws(() => map.view(SIZE - 1, 2), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => map.view(SIZE + 1, 0), { code: 'ERR_OUT_OF_RANGE' });

  // Another window over the same bytes aliases the same pages.
  assert.equal(Buffer.from(map.view(FOUR_GIB + PAGE + 7, 16)).toString(), 'beyond four GiB!');
  // So does a separate map that starts past 4 GiB.
  using tail = MemoryMap.open(file, { access: 'read', offset: FOUR_GIB });
  assert.equal(tail.length, 3 * PAGE + 100);
  assert.equal(Buffer.from(new Uint8Array(tail.buffer, PAGE + 7, 16)).toString(), 'beyond four GiB!');
  assert.equal(Buffer.from(new Uint8Array(tail.buffer, 0, 8)).toString(), 'oundary!');

  map.flush();
  map.close();
  assert.throws(() => map.view(FOUR_GIB, 1), { code: 'ERR_MULTIPROC_CLOSED' });
  assert.equal(readAt(file, FOUR_GIB + PAGE + 7, 16).toString(), 'beyond four GiB!');
  assert.equal(readAt(file, FOUR_GIB - 8, 16).toString(), 'across-boundary!');
  assert.deepEqual(readAt(file, SIZE - 11, 11), Buffer.from([0, ...new Array(10).fill(0xab)]));
});
