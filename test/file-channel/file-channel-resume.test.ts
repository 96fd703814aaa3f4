// FileChannel across restarts: a reader resumes from its stored offset (after
// a clean close and after being killed), a writer restarts and appends after
// what is there, and offsets can live in a caller's store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { FileChannel, type OffsetStore } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { Child, runChild } from '../helpers/child.js';

leakGuard();
const tmp = tempDir('file-resume');

// Receives `count` messages, prints them, then closes (or, with 'hang', waits to be killed).
const reader = `
  import { FileChannel } from 'multiproc';
  const [path, count, how] = process.argv.slice(1);
  const ch = FileChannel.openReader(path, { codec: 'json' });
  const got = [];
  for (let i = 0; i < Number(count); i++) got.push(await ch.receive({ timeout: 20000 }));
  console.log('got ' + JSON.stringify(got));
  if (how === 'hang') setInterval(() => {}, 1000);
  else await ch.close();
`;

function received(stdout: string): number[] {
  return JSON.parse(/got (.*)/.exec(stdout)![1]!) as number[];
}

test('a reader process restarted after close resumes after the last message it received', { timeout: 60000 }, async () => {
  const path = tmp.file('resume');
  const w = FileChannel.openWriter<number>(path, { codec: 'json' });
  for (let i = 0; i < 100; i++) await w.send(i);
  const first = await runChild(reader, { args: [path, '40'] });
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(received(first.stdout), Array.from({ length: 40 }, (_, i) => i));
  const second = await runChild(reader, { args: [path, '60'] });
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(received(second.stdout), Array.from({ length: 60 }, (_, i) => 40 + i));
  // Nothing left for a third run; new messages are.
  await w.send(100);
  const third = await runChild(reader, { args: [path, '1'] });
  assert.deepEqual(received(third.stdout), [100]);
  await w.close();
});

test('a reader killed without closing gets, when restarted, its last unacknowledged message again and nothing is lost', { timeout: 60000 }, async () => {
  const path = tmp.file('killed');
  const w = FileChannel.openWriter<number>(path, { codec: 'json' });
  for (let i = 0; i < 50; i++) await w.send(i);
  const child = new Child(reader, { args: [path, '20', 'hang'] });
  await child.waitFor(/got \[.*\]/);
  // Let the acknowledgement of message 18 (made by the call that received 19) reach the store.
  await new Promise((r) => setTimeout(r, 200));
  child.kill('SIGKILL');
  await child.exited;
  const again = await runChild(reader, { args: [path, '31'] });
  assert.equal(again.code, 0, again.stderr);
  // At least once: message 19 was received but not acknowledged, so it comes again.
  assert.deepEqual(received(again.stdout), Array.from({ length: 31 }, (_, i) => 19 + i));
  await w.close();
});

test('a writer restarted appends after the messages already there; the reader follows both', { timeout: 60000 }, async () => {
  const path = tmp.file('writers');
  const rx = FileChannel.openReader<string>(path, { codec: 'json', offsetStore: false });
  const writer = `
    import { FileChannel } from 'multiproc';
    const [path, tag] = process.argv.slice(1);
    const w = FileChannel.openWriter(path, { codec: 'json' });
    for (let i = 0; i < 30; i++) await w.send(tag + i);
    await w.close();
  `;
  for (const tag of ['a', 'b', 'c']) {
    const r = await runChild(writer, { args: [path, tag] });
    assert.equal(r.code, 0, r.stderr);
  }
  const got: string[] = [];
  for (let i = 0; i < 90; i++) got.push(await rx.receive({ timeout: 20000 }));
  assert.deepEqual(got, ['a', 'b', 'c'].flatMap((t) => Array.from({ length: 30 }, (_, i) => t + i)));
  await rx.close();
});

test('offsets: a caller store, manual commit, starting at the end, a replaced file starts over', { timeout: 60000 }, async () => {
  const path = tmp.file('store');
  const w = FileChannel.openWriter<number>(path, { codec: 'json' });
  for (let i = 0; i < 10; i++) w.sendSync(i);

  const saved: number[] = [];
  const store: OffsetStore = { load: () => saved.at(-1), save: (o) => void saved.push(o) };
  let rx = FileChannel.openReader<number>(path, { codec: 'json', offsetStore: store, commit: 'manual' });
  assert.equal(await rx.receive({ timeout: 5000 }), 0);
  assert.equal(await rx.receive({ timeout: 5000 }), 1);
  assert.deepEqual(saved, [], 'manual: nothing stored until commit()');
  rx.commit();
  assert.equal(saved.length, 1);
  assert.equal(rx.offset, saved[0]);
  await rx.receive({ timeout: 5000 });
  await rx.close();
  assert.equal(saved.length, 1, 'close does not commit in manual mode');
  rx = FileChannel.openReader<number>(path, { codec: 'json', offsetStore: store });
  assert.equal(await rx.receive({ timeout: 5000 }), 2, 'resumed at the committed offset');
  await rx.close();

  const tail = FileChannel.openReader<number>(path, { codec: 'json', offsetStore: false, from: 'end' });
  await assert.rejects(tail.receive({ timeout: 100 }), (e: { code?: string }) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  await w.send(10);
  assert.equal(await tail.receive({ timeout: 5000 }), 10, 'from the end: only new messages');
  await tail.close();

  // The default sidecar remembers the file's inode: a file replaced by another starts from the beginning.
  const side = FileChannel.openReader<number>(path, { codec: 'json' });
  for (let i = 0; i < 11; i++) await side.receive({ timeout: 5000 });
  await side.close();
  await w.close();
  const other = tmp.file('other');
  const w2 = FileChannel.openWriter<number>(other, { codec: 'json' });
  w2.sendSync(77);
  await w2.close();
  renameSync(other, path);
  const fresh = FileChannel.openReader<number>(path, { codec: 'json' });
  assert.equal(await fresh.receive({ timeout: 5000 }), 77);
  await fresh.close();
});

test('a partial record at the end is waited for, never delivered torn', { timeout: 60000 }, async () => {
  const path = tmp.file('partial');
  writeFileSync(path, '');
  const rx = FileChannel.openReader<Uint8Array>(path, { codec: 'raw', offsetStore: false, pollInterval: 50 });
  // Build one record by hand and append it in three pieces.
  const probe = tmp.file('probe');
  const w = FileChannel.openWriter<Uint8Array>(probe, { codec: 'raw' });
  w.sendSync(new Uint8Array(5000).fill(42));
  await w.close();
  const { readFileSync } = await import('node:fs');
  const record = readFileSync(probe);
  appendFileSync(path, record.subarray(0, 10));
  await assert.rejects(rx.receive({ timeout: 300 }), (e: { code?: string }) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  appendFileSync(path, record.subarray(10, 4000));
  await assert.rejects(rx.receive({ timeout: 300 }), (e: { code?: string }) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  const pending = rx.receive({ timeout: 5000 });
  appendFileSync(path, record.subarray(4000));
  const m = await pending;
  assert.equal(m.length, 5000);
  assert.ok(m.every((b) => b === 42));
  await rx.close();
});
