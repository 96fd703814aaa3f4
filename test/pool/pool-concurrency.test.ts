// Several tasks in flight per worker (concurrentTasksPerWorker): results, order, and what
// happens to the other tasks of a worker that dies or is killed after a cancel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerExitedError } from '../../src/errors.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { makePool, shmOf, until, within } from './helpers.js';

leakGuard();

test('several tasks in flight per worker: right results, map keeps its order', async () => {
  await using pool = makePool({ size: 2, concurrentTasksPerWorker: 8 });
  const results = await within(Promise.all(Array.from({ length: 500 }, (_, i) => pool.run('square', [i]))), 60000, 'runs');
  assert.deepEqual(results, Array.from({ length: 500 }, (_, i) => i * i));
  const items = Array.from({ length: 10000 }, (_, i) => i);
  assert.deepEqual(await within(pool.map('square', items, { chunkSize: 100 }), 60000, 'map'), items.map((i) => i * i));
  // Async tasks overlap on one worker: 8 tasks of 300 ms on 2 workers take far less than 8 x 300 ms.
  const slow = await within(Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((i) => pool.run('slowSquare', [i, 300]))), 60000, 'slow tasks');
  assert.deepEqual(slow, [1, 4, 9, 16, 25, 36, 49, 64]);
  const out: number[] = [];
  for await (const y of pool.imap('square', [5, 1, 3, 8, 2], { chunkSize: 1 })) out.push(y as number);
  assert.deepEqual(out, [25, 1, 9, 64, 4]);
  assert.equal(pool.stats().failed, 0);
  assert.deepEqual(shmOf(pool), []);
});

