// One server process, three client processes: clients started before the
// server retry with backoff until it is up; authKey right works, wrong is
// refused while the server goes on; a client killed mid-message ends only
// its own connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Child } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { existsSync } from 'node:fs';
import { Socket } from '../../src/index.js';

leakGuard();
const dir = tempDir('xsock');

const SERVER = `
  import { Socket } from 'multiproc';
  const [path, key, expected] = process.argv.slice(1);
  const server = await Socket.listen({ path, authKey: key || undefined, codec: 'json' });
  const refused = [];
  server.on('handshakeError', (err) => refused.push(err.code));
  console.log('listening');
  let served = 0;
  const done = [];
  for await (const conn of server) {
    done.push((async () => {
      let n = 0;
      for await (const m of conn) {
        await conn.send({ echo: m, pid: process.pid });
        n++;
      }
      console.log('connection ended after ' + n + ' messages');
    })());
    if (++served === Number(expected)) break;
  }
  await Promise.all(done);
  console.log('refused ' + JSON.stringify(refused));
  await server.close();
  console.log('closed');
`;

const CLIENT = `
  import { Socket } from 'multiproc';
  const [path, key, id] = process.argv.slice(1);
  console.log('connecting');
  let conn;
  try {
    conn = await Socket.connect({ path, authKey: key || undefined, codec: 'json', retry: { attempts: Infinity, minDelay: 10, maxDelay: 200 }, timeout: 30000 });
  } catch (err) {
    console.log('connect failed ' + err.code);
    process.exit(0);
  }
  for (let i = 0; i < 100; i++) {
    await conn.send({ id, i });
    const r = await conn.receive({ timeout: 10000 });
    if (r.echo.id !== id || r.echo.i !== i) throw new Error('wrong echo ' + JSON.stringify(r));
  }
  console.log('client ' + id + ' done, authenticated=' + conn.authenticated);
  await conn.close();
`;

test('three client processes started before the server retry until it listens, then all are served', { timeout: 90000 }, async () => {
  const path = dir.file('s');
  const clients = [1, 2, 3].map((id) => new Child(CLIENT, { args: [path, '', String(id)] }));
  for (const c of clients) await c.waitFor('connecting');
  // Nothing listens yet: the clients are failing with ENOENT and retrying.
  await new Promise((r) => setTimeout(r, 300));
  const server = new Child(SERVER, { args: [path, '', '3'] });
  for (const [i, c] of clients.entries()) {
    const r = await c.exited;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`client ${i + 1} done, authenticated=false`));
  }
  const s = await server.exited;
  assert.equal(s.code, 0, s.stderr);
  assert.equal(s.stdout.match(/connection ended after 100 messages/g)?.length, 3);
  assert.match(s.stdout, /closed/);
  assert.equal(existsSync(path), false, 'the listener removed its socket file');
});

test('authKey: right keys are served, a wrong key is refused with ERR_MULTIPROC_AUTH_FAILED, the server goes on', { timeout: 90000 }, async () => {
  const path = dir.file('s');
  const key = 'the right secret';
  const server = new Child(SERVER, { args: [path, key, '2'] });
  await server.waitFor('listening');
  const good1 = new Child(CLIENT, { args: [path, key, '1'] });
  const bad = new Child(CLIENT, { args: [path, 'a wrong secret', '2'] });
  const none = new Child(CLIENT, { args: [path, '', '3'] });
  const b = await bad.exited;
  assert.match(b.stdout, /connect failed ERR_MULTIPROC_AUTH_FAILED/);
  const n = await none.exited;
  assert.match(n.stdout, /connect failed ERR_MULTIPROC_AUTH_FAILED/);
  const good2 = new Child(CLIENT, { args: [path, key, '4'] });
  for (const c of [good1, good2]) {
    const r = await c.exited;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /done, authenticated=true/);
  }
  const s = await server.exited;
  assert.equal(s.code, 0, s.stderr);
  assert.equal(s.stdout.match(/connection ended after 100 messages/g)?.length, 2);
  const refused = JSON.parse(/refused (.*)/.exec(s.stdout)![1]!) as string[];
  assert.deepEqual(refused.sort(), ['ERR_MULTIPROC_AUTH_FAILED', 'ERR_MULTIPROC_AUTH_FAILED']);
});

