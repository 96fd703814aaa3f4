import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryMap } from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const tmp = tempDir('mmap-sharing');

// Word 0: the parent has written; word 1: the child has written.
const childSource = `
import { MemoryMap } from 'multiproc';
const map = MemoryMap.open(process.env.MAP_FILE);
const flags = new Int32Array(map.buffer, 0, 2);
const bytes = new Uint8Array(map.buffer);
console.log('mapped');
const pause = new Int32Array(new SharedArrayBuffer(4));
const deadline = Date.now() + 30000;
while (Atomics.load(flags, 0) !== 1) {
  if (Date.now() > deadline) {
    console.error('the parent write never showed up');
    process.exit(2);
  }
  Atomics.wait(pause, 0, 0, 1);
}
console.log('seen ' + Buffer.from(bytes.subarray(64, 70)).toString());
bytes.set(Buffer.from('child!'), 128);
Atomics.store(flags, 1, 1);
map.close();
`;

test('two processes that map the same file see each other\'s writes', async () => {
  const file = tmp.file('shared');
  using map = MemoryMap.create(file, 4096);
  // Opened before the child writes: a private map shows the file's pages until it writes them itself.
  using reader = MemoryMap.open(file, { access: 'read' });
  const child = new Child(childSource, { env: { MAP_FILE: file } });
  await child.waitFor('mapped');

  const bytes = new Uint8Array(map.buffer);
  bytes.set(Buffer.from('parent'), 64);
  Atomics.store(new Int32Array(map.buffer), 0, 1);

  const result = await child.exited;
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.signal, null);
  assert.match(result.stdout, /^seen parent$/m);

  // The child's writes are in this process's mapping, without reopening anything.
  assert.equal(Atomics.load(new Int32Array(map.buffer), 1), 1);
  assert.equal(Buffer.from(bytes.subarray(128, 134)).toString(), 'child!');
  assert.equal(Buffer.from(new Uint8Array(reader.buffer, 128, 6)).toString(), 'child!');
});

test('a range map and a whole-file map of the same file share the pages', () => {
  const file = tmp.file('ranges');
  using whole = MemoryMap.create(file, 3 * MemoryMap.pageSize);
  using part = MemoryMap.open(file, { offset: MemoryMap.pageSize, length: MemoryMap.pageSize });
  new Uint8Array(part.buffer)[5] = 0x5a;
  assert.equal(new Uint8Array(whole.buffer)[MemoryMap.pageSize + 5], 0x5a);
  new Uint8Array(whole.buffer)[MemoryMap.pageSize + 6] = 0xa5;
  assert.equal(new Uint8Array(part.buffer)[6], 0xa5);
});
