// Every exit reason, from exitReason() alone and from real children.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exitReason, exitReasons } from '../../src/process/exit-reason.js';
import { spawn, type SpawnOptions } from '../../src/process/spawn.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { childEnv, fixture, reap, within } from './helpers.js';

leakGuard();

const OOM_TAIL = '\n<--- JS stacktrace --->\n\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n----- Native stack trace -----\n';

test('exitReason classifies exit statuses', () => {
  assert.deepEqual(exitReasons, ['clean-exit', 'error-exit', 'killed', 'crashed', 'out-of-memory', 'launch-failed', 'hung']);
  assert.equal(exitReason(0, null), 'clean-exit');
  assert.equal(exitReason(1, null), 'error-exit');
  assert.equal(exitReason(255, null), 'error-exit');
  for (const s of ['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP', 'SIGPIPE', 'SIGUSR1'] as const) assert.equal(exitReason(null, s), 'killed', s);
  for (const s of ['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGTRAP', 'SIGSYS'] as const) assert.equal(exitReason(null, s), 'crashed', s);
  assert.equal(exitReason(null, 'SIGABRT', OOM_TAIL), 'out-of-memory');
  assert.equal(exitReason(134, null, OOM_TAIL), 'out-of-memory', 'a shell reports the abort as 134');
  assert.equal(exitReason(134, null), 'error-exit', 'without the message, 134 is just a code');
  assert.equal(exitReason(1, null, OOM_TAIL), 'error-exit', 'the text alone, with an ordinary exit, is not an OOM');
  assert.equal(exitReason(0, null, OOM_TAIL), 'clean-exit');
  assert.equal(exitReason(null, 'SIGABRT', 'Fatal process out of memory: Zone'), 'out-of-memory');
  assert.equal(exitReason(null, null), 'launch-failed');
  assert.throws(() => exitReason('1' as any, null), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => exitReason(null, 'SIGNOPE' as any), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => exitReason(0, null, 5 as any), { code: 'ERR_INVALID_ARG_TYPE' });
});

async function run(action: string, options: SpawnOptions = {}) {
  const h = spawn(fixture('behave'), { env: childEnv, args: [action], stdio: ['ignore', 'ignore', 'pipe'], ...options });
  h.stderr?.resume();
  try {
    const exit = await within(h.exited, 30000, `${action}: exit`);
    const ready = await h.ready.then(
      () => true,
      () => false,
    );
    return { exit, ready };
  } finally {
    await reap(h);
  }
}

test("'clean-exit': the module ends with code 0", async () => {
  const { exit, ready } = await run('exit-0');
  assert.ok(ready);
  assert.deepEqual([exit.reason, exit.code, exit.signal, exit.error], ['clean-exit', 0, null, undefined]);
});

test("'error-exit': a non-zero code, and an uncaught exception with the child's error attached", async () => {
  const a = await run('exit-3');
  assert.ok(a.ready, 'ready() just before process.exit() still reached the parent');
  assert.deepEqual([a.exit.reason, a.exit.code, a.exit.signal], ['error-exit', 3, null]);

  const b = await run('throw');
  assert.deepEqual([b.exit.reason, b.exit.code], ['error-exit', 1]);
  assert.ok(b.exit.error instanceof Error);
  assert.equal(b.exit.error.message, 'thrown after ready');
  assert.equal((b.exit.error as any).code, 'E_AFTER_READY');
  assert.match(b.exit.error.stack ?? '', /behave\.js/);

  const c = await run('reject');
  assert.deepEqual([c.exit.reason, c.exit.code], ['error-exit', 1]);
  assert.equal((c.exit.error as any)?.code, 'E_REJECTED');
});

test("'killed': SIGKILL and SIGTERM from the handle", async () => {
  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    const h = spawn(fixture('behave'), { env: childEnv, args: ['idle'] });
    try {
      await within(h.ready, 20000, 'ready');
      assert.equal(h.kill(signal), true);
      const exit = await within(h.exited, 20000, 'exit');
      assert.deepEqual([exit.reason, exit.code, exit.signal], ['killed', null, signal]);
    } finally {
      await reap(h);
    }
  }
});

test("'crashed': SIGSEGV, SIGBUS, SIGILL, SIGFPE and an abort", async () => {
  for (const [action, signal] of [['segv', 'SIGSEGV'], ['bus', 'SIGBUS'], ['ill', 'SIGILL'], ['fpe', 'SIGFPE'], ['abort', 'SIGABRT']] as const) {
    const { exit, ready } = await run(action);
    assert.ok(ready, action);
    assert.deepEqual([exit.reason, exit.code, exit.signal], ['crashed', null, signal], action);
  }
});

test("'out-of-memory': V8 runs out of heap (--max-old-space-size=32)", async () => {
  const { exit } = await run('oom', { execArgv: ['--max-old-space-size=32'] });
  assert.equal(exit.signal, 'SIGABRT');
  assert.equal(exit.reason, 'out-of-memory');
  assert.match(exit.stderrTail ?? '', /JavaScript heap out of memory/);
});

test("'out-of-memory' is found with stderr inherited (forwarded) too", async () => {
  // The default stderr: forwarded to ours, and its tail kept. Mute ours for the test.
  const write = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    const { exit } = await run('oom', { execArgv: ['--max-old-space-size=32'], stdio: ['ignore', 'ignore', 'inherit'] });
    assert.equal(exit.reason, 'out-of-memory');
  } finally {
    process.stderr.write = write;
  }
});

// 'launch-failed' has its own file: process-launch-failure.test.ts.

test("without a stderr tail, V8's out-of-memory abort can only be 'crashed'", async () => {
  const { exit } = await run('oom', { execArgv: ['--max-old-space-size=32'], stdio: 'ignore' });
  assert.deepEqual([exit.reason, exit.signal, exit.stderrTail], ['crashed', 'SIGABRT', undefined]);
});
