// Supervision trees: a nested supervisor restarts its own children; when it
// gives up, its parent restarts it (and its children) by the parent's strategy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { logLines, member, nextEvent } from './helpers.js';

leakGuard();
const tmp = tempDir('sup-nested');

test('a nested supervisor that gives up is restarted by its parent, with its children', async () => {
  const log = tmp.file('log');
  const inner = new Supervisor({ name: 'inner', maxRestarts: 0, children: [member('b', log), member('c', log)] });
  const root = new Supervisor({ name: 'root', handleSignals: false, backoff: { initial: 0 }, children: [member('a', log), inner] });
  try {
    await root.start();
    assert.equal(inner.state, 'running');
    const tree = root.snapshot();
    assert.deepEqual(tree.children.map((c) => [c.name, c.kind, c.state]), [['a', 'process', 'running'], ['inner', 'supervisor', 'running']]);
    assert.deepEqual(tree.children[1]!.supervisor!.children.map((c) => [c.name, c.state]), [['b', 'running'], ['c', 'running']]);
    const aPid = root.handle('a')!.pid;
    const bPid = inner.handle('b')!.pid;

    const innerFailed = nextEvent(inner, 'failed');
    const restarted = nextEvent(root, 'restarted', (e) => e.name === 'inner');
    const exited = nextEvent(root, 'exited', (e) => e.name === 'inner');
    await inner.handle('b')!.control.send({ cmd: 'exit', code: 1 });
    const [err] = await innerFailed;
    assert.equal(err.code, 'ERR_MULTIPROC_SUPERVISOR_FAILED');
    const [e] = await exited;
    assert.deepEqual([e.exit.reason, e.restart, e.pid], ['error-exit', true, undefined]);
    assert.equal(e.exit.error, err);
    await restarted;
    assert.equal(inner.state, 'running');
    assert.notEqual(inner.handle('b')!.pid, bPid);
    assert.equal(root.handle('a')!.pid, aPid, 'one_for_one: a is untouched');
    const snap = root.snapshot().children[1]!;
    assert.deepEqual([snap.state, snap.restarts, snap.lastExit], ['running', 1, 'error-exit']);
    assert.deepEqual(snap.supervisor!.children.map((c) => c.state), ['running', 'running']);
    // b crashed; inner gave up and stopped c; then inner started again.
    assert.deepEqual(logLines(log), [['start', 'a'], ['start', 'b'], ['start', 'c'], ['stop', 'c'], ['start', 'b'], ['start', 'c']]);
  } finally {
    await root.close();
  }
  assert.equal(inner.state, 'idle');
  assert.deepEqual(logLines(log).slice(6), [['stop', 'c'], ['stop', 'b'], ['stop', 'a']]);
});

test('a nested supervisor handles its own child exits within its limit', async () => {
  const inner = new Supervisor({ name: 'inner', backoff: { initial: 0 }, children: [member('b', '-')] });
  const root = new Supervisor({ name: 'root', handleSignals: false, children: [inner] });
  try {
    await root.start();
    const restarted = nextEvent(inner, 'restarted');
    let rootSaw = 0;
    root.on('exited', () => rootSaw++);
    await inner.handle('b')!.control.send({ cmd: 'exit', code: 1 });
    await restarted;
    assert.equal(rootSaw, 0);
    assert.equal(root.children()[0]!.supervisor!.children[0]!.restarts, 1);
  } finally {
    await root.close();
  }
});
