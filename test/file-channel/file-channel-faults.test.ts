// FileChannel on damaged or foreign files, and misuse: what is refused and
// with which code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, openSync, writeSync, closeSync, statSync } from 'node:fs';
import { FileChannel } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const tmp = tempDir('file-faults');
const code = (c: string) => (e: { code?: string }) => e.code === c;

test('bytes that are not records: messages before them arrive, then ERR_MULTIPROC_PROTOCOL', async () => {
  const path = tmp.file('garbage');
  const w = FileChannel.openWriter<string>(path, { codec: 'json' });
  w.sendSync('good');
  await w.close();
  appendFileSync(path, 'this is not a multiproc record at all');
  const rx = FileChannel.openReader<string>(path, { codec: 'json', offsetStore: false });
  assert.equal(await rx.receive({ timeout: 5000 }), 'good');
  await assert.rejects(rx.receive({ timeout: 5000 }), code('ERR_MULTIPROC_PROTOCOL'));
  await rx.close();
});

test('a record whose bytes changed fails its checksum: ERR_MULTIPROC_PROTOCOL, not a wrong message', async () => {
  const path = tmp.file('crc');
  const w = FileChannel.openWriter<string>(path, { codec: 'json' });
  w.sendSync('first');
  const at = statSync(path).size;
  w.sendSync('second');
  await w.close();
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from('X'), 0, 1, at + 18);
  closeSync(fd);
  const rx = FileChannel.openReader<string>(path, { codec: 'json', offsetStore: false });
  assert.equal(await rx.receive({ timeout: 5000 }), 'first');
  await assert.rejects(rx.receive({ timeout: 5000 }), (e: { code?: string; message: string }) => e.code === 'ERR_MULTIPROC_PROTOCOL' && /checksum/.test(e.message));
  await rx.close();
});

test('a record longer than the reader\'s maxMessageSize is a protocol error', async () => {
  const path = tmp.file('big');
  const w = FileChannel.openWriter<Uint8Array>(path, { codec: 'raw' });
  w.sendSync(new Uint8Array(2000));
  await w.close();
  const rx = FileChannel.openReader<Uint8Array>(path, { codec: 'raw', offsetStore: false, maxMessageSize: 1000 });
  await assert.rejects(rx.receive({ timeout: 5000 }), (e: { code?: string; message: string }) => e.code === 'ERR_MULTIPROC_PROTOCOL' && /2000/.test(e.message));
  await rx.close();
});

test('a file truncated below the read position is reported, not silently re-read', async () => {
  const path = tmp.file('shrink');
  const w = FileChannel.openWriter<string>(path, { codec: 'json' });
  w.sendSync('a');
  w.sendSync('b');
  await w.close();
  const rx = FileChannel.openReader<string>(path, { codec: 'json', offsetStore: false, pollInterval: 50 });
  assert.equal(await rx.receive({ timeout: 5000 }), 'a');
  assert.equal(await rx.receive({ timeout: 5000 }), 'b');
  const fd = openSync(path, 'r+');
  const { ftruncateSync } = await import('node:fs');
  ftruncateSync(fd, 3);
  closeSync(fd);
  await assert.rejects(rx.receive({ timeout: 5000 }), (e: { code?: string; message: string }) => e.code === 'ERR_MULTIPROC_PROTOCOL' && /shrank/.test(e.message));
  await rx.close();
});

test('roles and arguments are checked with Node-style codes', async () => {
  const path = tmp.file('args');
  const w = FileChannel.openWriter<string>(path, { codec: 'json' });
  const rx = FileChannel.openReader<string>(path, { codec: 'json', offsetStore: false });
  try {
    assert.equal(w.traits.mechanism, 'file');
    assert.equal(w.path, path);
    await assert.rejects(w.receive(), code('ERR_INVALID_STATE'));
    await assert.rejects(rx.send('x'), code('ERR_INVALID_STATE'));
    assert.throws(() => w.commit(), code('ERR_INVALID_STATE'));
    assert.throws(() => FileChannel.openWriter(42 as unknown as string), code('ERR_INVALID_ARG_TYPE'));
    assert.throws(() => FileChannel.openReader(path, { from: 'middle' as 'start' }), code('ERR_INVALID_ARG_VALUE'));
    assert.throws(() => FileChannel.openReader(path, { commit: 'never' as 'auto' }), code('ERR_INVALID_ARG_VALUE'));
    assert.throws(() => FileChannel.openReader(path, { offsetStore: {} as never }), code('ERR_INVALID_ARG_TYPE'));
    assert.throws(() => FileChannel.openReader(path, { pollIntervall: 5 } as object), code('ERR_INVALID_ARG_VALUE'));
    assert.throws(() => FileChannel.openWriter(tmp.file('no-dir') + '/x/y'), code('ENOENT'));
    await w.close();
    assert.throws(() => w.sendSync('late'), code('ERR_MULTIPROC_CLOSED'));
  } finally {
    w.destroy();
    rx.destroy();
  }
});

test('a non-boolean fsync is refused before the file (or a sidecar) is created', () => {
  const path = tmp.file('fsync');
  for (const fsync of ['yes', 1, null]) {
    assert.throws(() => FileChannel.openWriter(path, { fsync: fsync as never }), code('ERR_INVALID_ARG_TYPE'));
    assert.throws(() => FileChannel.openReader(path, { fsync: fsync as never }), code('ERR_INVALID_ARG_TYPE'));
  }
  assert.equal(existsSync(path), false);
  assert.equal(existsSync(`${path}.offset`), false);
});

test('sendSync, and stats of both ends', async () => {
  const path = tmp.file('stats');
  const w = FileChannel.openWriter<Uint8Array>(path, { codec: 'raw' });
  const rx = FileChannel.openReader<Uint8Array>(path, { codec: 'raw', offsetStore: false });
  try {
    w.sendSync(new Uint8Array(10), { type: 3, priority: 1 });
    await w.send(new Uint8Array(20));
    assert.equal(w.stats().messagesSent, 2);
    assert.equal(w.stats().bytesSent, 30);
    const m = await rx.receiveMessage({ timeout: 5000 });
    assert.deepEqual([m.type, m.priority, m.size], [3, 1, 10]);
    const s = rx.stats();
    assert.equal(s.messagesReceived, 1);
    assert.equal(s.bytesQueued, 20);
    assert.equal(s.capacityBytes, null);
  } finally {
    w.destroy();
    rx.destroy();
  }
});
