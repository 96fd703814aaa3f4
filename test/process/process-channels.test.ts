// Channels by name: socket pairs spawn() creates, descriptors of named
// objects the child opens itself (its transport module imported on demand),
// and descriptors passed as file descriptors through a registered transport.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, createConnection, type Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from '../../src/process/spawn.js';
import { registerTransport } from '../../src/process/transports.js';
import { SocketPairChannel } from '../../src/process/socket-pair-channel.js';
import { resolveCodec } from '../../src/channel/codec.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { PassedSocket } from './fixtures/transport.js';
import { childEnv, fixture, reap, within } from './helpers.js';

leakGuard();

const T = { timeout: 20000 };

test("'stream' channels: a socket pair each, both ways, with their own codecs", async () => {
  const h = spawn(fixture('echo'), {
    env: childEnv,
    channels: { jobs: 'stream', results: { kind: 'stream', codec: 'json', maxMessageSize: 4096 } },
  });
  try {
    const info = (await within(h.ready, 20000, 'ready')) as { channels: string[] };
    assert.deepEqual(info.channels, ['control', 'jobs', 'results']);
    for (const name of ['jobs', 'results']) {
      await h.control.send({ cmd: 'open', name });
      assert.deepEqual(await h.control.receive(T), { opened: name, mechanism: 'socketpair' });
    }
    const jobs = h.channel('jobs');
    const results = h.channel('results');
    assert.equal(jobs.traits.mechanism, 'socketpair');
    assert.equal(results.maxMessageSize, 4096);
    await jobs.send(new Set([1, 2]));
    assert.deepEqual(await jobs.receive(T), { from: 'jobs', echo: new Set([1, 2]) });
    await results.send({ n: 1, when: new Date(0) });
    assert.deepEqual(await results.receive(T), { from: 'results', echo: { n: 1, when: '1970-01-01T00:00:00.000Z' } }, 'json on both ends');
    const n = 2000;
    const got = (async () => {
      for (let i = 0; i < n; i++) assert.deepEqual(await jobs.receive(T), { from: 'jobs', echo: i });
    })();
    for (let i = 0; i < n; i++) await jobs.send(i);
    await got;
    assert.throws(() => h.channel('nope'), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.equal(h.channel('control'), h.control);
    const exit = await within(h.close(), 20000, 'close');
    assert.equal(exit.reason, 'clean-exit');
    assert.equal(jobs.closed, true, 'close() closes the channels spawn() created');
  } finally {
    await reap(h);
  }
});

test('parentChannel: an unknown name is refused with the list of names', async () => {
  const h = spawn(fixture('echo'), { env: childEnv, channels: { jobs: 'stream' } });
  try {
    await within(h.ready, 20000, 'ready');
    await h.control.send({ cmd: 'open', name: 'jbos' });
    const r = (await h.control.receive(T)) as { error: string; message: string };
    assert.equal(r.error, 'ERR_INVALID_ARG_VALUE');
    assert.match(r.message, /'control', 'jobs'/);
  } finally {
    await h.close();
    await reap(h);
  }
});

test('a descriptor of a named object: the child imports its transport module and opens it', async () => {
  const path = join(tmpdir(), `${uniqueName('sock')}.sock`);
  const server = createServer();
  server.listen(path);
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const h = spawn(fixture('echo'), { env: childEnv, channels: { side: { kind: 'test-unix', path } } });
  try {
    await within(h.ready, 20000, 'ready');
    assert.throws(() => h.channel('side'), /passed as a descriptor/);
    await h.control.send({ cmd: 'open', name: 'side' });
    assert.deepEqual(await h.control.receive(T), { opened: 'side', mechanism: 'socketpair' });
    const [conn] = await within(accepted, 20000, 'connection');
    const side = new SocketPairChannel({ socket: conn, codec: resolveCodec(undefined, 'json'), maxMessageSize: 1 << 20, label: 'test side' });
    await side.send({ hello: 'over a path' });
    assert.deepEqual(await side.receive(T), { from: 'side', echo: { hello: 'over a path' } });
    side.destroy();
  } finally {
    server.close();
    await h.close();
    await reap(h);
  }
});

test('a registered transport passes a file descriptor with passFd; afterSpawn runs', async () => {
  const path = join(tmpdir(), `${uniqueName('sock')}.sock`);
  const server = createServer();
  server.listen(path);
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = createConnection(path);
  await once(client, 'connect');
  const [conn] = await accepted;
  server.close();
  const h = spawn(fixture('echo'), { env: childEnv, channels: { passed: new PassedSocket(conn) } });
  try {
    await within(h.ready, 20000, 'ready');
    assert.equal(conn.destroyed, true, "afterSpawn closed the parent's copy");
    assert.ok(h.channel('passed') instanceof PassedSocket, 'the handle gives back the object that was passed');
    await h.control.send({ cmd: 'open', name: 'passed' });
    assert.deepEqual(await h.control.receive(T), { opened: 'passed', mechanism: 'socketpair' });
    const mine = new SocketPairChannel({ socket: client, codec: resolveCodec(undefined, 'json'), maxMessageSize: 1 << 20, label: 'test client' });
    await mine.send([1, 2, 3]);
    assert.deepEqual(await mine.receive(T), { from: 'passed', echo: [1, 2, 3] });
    mine.destroy();
  } finally {
    await h.close();
    await reap(h);
  }
});

test('a descriptor of an unregistered kind fails in the child with ERR_INVALID_STATE', async () => {
  const h = spawn(fixture('echo'), { env: childEnv, channels: { odd: { kind: 'no-such-transport', x: 1 } } });
  try {
    await within(h.ready, 20000, 'ready');
    await h.control.send({ cmd: 'open', name: 'odd' });
    const r = (await h.control.receive(T)) as { error: string; message: string };
    assert.equal(r.error, 'ERR_INVALID_STATE');
    assert.match(r.message, /no transport of kind 'no-such-transport'/);
  } finally {
    await h.close();
    await reap(h);
  }
});

test('registerTransport checks its arguments and protects the built-in kind', () => {
  assert.throws(() => registerTransport('Bad Kind', { open: () => undefined as any }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => registerTransport('stream', { open: () => undefined as any }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => registerTransport('ok-kind', {} as any), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => registerTransport('ok-kind', { open: () => undefined as any, extra: 1 } as any), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => registerTransport(1 as any, { open: () => undefined as any }), { code: 'ERR_INVALID_ARG_TYPE' });
});
