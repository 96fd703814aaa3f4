// Several writers on one FileChannel file: appends never interleave, and a
// writer killed in the middle of an append leaves nothing torn behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { FileChannel } from '../../src/index.js';
import { native } from '../../src/binding/native.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { Child, runChild } from '../helpers/child.js';

leakGuard();
const tmp = tempDir('file-writers');

// Message layout: [writer u8][seq u32][fill: (writer + seq + k) & 0xff ...].
function check(m: Uint8Array): { writer: number; seq: number } {
  const writer = m[0]!;
  const seq = m[1]! | (m[2]! << 8) | (m[3]! << 16) | (m[4]! << 24);
  for (let k = 5; k < m.length; k++) if (m[k] !== ((writer + seq + k) & 0xff)) assert.fail(`torn message ${writer}/${seq} at byte ${k}`);
  return { writer, seq };
}

const writer = `
  import { FileChannel } from 'multiproc';
  const [path, id, count, max] = process.argv.slice(1);
  const w = FileChannel.openWriter(path, { codec: 'raw' });
  console.log('ready');
  for (let seq = 0; seq < Number(count); seq++) {
    const n = 5 + ((seq * 7919 + Number(id) * 31) % Number(max));
    const m = new Uint8Array(n);
    m[0] = Number(id); m[1] = seq & 0xff; m[2] = (seq >> 8) & 0xff; m[3] = (seq >> 16) & 0xff; m[4] = seq >>> 24;
    for (let k = 5; k < n; k++) m[k] = (Number(id) + seq + k) & 0xff;
    if (!w.trySend(m)) await w.send(m);
  }
  await w.close();
`;

test('4 writer processes append at once: every message whole, each writer\'s in its order', { timeout: 90000 }, async () => {
  const path = tmp.file('many');
  const rx = FileChannel.openReader<Uint8Array>(path, { codec: 'raw', offsetStore: false });
  const count = 3000;
  const writers = [0, 1, 2, 3].map((id) => new Child(writer, { args: [path, String(id), String(count), '20000'], timeout: 80000 }));
  const next = [0, 0, 0, 0];
  for (let i = 0; i < 4 * count; i++) {
    const { writer: id, seq } = check(await rx.receive({ timeout: 30000 }));
    assert.equal(seq, next[id], `writer ${id}`);
    next[id]!++;
  }
  for (const r of await Promise.all(writers.map((w) => w.exited))) assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(next, [count, count, count, count]);
  await rx.close();
});

test('a writer killed in the middle of large appends: the reader gets whole messages only, and the next writer goes on', { timeout: 90000 }, async () => {
  const path = tmp.file('killed');
  const rx = FileChannel.openReader<Uint8Array>(path, { codec: 'raw', offsetStore: false, pollInterval: 100 });
  // 4 MiB messages, so that the kill is likely to land inside a write.
  const victim = new Child(writer, { args: [path, '1', '1000000', String(4 << 20)], timeout: 80000 });
  await victim.waitFor('ready');
  const got: number[] = [];
  while (got.length < 3) got.push(check(await rx.receive({ timeout: 30000 })).seq);
  victim.kill('SIGKILL');
  await victim.exited;
  // Drain what the victim finished.
  for (;;) {
    try {
      got.push(check(await rx.receive({ timeout: 1000 })).seq);
    } catch (err) {
      assert.equal((err as { code?: string }).code, 'ERR_MULTIPROC_TIMEOUT');
      break;
    }
  }
  assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => i));
  const r = await runChild(writer, { args: [path, '2', '5', '1000'] });
  assert.equal(r.code, 0, r.stderr);
  for (let i = 0; i < 5; i++) assert.deepEqual(check(await rx.receive({ timeout: 30000 })), { writer: 2, seq: i });
  await rx.close();
});

test('a partial record left by a dead writer is cut off by the next writer, and never reaches a reader', { timeout: 60000 }, async () => {
  const path = tmp.file('cut');
  const w = FileChannel.openWriter<string>(path, { codec: 'json' });
  w.sendSync('before');
  await w.close();
  const whole = statSync(path).size;
  // What a writer killed mid-append leaves: a header and part of the payload.
  const probe = tmp.file('probe');
  const p = FileChannel.openWriter<string>(probe, { codec: 'json' });
  p.sendSync('x'.repeat(1000));
  await p.close();
  appendFileSync(path, readFileSync(probe).subarray(0, 300));
  const rx = FileChannel.openReader<string>(path, { codec: 'json', offsetStore: false, pollInterval: 50 });
  assert.equal(await rx.receive({ timeout: 5000 }), 'before');
  await assert.rejects(rx.receive({ timeout: 300 }), (e: { code?: string }) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  const w2 = FileChannel.openWriter<string>(path, { codec: 'json' });
  await w2.send('after');
  assert.equal(await rx.receive({ timeout: 5000 }), 'after');
  assert.equal(statSync(path).size, whole + (w2.offset - whole), 'the partial record is gone');
  await w2.close();
  await rx.close();
});

const closedCode = (e: { code?: string }) => e.code === 'ERR_MULTIPROC_CLOSED';

test('destroy() with sends queued: they reject with ERR_MULTIPROC_CLOSED and write nothing, not even to a file that took the descriptor number', { timeout: 60000 }, async () => {
  const path = tmp.file('destroy-queued');
  const other = tmp.file('other');
  const w = FileChannel.openWriter<string>(path, { codec: 'json' });
  await w.send('written');
  const sent = w.offset;
  const queued = [w.send('a'), w.send('b'), w.send('c')];
  w.destroy();
  // Opened at once, this file gets the lowest free descriptor: the one destroy() just closed.
  const fd = openSync(other, 'w+');
  try {
    for (const p of queued) await assert.rejects(p, closedCode);
  } finally {
    closeSync(fd);
  }
  assert.equal(statSync(other).size, 0, 'nothing written to the other file');
  assert.equal(statSync(path).size, sent, 'nothing appended after the send that completed');
});

test('destroy() while a send waits for the file lock: it rejects with ERR_MULTIPROC_CLOSED and never locks or writes through the closed descriptor', { timeout: 60000 }, async () => {
  const path = tmp.file('destroy-lock');
  const other = tmp.file('other');
  const w = FileChannel.openWriter<string>(path, { codec: 'json' });
  // Another open file description holding the flock: as another writer process would.
  const holder = openSync(path, 'r');
  assert.equal(native.fileLock(holder, false), true);
  let fd = -1;
  try {
    const p = w.send('late');
    // Let it retry the lock a few times.
    await new Promise((r) => setTimeout(r, 30));
    w.destroy();
    fd = openSync(other, 'w+');
    await assert.rejects(p, closedCode);
  } finally {
    if (fd >= 0) closeSync(fd);
    native.fileUnlock(holder);
    closeSync(holder);
  }
  assert.equal(statSync(other).size, 0, 'nothing written to the other file');
  assert.equal(statSync(path).size, 0, 'nothing written to the channel file');
});
