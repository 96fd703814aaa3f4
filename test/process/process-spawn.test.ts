// spawn(): readiness, the control channel both ways, what the child sees of
// its start, argument checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawn } from '../../src/process/spawn.js';
import { onShutdown, parent, parentChannel, ready } from '../../src/process/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { childEnv, fixture, reap, within } from './helpers.js';

leakGuard();

const T = { timeout: 20000 };

test('ready resolves with the value the child passed; control messages go both ways', async () => {
  const h = spawn(fixture('echo'), { env: childEnv, args: ['one', 'two'], name: 'echoer' });
  try {
    const info = (await within(h.ready, 20000, 'ready')) as { name: string; channels: string[]; argv: string[]; pid: number };
    assert.equal(info.name, 'echoer');
    assert.deepEqual(info.channels, ['control']);
    assert.deepEqual(info.argv, ['one', 'two']);
    assert.equal(info.pid, h.pid);
    assert.equal(h.name, 'echoer');

    await h.control.send({ cmd: 'echo', value: new Map([['k', [1n, new Date(0)]]]) });
    const reply = (await h.control.receive(T)) as { echo: Map<string, unknown> };
    assert.deepEqual(reply.echo, new Map([['k', [1n, new Date(0)]]]), 'the structured codec keeps Map, BigInt and Date');

    for (let i = 0; i < 100; i++) h.control.trySend({ cmd: 'echo', value: i }) || (await h.control.send({ cmd: 'echo', value: i }));
    for (let i = 0; i < 100; i++) assert.deepEqual(await h.control.receive(T), { echo: i });

    const exit = await within(h.close(), 20000, 'close');
    assert.equal(exit.reason, 'clean-exit');
    assert.equal(exit.code, 0);
  } finally {
    await reap(h);
  }
});

test('the child sees its module as argv[1], no bootstrap in execArgv, and a parent-death signal', async () => {
  const h = spawn(pathToFileURL(fixture('echo')), { env: childEnv, execArgv: ['--stack-size=900'] });
  try {
    await within(h.ready, 20000, 'ready');
    assert.equal(h.name, 'echo', 'the default name is the file name without extension');
    await h.control.send({ cmd: 'info' });
    const info = (await h.control.receive(T)) as { pdeathsig: number; ppid: number; execArgv: string[]; argv1: string };
    assert.equal(info.argv1, fixture('echo'));
    assert.equal(info.ppid, process.pid);
    assert.equal(info.pdeathsig, 9, 'PR_SET_PDEATHSIG is SIGKILL');
    assert.deepEqual(info.execArgv, ['--stack-size=900'], 'the bootstrap removed itself, so fork() in the child does not inherit it');
  } finally {
    await h.close();
    await reap(h);
  }
});

