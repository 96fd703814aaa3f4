// Unix socket files: mode 0600 from the start, removed on close and at exit,
// stale files replaced, live listeners and other files left alone; abstract
// names leave no file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, lstatSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket as NetSocket } from 'node:net';
import { Socket } from '../../src/index.js';
import { native } from '../../src/binding/native.js';
import { Child, runChild } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { uniqueName } from '../helpers/names.js';

leakGuard();
const dir = tempDir('unixfile');

test('the socket file is a socket of mode 0600, whatever the umask, and is removed on close', async () => {
  const path = dir.file('s');
  const server = await Socket.listen({ path });
  const st = lstatSync(path);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600);
  assert.deepEqual(server.address, { path });
  await server.close();
  assert.equal(existsSync(path), false);
  // With an empty umask, the file is still never wider than asked, even for a moment.
  const path2 = dir.file('s');
  const r = await runChild(`
    import { Socket } from 'multiproc';
    import { lstatSync } from 'node:fs';
    process.umask(0);
    const server = await Socket.listen({ path: process.argv[1] });
    console.log('mode ' + (lstatSync(process.argv[1]).mode & 0o777).toString(8));
    await server.close();
  `, { args: [path2] });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /mode 600/);
  assert.equal(existsSync(path2), false);
});

test('mode is configurable (0660 for a group of services)', async () => {
  const path = dir.file('s');
  const server = await Socket.listen({ path, mode: 0o660 });
  assert.equal(lstatSync(path).mode & 0o777, 0o660);
  await server.close();
});

test('destroy also removes the file; close and destroy are idempotent', async () => {
  const path = dir.file('s');
  const server = await Socket.listen({ path });
  const c1 = server.close();
  assert.equal(server.close(), c1);
  server.destroy();
  await c1;
  assert.equal(existsSync(path), false);
  const s2 = await Socket.listen({ path });
  s2.destroy();
  s2.destroy();
  assert.equal(existsSync(path), false);
});

test('a stale file left by a killed listener refuses connections and is replaced by the next listen', async () => {
  const path = dir.file('s');
  const dead = new Child(`
    import { Socket } from 'multiproc';
    await Socket.listen({ path: process.argv[1] });
    console.log('listening');
    setInterval(() => {}, 1000);
  `, { args: [path] });
  await dead.waitFor('listening');
  dead.kill('SIGKILL');
  await dead.exited;
  assert.ok(lstatSync(path).isSocket(), 'SIGKILL left the file behind');
  await assert.rejects(Socket.connect({ path }), (e: any) => e.code === 'ECONNREFUSED');
  await assert.rejects(Socket.listen({ path, replaceStale: false }), (e: any) => e.code === 'EADDRINUSE' && /stale/.test(e.message));
  const server = await Socket.listen({ path, codec: 'json' });
  try {
    const client = await Socket.connect({ path, codec: 'json' });
    const conn = (await server[Symbol.asyncIterator]().next()).value!;
    await client.send('hello');
    assert.equal(await conn.receive({ timeout: 5000 }), 'hello');
    client.destroy();
  } finally {
    await server.close();
  }
  assert.equal(existsSync(path), false);
});

test('a live listener is never replaced, and a file that is not a socket is left alone', async () => {
  const path = dir.file('s');
  const live = await Socket.listen({ path });
  await assert.rejects(Socket.listen({ path }), (e: any) => e.code === 'EADDRINUSE' && /another process listens/.test(e.message));
  assert.ok(lstatSync(path).isSocket());
  await live.close();
  const file = dir.file('f');
  writeFileSync(file, 'precious');
  await assert.rejects(Socket.listen({ path: file }), (e: any) => e.code === 'EADDRINUSE' && /not a socket/.test(e.message));
  assert.equal(readFileSync(file, 'utf8'), 'precious');
});

test('a listener too busy to answer (its queue full) keeps its file: only a refused connection counts as stale', async () => {
  const path = dir.file('s');
  // A listener that accepts nothing, with room for one pending connection.
  const fd = native.unixListen(path, 0o600, 0);
  const pending: NetSocket[] = [];
  try {
    const ino = lstatSync(path).ino;
    // Fill its queue: the next connection attempt fails with EAGAIN, not ECONNREFUSED.
    let code: string | undefined;
    for (let i = 0; i < 16 && code === undefined; i++) {
      const c = createConnection(path);
      pending.push(c);
      code = await new Promise<string | undefined>((resolve) => {
        c.once('connect', () => resolve(undefined));
        c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code));
      });
    }
    assert.equal(code, 'EAGAIN');
    await assert.rejects(Socket.listen({ path }), (e: any) => e.code === 'EADDRINUSE' && /left alone/.test(e.message));
    assert.equal(lstatSync(path).ino, ino, 'the listener keeps its file');
  } finally {
    for (const c of pending) c.destroy();
    closeSync(fd);
    rmSync(path, { force: true });
  }
});

test('a process that exits without closing its listener removes the file', async () => {
  const path = dir.file('s');
  const r = await runChild(`
    import { Socket } from 'multiproc';
    await Socket.listen({ path: process.argv[1] });
    process.exit(0);
  `, { args: [path] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(existsSync(path), false);
});

test('an abstract name works across processes and leaves no file', async () => {
  const name = uniqueName('abs');
  const before = readdirSync(dir.dir).length;
  const server = await Socket.listen({ path: name, abstract: true, codec: 'json' });
  assert.deepEqual(server.address, { path: `\0${name}` });
  assert.match(readFileSync('/proc/net/unix', 'utf8'), new RegExp(`@${name}\\b`));
  const child = new Child(`
    import { Socket } from 'multiproc';
    const c = await Socket.connect({ path: '\\0' + process.argv[1], codec: 'json', timeout: 10000 });
    await c.send({ from: process.pid });
    console.log('reply ' + (await c.receive({ timeout: 10000 })));
    await c.close();
  `, { args: [name] });
  const conn = (await server[Symbol.asyncIterator]().next()).value!;
  const m = (await conn.receive({ timeout: 10000 })) as { from: number };
  assert.equal(m.from, child.pid);
  await conn.send('pong');
  const r = await child.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /reply pong/);
  assert.equal(conn.traits.mechanism, 'unix');
  assert.equal(conn.traits.scope, 'same-host');
  await server.close();
  assert.doesNotMatch(readFileSync('/proc/net/unix', 'utf8'), new RegExp(`@${name}\\b`));
  assert.equal(readdirSync(dir.dir).length, before);
  assert.equal(existsSync(name), false);
});

test('a path longer than sun_path is refused before anything is created', async () => {
  const long = `${dir.dir}/${'x'.repeat(120)}`;
  await assert.rejects(Socket.listen({ path: long }), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE' && /at most 107/.test(e.message));
  await assert.rejects(Socket.connect({ path: long }), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
  assert.equal(existsSync(long), false);
  assert.equal(readdirSync(dir.dir).some((n) => n.startsWith('xxxx')), false);
});

test('a missing directory is a system error naming the path', async () => {
  const path = `${dir.dir}/no-such-dir/s`;
  await assert.rejects(Socket.listen({ path }), (e: any) => e.code === 'ENOENT' && e.syscall === 'bind' && e.path === path);
});
