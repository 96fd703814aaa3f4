// Graceful close: the shutdown request, then SIGTERM, then SIGKILL, each
// after shutdownTimeout; idempotent; `await using`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildHandle } from '../../src/process/spawn.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { childEnv, fixture, reap, within } from './helpers.js';

leakGuard();

const T = { timeout: 20000 };

async function started(mode: string, shutdownTimeout: number): Promise<ChildHandle> {
  const h = spawn(fixture('shutdown'), { env: childEnv, args: [mode], shutdownTimeout, stdio: ['ignore', 'ignore', 'pipe'] });
  h.stderr!.resume();
  await within(h.ready, 20000, 'ready');
  return h;
}

test('close(): the handlers run in order, then the child exits cleanly', async () => {
  const h = await started('ok', 10000);
  try {
    const closing = h.close();
    assert.equal(h.close(), closing, 'idempotent: the same promise');
    assert.deepEqual(await h.control.receive(T), { handler: 1, timeout: 10000 });
    assert.deepEqual(await h.control.receive(T), { handler: 2 });
    const exit = await within(closing, 20000, 'close');
    assert.deepEqual([exit.reason, exit.code, exit.signal], ['clean-exit', 0, null]);
    assert.equal(await h.close(), exit);
  } finally {
    await reap(h);
  }
});

test('close(): a handler that throws makes it exit 1 with that error', async () => {
  const h = await started('fail', 10000);
  try {
    const exit = await within(h.close(), 20000, 'close');
    assert.deepEqual([exit.reason, exit.code], ['error-exit', 1]);
    assert.equal((exit.error as any)?.code, 'E_HANDLER');
  } finally {
    await reap(h);
  }
});

test('close(): a handler that hangs gets SIGTERM after shutdownTimeout', async () => {
  const h = await started('hang', 300);
  try {
    const exit = await within(h.close(), 20000, 'close');
    assert.deepEqual([exit.reason, exit.signal], ['killed', 'SIGTERM']);
  } finally {
    await reap(h);
  }
});

test('close(): a child that ignores SIGTERM gets SIGKILL after another shutdownTimeout', async () => {
  const h = await started('ignore-sigterm', 300);
  try {
    const closing = h.close();
    assert.deepEqual(await h.control.receive(T), { handler: 1, timeout: 300 });
    assert.equal(await h.control.receive(T), 'got SIGTERM, ignoring it');
    const exit = await within(closing, 20000, 'close');
    assert.deepEqual([exit.reason, exit.signal], ['killed', 'SIGKILL']);
    await assert.rejects(h.control.receive(T), { code: 'ERR_MULTIPROC_CLOSED' }, 'close() closed the control channel');
  } finally {
    await reap(h);
  }
});

test('close() after the child exited resolves with that exit at once', async () => {
  const h = spawn(fixture('behave'), { env: childEnv, args: ['exit-3'] });
  try {
    const exit = await within(h.exited, 20000, 'exit');
    assert.equal(await within(h.close(), 1000, 'close'), exit);
  } finally {
    await reap(h);
  }
});

test('await using closes the child at the end of the scope', async () => {
  let pid: number | undefined;
  let handle: ChildHandle | undefined;
  {
    await using h = spawn(fixture('echo'), { env: childEnv });
    handle = h;
    await within(h.ready, 20000, 'ready');
    pid = h.pid;
  }
  assert.ok(pid !== undefined);
  assert.equal(handle!.exit?.reason, 'clean-exit');
});

test('close() right after spawn(), possibly before the module ran: the child exits cleanly', async () => {
  const h = spawn(fixture('echo'), { env: childEnv });
  try {
    const exit = await within(h.close(), 20000, 'close');
    assert.deepEqual([exit.reason, exit.code], ['clean-exit', 0]);
    // Whether the module got to call ready() first depends on scheduling; either way ready settled.
    await h.ready.catch((e) => assert.equal(e.code, 'ERR_MULTIPROC_PROCESS_EXITED'));
  } finally {
    await reap(h);
  }
});

test('close() with a shutdownTimeout above 2^31-1 ms waits for the child instead of killing it after 1 ms', async () => {
  const h = spawn(fixture('behave'), { env: childEnv, args: ['idle'], shutdownTimeout: 2 ** 35 });
  try {
    await within(h.ready, 30000, 'ready');
    // Stopped, the child cannot act on the shutdown request yet; SIGKILL would still end it.
    process.kill(h.pid!, 'SIGSTOP');
    const closing = h.close();
    await new Promise((r) => setTimeout(r, 500));
    process.kill(h.pid!, 'SIGCONT');
    const exit = await within(closing, 30000, 'close');
    assert.equal(exit.signal, null, `ended by ${exit.signal}`);
  } finally {
    await reap(h);
  }
});
