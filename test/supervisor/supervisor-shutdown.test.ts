// Shutdown: close() stops the children in reverse start order; a child that
// ignores the shutdown request and SIGTERM is SIGKILLed after its
// shutdownTimeout; SIGTERM to a process running a root supervisor stops its
// children the same way, then the process ends by that signal: no orphans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor, type ChildExitEvent } from '../../src/supervisor/supervisor.js';
import { Child } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { alive, gone } from '../process/helpers.js';
import { fixture, logLines, member } from './helpers.js';

leakGuard();
const tmp = tempDir('sup-shutdown');

test('close(): reverse start order; a child ignoring SIGTERM is killed after shutdownTimeout', async () => {
  const log = tmp.file('log');
  const sup = new Supervisor({
    handleSignals: false,
    children: [member('a', log), member('stubborn', log, { shutdownTimeout: 300 }, ['stubborn']), member('c', log)],
  });
  const exits: ChildExitEvent[] = [];
  sup.on('exited', (e) => exits.push(e));
  let stopped = false;
  sup.on('stopped', () => (stopped = true));
  await sup.start();
  const pids = sup.children().map((c) => c.pid!);
  const t0 = performance.now();
  await sup.close();
  const took = performance.now() - t0;
  assert.equal(stopped, true);
  assert.equal(sup.state, 'stopped');
  assert.deepEqual(logLines(log).slice(3), [['stop', 'c'], ['sigterm-ignored', 'stubborn'], ['stop', 'a']]);
  assert.deepEqual(exits.map((e) => [e.name, e.exit.reason, e.exit.signal, e.restart]), [
    ['c', 'clean-exit', null, false],
    ['stubborn', 'killed', 'SIGKILL', false],
    ['a', 'clean-exit', null, false],
  ]);
  assert.ok(took >= 590, `the stubborn child had 300 ms after the request and 300 ms after SIGTERM; close took ${took} ms`);
  for (const pid of pids) assert.equal(alive(pid), false);
  assert.equal(await sup.close(), undefined, 'idempotent');
});

test('SIGTERM to a process running a supervisor stops its children in order, then ends the process', async () => {
  const log = tmp.file('log');
  const p = new Child(
    `
    import { Supervisor } from 'multiproc';
    const [module, log] = process.argv.slice(1);
    const sup = new Supervisor({ children: ['a', 'b'].map((name) => ({ name, module, args: [log] })) });
    await sup.start();
    console.log('pids ' + JSON.stringify(sup.children().map((c) => c.pid)));
    `,
    { args: [fixture('member'), log] },
  );
  try {
    const line = await p.waitFor(/pids \[.*\]/, 30000);
    const pids = JSON.parse(line.slice(5)) as number[];
    assert.equal(pids.length, 2);
    p.kill('SIGTERM');
    const r = await p.exited;
    assert.deepEqual([r.code, r.signal], [null, 'SIGTERM'], r.stderr);
    assert.deepEqual(logLines(log), [['start', 'a'], ['start', 'b'], ['stop', 'b'], ['stop', 'a']]);
    for (const pid of pids) assert.ok(await gone(pid, 10000), `child ${pid} outlived the supervisor`);
  } finally {
    p.kill('SIGKILL');
    await p.exited;
  }
});

test('destroy(): every child is SIGKILLed at once, without waiting for shutdownTimeout', async () => {
  const sup = new Supervisor({ handleSignals: false, children: [member('a', '-'), member('stubborn', '-', { shutdownTimeout: 60000 }, ['stubborn'])] });
  const exits: ChildExitEvent[] = [];
  sup.on('exited', (e) => exits.push(e));
  await sup.start();
  const t0 = performance.now();
  await sup.destroy();
  assert.ok(performance.now() - t0 < 30000);
  assert.equal(sup.state, 'stopped');
  assert.deepEqual(exits.map((e) => [e.name, e.exit.signal]).sort(), [['a', 'SIGKILL'], ['stubborn', 'SIGKILL']]);
  await assert.rejects(sup.start(), { code: 'ERR_MULTIPROC_CLOSED' });
});
