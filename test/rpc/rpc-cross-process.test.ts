// Across processes: a child exposes an API over a Unix socket; this process
// calls it (many calls at once, errors with code and stack, timeout, abort
// reaching the child's handler, closing, the child dying mid-call).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, rpcClient, type Remote } from '../../src/index.js';
import { Child, libraryUrl } from '../helpers/child.js';
import { uniqueName } from '../helpers/names.js';
import { streamChannel } from '../helpers/socket-pair.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

interface ChildApi {
  add(a: number, b: number): number;
  pid(): number;
  delayedEcho<T>(x: T, ms: number): Promise<T>;
  fail(code: string): never;
  hang(tag: string): Promise<never>;
  cancelled(tag: string): string | null;
}

const childSource = `
import { expose, callContext } from 'multiproc';
import { StreamChannel } from '${new URL('channel/stream-channel.js', libraryUrl).href}';
import { resolveCodec } from '${new URL('channel/codec.js', libraryUrl).href}';
import { createConnection } from 'node:net';
import { once } from 'node:events';

const [path] = process.argv.slice(1);
const socket = createConnection(path);
await once(socket, 'connect');
const channel = new StreamChannel({
  stream: socket,
  traits: { mechanism: 'unix', medium: 'socket', unit: 'stream', direction: 'two-way', scope: 'same-host', use: 'test' },
  codec: resolveCodec(undefined, 'structured'),
  maxMessageSize: 64 * 1024 * 1024,
  label: 'child socket',
  canSend: true,
  canReceive: true,
});
const cancelled = new Map();
const server = expose({
  add: (a, b) => a + b,
  pid: () => process.pid,
  async delayedEcho(x, ms) {
    await new Promise((r) => setTimeout(r, ms));
    return x;
  },
  fail: function failInChild(code) {
    const e = new RangeError('failed in the child');
    e.code = code;
    throw e;
  },
  hang(tag) {
    const { signal } = callContext();
    return new Promise((resolve, reject) => {
      signal.addEventListener('abort', () => {
        cancelled.set(tag, signal.reason.code);
        reject(signal.reason);
      });
    });
  },
  cancelled: (tag) => cancelled.get(tag) ?? null,
}, channel, { closeChannel: true });
console.log('ready');
await server.finished;
console.log('finished');
`;

async function startChild(): Promise<{ child: Child; remote: Remote<ChildApi>; socket: Socket }> {
  const path = join(tmpdir(), `${uniqueName('rpc')}.sock`);
  const listener = createServer();
  listener.listen(path);
  await once(listener, 'listening');
  const accepted = once(listener, 'connection');
  const child = new Child(childSource, { args: [path], timeout: 60000 });
  try {
    const [socket] = (await Promise.race([accepted, child.exited.then((r) => Promise.reject(new Error(`child exited: ${r.stderr}`)))])) as [Socket];
    await child.waitFor('ready');
    const remote = connect<ChildApi>(streamChannel(socket), { closeChannel: true, timeout: 30000 });
    return { child, remote, socket };
  } catch (err) {
    child.kill();
    await child.exited;
    throw err;
  } finally {
    listener.close();
  }
}

/** What the child's handler for `tag` saw as its signal's reason (polled: the cancel travels after the rejection). */
async function cancelledInChild(remote: Remote<ChildApi>, tag: string): Promise<string> {
  const deadline = Date.now() + 10000;
  for (;;) {
    const code = await remote.cancelled(tag);
    if (code !== null) return code;
    if (Date.now() > deadline) throw new Error(`the child's handler for '${tag}' was not cancelled within 10 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a child process serves calls: concurrency, errors, timeout, abort reaching its handler, close', async () => {
  const { child, remote } = await startChild();
  try {
    // Many calls at once, completing out of order.
    assert.notEqual(await remote.pid(), process.pid);
    const sums = await Promise.all(Array.from({ length: 5_000 }, (_, i) => remote.add(i, i)));
    sums.forEach((s, i) => assert.equal(s, 2 * i));
    const order: number[] = [];
    // (Delays far apart: a loaded machine may hold the child up between two requests.)
    await Promise.all([1000, 0, 500].map((ms) => remote.delayedEcho(ms, ms).then((v) => order.push(v as number))));
    assert.equal(order[0], 0);

    // An error: class, code and the child's stack.
    await assert.rejects(remote.fail('E_CHILD'), (e: any) => {
      assert.equal(e instanceof RangeError, true);
      assert.equal(e.code, 'E_CHILD');
      assert.equal(e.message, 'failed in the child');
      assert.match(e.remoteStack, /failInChild/);
      assert.match(e.stack, /rpc-cross-process\.test\.js/);
      return true;
    });

    // A timeout: the caller rejects, the child's handler sees its signal abort.
    await assert.rejects(remote.hang.with({ timeout: 100 })('t'), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
    assert.equal(await cancelledInChild(remote, 't'), 'ERR_MULTIPROC_TIMEOUT');

    // An abort reaches the child the same way.
    const ac = new AbortController();
    const call = remote.hang.with({ signal: ac.signal })('a');
    await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await assert.rejects(call, (e: any) => e.code === 'ABORT_ERR');
    assert.equal(await cancelledInChild(remote, 'a'), 'ABORT_ERR');

    // Closing the connection closes the channel; the child's server finishes and the child exits.
    await rpcClient(remote).close();
    const result = await child.exited;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /finished/);
  } finally {
    child.kill();
    await child.exited;
  }
});

test('the child dying mid-call rejects the pending calls with ERR_MULTIPROC_CLOSED', async () => {
  const { child, remote } = await startChild();
  try {
    const calls = [remote.hang('x'), remote.hang('y'), remote.delayedEcho('z', 60_000)];
    const settled = Promise.allSettled(calls);
    assert.equal(await remote.add(1, 2), 3);
    child.kill('SIGKILL');
    const results = await settled;
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal((r as PromiseRejectedResult).reason.code, 'ERR_MULTIPROC_CLOSED');
    }
    await assert.rejects(remote.add(1, 2), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
    assert.equal((await child.exited).signal, 'SIGKILL');
  } finally {
    child.kill();
    await child.exited;
  }
});
