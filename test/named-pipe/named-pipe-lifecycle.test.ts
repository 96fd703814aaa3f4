// The FIFO as a named object: permissions, creation modes, who removes the
// path, paths that are not FIFOs, argument checks before any system call,
// and no descriptor leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { NamedPipe } from '../../src/channel/transports/named-pipe.js';
import { runChild } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const tmp = tempDir('fifo');
const T = { timeout: 30000 };

test('a new FIFO is owner-only (0600) by default, and gets exactly the mode asked for whatever the umask', async () => {
  const a = NamedPipe.create(tmp.file('fifo'));
  const st = statSync(a.path);
  assert.ok(st.isFIFO());
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(st.uid, process.getuid!());
  const old = process.umask(0o077);
  let b: NamedPipe;
  try {
    b = NamedPipe.create(pathToFileURL(tmp.file('fifo')), { mode: 0o660 });
  } finally {
    process.umask(old);
  }
  assert.equal(statSync(b.path).mode & 0o777, 0o660);
  await a.close();
  await b.close();
});

test('the creator removes the path on close; an opener never does; disown hands the path on', async () => {
  const creator = NamedPipe.create(tmp.file('fifo'));
  assert.equal(creator.owner, true);
  const opener = NamedPipe.open(creator.path);
  assert.equal(opener.owner, false);
  await opener.close();
  assert.ok(existsSync(creator.path), 'an opener leaves the FIFO in place');
  const c1 = creator.close();
  assert.equal(creator.close(), c1, 'close is idempotent');
  await c1;
  assert.equal(creator.closed, true);
  assert.equal(existsSync(creator.path), false);

  const kept = NamedPipe.create(tmp.file('fifo'));
  kept.disown();
  assert.equal(kept.owner, false);
  await kept.close();
  assert.ok(existsSync(kept.path));
  const again = NamedPipe.open(kept.path);
  again.unlink();
  assert.equal(existsSync(kept.path), false);
  assert.throws(() => again.unlink(), (e: any) => e.code === 'ENOENT' && e.path === kept.path);
});

test('channels keep working after the path is removed', async () => {
  const fifo = NamedPipe.create(tmp.file('fifo'));
  const reader = fifo.reader({ codec: 'json' });
  const writer = await fifo.writer({ codec: 'json', timeout: 5000 });
  fifo.unlink();
  await writer.send('still here', T);
  assert.equal(await reader.receive(T), 'still here');
  await fifo.close();
  assert.equal(reader.closed && writer.closed, true, 'closing the NamedPipe closed its channels');
});

test('a process that exits without closing still removes the FIFO it created', async () => {
  const path = tmp.file('fifo');
  const r = await runChild(
    `
    import { NamedPipe } from 'multiproc';
    import { existsSync } from 'node:fs';
    const f = NamedPipe.create(process.argv[1]);
    console.log(existsSync(f.path));
    `,
    { args: [path] },
  );
  assert.equal(r.code, 0, `signal ${r.signal}; stderr: ${r.stderr}`);
  assert.equal(r.stdout.trim(), 'true');
  assert.equal(existsSync(path), false);
});

