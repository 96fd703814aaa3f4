// Pipe's argument and state checks: misuse fails with Node-style codes before
// any system call, each end is taken once, descriptors that are not pipes or
// point the wrong way are refused, and a child end is closed here after the tick.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { DuplexPipe, Pipe } from '../../src/channel/transports/pipe.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();
const T = { timeout: 10000 };
const code = (c: string) => (e: any) => e.code === c;

test('Pipe.create and Pipe.duplex check their options', () => {
  assert.throws(() => Pipe.create('big' as any), code('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => Pipe.create({ capacity: 0 }), (e: any) => e instanceof RangeError && (e as any).code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => Pipe.create({ capacity: 1.5 }), code('ERR_OUT_OF_RANGE'));
  assert.throws(() => Pipe.create({ capacity: '64k' as any }), (e: any) => e instanceof TypeError && (e as any).code === 'ERR_INVALID_ARG_TYPE');
  assert.throws(() => Pipe.create({ size: 4096 } as any), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => Pipe.duplex({ capacity: -1 }), code('ERR_OUT_OF_RANGE'));
});

test('capacity sets the kernel buffer (rounded up to pages); stats report it', async () => {
  using pipe = Pipe.create({ capacity: 1 << 20 });
  const w = pipe.writer();
  const r = pipe.reader();
  assert.equal(w.stats().capacityBytes, 1 << 20);
  assert.equal(r.stats().capacityBytes, 1 << 20);
  w.destroy();
  r.destroy();
  using small = Pipe.create({ capacity: 3 });
  const w2 = small.writer();
  assert.equal(w2.stats().capacityBytes, 4096);
  w2.destroy();
});

test('a writer grows its pipe for a message larger than the pipe, up to 1 MiB, and the message arrives whole', async () => {
  const max = Number(readFileSync('/proc/sys/fs/pipe-max-size', 'utf8'));
  const privileged = process.getuid?.() === 0;
  using pipe = Pipe.create();
  const w = pipe.writer({ codec: 'raw', maxMessageSize: 4 << 20 });
  const r = pipe.reader({ codec: 'raw', maxMessageSize: 4 << 20 });
  try {
    assert.equal(w.stats().capacityBytes, 65536);
    const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
    // A message that fits leaves the pipe as it is.
    await w.send(bytes(40_000), T);
    assert.deepEqual(await r.receive(T), bytes(40_000));
    assert.equal(w.stats().capacityBytes, 65536);
    const big = bytes(300_000);
    const got = r.receive(T);
    await w.send(big, T);
    assert.deepEqual(await got, big);
    if (privileged || max >= 1 << 19) assert.equal(w.stats().capacityBytes, 1 << 19, 'grown to the power of two that holds it');
    const huge = bytes(3 << 20);
    const got2 = r.receive(T);
    assert.equal(w.trySend(huge), true);
    assert.deepEqual(await got2, huge);
    if (privileged || max >= 1 << 20) assert.equal(w.stats().capacityBytes, 1 << 20, 'no further than 1 MiB');
  } finally {
    w.destroy();
    r.destroy();
  }
});

test('each end is taken once; a closed pipe gives nothing; bad options do not use up the end', async () => {
  const pipe = Pipe.create();
  assert.equal(typeof pipe.readFd, 'number');
  assert.throws(() => pipe.reader({ codec: 'xml' } as any), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => pipe.reader({ framing: 'lines' } as any), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => pipe.reader({ maxMessageSize: -1 }), code('ERR_OUT_OF_RANGE'));
  assert.throws(() => pipe.reader({ persistent: true } as any), code('ERR_INVALID_ARG_VALUE'));
  const r = pipe.reader();
  assert.equal(pipe.readFd, undefined);
  assert.throws(() => pipe.reader(), code('ERR_INVALID_STATE'));
  assert.throws(() => pipe.childEnd('reader'), code('ERR_INVALID_STATE'));
  assert.throws(() => pipe.childEnd('both' as any), code('ERR_INVALID_ARG_VALUE'));
  pipe.close();
  pipe.close();
  assert.equal(pipe.closed, true);
  assert.equal(pipe.writeFd, undefined);
  assert.throws(() => pipe.writer(), code('ERR_INVALID_STATE'));
  // The write end was closed with the pipe, so the reader sees the end.
  await assert.rejects(r.receive(T), code('ERR_MULTIPROC_CLOSED'));
  await r.close();

  const d = Pipe.duplex();
  assert.ok(d instanceof DuplexPipe);
  assert.throws(() => d.open('c' as any), code('ERR_INVALID_ARG_VALUE'));
  const a = d.open('a');
  assert.throws(() => d.open('a'), code('ERR_INVALID_STATE'));
  assert.throws(() => d.childEnd('a'), code('ERR_INVALID_STATE'));
  d.close();
  assert.throws(() => d.open('b'), code('ERR_INVALID_STATE'));
  a.destroy();
});

test("one-way ends refuse the other direction with ERR_INVALID_STATE", async () => {
  using pipe = Pipe.create();
  const r = pipe.reader();
  const w = pipe.writer();
  await assert.rejects((r as any).send('x'), code('ERR_INVALID_STATE'));
  await assert.rejects((w as any).receive(), code('ERR_INVALID_STATE'));
  assert.equal(r.traits.direction, 'one-way');
  assert.deepEqual({ ...w.traits }, { mechanism: 'pipe', medium: 'file', unit: 'stream', direction: 'one-way', scope: 'same-host', use: 'parent-child one-way streaming' });
  r.destroy();
  w.destroy();
});

test('childEnd: this process\'s copy is closed once the current synchronous code is done', async () => {
  using pipe = Pipe.create();
  const fd = pipe.childEnd('writer');
  assert.equal(typeof fd, 'number');
  assert.throws(() => pipe.writer(), code('ERR_INVALID_STATE'));
  const r = pipe.reader();
  // No child took the write end, and ours is closed: the stream ends.
  const got: unknown[] = [];
  for await (const m of r) got.push(m);
  assert.deepEqual(got, []);
});

test('Pipe.fromFd and Pipe.fromFds check the descriptor before wrapping it', async () => {
  assert.throws(() => Pipe.fromFd('3' as any, 'reader'), code('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => Pipe.fromFd(3.5, 'reader'), code('ERR_OUT_OF_RANGE'));
  for (const std of [0, 1, 2]) assert.throws(() => Pipe.fromFd(std, 'writer'), code('ERR_OUT_OF_RANGE'));
  assert.throws(() => Pipe.fromFd(3, 'duplex' as any), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => Pipe.fromFd(3, 'reader', { codec: 1 } as any), code('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => Pipe.fromFds(5, 5), code('ERR_INVALID_ARG_VALUE'));

  const file = openSync('/proc/self/stat', 'r');
  try {
    assert.throws(() => Pipe.fromFd(file, 'reader'), (e: any) => e.code === 'ERR_MULTIPROC_INCOMPATIBLE' && /regular file, not a pipe/.test(e.message));
  } finally {
    closeSync(file);
  }
  // A number that is no descriptor: EBADF, as the kernel says.
  assert.throws(() => Pipe.fromFd(1_000_000, 'reader'), (e: any) => e.code === 'EBADF');

  using pipe = Pipe.create();
  assert.throws(() => Pipe.fromFd(pipe.writeFd!, 'reader'), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE' && /writing only/.test(e.message));
  assert.throws(() => Pipe.fromFd(pipe.readFd!, 'writer'), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE' && /reading only/.test(e.message));
  assert.throws(() => Pipe.fromFds(pipe.writeFd!, pipe.readFd!), code('ERR_INVALID_ARG_VALUE'));

  // A descriptor this process already wraps.
  using other = Pipe.create();
  const r = other.reader();
  assert.throws(() => Pipe.fromFd((r as any).fd, 'reader'), (e: any) => e.code === 'EEXIST' && /already uses that descriptor/.test(e.message));
  r.destroy();
});
