// A real pipe between a parent and the child it spawns, through an extra
// descriptor (fd 3 or 4): volume, both directions, duplex, end of stream,
// a child killed mid-message, shell interop, and no descriptor leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Pipe } from '../../src/channel/transports/pipe.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { spawnWithFds } from '../helpers/spawn-with-fds.js';

leakGuard();

const T = { timeout: 30000 };
const COUNT = 1_000_000;
/** After MIN messages the sender stops early once this long has passed, so a loaded machine still finishes in time; it reports how many it sent. */
const SEND_BUDGET_MS = 20000;
const MIN = 100_000;

test(`a child sends up to ${COUNT} sequenced, checksummed messages on fd 3: each arrives once, in order, then the stream ends`, { timeout: 120000 }, async (t) => {
  const pipe = Pipe.create();
  const child = spawnWithFds(
    `
    import { Pipe } from 'multiproc';
    import { createHash } from 'node:crypto';
    const [max, budget, min] = process.argv.slice(1).map(Number);
    const w = Pipe.fromFd(3, 'writer', { codec: 'raw' });
    const b = Buffer.alloc(64);
    const stop = performance.now() + budget;
    let i = 0;
    for (; i < max; i++) {
      if ((i & 0xfff) === 0 && i >= min && performance.now() > stop) break;
      b.writeUInt32LE(i, 0);
      b.fill(i & 0xff, 4, 48);
      createHash('md5').update(b.subarray(0, 48)).digest().copy(b, 48);
      if (!w.trySend(b)) await w.send(b);
    }
    await w.close();
    console.log(i);
    `,
    [pipe.childEnd('writer')],
    [String(COUNT), String(SEND_BUDGET_MS), String(MIN)],
    110000,
  );
  const reader = pipe.reader({ codec: 'raw' });
  let next = 0;
  for await (const m of reader) {
    const buf = Buffer.from(m as Uint8Array);
    if (buf.length !== 64) assert.fail(`message ${next} has ${buf.length} bytes`);
    const seq = buf.readUInt32LE(0);
    if (seq !== next) assert.fail(`expected message ${next}, got ${seq}`);
    if (!createHash('md5').update(buf.subarray(0, 48)).digest().equals(buf.subarray(48))) assert.fail(`checksum mismatch in message ${seq}`);
    next++;
  }
  const r = await child.exited;
  assert.equal(r.code, 0, `signal ${r.signal}; stderr: ${r.stderr}`);
  const sent = Number(r.stdout.trim());
  assert.equal(next, sent, 'every message sent arrived');
  assert.ok(sent >= MIN, `the child sent only ${sent} messages`);
  t.diagnostic(`${sent} messages`);
  await reader.close();
});

test('the parent writes, a child reads on fd 4; the child sees the end when the parent closes', async () => {
  const pipe = Pipe.create();
  const child = spawnWithFds(
    `
    import { Pipe } from 'multiproc';
    const r = Pipe.fromFd(4, 'reader', { codec: 'json' });
    let n = 0, sum = 0;
    for await (const m of r) { n++; sum += m.v; }
    console.log(JSON.stringify({ n, sum }));
    `,
    ['ignore', pipe.childEnd('reader')],
  );
  const writer = pipe.writer({ codec: 'json' });
  let sum = 0;
  for (let i = 0; i < 10000; i++) {
    await writer.send({ v: i }, T);
    sum += i;
  }
  await writer.close();
  const r = await child.exited;
  assert.equal(r.code, 0, `signal ${r.signal}; stderr: ${r.stderr}`);
  assert.deepEqual(JSON.parse(r.stdout), { n: 10000, sum });
});

test('duplex: request and reply with a child over fds 3 and 4, structured clone', async () => {
  const pipes = Pipe.duplex();
  const child = spawnWithFds(
    `
    import { Pipe } from 'multiproc';
    const ch = Pipe.fromFds(3, 4);
    for await (const m of ch) await ch.send({ id: m.id, doubled: m.n * 2n, at: m.at });
    await ch.close();
    `,
    pipes.childEnd('b'),
  );
  const ch = pipes.open<{ id: number; n?: bigint; doubled?: bigint; at: Date }>('a');
  assert.equal(ch.traits.direction, 'two-way');
  for (let i = 0; i < 500; i++) {
    const at = new Date(1700000000000 + i);
    await ch.send({ id: i, n: BigInt(i), at }, T);
    const reply = await ch.receive(T);
    assert.equal(reply.id, i);
    assert.equal(reply.doubled, BigInt(2 * i));
    assert.equal(reply.at.getTime(), at.getTime());
  }
  await ch.close();
  const r = await child.exited;
  assert.equal(r.code, 0, `signal ${r.signal}; stderr: ${r.stderr}`);
});

