// The role relay across a restart of the client: a client process that dies
// during a call and is started again numbers its RPC calls from 1 again,
// while the role may still run, or be about to answer, the call of the
// process before. The new process's calls get their own answers (not the
// late answer of the old call, not a refusal because the old call's id is
// still in progress at the role), and its cancels still reach the role.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { Channel } from '../../src/channel/channel.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { childEnv, fixture, nextEvent } from './helpers.js';

leakGuard();
const tmp = tempDir('sup-relay');

/** A browser role (its slow methods wait for `release`) and one client connected to it. */
function supervisor(release: string): Supervisor {
  return new Supervisor({
    handleSignals: false,
    backoff: { initial: 0 },
    children: [
      { name: 'browser', module: fixture('relay-role'), env: childEnv, args: [release], shutdownTimeout: 2000 },
      { name: 'client', module: fixture('relay-client'), env: childEnv, connects: ['browser'], shutdownTimeout: 2000 },
    ],
  });
}

/** The next report on a child's control channel. */
async function next(control: Channel<unknown>, what: string): Promise<unknown> {
  try {
    return await control.receive({ timeout: 30_000 });
  } catch (err) {
    throw new Error(`no report (${what}) within 30 s: ${(err as Error).message}`);
  }
}

/** Starts a call of the client's first process that is still running at the role, then kills that process; the control channel of its successor. */
async function clientDiesDuringCall(sup: Supervisor, method: string): Promise<Channel<unknown>> {
  const browser = sup.handle('browser')!.control;
  const first = sup.handle('client')!.control;
  await first.send({ cmd: 'call', method, tag: 'first' });
  assert.deepEqual(await next(first, 'first call sent'), { sent: 'first' });
  assert.deepEqual(await next(browser, 'first call at the role'), { holding: 'first' });
  const restarted = nextEvent(sup, 'restarted', (e) => e.name === 'client');
  await first.send({ cmd: 'exit' });
  await restarted;
  return sup.handle('client')!.control;
}

test('a restarted client is not refused because a call of its predecessor is still in progress at the role', { timeout: 60_000 }, async () => {
  const release = tmp.file('release');
  const sup = supervisor(release);
  try {
    await sup.start();
    const browser = sup.handle('browser')!.control;
    const client = await clientDiesDuringCall(sup, 'hold');
    // The dead client's call was cancelled at the role, which goes on with it (its id stays in progress).
    assert.deepEqual(await next(browser, 'cancel of the first call'), { aborted: 'first', code: 'ERR_MULTIPROC_CLOSED' });

    // The new process's call 1 meets no call 1 at the role.
    await client.send({ cmd: 'call', method: 'echo', tag: 'second' });
    assert.deepEqual(await next(client, 'second call sent'), { sent: 'second' });
    assert.deepEqual(await next(client, 'answer of the second call'), { tag: 'second', value: 'echo(second)' });

    // Its cancels reach the role's call.
    await client.send({ cmd: 'call', method: 'hold', tag: 'third' });
    assert.deepEqual(await next(client, 'third call sent'), { sent: 'third' });
    assert.deepEqual(await next(browser, 'third call at the role'), { holding: 'third' });
    await client.send({ cmd: 'abort' });
    const aborted = (await next(client, 'third call aborted')) as { tag: string; code: string };
    assert.equal(aborted.code, 'ABORT_ERR', JSON.stringify(aborted));
    assert.deepEqual(await next(browser, 'cancel of the third call'), { aborted: 'third', code: 'ABORT_ERR' });
    assert.equal(sup.children().find((c) => c.name === 'browser')!.restarts, 0);
  } finally {
    writeFileSync(release, '');
    await sup.close();
  }
});

test("a late answer to the call of a client that died does not settle its restarted successor's call", { timeout: 60_000 }, async () => {
  const release = tmp.file('release');
  const sup = supervisor(release);
  try {
    await sup.start();
    // The role is stuck in the first call (its event loop blocked) while the client dies and comes back.
    const client = await clientDiesDuringCall(sup, 'block');
    await client.send({ cmd: 'call', method: 'echo', tag: 'second' });
    assert.deepEqual(await next(client, 'second call sent'), { sent: 'second' });
    // Now the role answers the dead client's call, then reads the cancel and the new call.
    writeFileSync(release, '');
    assert.deepEqual(await next(client, 'answer of the second call'), { tag: 'second', value: 'echo(second)' });
    assert.equal(sup.children().find((c) => c.name === 'browser')!.restarts, 0);
  } finally {
    writeFileSync(release, '');
    await sup.close();
  }
});
