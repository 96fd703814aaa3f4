// Socket.connect and Socket.listen: retry with backoff, timeout, abort,
// handshake failures, argument checks, the loopback rule, and how a server's
// close and destroy reach its connections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { Socket, type SocketConnection } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const dir = tempDir('sockconn');

/** A TCP port on loopback with (very likely) nothing listening. */
async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

test('without retry, a missing listener fails at once: ENOENT (unix), ECONNREFUSED (tcp) with a hint', async () => {
  const path = dir.file('none');
  await assert.rejects(Socket.connect({ path }), (e: any) => e.code === 'ENOENT' && e.syscall === 'connect');
  const port = await freePort();
  await assert.rejects(Socket.connect({ port }), (e: any) => e.code === 'ECONNREFUSED' && /retry/.test(e.message));
});

test('retry gives up after `attempts` with the last error', async () => {
  const port = await freePort();
  await assert.rejects(Socket.connect({ port, retry: { attempts: 3, minDelay: 1, maxDelay: 5 } }), (e: any) => e.code === 'ECONNREFUSED');
});

test('retry waits for a listener that comes up later', async () => {
  const path = dir.file('late');
  const connecting = Socket.connect({ path, codec: 'json', retry: { attempts: Infinity, minDelay: 5, maxDelay: 50 }, timeout: 20000 });
  await new Promise((r) => setTimeout(r, 200));
  const server = await Socket.listen({ path, codec: 'json' });
  try {
    const c = await connecting;
    const conn = (await server[Symbol.asyncIterator]().next()).value!;
    await c.send('made it');
    assert.equal(await conn.receive({ timeout: 5000 }), 'made it');
    c.destroy();
  } finally {
    await server.close();
  }
});

