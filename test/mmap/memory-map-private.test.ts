import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { MemoryMap } from '../../src/index.js';
import { runChild } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const tmp = tempDir('mmap-private');

function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7) & 0xff;
  return b;
}

test('a copy-on-write map keeps its writes private: the file and shared maps do not change', () => {
  const file = tmp.file('cow');
  const original = pattern(2 * MemoryMap.pageSize + 10);
  writeFileSync(file, original);
  using shared = MemoryMap.open(file);
  using cow = MemoryMap.open(file, { access: 'copyOnWrite' });
  assert.equal(cow.access, 'copyOnWrite');

  const mine = new Uint8Array(cow.buffer);
  mine.fill(0xcc, 0, MemoryMap.pageSize + 5);
  assert.equal(mine[0], 0xcc);
  assert.equal(mine[MemoryMap.pageSize + 4], 0xcc);
  assert.equal(mine[MemoryMap.pageSize + 5], original[MemoryMap.pageSize + 5]);

  assert.deepEqual(Buffer.from(new Uint8Array(shared.buffer)), original);
  cow.flush();
  cow.close();
  assert.deepEqual(readFileSync(file), original);
});

test('a read map survives writes from JavaScript (in a child): no crash, the file is unchanged', async () => {
  const file = tmp.file('ro');
  const original = pattern(3 * MemoryMap.pageSize);
  writeFileSync(file, original, { mode: 0o444 });
  const result = await runChild(
    `
    import { MemoryMap } from 'multiproc';
    const map = MemoryMap.open(process.env.MAP_FILE, { access: 'read' });
    const bytes = new Uint8Array(map.buffer);
    bytes.fill(0xee, 0, 4096 + 10);
    Atomics.store(new Int32Array(map.buffer), 2048, 12345);
    console.log(JSON.stringify({ first: bytes[0], last: bytes[4096 + 9], word: Atomics.load(new Int32Array(map.buffer), 2048) }));
    map.close();
    `,
    { env: { MAP_FILE: file } },
  );
  assert.equal(result.signal, null, result.stderr);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout), { first: 0xee, last: 0xee, word: 12345 });
  assert.deepEqual(readFileSync(file), original);
});

test('a read map shows its own writes but other maps of the file never do', () => {
  const file = tmp.file('ro-local');
  const original = pattern(MemoryMap.pageSize);
  writeFileSync(file, original);
  using reader = MemoryMap.open(file, { access: 'read' });
  using other = MemoryMap.open(file, { access: 'read' });
  assert.equal(reader.access, 'read');
  new Uint8Array(reader.buffer)[1] = 0xfe;
  assert.equal(new Uint8Array(reader.buffer)[1], 0xfe);
  assert.equal(new Uint8Array(other.buffer)[1], original[1]);
  reader.close();
  assert.deepEqual(readFileSync(file), original);
});
