// Restart types (permanent, transient, temporary), the restart intensity
// (gives up, stops everything, reports by event, promise and state), the
// exponential backoff, and a start that fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { SupervisorFailedError } from '../../src/errors.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { alive } from '../process/helpers.js';
import { logLines, member, nextEvent, pids } from './helpers.js';

leakGuard();
const tmp = tempDir('sup-restart');

test('permanent restarts always, transient only after an abnormal exit, temporary never', async () => {
  const log = tmp.file('log');
  const sup = new Supervisor({
    handleSignals: false,
    maxRestarts: 10,
    backoff: { initial: 0 },
    children: [
      member('perm', log, { restart: 'permanent' }),
      member('trans-ok', log, { restart: 'transient' }),
      member('trans-bad', log, { restart: 'transient' }),
      member('temp', log, { restart: 'temporary' }),
    ],
  });
  try {
    await sup.start();
    const exits = nextEvent(sup, 'exited', () => true, 30000, 4);
    const restarts = nextEvent(sup, 'restarted', () => true, 30000, 2);
    const seen: string[] = [];
    sup.on('exited', (e) => seen.push(`${e.name}:${e.exit.reason}:${e.restart}`));
    sup.on('restarted', (e) => seen.push(`restarted ${e.name}`));
    await sup.handle('perm')!.control.send({ cmd: 'exit', code: 0 });
    await sup.handle('trans-ok')!.control.send({ cmd: 'exit', code: 0 });
    await sup.handle('trans-bad')!.control.send({ cmd: 'exit', code: 1 });
    await sup.handle('temp')!.control.send({ cmd: 'exit', code: 1 });
    await exits;
    await restarts;
    assert.deepEqual(
      [...seen].filter((s) => !s.startsWith('restarted')).sort(),
      ['perm:clean-exit:true', 'temp:error-exit:false', 'trans-bad:error-exit:true', 'trans-ok:clean-exit:false'],
    );
    assert.deepEqual(seen.filter((s) => s.startsWith('restarted')).sort(), ['restarted perm', 'restarted trans-bad']);
    const state = Object.fromEntries(sup.children().map((c) => [c.name, [c.state, c.restarts, c.lastExit]]));
    assert.deepEqual(state, {
      perm: ['running', 1, 'clean-exit'],
      'trans-ok': ['stopped', 0, 'clean-exit'],
      'trans-bad': ['running', 1, 'error-exit'],
      temp: ['stopped', 0, 'error-exit'],
    });
  } finally {
    await sup.close();
  }
});

test('over maxRestarts within period: gives up, stops the others, rejects finished, emits failed', async () => {
  const log = tmp.file('log');
  const sup = new Supervisor({
    name: 'fragile',
    handleSignals: false,
    maxRestarts: 2,
    period: 60000,
    backoff: { initial: 150, max: 10000 },
    children: [member('steady', log), member('crasher', log, {}, ['crash'])],
  });
  const times: Array<[string, number]> = [];
  sup.on('exited', (e) => e.name === 'crasher' && times.push(['exit', performance.now()]));
  sup.on('started', (e) => e.name === 'crasher' && times.push(['start', performance.now()]));
  const failed = nextEvent(sup, 'failed');
  try {
    await sup.start().catch(() => {}); // the crasher may already be down again when start() settles
    const steady = pids(sup)['steady#0'];
    const [err] = await failed;
    assert.ok(err instanceof SupervisorFailedError);
    assert.equal(err.code, 'ERR_MULTIPROC_SUPERVISOR_FAILED');
    assert.equal(err.supervisor, 'fragile');
    assert.equal(err.child, 'crasher#0');
    assert.equal(err.restarts, 3);
    assert.match(err.message, /2 restarts within 60000 ms/);
    await assert.rejects(sup.finished, { code: 'ERR_MULTIPROC_SUPERVISOR_FAILED' });
    assert.equal(sup.state, 'failed');
    assert.deepEqual(sup.children().map((c) => [c.name, c.state, c.pid]), [['steady', 'stopped', undefined], ['crasher', 'stopped', undefined]]);
    if (steady !== undefined) assert.equal(alive(steady), false);
    assert.deepEqual(logLines(log).filter(([w]) => w === 'stop'), [['stop', 'steady']]);
    // Backoff: 150, 300 ms before the first and second restart (lower bounds only: timers never fire early).
    const gaps: number[] = [];
    for (let i = 0; i + 1 < times.length; i++) if (times[i]![0] === 'exit' && times[i + 1]![0] === 'start') gaps.push(times[i + 1]![1] - times[i]![1]);
    assert.equal(gaps.length, 2, JSON.stringify(times));
    assert.ok(gaps[0]! >= 140 && gaps[1]! >= 290, `gaps ${gaps.join(', ')}`);
  } finally {
    await sup.close();
  }
});

test('a child that exits before ready fails start(): the children started are stopped', async () => {
  const log = tmp.file('log');
  const sup = new Supervisor({ handleSignals: false, children: [member('first', log), member('broken', log, {}, ['fail-start']), member('never', log)] });
  const failed = nextEvent(sup, 'failed');
  await assert.rejects(sup.start(), (err: any) => {
    assert.equal(err.code, 'ERR_MULTIPROC_SUPERVISOR_FAILED');
    assert.equal(err.child, 'broken#0');
    assert.equal(err.cause?.code, 'ERR_MULTIPROC_PROCESS_EXITED');
    assert.equal(err.cause?.exitCode, 2);
    return true;
  });
  await failed;
  assert.equal(sup.state, 'failed');
  assert.deepEqual(logLines(log), [['start', 'first'], ['stop', 'first']]);
  assert.deepEqual(sup.children().map((c) => c.state), ['stopped', 'stopped', 'idle']);
  await sup.close();
  await assert.rejects(sup.start(), { code: 'ERR_MULTIPROC_CLOSED' });
});

test('a child that misses readyTimeout fails start(); close() while starting rejects start() with ERR_MULTIPROC_CLOSED', async () => {
  const late = new Supervisor({ handleSignals: false, children: [member('late', '-', { readyTimeout: 300 }, ['slow-ready'])] });
  await assert.rejects(late.start(), (err: any) => {
    assert.equal(err.code, 'ERR_MULTIPROC_SUPERVISOR_FAILED');
    assert.equal(err.cause?.code, 'ERR_MULTIPROC_TIMEOUT');
    return true;
  });
  await late.close();

  const sup = new Supervisor({ handleSignals: false, children: [member('first', '-'), member('slow', '-', {}, ['slow-ready'])] });
  const starting = sup.start();
  await nextEvent(sup, 'started', (e) => e.name === 'first');
  for (let i = 0; i < 100 && sup.children()[1]!.state !== 'starting'; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(sup.children()[1]!.state, 'starting');
  assert.equal(sup.state, 'starting');
  await sup.close();
  await assert.rejects(starting, { code: 'ERR_MULTIPROC_CLOSED' });
  assert.deepEqual(sup.children().map((c) => [c.state, c.pid]), [['stopped', undefined], ['stopped', undefined]]);
});
