// Bad peers: garbage instead of a handshake, silence, garbage or oversized
// frames after it. Each costs only its own connection; the server and the
// other connections go on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Socket as NetSocket } from 'node:net';
import { once } from 'node:events';
import { Socket, type SocketEndpoint, type SocketServer } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { raw, rawHandshake, header } from './raw-peer.js';

leakGuard();
const dir = tempDir('sockfault');

function nextRefusal(server: SocketServer<any>): Promise<[Error & { code?: string }, SocketEndpoint]> {
  return once(server, 'handshakeError') as Promise<[Error & { code?: string }, SocketEndpoint]>;
}

for (const kind of ['unix', 'tcp'] as const) {
  const listen = () => Socket.listen(kind === 'unix' ? { path: dir.file('s'), codec: 'json', handshakeTimeout: 300 } : { port: 0, codec: 'json', handshakeTimeout: 300 });
  const connect = (server: SocketServer<any>) =>
    Socket.connect(server.address.path !== undefined ? { path: server.address.path, codec: 'json' } : { port: server.address.port!, codec: 'json' });

  test(`${kind}: a client that sends garbage instead of a handshake is dropped (ERR_MULTIPROC_PROTOCOL); others are served`, async () => {
    const server = await listen();
    try {
      const good = await connect(server);
      const goodConn = (await server[Symbol.asyncIterator]().next()).value!;
      const refused = nextRefusal(server);
      const bad = raw(server);
      bad.on('error', () => {});
      bad.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.padEnd(64, ' '));
      const [err, remote] = await refused;
      assert.equal(err.code, 'ERR_MULTIPROC_PROTOCOL');
      assert.match(err.message, /does not speak/);
      if (kind === 'tcp') assert.equal(remote.address, '127.0.0.1');
      await once(bad, 'close');
      await good.send('fine');
      assert.equal(await goodConn.receive({ timeout: 5000 }), 'fine');
      assert.equal(server.stats().rejected, 1);
      good.destroy();
    } finally {
      await server.close();
    }
  });

  test(`${kind}: a client that connects and says nothing is dropped after handshakeTimeout`, async () => {
    const server = await listen();
    try {
      const refused = nextRefusal(server);
      const silent = raw(server);
      silent.on('error', () => {});
      const [err] = await refused;
      assert.equal(err.code, 'ERR_MULTIPROC_TIMEOUT');
      await once(silent, 'close');
      const c = await connect(server);
      c.destroy();
    } finally {
      await server.close();
    }
  });

  test(`${kind}: after the handshake, garbage, an oversized length or a cut frame ends that connection only, with ERR_MULTIPROC_PROTOCOL`, async () => {
    const server = await Socket.listen(kind === 'unix' ? { path: dir.file('s'), codec: 'json', maxMessageSize: 1000 } : { port: 0, codec: 'json', maxMessageSize: 1000 });
    try {
      const conns = server[Symbol.asyncIterator]();
      const good = await connect(server);
      const goodConn = (await conns.next()).value!;
      assert.equal(good.maxMessageSize, 1000, 'the client adopts the smaller limit');
      await assert.rejects(good.send('x'.repeat(2000)), (e: any) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE');

      const attacks: Array<(s: NetSocket) => void> = [
        (s) => s.write(Buffer.from('\x00garbage that is not a frame header')),
        (s) => s.write(header(2 ** 31)),
        (s) => s.end(Buffer.concat([header(10), Buffer.from('"ab')])),
        (s) => s.write(header(2, 0)),
      ];
      for (const attack of attacks) {
        const s = await rawHandshake(server);
        s.on('error', () => {});
        const conn = (await conns.next()).value!;
        s.write(Buffer.concat([header(4), Buffer.from('"ok"')]));
        assert.equal(await conn.receive({ timeout: 5000 }), 'ok');
        attack(s);
        await assert.rejects(conn.receive({ timeout: 5000 }), (e: any) => e.code === 'ERR_MULTIPROC_PROTOCOL');
        s.destroy();
      }
      // Bytes the codec cannot decode fail that receive with a coded error; the connection goes on.
      {
        const s = await rawHandshake(server);
        const conn = (await conns.next()).value!;
        s.write(Buffer.concat([header(3), Buffer.from('{x:'), header(4), Buffer.from('"ok"')]));
        await assert.rejects(conn.receive({ timeout: 5000 }), (e: any) => e.code === 'ERR_MULTIPROC_DECODE' && e.cause instanceof SyntaxError);
        assert.equal(await conn.receive({ timeout: 5000 }), 'ok');
        s.destroy();
      }
      await good.send('still fine');
      assert.equal(await goodConn.receive({ timeout: 5000 }), 'still fine');
      assert.equal(server.closed, false);
      good.destroy();
    } finally {
      await server.close();
    }
  });
}