test('a child killed by SIGKILL in the middle of a large message: the whole messages before it, then ERR_MULTIPROC_PROTOCOL, never a torn message or a hang', async () => {
  const pipe = Pipe.create();
  const child = spawnWithFds(
    `
    import { Pipe } from 'multiproc';
    const w = Pipe.fromFd(3, 'writer', { codec: 'raw' });
    for (let i = 0; i < 10; i++) await w.send(Buffer.alloc(100, i));
    await new Promise((r) => setTimeout(r, 50));
    w.trySend(Buffer.alloc(8 << 20, 0xee)); // the pipe takes the first 64 KiB at most
    process.kill(process.pid, 'SIGKILL');
    `,
    [pipe.childEnd('writer')],
  );
  const reader = pipe.reader({ codec: 'raw' });
  for (let i = 0; i < 10; i++) {
    const m = Buffer.from((await reader.receive(T)) as Uint8Array);
    assert.deepEqual(m, Buffer.alloc(100, i));
  }
  await assert.rejects(reader.receive(T), (e: any) => e.code === 'ERR_MULTIPROC_PROTOCOL' && /middle of a message/.test(e.message));
  const r = await child.exited;
  assert.equal(r.signal, 'SIGKILL');
  await reader.close();
});

test('a child that exits without closing its end still ends the parent\'s stream (the parent closed its copy)', async () => {
  const pipe = Pipe.create();
  const child = spawnWithFds(
    `
    import { Pipe } from 'multiproc';
    const w = Pipe.fromFd(3, 'writer', { codec: 'json' });
    await w.send('last words');
    // send() resolves once the message is accepted; small ones are written at
    // the end of the event-loop turn, so let one pass before exiting.
    await new Promise((r) => setTimeout(r, 100));
    process.exit(3);
    `,
    [pipe.childEnd('writer')],
  );
  const reader = pipe.reader({ codec: 'json' });
  const got: unknown[] = [];
  for await (const m of reader) got.push(m);
  assert.deepEqual(got, ['last words']);
  assert.equal((await child.exited).code, 3);
});

test("framing 'none': a shell writes plain bytes to fd 3", async () => {
  const pipe = Pipe.create();
  const sh = spawn('sh', ['-c', 'echo hello >&3; printf world >&3'], { stdio: ['ignore', 'ignore', 'inherit', pipe.childEnd('writer')] });
  const closed = once(sh, 'close'); // before anything is awaited: it may come before the stream's end
  const reader = pipe.reader({ framing: 'none' });
  const chunks: Buffer[] = [];
  for await (const c of reader) chunks.push(Buffer.from(c as Uint8Array));
  assert.equal(Buffer.concat(chunks).toString(), 'hello\nworld');
  const [code] = await closed;
  assert.equal(code, 0);
});

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

async function roundTrip(): Promise<void> {
  const pipe = Pipe.create();
  const unused = Pipe.create();
  const pipes = Pipe.duplex();
  const child = spawnWithFds(
    `
    import { Pipe } from 'multiproc';
    const w = Pipe.fromFd(3, 'writer', { codec: 'json' });
    const ch = Pipe.fromFds(4, 5, { codec: 'json' });
    await w.send(await ch.receive());
    await w.close();
    await ch.close();
    `,
    [pipe.childEnd('writer'), ...pipes.childEnd('b')],
  );
  const reader = pipe.reader({ codec: 'json' });
  const ch = pipes.open('a', { codec: 'json' });
  await ch.send('echo', T);
  assert.equal(await reader.receive(T), 'echo');
  assert.equal((await child.exited).code, 0);
  await reader.close();
  await ch.close();
  unused.close();
  pipes.close();
  pipe.close();
}

test('no descriptor leaks: pipes, duplex pipes, child ends and closed channels leave /proc/self/fd as it was', async () => {
  await roundTrip(); // warms up what Node opens once (signal pipes, epoll)
  const before = openFds();
  for (let i = 0; i < 3; i++) await roundTrip();
  // Handles close asynchronously; give libuv a turn.
  await new Promise((r) => setImmediate(r));
  assert.equal(openFds(), before);
});
