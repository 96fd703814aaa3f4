// UDP: the datagram size limit, authentication, retry while the server is
// not up, a server that goes away, junk datagrams, and three client processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { Socket, UDP_MAX_PAYLOAD, UDP_MAX_PAYLOAD_AUTH, type SocketServer, type UdpChannel } from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { socketPair } from './pair.js';

leakGuard();

/** A UDP port on loopback with (very likely) nothing bound. */
async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('the datagram limit: 65507 less the header (and tag) is the default and the most maxMessageSize may be', async () => {
  assert.equal(UDP_MAX_PAYLOAD, 65507 - 20);
  assert.equal(UDP_MAX_PAYLOAD_AUTH, 65507 - 36);
  await assert.rejects(Socket.listen({ port: 0, protocol: 'udp', maxMessageSize: UDP_MAX_PAYLOAD + 1 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE' && /UDP datagram/.test(e.message));
  await assert.rejects(Socket.listen({ port: 0, protocol: 'udp', authKey: 'k', maxMessageSize: UDP_MAX_PAYLOAD_AUTH + 1 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  await assert.rejects(Socket.connect({ port: 9, protocol: 'udp', maxMessageSize: 1 << 20 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
  for (const authKey of [undefined, 'k']) {
    const p = await socketPair({ port: 0, protocol: 'udp', codec: 'raw', authKey });
    try {
      const limit = authKey === undefined ? UDP_MAX_PAYLOAD : UDP_MAX_PAYLOAD_AUTH;
      assert.equal(p.a.maxMessageSize, limit);
      assert.equal(p.b.maxMessageSize, limit);
      await assert.rejects(p.a.send(new Uint8Array(limit + 1)), (e: any) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE' && e.limit === limit);
      assert.throws(() => p.b.trySend(new Uint8Array(limit + 1)), (e: any) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE');
      assert.equal(p.a.stats().messagesSent, 0, 'nothing was sent');
      const big = new Uint8Array(limit).fill(7);
      await p.a.send(big);
      const got = (await p.b.receive({ timeout: 5000 })) as Uint8Array;
      assert.equal(got.length, limit);
      assert.equal(got[limit - 1], 7);
    } finally {
      await p.cleanup();
    }
  }
});

test('traits: a network transport that may lose messages; each connection takes the smaller maxMessageSize', async () => {
  const p = await socketPair({ port: 0, protocol: 'udp', maxMessageSize: 1000 }, { maxMessageSize: 5000 });
  try {
    assert.deepEqual({ ...p.a.traits }, { mechanism: 'udp', medium: 'socket', unit: 'message', direction: 'two-way', scope: 'network', use: p.a.traits.use, reliable: false });
    assert.equal(p.a.maxMessageSize, 1000);
    assert.equal(p.b.maxMessageSize, 1000);
    assert.equal(p.a.remote.port, p.server.address.port);
    assert.equal(p.b.remote.port, p.a.local.port);
  } finally {
    await p.cleanup();
  }
});

test('on loopback nothing is lost: 20000 messages in order, messagesLost 0, both ways', async () => {
  const p = await socketPair({ port: 0, protocol: 'udp', codec: 'raw' });
  try {
    const n = 20000;
    const pump = async (from: typeof p.a, to: typeof p.b) => {
      const sending = (async () => {
        const b = Buffer.alloc(200);
        for (let i = 0; i < n; i++) {
          b.writeUInt32LE(i, 0);
          if (!from.trySend(b)) await from.send(b, { timeout: 10000 });
        }
      })();
      for (let i = 0; i < n; i++) assert.equal(Buffer.from((await to.receive({ timeout: 10000 })) as Uint8Array).readUInt32LE(0), i);
      await sending;
    };
    await Promise.all([pump(p.a, p.b), pump(p.b, p.a)]);
    assert.equal((p.a as UdpChannel).messagesLost, 0);
    assert.equal((p.b as UdpChannel).messagesLost, 0);
  } finally {
    await p.cleanup();
  }
});

test('authKey: a wrong or missing key is refused with ERR_MULTIPROC_AUTH_FAILED and the server goes on', async () => {
  const server = await Socket.listen({ port: 0, protocol: 'udp', authKey: 'right', codec: 'json' });
  const port = server.address.port!;
  try {
    const refusals: string[] = [];
    server.on('handshakeError', (e: any) => refusals.push(e.code));
    const good = await Socket.connect({ port, protocol: 'udp', authKey: 'right', codec: 'json', timeout: 10000 });
    assert.equal(good.authenticated, true);
    await assert.rejects(Socket.connect({ port, protocol: 'udp', authKey: 'wrong', timeout: 10000 }), (e: any) => e.code === 'ERR_MULTIPROC_AUTH_FAILED');
    await assert.rejects(Socket.connect({ port, protocol: 'udp', timeout: 10000 }), (e: any) => e.code === 'ERR_MULTIPROC_AUTH_FAILED');
    assert.deepEqual(refusals, ['ERR_MULTIPROC_AUTH_FAILED', 'ERR_MULTIPROC_AUTH_FAILED']);
    const conns = server[Symbol.asyncIterator]();
    const conn = (await conns.next()).value!;
    await good.send('authenticated');
    assert.equal(await conn.receive({ timeout: 5000 }), 'authenticated');
    // A server without a key refuses a client with one, too.
    const open = await Socket.listen({ port: 0, protocol: 'udp' });
    await assert.rejects(Socket.connect({ port: open.address.port!, protocol: 'udp', authKey: 'right', timeout: 10000 }), (e: any) => e.code === 'ERR_MULTIPROC_AUTH_FAILED');
    await open.close();
    good.destroy();
  } finally {
    await server.close();
  }
});

test('junk datagrams and a half-finished handshake cost nothing; the half-open client times out', async () => {
  const server = await Socket.listen({ port: 0, protocol: 'udp', codec: 'json', handshakeTimeout: 200 });
  const junk = createSocket('udp4');
  try {
    const port = server.address.port!;
    const c = await Socket.connect({ port, protocol: 'udp', codec: 'json', timeout: 10000 });
    const conn = (await server[Symbol.asyncIterator]().next()).value!;
    const refused = once(server, 'handshakeError');
    junk.bind(0, '127.0.0.1');
    await once(junk, 'listening');
    for (const d of [Buffer.from('hello?'), Buffer.alloc(20), Buffer.from([0x4d, 0x55, 1, 1, ...new Array(40).fill(0xff)])]) junk.send(d, port, '127.0.0.1');
    // A HELLO, and then silence.
    const hello = Buffer.alloc(20 + 44);
    hello.writeUInt16LE(0x554d, 0);
    hello[2] = 1;
    hello[3] = 10;
    hello.writeUInt32LE(1000, 20 + 36);
    hello.writeUInt32LE(100000, 20 + 40);
    junk.send(hello, port, '127.0.0.1');
    const [err] = (await refused) as [any];
    assert.equal(err.code, 'ERR_MULTIPROC_TIMEOUT');
    await c.send('unharmed');
    assert.equal(await conn.receive({ timeout: 5000 }), 'unharmed');
    c.destroy();
  } finally {
    junk.close();
    await server.close();
  }
});

test('a peer that sends beyond the credit it was granted loses its connection (ERR_MULTIPROC_PROTOCOL); the inbox stays bounded', async () => {
  const server = await Socket.listen({ port: 0, protocol: 'udp', codec: 'raw' });
  const peer = createSocket('udp4');
  try {
    const port = server.address.port!;
    const accepted = server[Symbol.asyncIterator]().next();
    peer.bind(0, '127.0.0.1');
    await once(peer, 'listening');
    const datagram = (kind: number, type: number, seq: number, offset: number, payload: number): Buffer => {
      const b = Buffer.alloc(20 + payload);
      b.writeUInt16LE(0x554d, 0);
      b[2] = 1;
      b[3] = kind;
      b.writeInt32LE(type, 4);
      b.writeUInt32LE(seq, 12);
      b.writeUInt32LE(offset, 16);
      return b;
    };
    // The handshake without a key: HELLO (nonce, our limit and window), WELCOME back, then READY.
    const hello = datagram(10, 0, 0, 0, 44);
    hello.writeUInt32LE(65487, 20 + 36);
    hello.writeUInt32LE(1 << 20, 20 + 40);
    const welcome = once(peer, 'message');
    peer.send(hello, port, '127.0.0.1');
    const [w] = (await welcome) as [Buffer];
    assert.equal(w[3], 11);
    const granted = w.readUInt32LE(20 + 40);
    peer.send(datagram(12, 0, 0, 0, 0), port, '127.0.0.1');
    const conn = (await accepted).value!;
    // 8 KiB datagrams, never waiting for credit: past the grant plus one
    // largest datagram (the most a sender told that this end is idle may
    // exceed it by), the connection ends.
    const size = 8192;
    const slack = 2 * 65507 + 1088;
    let offset = 0;
    let seq = 0;
    while (offset <= granted + slack + 8 * (2 * size + 1088)) {
      peer.send(datagram(1, 1, seq++, offset, size), port, '127.0.0.1');
      offset += 2 * size + 1088;
      if (seq % 32 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    let received = 0;
    await assert.rejects(
      (async () => {
        for (;;) {
          await conn.receive({ timeout: 10000 });
          received++;
        }
      })(),
      (e: any) => e.code === 'ERR_MULTIPROC_PROTOCOL' && /beyond the credit/.test(e.message),
    );
    assert.ok(received * (2 * size + 1088) <= granted + slack, `${received} messages taken in`);
    // The server goes on.
    const c = await Socket.connect({ port, protocol: 'udp', codec: 'raw', timeout: 10000 });
    const next = (await server[Symbol.asyncIterator]().next()).value!;
    await c.send(new Uint8Array([7]));
    assert.deepEqual([...(await next.receive({ timeout: 5000 }))], [7]);
    c.destroy();
  } finally {
    peer.close();
    await server.close();
  }
});

test('without retry, connecting where nothing listens fails with ECONNREFUSED', async () => {
  const port = await freeUdpPort();
  await assert.rejects(Socket.connect({ port, protocol: 'udp', timeout: 10000 }), (e: any) => e.code === 'ECONNREFUSED');
});

const UDP_SERVER = `
  import { Socket } from 'multiproc';
  const [port, key, expected] = process.argv.slice(1);
  const server = await Socket.listen({ port: Number(port), protocol: 'udp', authKey: key || undefined, codec: 'json' });
  console.log('listening');
  const done = [];
  let served = 0;
  for await (const conn of server) {
    done.push((async () => {
      let n = 0;
      for await (const m of conn) {
        await conn.send({ echo: m });
        n++;
      }
      console.log('connection ended after ' + n + ' messages, lost ' + conn.messagesLost);
    })());
    if (++served === Number(expected)) break;
  }
  await Promise.all(done);
  await server.close();
`;

test('three UDP client processes started before the server retry until it is up, authenticate, and are served', { timeout: 90000 }, async () => {
  const port = await freeUdpPort();
  const key = 'udp secret';
  const clients = [1, 2, 3].map(
    (id) =>
      new Child(
        `
    import { Socket } from 'multiproc';
    const [port, key, id] = process.argv.slice(1);
    console.log('connecting');
    const c = await Socket.connect({ port: Number(port), protocol: 'udp', authKey: key, codec: 'json', retry: { attempts: Infinity, minDelay: 10, maxDelay: 200 }, timeout: 30000 });
    for (let i = 0; i < 500; i++) {
      await c.send({ id, i });
      const r = await c.receive({ timeout: 10000 });
      if (r.echo.id !== id || r.echo.i !== i) throw new Error('wrong echo ' + JSON.stringify(r));
    }
    console.log('client ' + id + ' done, lost ' + c.messagesLost);
    await c.close();
  `,
        { args: [String(port), key, String(id)] },
      ),
  );
  for (const c of clients) await c.waitFor('connecting');
  await new Promise((r) => setTimeout(r, 300));
  const server = new Child(UDP_SERVER, { args: [String(port), key, '3'] });
  for (const [i, c] of clients.entries()) {
    const r = await c.exited;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`client ${i + 1} done, lost 0`));
  }
  const s = await server.exited;
  assert.equal(s.code, 0, s.stderr);
  assert.equal(s.stdout.match(/connection ended after 500 messages, lost 0/g)?.length, 3);
});

test('a UDP server that dies: the client learns it (ECONNREFUSED) on its next exchange', { timeout: 60000 }, async () => {
  const port = await freeUdpPort();
  const server = new Child(UDP_SERVER, { args: [String(port), '', '1'] });
  await server.waitFor('listening');
  const c = await Socket.connect({ port, protocol: 'udp', codec: 'json', timeout: 10000 });
  try {
    await c.send('ping');
    assert.deepEqual(await c.receive({ timeout: 10000 }), { echo: 'ping' });
    server.kill('SIGKILL');
    await server.exited;
    // This send may already fail, if the kernel's report came first.
    await c.send('anyone?').catch(() => {});
    await assert.rejects(c.receive({ timeout: 10000 }), (e: any) => e.code === 'ECONNREFUSED');
    await assert.rejects(c.send('still?'), (e: any) => e.code === 'ECONNREFUSED');
  } finally {
    c.destroy();
  }
});

test('a UDP server closing ends its clients\' iteration after what it sent', async () => {
  const server: SocketServer<unknown> = await Socket.listen({ port: 0, protocol: 'udp', codec: 'json' });
  const c = await Socket.connect({ port: server.address.port!, protocol: 'udp', codec: 'json', timeout: 10000 });
  const conn = (await server[Symbol.asyncIterator]().next()).value!;
  for (let i = 0; i < 300; i++) await conn.send(i);
  await server.close();
  const got: unknown[] = [];
  for await (const m of c) got.push(m);
  assert.equal(got.length, 300);
  await assert.rejects(c.send('x'), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
  await c.close();
});

test('a fast sender in another process and a receiver that stalls: credit makes the sender wait, nothing is lost', { timeout: 90000 }, async () => {
  const server = await Socket.listen({ port: 0, protocol: 'udp', codec: 'raw' });
  try {
    const n = 30000;
    const child = new Child(`
      import { Socket } from 'multiproc';
      const [port, n] = process.argv.slice(1).map(Number);
      const c = await Socket.connect({ port, protocol: 'udp', codec: 'raw', timeout: 10000 });
      const b = Buffer.alloc(1000);
      let waited = 0;
      for (let i = 0; i < n; i++) {
        b.writeUInt32LE(i, 0);
        if (!c.trySend(b)) { waited++; await c.send(b, { timeout: 30000 }); }
      }
      console.log('sent, waited ' + waited);
      await c.close();
    `, { args: [String(server.address.port), String(n)] });
    const conn = (await server[Symbol.asyncIterator]().next()).value! as UdpChannel<Uint8Array>;
    for (let i = 0; i < n; i++) {
      if (i === 1000) await new Promise((r) => setTimeout(r, 500)); // the sender runs into its credit
      const m = Buffer.from(await conn.receive({ timeout: 30000 }));
      assert.equal(m.readUInt32LE(0), i);
    }
    const r = await child.exited;
    assert.equal(r.code, 0, r.stderr);
    const waited = Number(/waited (\d+)/.exec(r.stdout)![1]);
    assert.ok(waited > 0, 'the sender had to wait for credit');
    assert.equal(conn.messagesLost, 0);
  } finally {
    await server.close();
  }
});
