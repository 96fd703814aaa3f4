// Connection handling against real servers: coded errors when nothing
// listens, user/password and token auth, maxMessageSize against the server's
// max_payload, and the bound on buffering while the server is away.
import { after, describe, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { leakGuard } from '../helpers/leak-guard.js';
import { NatsServer, freePort, natsSkip } from '../helpers/nats-server.js';
import { Nats } from '../../src/nats/connection.js';
import { NatsChannel } from '../../src/channel/transports/nats.js';
import { NatsUnavailableError } from '../../src/errors.js';

const servers: NatsServer[] = [];
leakGuard({ allowChildren: () => servers.filter((s) => s.running).map((s) => s.pid) });
after(async () => {
  for (const s of servers) await s.stop();
});
async function start(config?: string): Promise<NatsServer> {
  const s = await NatsServer.start({ jetstream: false, ...(config ? { config } : {}) });
  servers.push(s);
  return s;
}

describe('NATS connections', { skip: natsSkip }, () => {
  test('nothing listening: ERR_MULTIPROC_NATS_UNAVAILABLE, or ERR_MULTIPROC_TIMEOUT with retryFirstConnect', async () => {
    const port = await freePort();
    await assert.rejects(Nats.connect({ servers: `nats://127.0.0.1:${port}` }), (e: any) => e instanceof NatsUnavailableError && e.code === 'ERR_MULTIPROC_NATS_UNAVAILABLE' && e.servers[0].includes(String(port)) && /nats-server/.test(e.message));
    await assert.rejects(NatsChannel.open({ servers: `127.0.0.1:${port}`, send: 'x' }), (e: any) => e.code === 'ERR_MULTIPROC_NATS_UNAVAILABLE');
    await assert.rejects(Nats.connect({ servers: `127.0.0.1:${port}`, retryFirstConnect: true, timeout: 300 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
    await assert.rejects(Nats.connect({ servers: `127.0.0.1:${port}`, retryFirstConnect: true, signal: AbortSignal.abort() }), (e: any) => e.code === 'ABORT_ERR');
    await assert.rejects(Nats.connect({ servers: 42 as any }), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
    await assert.rejects(Nats.connect({ sever: 'x' } as any), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
  });

  test('user/password and token authentication; wrong credentials are ERR_MULTIPROC_AUTH_FAILED', async () => {
    const up = await start('authorization { user: "alice", password: "s3cret" }');
    const n = await Nats.connect({ servers: up.url, user: 'alice', pass: 's3cret' });
    await n.close();
    await assert.rejects(Nats.connect({ servers: up.url, user: 'alice', pass: 'wrong', reconnect: false }), (e: any) => e.code === 'ERR_MULTIPROC_AUTH_FAILED');
    const tok = await start('authorization { token: "t0ken" }');
    const ch = await NatsChannel.open<string>({ servers: tok.url, token: 't0ken', send: 'a', receive: 'a' });
    await ch.send('hi');
    assert.equal(await ch.receive({ timeout: 5000 }), 'hi');
    await ch.close();
    await assert.rejects(Nats.connect({ servers: tok.url, token: 'nope', reconnect: false }), (e: any) => e.code === 'ERR_MULTIPROC_AUTH_FAILED');
  });

  test("maxMessageSize defaults to the server's max_payload less the header reserve; more is a RangeError", async () => {
    const s = await start('max_payload: 4096');
    const n = await Nats.connect({ servers: s.url });
    try {
      assert.equal(n.maxPayload, 4096);
      const ch = await NatsChannel.open({ connection: n, send: 'm', receive: 'm', codec: 'raw' });
      assert.equal(ch.maxMessageSize, 4096 - 128);
      await assert.rejects(ch.send(new Uint8Array(4096)), (e: any) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE');
      await ch.send(new Uint8Array(ch.maxMessageSize).fill(7), { type: 9, priority: 3 });
      const m = await ch.receiveMessage({ timeout: 5000 });
      assert.deepEqual([m.size, m.type, m.priority], [4096 - 128, 9, 3]);
      await ch.close();
      await assert.rejects(NatsChannel.open({ connection: n, send: 'm', maxMessageSize: 5000 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
      await assert.rejects(NatsChannel.open({ connection: n, send: 'a.*' }), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
    } finally {
      await n.close();
    }
  });

  test('server away: sends are buffered up to bufferSize, then wait; all arrive after it comes back', { timeout: 60_000 }, async () => {
    let s = await start();
    const bufferSize = 64 * 1024;
    const tx = await NatsChannel.open<Uint8Array>({ servers: s.url, send: 'buf', codec: 'raw', bufferSize, reconnect: { minDelay: 50, maxDelay: 200 } });
    const conn = tx.connection;
    await s.kill();
    for (let i = 0; i < 200 && conn.state !== 'reconnecting'; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(conn.state, 'reconnecting');
    const chunk = new Uint8Array(1000);
    let buffered = 0;
    while (tx.trySend(chunk)) buffered++;
    assert.ok(buffered > 0 && buffered * 1000 <= bufferSize, `buffered ${buffered} messages within ${bufferSize} bytes`);
    await assert.rejects(tx.send(chunk, { timeout: 100 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
    const waiting = tx.send(chunk, { timeout: 30_000 });
    s = await s.restart();
    servers.push(s);
    // A receiver on the restarted server, then the buffered messages flow.
    const rx = await NatsChannel.open<Uint8Array>({ servers: s.url, receive: 'buf', codec: 'raw' });
    await waiting;
    for (let i = 0; i < 200 && (conn.state as string) !== 'connected'; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(conn.state as string, 'connected');
    assert.ok(conn.reconnects >= 1);
    await tx.send(new Uint8Array([42]), { timeout: 10_000 });
    // Buffered publishes may have reached the server before rx subscribed; the last one after it did.
    for (;;) {
      const m = await rx.receive({ timeout: 10_000 });
      if (m.length === 1 && m[0] === 42) break;
    }
    await tx.close();
    await rx.close();
  });

  test('TLS options are passed through: a TLS-only server is reached with its CA', { skip: spawnSync('openssl', ['version']).status === 0 ? false : 'openssl is not installed' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpt-nats-tls-'));
    try {
      const key = join(dir, 'key.pem');
      const cert = join(dir, 'cert.pem');
      const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const s = await start(`tls { cert_file: "${cert}", key_file: "${key}" }`);
      const ch = await NatsChannel.open<string>({ servers: s.url, tls: { caFile: cert }, send: 't', receive: 't' });
      await ch.send('over tls');
      assert.equal(await ch.receive({ timeout: 5000 }), 'over tls');
      await ch.close();
      // Without the CA the server's certificate is not trusted: no connection.
      await assert.rejects(Nats.connect({ servers: s.url, tls: true, reconnect: false, timeout: 5000 }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('wildcard receivers and queue groups', async () => {
    const s = await start();
    const n = await Nats.connect({ servers: s.url });
    try {
      const all = await NatsChannel.open<string>({ connection: n, receive: 'jobs.>', codec: 'json' });
      const one = await NatsChannel.open<string>({ connection: n, receive: 'jobs.*.eu', codec: 'json' });
      const g1 = await NatsChannel.open<number>({ connection: n, receive: 'work', queue: 'pool', codec: 'json' });
      const g2 = await NatsChannel.open<number>({ connection: n, receive: 'work', queue: 'pool', codec: 'json' });
      const a = await NatsChannel.open<string>({ connection: n, send: 'jobs.render.eu', codec: 'json' });
      const b = await NatsChannel.open<string>({ connection: n, send: 'jobs.render.us', codec: 'json' });
      const w = await NatsChannel.open<number>({ connection: n, send: 'work', codec: 'json' });
      await a.send('eu');
      await b.send('us', { type: 4 });
      assert.equal(await all.receive({ timeout: 5000 }), 'eu');
      assert.deepEqual(await all.receiveMessage({ timeout: 5000 }).then((m) => [m.data, m.type]), ['us', 4]);
      assert.equal(await one.receive({ timeout: 5000 }), 'eu');
      await assert.rejects(one.receive({ timeout: 200 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
      for (let i = 0; i < 100; i++) await w.send(i);
      await n.connection.flush();
      const got: number[] = [];
      const drain = async (c: NatsChannel<number>): Promise<void> => {
        for (;;) {
          try {
            got.push(await c.receive({ timeout: 300 }));
          } catch {
            return;
          }
        }
      };
      await Promise.all([drain(g1), drain(g2)]);
      assert.deepEqual(got.sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i), 'each message to one member of the group');
      assert.ok(g1.stats().messagesReceived > 0 || g2.stats().messagesReceived > 0);
    } finally {
      await n.close();
    }
  });

  test('closing a connection closes what was made from it; a channel that owns its connection closes it', async () => {
    const s = await start();
    const own = await NatsChannel.open<string>({ servers: s.url, send: 'o', receive: 'o' });
    const pending = assert.rejects(own.receive({ timeout: 10_000 }), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
    await own.connection.close();
    await pending;
    assert.equal(own.closed, true);
    const own2 = await NatsChannel.open<string>({ servers: s.url, send: 'o' });
    await own2.close();
    assert.equal(own2.connection.state, 'closed');
    await assert.rejects(own2.send('x'), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
  });
});
