// maxTasksPerWorker, idleTimeout, close() drains, destroy() rejects, asyncDispose, stats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leakGuard } from '../helpers/leak-guard.js';
import { makePool, until, within } from './helpers.js';

leakGuard();

test('maxTasksPerWorker replaces a worker after that many tasks', async () => {
  await using pool = makePool({ maxTasksPerWorker: 2 });
  const pids: number[] = [];
  for (let i = 0; i < 5; i++) pids.push((await within(pool.run('pid'), 30000, 'pid')) as number);
  assert.equal(pids[0], pids[1]);
  assert.equal(pids[2], pids[3]);
  assert.notEqual(pids[1], pids[2]);
  assert.notEqual(pids[3], pids[4]);
  assert.equal(new Set(pids).size, 3);
  assert.equal(pool.stats().workerExits, 0, 'recycling is not a failure');
});

test('idleTimeout closes idle workers; the next task starts a new one', async () => {
  await using pool = makePool({ idleTimeout: 200 });
  const pid = await within(pool.run('pid'), 30000, 'pid');
  assert.ok(await until(() => pool.stats().workers === 0, 10000), 'the idle worker was closed');
  assert.notEqual(await pool.run('pid'), pid);
});

test('an idleTimeout above 2^31-1 ms keeps the idle worker (not cut to 1 ms)', async () => {
  await using pool = makePool({ idleTimeout: 2 ** 35 });
  const pid = await within(pool.run('pid'), 30000, 'pid');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(pool.stats().workers, 1);
  assert.equal(await within(pool.run('pid'), 30000, 'pid'), pid);
});

test('close() lets queued and running tasks finish, then refuses new ones', async () => {
  const pool = makePool({ size: 2 });
  const tasks = [1, 2, 3, 4, 5].map((i) => pool.run('slowSquare', [i, 150]));
  const closing = pool.close();
  assert.equal(pool.closed, true);
  await assert.rejects(pool.run('square', [1]), { code: 'ERR_MULTIPROC_CLOSED' });
  assert.deepEqual(await within(Promise.all(tasks), 30000, 'tasks'), [1, 4, 9, 16, 25]);
  await within(closing, 30000, 'close');
  assert.equal(pool.close(), closing, 'idempotent');
  assert.equal(pool.stats().workers, 0);
  assert.equal(pool.stats().completed, 5);
});

test('destroy() rejects running and queued tasks at once and kills the workers', async () => {
  // One task per worker, so that the squares stay queued behind the hanging task.
  const pool = makePool({ concurrentTasksPerWorker: 1 });
  await within(pool.run('pid'), 30000, 'warm-up');
  const running = pool.run('hang');
  const queued = [pool.run('square', [1]), pool.run('square', [2])];
  await new Promise((r) => setTimeout(r, 50));
  const cause = new Error('shutting down');
  const destroyed = pool.destroy(cause);
  for (const p of [running, ...queued]) {
    await assert.rejects(p, (err: any) => err.code === 'ERR_MULTIPROC_CLOSED' && err.cause === cause);
  }
  await within(destroyed, 10000, 'destroy');
  assert.equal(pool.stats().workers, 0);
  await assert.rejects(pool.run('square', [1]), { code: 'ERR_MULTIPROC_CLOSED' });
  await pool.close();
});

test('a module that does not load fails the queued tasks with reason launch-failed', async () => {
  const { Pool } = await import('../../src/pool/pool.js');
  await using pool = new Pool({ module: '/nonexistent/tasks.js', size: 1 });
  await assert.rejects(within(pool.run('square', [1]), 30000, 'run'), (err: any) => err.code === 'ERR_MULTIPROC_WORKER_EXITED' && err.reason === 'launch-failed');
});

test('permissions: the workers run sandboxed; the task module stays readable', async () => {
  await using pool = makePool({ permissions: { fsRead: [] } });
  assert.equal(await within(pool.run('square', [9]), 30000, 'run'), 81);
  await assert.rejects(pool.run('readFile', ['/etc/hostname']), { code: 'ERR_ACCESS_DENIED' });
  assert.equal(pool.stats().workerExits, 0);
});
