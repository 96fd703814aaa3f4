// permissions: Node's permission model in the child. A read outside the
// allowance fails there with ERR_ACCESS_DENIED, and the parent hears of it;
// the package itself stays readable; without addons the child still runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, permissionFlags, canAllowAddons } from '../../src/process/spawn.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { childEnv, fixture, reap, within } from './helpers.js';

leakGuard();
const tmp = tempDir('sandbox');
const secret = join(tmp.dir, 'secret.txt');
writeFileSync(secret, 'not for the sandbox');

const T = { timeout: 20000 };

test('an uncaught ERR_ACCESS_DENIED in the sandbox reaches the parent with the exit', async () => {
  const h = spawn(fixture('sandbox'), { env: childEnv, args: [secret], permissions: {}, stdio: ['ignore', 'ignore', 'pipe'] });
  h.stderr!.resume();
  try {
    const info = (await within(h.ready, 20000, 'ready')) as { sandboxed: boolean; mayRead: boolean };
    assert.deepEqual(info, { sandboxed: true, mayRead: false });
    const exit = await within(h.exited, 20000, 'exit');
    assert.deepEqual([exit.reason, exit.code], ['error-exit', 1]);
    assert.equal((exit.error as any)?.code, 'ERR_ACCESS_DENIED');
    assert.equal((exit.error as any)?.resource, secret);
  } finally {
    await reap(h);
  }
});

test('a denial the child catches can be sent over the control channel', async () => {
  const h = spawn(fixture('sandbox'), { env: childEnv, args: [secret, 'catch'], permissions: {}, stdio: ['ignore', 'ignore', 'pipe'] });
  h.stderr!.resume();
  try {
    await within(h.ready, 20000, 'ready');
    assert.deepEqual(await h.control.receive(T), { code: 'ERR_ACCESS_DENIED', resource: secret });
    assert.equal((await within(h.exited, 20000, 'exit')).reason, 'clean-exit');
  } finally {
    await reap(h);
  }
});

test('fsRead allows exactly what it lists', async () => {
  const h = spawn(fixture('sandbox'), { env: childEnv, args: [secret, 'catch'], permissions: { fsRead: [tmp.dir] }, stdio: ['ignore', 'ignore', 'pipe'] });
  h.stderr!.resume();
  try {
    const info = (await within(h.ready, 20000, 'ready')) as { mayRead: boolean };
    assert.equal(info.mayRead, true);
    assert.deepEqual(await h.control.receive(T), { read: true });
  } finally {
    await h.close();
    await reap(h);
  }
});

test('a sandboxed child has multiproc and its addon (parent-death signal set)', async () => {
  const h = spawn(fixture('echo'), { env: childEnv, permissions: {}, stdio: ['ignore', 'ignore', 'pipe'] });
  h.stderr!.resume();
  try {
    await within(h.ready, 20000, 'ready');
    await h.control.send({ cmd: 'info' });
    const info = (await h.control.receive(T)) as { pdeathsig: number; execArgv: string[] };
    assert.equal(info.pdeathsig, canAllowAddons() ? 9 : 0);
    assert.ok(info.execArgv.some((a) => a === '--permission' || a === '--experimental-permission'));
  } finally {
    await h.close();
    await reap(h);
  }
});

test("addons: false: 'multiproc/child' still works; importing the addon fails with ERR_MULTIPROC_NATIVE_LOAD", async () => {
  const ok = spawn(fixture('sandbox'), { env: childEnv, args: [secret, 'catch'], permissions: { addons: false }, stdio: ['ignore', 'ignore', 'pipe'] });
  const needsAddon = spawn(fixture('echo'), { env: childEnv, permissions: { addons: false }, stdio: ['ignore', 'ignore', 'pipe'] });
  ok.stderr!.resume();
  needsAddon.stderr!.resume();
  try {
    await within(ok.ready, 20000, 'ready');
    assert.deepEqual(await ok.control.receive(T), { code: 'ERR_ACCESS_DENIED', resource: secret });
    const exit = await within(needsAddon.exited, 20000, 'exit');
    assert.equal(exit.reason, 'launch-failed');
    assert.equal((exit.error as any)?.code, 'ERR_MULTIPROC_NATIVE_LOAD');
    assert.match(exit.error!.message, /multiproc\/child/);
  } finally {
    await reap(ok, needsAddon);
  }
});

test('permission flags: the Node flag by version, the package and the module readable, paths resolved', () => {
  const { flags, addons } = permissionFlags({ fsRead: ['rel/dir', '*'], fsWrite: [tmp.dir], childProcess: true, worker: true, wasi: true }, '/x/mod.js');
  const perm = process.allowedNodeEnvironmentFlags.has('--permission') ? '--permission' : '--experimental-permission';
  assert.equal(flags[0], perm);
  assert.ok(flags.includes(`--allow-fs-read=${join(process.cwd(), 'rel/dir')}`));
  assert.ok(flags.includes('--allow-fs-read=*'));
  assert.ok(flags.includes('--allow-fs-read=/x/mod.js'));
  assert.ok(flags.some((f) => /--allow-fs-read=.*msgpackr$/.test(f)), 'the codec dependency');
  assert.ok(flags.includes(`--allow-fs-write=${tmp.dir}`));
  for (const f of ['--allow-child-process', '--allow-worker', '--allow-wasi']) assert.ok(flags.includes(f), f);
  assert.equal(addons, canAllowAddons());
  assert.equal(flags.includes('--allow-addons'), canAllowAddons());
  assert.equal(permissionFlags({ addons: false }, undefined).flags.includes('--allow-addons'), false);
  assert.throws(() => permissionFlags({ fsRead: [''] }, undefined), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => permissionFlags({ worker: 1 } as any, undefined), { code: 'ERR_INVALID_ARG_TYPE' });
});
