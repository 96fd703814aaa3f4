// Heartbeats: a child stuck in synchronous code answers no ping; the
// supervisor kills it and restarts it, with exit reason 'hung'. A healthy
// child with a heartbeat is left alone. ChildHandle.ping() underneath.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { spawn } from '../../src/process/spawn.js';
import { exitReasons } from '../../src/process/exit-reason.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { within } from '../process/helpers.js';
import { childEnv, fixture, member, nextEvent } from './helpers.js';

leakGuard();

test('a hung child (no heartbeat) is killed and restarted; exit reason hung', async () => {
  assert.ok(exitReasons.includes('hung'));
  const heartbeat = { interval: 100, timeout: 3000 };
  const sup = new Supervisor({ handleSignals: false, backoff: { initial: 0 }, children: [member('steady', '-', { heartbeat }), member('stuck', '-', { heartbeat })] });
  try {
    await sup.start();
    const steadyPid = sup.handle('steady')!.pid;
    const oldPid = sup.handle('stuck')!.pid;
    const hung = nextEvent(sup, 'hung');
    const exited = nextEvent(sup, 'exited', (e) => e.name === 'stuck');
    const restarted = nextEvent(sup, 'restarted', (e) => e.name === 'stuck');
    await sup.handle('stuck')!.control.send({ cmd: 'hang' });
    const [h] = await hung;
    assert.deepEqual([h.name, h.pid], ['stuck', oldPid]);
    const [e] = await exited;
    assert.deepEqual([e.exit.reason, e.exit.signal, e.restart], ['hung', 'SIGKILL', true]);
    await restarted;
    assert.notEqual(sup.handle('stuck')!.pid, oldPid);
    const stuck = sup.children().find((c) => c.name === 'stuck')!;
    assert.deepEqual([stuck.state, stuck.lastExit, stuck.restarts], ['running', 'hung', 1]);
    // The healthy one answered every ping meanwhile.
    const steady = sup.children().find((c) => c.name === 'steady')!;
    assert.deepEqual([steady.state, steady.pid, steady.restarts], ['running', steadyPid, 0]);
  } finally {
    await sup.close();
  }
});

test('ChildHandle.ping(): a round trip from a live child; a timeout from a busy one; an error after exit', async () => {
  const h = spawn(fixture('member'), { env: childEnv, args: ['-'] });
  try {
    await within(h.ready, 20000, 'ready');
    const rtt = await h.ping({ timeout: 10000 });
    assert.ok(rtt >= 0 && rtt < 10000);
    await h.control.send({ cmd: 'hang' });
    // A ping that arrives with the command is answered before the loop starts: try until one is not.
    let timedOut: any;
    for (let i = 0; i < 20 && timedOut === undefined; i++) timedOut = await h.ping({ timeout: 300 }).then(() => undefined, (err) => err);
    assert.equal(timedOut?.code, 'ERR_MULTIPROC_TIMEOUT');
    const ac = new AbortController();
    const aborted = h.ping({ timeout: 10000, signal: ac.signal });
    ac.abort();
    await assert.rejects(aborted, { code: 'ABORT_ERR' });
    await assert.rejects(h.ping({ timeout: -1 }), { code: 'ERR_OUT_OF_RANGE' });
    h.kill('SIGKILL');
    await h.exited;
    await assert.rejects(h.ping(), { code: 'ERR_MULTIPROC_PROCESS_EXITED' });
  } finally {
    h.kill('SIGKILL');
    await h.close();
  }
});
