// 'launch-failed': the child never ran its module. A failed spawn, Node
// refusing its arguments, and a module that cannot be imported before ready().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type SpawnOptions } from '../../src/process/spawn.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { childEnv, fixture, reap, within } from './helpers.js';

leakGuard();
const tmp = tempDir('process');

async function launch(module: string, options: SpawnOptions = {}) {
  const h = spawn(module, { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'], ...options });
  h.stderr?.resume();
  try {
    const exit = await within(h.exited, 30000, 'exit');
    const err = await h.ready.then(
      () => assert.fail('ready resolved'),
      (e: any) => e,
    );
    assert.equal(err.code, 'ERR_MULTIPROC_PROCESS_EXITED');
    assert.equal(err.reason, 'launch-failed');
    return { exit, err };
  } finally {
    await reap(h);
  }
}

test('a module that does not exist', async () => {
  const { exit } = await launch(join(tmp.dir, 'no-such-module.js'));
  assert.deepEqual([exit.reason, exit.code], ['launch-failed', 1]);
  assert.equal((exit.error as any)?.code, 'ERR_MODULE_NOT_FOUND');
});

test('a module with a syntax error', async () => {
  const path = join(tmp.dir, 'broken.mjs');
  writeFileSync(path, 'export const x = ;\n');
  const { exit } = await launch(path);
  assert.equal(exit.reason, 'launch-failed');
  assert.equal(exit.error?.name, 'SyntaxError');
});

test('a module whose dependency is missing', async () => {
  const path = join(tmp.dir, 'needs.mjs');
  writeFileSync(path, "import './not-there.mjs';\n");
  const { exit } = await launch(path);
  assert.equal(exit.reason, 'launch-failed');
  assert.equal((exit.error as any)?.code, 'ERR_MODULE_NOT_FOUND');
});

test('a module that throws at top level before ready()', async () => {
  const { exit, err } = await launch(fixture('behave'), { args: ['throw-on-load'] });
  assert.equal((exit.error as any)?.code, 'E_LOAD');
  assert.equal(err.cause, exit.error);
});

test('the spawn itself fails: a working directory that does not exist', async () => {
  const { exit } = await launch(fixture('echo'), { cwd: join(tmp.dir, 'missing-dir') });
  assert.deepEqual([exit.reason, exit.code, exit.signal], ['launch-failed', null, null]);
  assert.equal((exit.error as any)?.code, 'ENOENT');
  assert.match((exit.error as any)?.syscall ?? '', /^spawn/);
});

test('kill() and close() after a failed spawn send no signal', async () => {
  // Node's ChildProcess of a failed spawn signals a pid left over in its native handle: count the
  // calls instead of making them.
  const original = ChildProcess.prototype.kill;
  const sent: unknown[] = [];
  ChildProcess.prototype.kill = function (this: ChildProcess, signal?: NodeJS.Signals | number): boolean {
    if (this.pid !== undefined) return original.call(this, signal);
    sent.push(signal);
    return false;
  };
  try {
    const h = spawn(fixture('echo'), { env: childEnv, cwd: join(tmp.dir, 'missing-dir'), stdio: 'ignore' });
    assert.equal(h.pid, undefined);
    assert.equal(h.kill('SIGKILL'), false);
    assert.equal(h.kill(), false);
    const exit = await within(h.close(), 30000, 'close');
    assert.equal(exit.reason, 'launch-failed');
    assert.equal(h.kill('SIGKILL'), false);
    assert.deepEqual(sent, [], 'no signal went through the failed ChildProcess');
  } finally {
    ChildProcess.prototype.kill = original;
  }
});

test('after a failed spawn there is no control channel, before and after the exit', async () => {
  const h = spawn(fixture('echo'), { env: childEnv, cwd: join(tmp.dir, 'missing-dir'), stdio: 'ignore' });
  try {
    assert.equal(h.pid, undefined);
    assert.throws(() => h.control, { name: 'TypeError', code: 'ERR_INVALID_STATE' });
    assert.throws(() => h.channel('control'), { code: 'ERR_INVALID_STATE' });
    await assert.rejects(h.ping(), { code: 'ERR_MULTIPROC_PROCESS_EXITED' });
    assert.equal((await within(h.exited, 30000, 'exit')).reason, 'launch-failed');
    assert.throws(() => h.control, { code: 'ERR_INVALID_STATE' });
  } finally {
    await reap(h);
  }
});

test('Node refuses its arguments before the bootstrap runs', async () => {
  const { exit } = await launch(fixture('echo'), { execArgv: ['--no-such-node-option'] });
  assert.equal(exit.reason, 'launch-failed');
  assert.equal(exit.code, 9, 'Node exits 9 on an invalid option');
  assert.match(exit.stderrTail ?? '', /bad option/);
});

test('throwing after ready() is an error-exit, not a launch failure', async () => {
  const h = spawn(fixture('behave'), { env: childEnv, args: ['throw'], stdio: ['ignore', 'ignore', 'pipe'] });
  h.stderr!.resume();
  try {
    await within(h.ready, 20000, 'ready');
    assert.equal((await within(h.exited, 20000, 'exit')).reason, 'error-exit');
  } finally {
    await reap(h);
  }
});