test('the reserved message type is refused; closing the control view leaves shutdown working', async () => {
  const h = spawn(fixture('echo'), { env: childEnv });
  try {
    await within(h.ready, 20000, 'ready');
    await assert.rejects(h.control.send('x', { type: 0x7fffffff }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => h.control.trySend('x', { type: 0x7fffffff }), { code: 'ERR_OUT_OF_RANGE' });
    await h.control.send({ cmd: 'echo', value: 'typed' }, { type: 7 });
    assert.deepEqual(await h.control.receiveMessage(T).then((m) => [m.data, m.type]), [{ echo: 'typed' }, 1]);
    await h.control.close();
    assert.equal(h.control.closed, true);
    await assert.rejects(h.control.receive(T), { code: 'ERR_MULTIPROC_CLOSED' });
    const exit = await within(h.close(), 20000, 'close');
    assert.equal(exit.reason, 'clean-exit', 'the shutdown request still reached the child');
  } finally {
    await reap(h);
  }
});

test('ready rejects with ERR_MULTIPROC_TIMEOUT when the child never calls ready()', async () => {
  const h = spawn(fixture('shutdown'), { env: childEnv, args: ['never-ready'], readyTimeout: 0 });
  try {
    await assert.rejects(h.ready, { code: 'ERR_MULTIPROC_TIMEOUT' });
  } finally {
    await h.close();
    await reap(h);
  }
});

test('a readyTimeout above 2^31-1 ms waits for ready() (not cut to 1 ms)', async () => {
  const h = spawn(fixture('behave'), { env: childEnv, args: ['idle'], readyTimeout: 2 ** 35 });
  try {
    await within(h.ready, 30000, 'ready');
  } finally {
    await h.close();
    await reap(h);
  }
});

test('ready rejects with ERR_MULTIPROC_PROCESS_EXITED when the child exits first; nobody awaiting it is fine', async () => {
  const h = spawn(fixture('behave'), { env: childEnv, args: ['throw-on-load'], stdio: ['ignore', 'ignore', 'pipe'] });
  const unawaited = spawn(fixture('behave'), { env: childEnv, args: ['throw-on-load'], stdio: 'ignore' });
  try {
    const err = await h.ready.then(
      () => assert.fail('ready resolved'),
      (e: any) => e,
    );
    assert.equal(err.code, 'ERR_MULTIPROC_PROCESS_EXITED');
    assert.equal(err.name, 'ProcessExitedError');
    assert.equal(err.reason, 'launch-failed');
    assert.equal(err.exitCode, 1);
    assert.equal(err.cause?.code, 'E_LOAD');
    assert.match(err.message, /exited before it was ready/);
    assert.equal((await unawaited.exited).reason, 'launch-failed');
    h.stderr!.resume();
  } finally {
    await reap(h, unawaited);
  }
});

test('stdio: pipe gives the handle the streams; the stderr tail is kept either way', async () => {
  const h = spawn(fixture('behave'), { env: childEnv, args: ['throw'], stdio: 'pipe' });
  try {
    assert.ok(h.stdin && h.stdout && h.stderr);
    let err = '';
    h.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    h.stdout.resume();
    const exit = await within(h.exited, 20000, 'exit');
    assert.equal(exit.reason, 'error-exit');
    assert.match(err, /thrown after ready/);
    assert.match(exit.stderrTail ?? '', /thrown after ready/);
  } finally {
    await reap(h);
  }
});

test('argument errors are thrown before anything starts', () => {
  assert.throws(() => spawn(42 as any), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => spawn(''), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => spawn(new URL('https://example.com/x.js')), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => spawn(fixture('echo'), { argz: [] } as any), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => spawn(fixture('echo'), { args: [1] } as any), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => spawn(fixture('echo'), { readyTimeout: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => spawn(fixture('echo'), { stdio: ['pipe', 'pipe'] as any }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => spawn(fixture('echo'), { channels: { control: 'stream' } }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => spawn(fixture('echo'), { channels: { x: { nokind: 1 } as any } }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => spawn(fixture('echo'), { channels: { x: new Date() } }), { code: 'ERR_INVALID_ARG_VALUE' }, 'nothing can describe a Date');
  assert.throws(() => spawn(fixture('echo'), { channels: { x: { kind: 'k', f: () => 1 } } }), { code: 'ERR_INVALID_ARG_VALUE' }, 'descriptors must clone');
  assert.throws(() => spawn(fixture('echo'), { permissions: { fsread: [] } as any }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => spawn(fixture('echo'), { permissions: { fsRead: 'x' } as any }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(basename(fixture('echo')), 'echo.js');
});

test('kill() validates the signal and returns false once the child is gone', async () => {
  const h = spawn(fixture('behave'), { env: childEnv, args: ['idle'] });
  try {
    await within(h.ready, 20000, 'ready');
    assert.throws(() => h.kill('SIGNOPE' as any), { code: 'ERR_UNKNOWN_SIGNAL' });
    assert.equal(h.kill(), true);
    const exit = await within(h.exited, 20000, 'exit');
    assert.deepEqual([exit.reason, exit.signal, exit.code], ['killed', 'SIGTERM', null]);
    assert.equal(h.kill(), false);
    assert.equal(h.exit, exit);
  } finally {
    await reap(h);
  }
});

test('outside a spawned child: parent is null and the child functions fail with ERR_INVALID_STATE', async () => {
  assert.equal(parent, null);
  await assert.rejects(parentChannel('control'), { code: 'ERR_INVALID_STATE' });
  assert.throws(() => ready(), { code: 'ERR_INVALID_STATE' });
  assert.throws(() => onShutdown(() => {}), { code: 'ERR_INVALID_STATE' });
  assert.throws(() => onShutdown(42 as any), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(parentChannel(1 as any), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('malformed library frames from a child are dropped; the parent goes on', async () => {
  const h = spawn(fixture('echo'), { env: childEnv });
  try {
    const value = await within(h.ready, 20000, 'ready');
    await h.control.send({ cmd: 'garbage' });
    assert.deepEqual(await h.control.receive(T), { garbage: 'sent' });
    assert.notEqual(await h.ready, 'forged', 'ready settles once');
    assert.ok(value !== undefined);
    await h.control.send({ cmd: 'exit', code: 4 });
    const exit = await within(h.exited, 20000, 'exit');
    assert.deepEqual([exit.reason, exit.code], ['error-exit', 4]);
    assert.ok(exit.error instanceof Error, 'a wrong-shaped error report still becomes an Error');
  } finally {
    await reap(h);
  }
});