test('a client killed in the middle of a message: earlier messages arrive, then that connection alone ends', { timeout: 60000 }, async () => {
  const path = dir.file('s');
  const server = await Socket.listen({ path, codec: 'json' });
  try {
    const conns = server[Symbol.asyncIterator]();
    // A well-behaved client in this process.
    const other = await Socket.connect({ path, codec: 'json', timeout: 10000 });
    const otherConn = (await conns.next()).value!;
    // The victim speaks the handshake by hand, sends 5 whole frames and the
    // first bytes of a sixth, then waits to be killed.
    const victim = new Child(`
      import { createConnection } from 'node:net';
      const s = createConnection(process.argv[1]);
      await new Promise((r) => s.once('connect', r));
      const hello = Buffer.alloc(48);
      hello.write('MPSK', 0, 'latin1');
      hello.writeUInt16LE(1, 4);
      hello.writeUInt32LE(1 << 20, 8);
      s.write(hello);
      await new Promise((r) => s.once('data', r));
      const frame = (payload) => {
        const h = Buffer.alloc(16);
        h.writeUInt32LE(payload.length, 0);
        h.writeUInt16LE(0x4d50, 4);
        h.writeUInt16LE(1, 6);
        h.writeInt32LE(1, 8);
        return Buffer.concat([h, payload]);
      };
      for (let i = 0; i < 5; i++) s.write(frame(Buffer.from(JSON.stringify(i))));
      const cut = frame(Buffer.alloc(1000, 0x20));
      s.write(cut.subarray(0, 100), () => console.log('cut'));
      setInterval(() => {}, 1000);
    `, { args: [path] });
    const victimConn = (await conns.next()).value!;
    await victim.waitFor('cut');
    victim.kill('SIGKILL');
    await victim.exited;
    const got: unknown[] = [];
    const err = await (async () => {
      try {
        for (;;) got.push(await victimConn.receive({ timeout: 10000 }));
      } catch (e) {
        return e as { code?: string };
      }
    })();
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
    assert.ok(err.code === 'ERR_MULTIPROC_PROTOCOL' || err.code === 'ECONNRESET', `got ${err.code}`);
    // The other connection and the server are fine.
    await other.send('still here');
    assert.equal(await otherConn.receive({ timeout: 10000 }), 'still here');
    const late = await Socket.connect({ path, codec: 'json', timeout: 10000 });
    const lateConn = (await conns.next()).value!;
    await lateConn.send('welcome');
    assert.equal(await late.receive({ timeout: 10000 }), 'welcome');
    other.destroy();
    late.destroy();
  } finally {
    await server.close();
  }
});

test('a library client killed between messages: the server sees its messages, then the end of that connection', { timeout: 60000 }, async () => {
  const path = dir.file('s');
  const server = await Socket.listen({ path, codec: 'json' });
  try {
    const child = new Child(`
      import { Socket } from 'multiproc';
      const c = await Socket.connect({ path: process.argv[1], codec: 'json', timeout: 10000 });
      for (let i = 0; i < 5; i++) await c.send(i);
      await c.send('last');
      setTimeout(() => console.log('sent'), 100);
      setInterval(() => {}, 1000);
    `, { args: [path] });
    const conn = (await server[Symbol.asyncIterator]().next()).value!;
    await child.waitFor('sent');
    child.kill('SIGKILL');
    await child.exited;
    const got: unknown[] = [];
    for await (const m of conn) got.push(m);
    assert.deepEqual(got, [0, 1, 2, 3, 4, 'last']);
    assert.equal(server.closed, false);
  } finally {
    await server.close();
  }
});