test('creation modes: create, open, openOrCreate, purgeAndCreate', async () => {
  const path = tmp.file('fifo');
  await assert.rejects(async () => NamedPipe.create(path, { creation: 'open' }), (e: any) => e.code === 'ENOENT');
  const first = NamedPipe.create(path, { creation: 'openOrCreate' });
  assert.equal(first.owner, true);
  assert.throws(() => NamedPipe.create(path), (e: any) => e.code === 'EEXIST' && e.syscall === 'mkfifo' && e.path === path);
  const second = NamedPipe.create(path, { creation: 'openOrCreate' });
  assert.equal(second.owner, false);
  const third = NamedPipe.create(path, { creation: 'open' });
  assert.equal(third.owner, false);
  const oldReader = third.reader();
  const fourth = NamedPipe.create(path, { creation: 'purgeAndCreate' });
  assert.equal(fourth.owner, true);
  // A new FIFO: the reader of the old one is not a reader of this one.
  await assert.rejects(fourth.writer({ timeout: 50 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  await oldReader.close();
  first.disown();
  for (const f of [first, second, third, fourth]) await f.close();
  assert.equal(existsSync(path), false);
});

test('a path that is not a FIFO is refused with ERR_MULTIPROC_INCOMPATIBLE, and never removed or opened', async () => {
  const file = tmp.file('file');
  writeFileSync(file, 'precious');
  const dir = tmp.file('dir');
  mkdirSync(dir);
  for (const p of [file, dir]) {
    assert.throws(() => NamedPipe.open(p), (e: any) => e.code === 'ERR_MULTIPROC_INCOMPATIBLE' && e.message.includes(p) && /not a FIFO/.test(e.message));
    assert.throws(() => NamedPipe.create(p, { creation: 'openOrCreate' }), (e: any) => e.code === 'ERR_MULTIPROC_INCOMPATIBLE');
    assert.throws(() => NamedPipe.create(p, { creation: 'purgeAndCreate' }), (e: any) => e.code === 'ERR_MULTIPROC_INCOMPATIBLE');
  }
  assert.match(String(assertThrows(() => NamedPipe.open(file))), /regular file/);
  assert.match(String(assertThrows(() => NamedPipe.open(dir))), /directory/);
  assert.equal(statSync(file).size, 8, 'the file is untouched');
  // A FIFO replaced by a file after open(): the next reader/writer notices.
  const fifo = NamedPipe.create(tmp.file('fifo'));
  const opener = NamedPipe.open(fifo.path);
  fifo.unlink();
  writeFileSync(fifo.path, 'x');
  assert.throws(() => opener.reader(), (e: any) => e.code === 'ERR_MULTIPROC_INCOMPATIBLE');
  await assert.rejects(opener.writer({ timeout: 100 }), (e: any) => e.code === 'ERR_MULTIPROC_INCOMPATIBLE');
  await fifo.close();
  await opener.close();
  assert.throws(() => NamedPipe.open(tmp.file('missing')), (e: any) => e.code === 'ENOENT' && e.syscall === 'stat');
});

function assertThrows(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail('expected a throw');
}

test('bad arguments throw TypeError/RangeError with Node codes before anything touches the file system', async () => {
  const path = tmp.file('fifo');
  const code = (c: string) => (e: any) => e.code === c;
  assert.throws(() => NamedPipe.create(42 as any), code('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => NamedPipe.create(''), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => NamedPipe.create('a\0b'), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => NamedPipe.create(new URL('http://example.com/x')), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => NamedPipe.create(path, { mode: 0o1000 }), (e: any) => e instanceof RangeError && (e as any).code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => NamedPipe.create(path, { mode: '600' as any }), (e: any) => e instanceof TypeError && (e as any).code === 'ERR_INVALID_ARG_TYPE');
  assert.throws(() => NamedPipe.create(path, { creation: 'replace' as any }), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => NamedPipe.create(path, { mod: 0o600 } as any), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => NamedPipe.create(path, 'x' as any), code('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => NamedPipe.open(undefined as any), code('ERR_INVALID_ARG_TYPE'));
  assert.equal(existsSync(path), false, 'nothing was created');

  await using fifo = NamedPipe.create(path);
  assert.throws(() => fifo.reader({ persistent: 'yes' } as any), code('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => fifo.reader({ framing: 'lines' } as any), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => fifo.reader({ codec: 'xml' } as any), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => fifo.reader({ maxMessageSize: 0 }), code('ERR_OUT_OF_RANGE'));
  assert.throws(() => fifo.reader({ timeout: 5 } as any), code('ERR_INVALID_ARG_VALUE'));
  await assert.rejects(fifo.writer({ timeout: -1 }), code('ERR_OUT_OF_RANGE'));
  await assert.rejects(fifo.writer({ signal: 'now' as any }), code('ERR_INVALID_ARG_TYPE'));
  await assert.rejects(fifo.writer({ shared: 1 as any }), code('ERR_INVALID_ARG_TYPE'));
  await assert.rejects(fifo.writer({ shared: true, maxMessageSize: NamedPipe.maxSharedMessageSize + 1 }), (e: any) => e instanceof RangeError && (e as any).code === 'ERR_OUT_OF_RANGE');
  await assert.rejects(fifo.writer({ shared: true, framing: 'none', maxMessageSize: NamedPipe.atomicWriteSize + 1 }), code('ERR_OUT_OF_RANGE'));
  // Checked before waiting: with no reader, a valid call would wait; these fail at once.
  const started = performance.now();
  await assert.rejects(fifo.writer({ persistent: true } as any), code('ERR_INVALID_ARG_VALUE'));
  assert.ok(performance.now() - started < 1000);
});

test('a shared writer defaults to the atomic limit and refuses larger messages before writing', async () => {
  await using fifo = NamedPipe.create(tmp.file('fifo'));
  const reader = fifo.reader({ codec: 'raw' });
  const w = await fifo.writer({ codec: 'raw', shared: true, timeout: 5000 });
  assert.equal(NamedPipe.atomicWriteSize, 4096);
  assert.equal(w.maxMessageSize, 4080);
  await assert.rejects(w.send(new Uint8Array(4081)), (e: any) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE' && e.limit === 4080);
  await w.send(new Uint8Array(4080), T);
  assert.equal(((await reader.receive(T)) as Uint8Array).length, 4080);
  const raw = await fifo.writer({ codec: 'raw', shared: true, framing: 'none', timeout: 5000 });
  assert.equal(raw.maxMessageSize, 4096);
  await raw.close();
  await w.close();
  await reader.close();
});

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

test('no descriptor leaks: readers (persistent too), writers, timed-out writers and closed NamedPipes leave /proc/self/fd as it was', async () => {
  const cycle = async (): Promise<void> => {
    const fifo = NamedPipe.create(tmp.file('fifo'));
    await assert.rejects(fifo.writer({ timeout: 20 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
    const r = fifo.reader({ codec: 'json', persistent: true });
    const w = await fifo.writer({ codec: 'json', shared: true, timeout: 5000 });
    await w.send(1, T);
    assert.equal(await r.receive(T), 1);
    const r2 = fifo.reader();
    r2.destroy();
    await fifo.close();
  };
  await cycle();
  const before = openFds();
  for (let i = 0; i < 3; i++) await cycle();
  await new Promise((r) => setImmediate(r));
  assert.equal(openFds(), before);
});
