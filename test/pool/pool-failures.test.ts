// Workers that die mid-task, retries, cancellation with a grace period, task timeouts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IpcError, WorkerExitedError } from '../../src/errors.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { makePool, shmOf, until, within } from './helpers.js';

leakGuard();

test('kill -9 of a busy worker fails its task at once with WorkerExitedError; later tasks succeed', async () => {
  await using pool = makePool({ size: 1 });
  const pid = (await within(pool.run('pid'), 30000, 'first task')) as number;
  const task = pool.run('hang');
  const queued = pool.run('square', [6]);
  await new Promise((r) => setTimeout(r, 100));
  const killedAt = performance.now();
  process.kill(pid, 'SIGKILL');
  const err = await within(task.then(() => assert.fail('the task should fail'), (e: unknown) => e), 10000, 'failure');
  const ms = performance.now() - killedAt;
  assert.ok(err instanceof WorkerExitedError && err instanceof IpcError);
  assert.equal(err.code, 'ERR_MULTIPROC_WORKER_EXITED');
  assert.equal(err.reason, 'killed');
  assert.equal(err.signal, 'SIGKILL');
  assert.equal(err.exitCode, null);
  assert.equal(err.pid, pid);
  assert.ok(ms < 2000, `failed after ${ms.toFixed(1)} ms`);
  // The queued task runs on a replacement.
  assert.equal(await within(queued, 30000, 'queued task'), 36);
  const next = await pool.run('pid');
  assert.notEqual(next, pid);
  assert.equal(pool.stats().workerExits, 1);
  assert.equal(pool.stats().failed, 1);
});

test('process.exit() inside a task: WorkerExitedError with the exit code', async () => {
  await using pool = makePool();
  await assert.rejects(within(pool.run('die', ['exit']), 30000, 'die'), (err: any) => {
    assert.equal(err.code, 'ERR_MULTIPROC_WORKER_EXITED');
    assert.equal(err.reason, 'error-exit');
    assert.equal(err.exitCode, 7);
    return true;
  });
  assert.equal(await pool.run('square', [3]), 9);
});

test('retries: a task whose worker died runs again on another worker', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mpt-pool-'));
  try {
    await using pool = makePool({ retries: 1 });
    assert.equal(await within(pool.run('dieOnce', [join(dir, 'a')]), 30000, 'retried task'), 'second try');
    assert.equal(pool.stats().retried, 1);
    assert.equal(pool.stats().failed, 0);
    // Out of retries: a task that always kills its worker fails after 1 + retries attempts.
    await assert.rejects(within(pool.run('die', ['kill']), 30000, 'die'), { code: 'ERR_MULTIPROC_WORKER_EXITED', reason: 'killed' });
    assert.equal(pool.stats().retried, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cancellation: a cooperative task stops on its signal; one that ignores it is killed after cancelGrace', async () => {
  await using pool = makePool({ cancelGrace: 300 });
  const pid = (await within(pool.run('pid'), 30000, 'first task')) as number;
  const ac = new AbortController();
  const coop = pool.run('cooperative', [], { signal: ac.signal });
  await new Promise((r) => setTimeout(r, 100));
  ac.abort();
  await assert.rejects(coop, { code: 'ABORT_ERR' });
  assert.equal(await pool.run('pid'), pid, 'the cooperative worker was kept');

  const ac2 = new AbortController();
  const stubborn = pool.run('hang', [], { signal: ac2.signal });
  await new Promise((r) => setTimeout(r, 100));
  const t0 = performance.now();
  ac2.abort(new Error('enough'));
  await assert.rejects(stubborn, (err: any) => err.code === 'ABORT_ERR' && err.cause?.message === 'enough');
  assert.ok(performance.now() - t0 < 250, 'the task rejects at once, not after the grace period');
  assert.ok(await until(() => pool.stats().workerExits === 1, 10000), 'the worker was killed after the grace period');
  assert.notEqual(await pool.run('pid'), pid);
  // A queued task that is aborted never runs.
  const ac3 = new AbortController();
  const busy = pool.run('slowSquare', [2, 300]);
  const queued = pool.run('square', [5], { signal: ac3.signal });
  ac3.abort();
  await assert.rejects(queued, { code: 'ABORT_ERR' });
  assert.equal(await busy, 4);
  assert.equal(pool.stats().cancelled, 3);
  await assert.rejects(pool.run('square', [1], { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
});

test('taskTimeout counts from the start of the task, not from queueing', async () => {
  await using pool = makePool({ taskTimeout: 1500, cancelGrace: 200 });
  await within(pool.run('pid'), 30000, 'warm-up');
  // Three 600 ms tasks on one worker: the last one finishes 1800 ms after it was queued, 600 ms after it started.
  const results = await Promise.all([0, 1, 2].map((i) => pool.run('slowSquare', [i, 600])));
  assert.deepEqual(results, [0, 1, 4]);
  const t0 = performance.now();
  await assert.rejects(pool.run('hang'), (err: any) => err.code === 'ERR_MULTIPROC_TIMEOUT' && err.timeout === 1500);
  assert.ok(performance.now() - t0 >= 1400);
  // Per-task timeout; the cooperative task sees a TimeoutError as its signal's reason.
  await assert.rejects(pool.run('cooperative', [], { timeout: 100 }), { code: 'ERR_MULTIPROC_TIMEOUT' });
  assert.equal(await pool.run('square', [4]), 16);
  assert.deepEqual(shmOf(pool), []);
});
