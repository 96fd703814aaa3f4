// Opening FIFOs: a writer waits for a reader without blocking the event loop
// (timeout, abort, a reader that comes later), persistent readers, the shell
// speaking plain bytes, and what each side sees when the other goes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { NamedPipe } from '../../src/channel/transports/named-pipe.js';
import { Child } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const tmp = tempDir('fifo');
const T = { timeout: 30000 };

test('a writer with no reader times out with ERR_MULTIPROC_TIMEOUT, and the event loop keeps ticking meanwhile', async () => {
  await using fifo = NamedPipe.create(tmp.file('fifo'));
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const started = performance.now();
  try {
    await assert.rejects(fifo.writer({ timeout: 400 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT' && e.timeout === 400 && e.message.includes(fifo.path));
  } finally {
    clearInterval(timer);
  }
  assert.ok(performance.now() - started >= 390);
  assert.ok(ticks >= 5, `the event loop ran ${ticks} timer ticks while the writer waited`);
});

test('a writer waiting for a reader aborts with ABORT_ERR', async () => {
  await using fifo = NamedPipe.create(tmp.file('fifo'));
  const ac = new AbortController();
  const pending = fifo.writer({ signal: ac.signal });
  setTimeout(() => ac.abort(new Error('stop')), 50);
  await assert.rejects(pending, (e: any) => e.code === 'ABORT_ERR' && e.cause?.message === 'stop');
  await assert.rejects(fifo.writer({ signal: AbortSignal.abort() }), (e: any) => e.code === 'ABORT_ERR');
  // Also when a reader is there and the open would succeed at once.
  const reader = fifo.reader();
  try {
    await assert.rejects(fifo.writer({ signal: AbortSignal.abort() }), (e: any) => e.code === 'ABORT_ERR');
  } finally {
    await reader.close();
  }
});

test('a writer waiting for a reader connects when another process opens the FIFO for reading', async () => {
  await using fifo = NamedPipe.create(tmp.file('fifo'));
  const pending = fifo.writer({ codec: 'json', timeout: 20000 });
  await new Promise((r) => setTimeout(r, 100));
  const reader = new Child(
    `
    import { NamedPipe } from 'multiproc';
    const r = NamedPipe.open(process.argv[1]).reader({ codec: 'json' });
    for await (const m of r) console.log(JSON.stringify(m));
    `,
    { args: [fifo.path] },
  );
  const writer = await pending;
  await writer.send({ hello: 'reader' }, T);
  await writer.close();
  const r = await reader.exited;
  assert.equal(r.code, 0, `signal ${r.signal}; stderr: ${r.stderr}`);
  assert.deepEqual(JSON.parse(r.stdout), { hello: 'reader' });
});

test("a reader ends when its last writer closes; a persistent reader goes on with the next writer", async () => {
  await using fifo = NamedPipe.create(tmp.file('fifo'));
  const once_ = fifo.reader({ codec: 'json' });
  const w1 = await fifo.writer({ codec: 'json', timeout: 5000 });
  await w1.send('one', T);
  await w1.close();
  const got: unknown[] = [];
  for await (const m of once_) got.push(m);
  assert.deepEqual(got, ['one']);

  const persistent = fifo.reader({ codec: 'json', persistent: true });
  for (const word of ['two', 'three']) {
    const w = await fifo.writer({ codec: 'json', timeout: 5000 });
    await w.send(word, T);
    await w.close();
    assert.equal(await persistent.receive(T), word);
  }
  await assert.rejects(persistent.receive({ timeout: 50 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  await persistent.close();
});

test("framing 'none': the shell's `echo hello > fifo` arrives as 'hello\\n', and `cat fifo` reads a writer's bytes", async () => {
  await using fifo = NamedPipe.create(tmp.file('fifo'));
  const reader = fifo.reader({ framing: 'none' });
  const sh = spawn('sh', ['-c', 'echo hello > "$0"', fifo.path], { stdio: 'inherit' });
  const closed = once(sh, 'close'); // before anything is awaited: it may come before the stream's end
  const chunks: Buffer[] = [];
  for await (const c of reader) chunks.push(Buffer.from(c as Uint8Array));
  assert.equal(Buffer.concat(chunks).toString(), 'hello\n');
  assert.equal((await closed)[0], 0);
  // Our reader must be gone before the writer opens, or the writer could connect to it instead of to cat.
  await reader.close();

  const cat = promisify(execFile)('cat', [fifo.path]);
  const writer = await fifo.writer({ framing: 'none', timeout: 10000 });
  await writer.send(Buffer.from('plain '), T);
  await writer.send(new TextEncoder().encode('bytes\n'), T);
  await writer.close();
  assert.equal((await cat).stdout, 'plain bytes\n');
});

test('a writer whose reader went away fails with ERR_MULTIPROC_CLOSED (cause EPIPE); a reader closed by its NamedPipe rejects pending receives', async () => {
  const fifo = NamedPipe.create(tmp.file('fifo'));
  const reader = fifo.reader();
  const writer = await fifo.writer({ timeout: 5000 });
  await reader.close();
  await assert.rejects(
    (async () => {
      for (let i = 0; i < 100; i++) await writer.send(new Uint8Array(100_000), T);
    })(),
    (e: any) => e.code === 'ERR_MULTIPROC_CLOSED' && e.cause?.code === 'EPIPE',
  );
  writer.destroy();

  const r2 = fifo.reader();
  const pending = assert.rejects(r2.receive(T), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
  await fifo.close();
  await pending;
  assert.equal(r2.closed, true);
  assert.throws(() => fifo.reader(), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
  await assert.rejects(fifo.writer(), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
});

test('closing a NamedPipe ends a writer that is still waiting for a reader with ERR_MULTIPROC_CLOSED', async () => {
  const fifo = NamedPipe.create(tmp.file('fifo'));
  const pending = fifo.writer({ timeout: 10000 });
  await new Promise((r) => setTimeout(r, 30));
  await fifo.close();
  await assert.rejects(pending, (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
});

test('stats: bytes waiting in the kernel and the pipe capacity', async () => {
  await using fifo = NamedPipe.create(tmp.file('fifo'));
  const reader = fifo.reader({ codec: 'raw' });
  const writer = await fifo.writer({ codec: 'raw', timeout: 5000 });
  const s0 = writer.stats();
  assert.equal(s0.capacityBytes, 65536);
  assert.equal(s0.bytesQueued, 0);
  await writer.send(new Uint8Array(20_000), T);
  const s1 = writer.stats();
  assert.equal(s1.messagesSent, 1);
  assert.equal(s1.bytesSent, 20_000);
  assert.ok(s1.bytesQueued! > 0 && s1.bytesQueued! <= 20_016, `bytesQueued ${s1.bytesQueued}`);
  await reader.receive(T);
  assert.equal(reader.stats().bytesQueued, 0);
  await writer.close();
  await reader.close();
  assert.deepEqual([writer.stats().bytesQueued, writer.stats().capacityBytes], [null, null]);
});
