// Restart strategies: one_for_one restarts the child that exited; one_for_all
// stops the others (newest first) and restarts all in order; rest_for_one
// restarts the child and those started after it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor, type RestartStrategy } from '../../src/supervisor/supervisor.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { logLines, member, nextEvent, pids } from './helpers.js';

leakGuard();
const tmp = tempDir('sup-strategy');

async function crashB(strategy: RestartStrategy): Promise<{ before: Record<string, number | undefined>; after: Record<string, number | undefined>; log: Array<[string, string]> }> {
  const log = tmp.file('log');
  const sup = new Supervisor({
    strategy,
    handleSignals: false,
    backoff: { initial: 0 },
    children: [member('a', log), member('b', log), member('c', log)],
  });
  try {
    await sup.start();
    assert.equal(sup.state, 'running');
    assert.deepEqual(logLines(log), [['start', 'a'], ['start', 'b'], ['start', 'c']], 'started in order');
    const before = pids(sup);
    const restarted = nextEvent(sup, 'restarted', (e) => e.name === 'b');
    await sup.handle('b')!.control.send({ cmd: 'exit', code: 1 });
    await restarted;
    // rest_for_one and one_for_all restart c after b: wait until every child runs again.
    if (strategy !== 'one_for_one') await waitRunning(sup);
    return { before, after: pids(sup), log: logLines(log) };
  } finally {
    await sup.close();
  }
}

async function waitRunning(sup: Supervisor): Promise<void> {
  for (let i = 0; i < 300 && !sup.children().every((c) => c.state === 'running'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(sup.children().every((c) => c.state === 'running'), JSON.stringify(sup.children()));
}

test('one_for_one: only the child that exited is restarted', async () => {
  const { before, after, log } = await crashB('one_for_one');
  assert.equal(after['a#0'], before['a#0']);
  assert.notEqual(after['b#0'], before['b#0']);
  assert.equal(after['c#0'], before['c#0']);
  assert.deepEqual(log.slice(3), [['start', 'b']]);
});

test('one_for_all: the others are stopped newest first, then all start again in order', async () => {
  const { before, after, log } = await crashB('one_for_all');
  for (const k of ['a#0', 'b#0', 'c#0']) assert.notEqual(after[k], before[k], k);
  assert.deepEqual(log.slice(3), [['stop', 'c'], ['stop', 'a'], ['start', 'a'], ['start', 'b'], ['start', 'c']]);
});

test('rest_for_one: the child and those started after it are restarted', async () => {
  const { before, after, log } = await crashB('rest_for_one');
  assert.equal(after['a#0'], before['a#0']);
  assert.notEqual(after['b#0'], before['b#0']);
  assert.notEqual(after['c#0'], before['c#0']);
  assert.deepEqual(log.slice(3), [['stop', 'c'], ['start', 'b'], ['start', 'c']]);
});

test('children() and snapshot() report pid, state, restarts and the last exit', async () => {
  const log = tmp.file('log');
  const sup = new Supervisor({ name: 'root', handleSignals: false, backoff: { initial: 0 }, children: [member('w', log, { count: 2 })] });
  try {
    assert.deepEqual(sup.children().map((c) => c.state), ['idle', 'idle']);
    await sup.start();
    const restarted = nextEvent(sup, 'restarted', (e) => e.name === 'w' && e.index === 1);
    await sup.handle('w', 1)!.control.send({ cmd: 'exit', code: 3 });
    const [e] = await restarted;
    assert.equal(e.restarts, 1);
    const snap = sup.snapshot();
    assert.equal(snap.name, 'root');
    assert.equal(snap.state, 'running');
    assert.equal(snap.strategy, 'one_for_one');
    assert.equal(snap.recentRestarts, 1);
    const [w0, w1] = snap.children;
    assert.deepEqual([w0!.name, w0!.index, w0!.kind, w0!.state, w0!.restarts, w0!.lastExit], ['w', 0, 'process', 'running', 0, undefined]);
    assert.deepEqual([w1!.index, w1!.state, w1!.restarts, w1!.lastExit], [1, 'running', 1, 'error-exit']);
    assert.equal(w1!.pid, sup.handle('w', 1)!.pid);
  } finally {
    await sup.close();
  }
  assert.equal(sup.state, 'stopped');
  assert.deepEqual(sup.children().map((c) => [c.state, c.pid, c.lastExit]), [['stopped', undefined, 'clean-exit'], ['stopped', undefined, 'clean-exit']]);
});