test('timeout bounds the whole connect (ERR_MULTIPROC_TIMEOUT); signal aborts it (ABORT_ERR)', async () => {
  const path = dir.file('never');
  await assert.rejects(Socket.connect({ path, retry: { attempts: Infinity, minDelay: 10 }, timeout: 200 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  const ac = new AbortController();
  const p = Socket.connect({ path, retry: { attempts: Infinity, minDelay: 10 }, signal: ac.signal });
  setTimeout(() => ac.abort(), 100);
  await assert.rejects(p, (e: any) => e.code === 'ABORT_ERR');
  await assert.rejects(Socket.connect({ path, signal: AbortSignal.abort() }), (e: any) => e.code === 'ABORT_ERR');
});

test('a server that never answers the handshake: ERR_MULTIPROC_TIMEOUT after handshakeTimeout; one that speaks something else: ERR_MULTIPROC_PROTOCOL', async () => {
  const sockets = new Set<import('node:net').Socket>();
  const mute = createServer((s) => sockets.add(s.on('error', () => {})));
  mute.listen(0, '127.0.0.1');
  await once(mute, 'listening');
  const other = createServer((s) => s.on('error', () => {}).resume().end('SSH-2.0-OpenSSH_9.6\r\n'.padEnd(64, '\0')));
  other.listen(0, '127.0.0.1');
  await once(other, 'listening');
  try {
    await assert.rejects(Socket.connect({ port: (mute.address() as { port: number }).port, handshakeTimeout: 200 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
    await assert.rejects(Socket.connect({ port: (other.address() as { port: number }).port }), (e: any) => e.code === 'ERR_MULTIPROC_PROTOCOL');
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => mute.close(r));
    await new Promise((r) => other.close(r));
  }
});

test('authKey on one side only fails on both sides with ERR_MULTIPROC_AUTH_FAILED', async () => {
  for (const [serverKey, clientKey] of [['secret', undefined], [undefined, 'secret']] as const) {
    const server = await Socket.listen({ port: 0, authKey: serverKey });
    try {
      const refused = once(server, 'handshakeError');
      await assert.rejects(Socket.connect({ port: server.address.port!, authKey: clientKey }), (e: any) => e.code === 'ERR_MULTIPROC_AUTH_FAILED' && e.name === 'AuthError');
      const [err] = (await refused) as [any];
      assert.equal(err.code, 'ERR_MULTIPROC_AUTH_FAILED');
      assert.equal(server.connections, 0);
    } finally {
      await server.close();
    }
  }
});

test('a key given as bytes equals the same key given as a string', async () => {
  const server = await Socket.listen({ port: 0, authKey: Buffer.from('k€y'), codec: 'json' });
  try {
    const c = await Socket.connect({ port: server.address.port!, authKey: 'k€y', codec: 'json' });
    assert.equal(c.authenticated, true);
    c.destroy();
  } finally {
    await server.close();
  }
});

test('listening off loopback without authKey is refused before anything is bound', async () => {
  for (const host of ['0.0.0.0', '::', '192.0.2.1']) {
    await assert.rejects(Socket.listen({ port: 0, host }), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE' && /requires options\.authKey/.test(e.message));
    await assert.rejects(Socket.listen({ port: 0, host, protocol: 'udp' }), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE' && /requires options\.authKey/.test(e.message));
  }
});

test('loopback listeners: 127.0.0.1 by default, ::1 and localhost when asked', async () => {
  for (const [host, expect] of [[undefined, '127.0.0.1'], ['::1', '::1'], ['localhost', /^(127\.0\.0\.1|::1)$/]] as const) {
    const server = await Socket.listen({ port: 0, host });
    try {
      if (typeof expect === 'string') assert.equal(server.address.address, expect);
      else assert.match(server.address.address!, expect);
      assert.equal(server.traits.mechanism, 'tcp');
      assert.equal(server.traits.scope, 'network');
      const c = await Socket.connect({ port: server.address.port!, host: server.address.address });
      assert.equal(c.remote.port, server.address.port);
      c.destroy();
    } finally {
      await server.close();
    }
  }
});

test('bad arguments are refused with Node-style codes', async () => {
  const bad: Array<[unknown, string]> = [
    [undefined, 'ERR_INVALID_ARG_VALUE'],
    [{}, 'ERR_INVALID_ARG_VALUE'],
    [{ path: '/tmp/x', port: 1 }, 'ERR_INVALID_ARG_VALUE'],
    [{ port: 70000 }, 'ERR_OUT_OF_RANGE'],
    [{ port: 1.5 }, 'ERR_OUT_OF_RANGE'],
    [{ port: '80' }, 'ERR_INVALID_ARG_TYPE'],
    [{ path: '/tmp/x', host: 'localhost' }, 'ERR_INVALID_ARG_VALUE'],
    [{ path: '/tmp/x', protocol: 'udp' }, 'ERR_INVALID_ARG_VALUE'],
    [{ port: 1, abstract: true }, 'ERR_INVALID_ARG_VALUE'],
    [{ port: 1, protocol: 'sctp' }, 'ERR_INVALID_ARG_VALUE'],
    [{ port: 1, authKey: '' }, 'ERR_INVALID_ARG_VALUE'],
    [{ port: 1, authKey: 42 }, 'ERR_INVALID_ARG_TYPE'],
    [{ port: 1, prot: 'udp' }, 'ERR_INVALID_ARG_VALUE'],
    [{ path: '' }, 'ERR_INVALID_ARG_VALUE'],
    [{ path: 'a\0b' }, 'ERR_INVALID_ARG_VALUE'],
    [{ path: '\0abs', abstract: false }, 'ERR_INVALID_ARG_VALUE'],
  ];
  for (const [opts, code] of bad) {
    await assert.rejects(Socket.listen(opts as any), (e: any) => e.code === code, `listen ${JSON.stringify(opts)}`);
  }
  await assert.rejects(Socket.connect({ port: 0 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  await assert.rejects(Socket.connect({ port: 1, retry: { attempts: 0 } }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  await assert.rejects(Socket.connect({ port: 1, retry: { tries: 3 } as any }), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
  await assert.rejects(Socket.connect({ port: 1, timeout: -1 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  await assert.rejects(Socket.listen({ port: 0, mode: 0o600 }), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
  await assert.rejects(Socket.listen({ path: dir.file('m'), mode: 0o1777 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  await assert.rejects(Socket.listen({ port: 0, protocol: 'udp', backlog: 5 }), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
});

test("connections come as 'connection' events when there are listeners", async () => {
  const server = await Socket.listen({ path: dir.file('ev'), codec: 'json' });
  try {
    const got = once(server, 'connection') as Promise<[SocketConnection<unknown>]>;
    const c = await Socket.connect({ path: server.address.path!, codec: 'json' });
    const [conn] = await got;
    await c.send(1);
    assert.equal(await conn.receive({ timeout: 5000 }), 1);
    assert.equal(server.connections, 1);
    c.destroy();
  } finally {
    await server.close();
  }
});

test('close: the iteration ends, connections close gracefully (what was sent arrives), the file goes', async () => {
  const path = dir.file('close');
  const server = await Socket.listen({ path, codec: 'json' });
  const clients = await Promise.all([1, 2].map(() => Socket.connect({ path: server.address.path!, codec: 'json' })));
  const served: SocketConnection<unknown>[] = [];
  const loop = (async () => {
    for await (const conn of server) served.push(conn);
  })();
  while (served.length < 2) await new Promise((r) => setTimeout(r, 5));
  for (const conn of served) for (let i = 0; i < 100; i++) await conn.send(i);
  const pending = assert.rejects(served[0]!.receive(), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
  await server.close();
  await loop;
  await pending;
  for (const c of clients) {
    const got: unknown[] = [];
    for await (const m of c) got.push(m);
    assert.equal(got.length, 100);
  }
  assert.equal(server.connections, 0);
  assert.equal(served[0]!.closed, true);
  assert.equal(existsSync(path), false);
});

test('destroy: connections are destroyed at once; pending receives reject with the error', async () => {
  const server = await Socket.listen({ port: 0, codec: 'json' });
  const c = await Socket.connect({ port: server.address.port!, codec: 'json' });
  const conn = (await server[Symbol.asyncIterator]().next()).value!;
  const boom = new Error('shutting down');
  const pending = assert.rejects(conn.receive(), (e: any) => e === boom);
  const closed = once(server, 'close');
  server.destroy(boom);
  await pending;
  await closed;
  await assert.rejects(c.receive({ timeout: 5000 }), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED' || e.code === 'ECONNRESET');
  c.destroy();
  await assert.rejects(Socket.connect({ port: server.address.port! }), (e: any) => e.code === 'ECONNREFUSED');
});

test('a client that sends and leaves before the server takes its connection: the messages still arrive, then the end', async () => {
  for (const kind of ['unix', 'tcp', 'udp'] as const) {
    for (const authKey of [undefined, 'k']) {
      const server = await Socket.listen(kind === 'unix' ? { path: dir.file('early'), codec: 'json', authKey } : { port: 0, protocol: kind, codec: 'json', authKey });
      try {
        const at = kind === 'unix' ? { path: server.address.path! } : { port: server.address.port!, protocol: kind };
        const c = await Socket.connect({ ...at, codec: 'json', authKey, timeout: 10000 });
        for (let i = 0; i < 3; i++) assert.equal(c.trySend(i), true);
        await c.close();
        await new Promise((r) => setTimeout(r, 50));
        const conn = (await server[Symbol.asyncIterator]().next()).value!;
        const got: unknown[] = [];
        for await (const m of conn) got.push(m);
        assert.deepEqual(got, [0, 1, 2], `${kind} ${authKey ?? 'no key'}`);
      } finally {
        await server.close();
      }
    }
  }
});