test('concurrentTasksPerWorker is checked', () => {
  assert.throws(() => makePool({ concurrentTasksPerWorker: 0 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => makePool({ concurrentTasksPerWorker: 1.5 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => makePool({ concurrentTasksPerWorker: '4' as unknown as number }), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('maxTasksPerWorker counts tasks with several in flight', async () => {
  await using pool = makePool({ size: 1, concurrentTasksPerWorker: 16, maxTasksPerWorker: 5 });
  const pids = await within(Promise.all(Array.from({ length: 20 }, () => pool.run('pid'))), 60000, 'runs');
  const counts = new Map<number, number>();
  for (const p of pids as number[]) counts.set(p, (counts.get(p) ?? 0) + 1);
  assert.equal(counts.size, 4, `pids: ${[...counts.entries()].join(' ')}`);
  for (const n of counts.values()) assert.equal(n, 5);
});

test('kill -9 of a worker with several tasks in flight fails all of them, or retries them', async () => {
  {
    await using pool = makePool({ size: 1, concurrentTasksPerWorker: 4 });
    const pid = (await within(pool.run('pid'), 30000, 'first task')) as number;
    const tasks = [pool.run('hang'), pool.run('slowSquare', [2, 60000]), pool.run('slowSquare', [3, 60000])];
    assert.ok(await until(() => pool.stats().running === 3, 10000));
    process.kill(pid, 'SIGKILL');
    for (const t of tasks) {
      const err = await within(t.then(() => assert.fail('should fail'), (e: unknown) => e), 10000, 'failure');
      assert.ok(err instanceof WorkerExitedError);
      assert.equal(err.pid, pid);
    }
    assert.equal(pool.stats().failed, 3);
    assert.equal(await pool.run('square', [7]), 49);
  }
  {
    await using pool = makePool({ size: 1, concurrentTasksPerWorker: 4, retries: 1 });
    const pid = (await within(pool.run('pid'), 30000, 'first task')) as number;
    const tasks = [pool.run('slowSquare', [2, 500]), pool.run('slowSquare', [3, 500]), pool.run('slowSquare', [4, 500])];
    assert.ok(await until(() => pool.stats().running === 3, 10000));
    process.kill(pid, 'SIGKILL');
    assert.deepEqual(await within(Promise.all(tasks), 30000, 'retried tasks'), [4, 9, 16]);
    assert.equal(pool.stats().retried, 3);
    assert.equal(pool.stats().failed, 0);
  }
});

test('a cancelled task that ignores its signal: its worker is killed after cancelGrace, the others in flight are retried (or fail)', async () => {
  {
    await using pool = makePool({ size: 1, concurrentTasksPerWorker: 4, cancelGrace: 200, retries: 1 });
    const pid = (await within(pool.run('pid'), 30000, 'first task')) as number;
    const ac = new AbortController();
    const stubborn = pool.run('hang', [], { signal: ac.signal });
    const innocent = [pool.run('slowSquare', [5, 1000]), pool.run('slowSquare', [6, 1000])];
    assert.ok(await until(() => pool.stats().running === 3, 10000));
    ac.abort();
    await assert.rejects(stubborn, { code: 'ABORT_ERR' });
    // No new task goes to the worker while it stops the cancelled one.
    const later = pool.run('pid');
    assert.deepEqual(await within(Promise.all(innocent), 30000, 'innocent tasks'), [25, 36]);
    const laterPid = await within(later, 30000, 'later task');
    assert.notEqual(laterPid, pid);
    assert.equal(pool.stats().workerExits, 1);
    assert.equal(pool.stats().retried, 2);
    assert.equal(pool.stats().cancelled, 1);
  }
  {
    // No retries: they fail with WorkerExitedError. A cooperative cancel leaves them alone.
    await using pool = makePool({ size: 1, concurrentTasksPerWorker: 4, cancelGrace: 200 });
    const pid = (await within(pool.run('pid'), 30000, 'first task')) as number;
    const ac = new AbortController();
    const coop = pool.run('cooperative', [], { signal: ac.signal });
    const other = pool.run('slowSquare', [3, 300]);
    assert.ok(await until(() => pool.stats().running === 2, 10000));
    ac.abort();
    await assert.rejects(coop, { code: 'ABORT_ERR' });
    assert.equal(await within(other, 30000, 'other'), 9);
    assert.equal(await pool.run('pid'), pid, 'the worker was kept');

    const ac2 = new AbortController();
    const stubborn = pool.run('hang', [], { signal: ac2.signal });
    const innocent = pool.run('slowSquare', [4, 5000]);
    assert.ok(await until(() => pool.stats().running === 2, 10000));
    ac2.abort();
    await assert.rejects(stubborn, { code: 'ABORT_ERR' });
    await assert.rejects(within(innocent, 30000, 'innocent'), (err: any) => err instanceof WorkerExitedError && err.reason === 'killed');
    assert.equal(pool.stats().workerExits, 1);
  }
});

test('a task with a timeout runs alone on its worker: its timeout counts from its own start', async () => {
  await using pool = makePool({ size: 1, concurrentTasksPerWorker: 16, cancelGrace: 200 });
  await within(pool.run('pid'), 30000, 'warm-up');
  // Each takes 600 ms and may take 1500: run one after the other, none times out.
  const results = await within(Promise.all([0, 1, 2].map((i) => pool.run('slowSquare', [i, 600], { timeout: 1500 }))), 30000, 'timed tasks');
  assert.deepEqual(results, [0, 1, 4]);
  assert.equal(pool.stats().cancelled, 0);
});

test('tasks submitted together share messages, yet each settles on its own', async () => {
  await using pool = makePool({ size: 1 });
  await within(pool.run('pid'), 30000, 'warm-up');
  // A burst: sync, async, throwing, and one argument that cannot be cloned.
  const burst = [
    pool.run('square', [3]),
    pool.run('slowSquare', [4, 200]),
    pool.run('fail', ['boom']),
    pool.run('square', [() => 1]),
    pool.run('add', [2, 5]),
    pool.run('hang'),
  ];
  const outcome = burst.map((p) => p.then((value) => ({ value }), (error: unknown) => ({ error })));
  assert.deepEqual(await within(outcome[0]!, 30000, 'square'), { value: 9 });
  assert.deepEqual(await within(outcome[4]!, 30000, 'add'), { value: 7 }, 'a hanging task in the same message does not hold up the others');
  assert.deepEqual(await within(outcome[1]!, 30000, 'slowSquare'), { value: 16 });
  const thrown = ((await outcome[2]!) as { error: unknown }).error;
  assert.ok(thrown instanceof RangeError && thrown.message === 'boom' && (thrown as { code?: string }).code === 'E_TASK');
  assert.equal(((await outcome[3]!) as { error: { code?: string } }).error.code, 'ERR_INVALID_ARG_VALUE');
  await pool.destroy();
  assert.equal(((await outcome[5]!) as { error: { code?: string } }).error.code, 'ERR_MULTIPROC_CLOSED');
});

test('a batch that cannot be sent is split and its tasks sent alone: each task\'s wait is counted once', async () => {
  await using pool = makePool({ size: 1 });
  await within(pool.run('pid'), 30000, 'warm-up');
  const before = pool.stats().waitTime.count;
  // One argument that cannot be cloned: the batch message fails and every task goes again alone.
  const burst = [pool.run('square', [2]), pool.run('square', [() => 1]), pool.run('square', [3]), pool.run('square', [4])];
  const settled = await within(Promise.allSettled(burst), 30000, 'burst');
  assert.deepEqual(settled.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
  assert.equal(pool.stats().waitTime.count - before, 4, 'one wait per task started (the refused one started too)');
  assert.equal(pool.stats().runTime.count, 4, 'the warm-up and the three that completed');
});

test('a batched async task whose result cannot be sent fails alone; the worker and its other tasks carry on', async () => {
  await using pool = makePool({ size: 1 });
  const pid = await within(pool.run('pid'), 30000, 'warm-up');
  // Plain run() calls in one turn share a message. One unreadable result is ready within the
  // batch's first turn, the other is fetched later (result()); both throw while being packed.
  const burst = [pool.run('slowSquare', [3, 300]), pool.run('unreadable', [0]), pool.run('unreadable', [100]), pool.run('slowSquare', [4, 300])];
  const outcome = burst.map((p) => p.then((value) => ({ value }), (error: any) => ({ code: error?.code, message: error?.message })));
  assert.deepEqual(await within(outcome[1]!, 30000, 'unreadable at once'), { code: undefined, message: 'unreadable result' });
  assert.deepEqual(await within(outcome[2]!, 30000, 'unreadable later'), { code: undefined, message: 'unreadable result' });
  assert.deepEqual(await within(outcome[0]!, 30000, 'slowSquare'), { value: 9 });
  assert.deepEqual(await within(outcome[3]!, 30000, 'slowSquare'), { value: 16 });
  assert.equal(await within(pool.run('pid'), 30000, 'pid'), pid, 'the same worker served on');
  assert.equal(pool.stats().workerExits, 0);
});

test('a burst of 50,000 run() calls: every task settles with its result', { timeout: 120000 }, async () => {
  await using pool = makePool({ size: 2 });
  const n = 50000;
  const results = await within(Promise.all(Array.from({ length: n }, (_, i) => pool.run('square', [i % 1000]))), 100000, 'the burst');
  assert.equal(results.length, n);
  for (let i = 0; i < n; i++) if (results[i] !== (i % 1000) ** 2) assert.fail(`task ${i} gave ${String(results[i])}`);
  assert.equal(pool.stats().failed, 0);
});
