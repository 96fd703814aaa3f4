// ChildHandle.ping(): what it keeps while the child lives, and how pings end
// when the child is gone. (Round trips and timeouts: supervisor-heartbeat.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import { AbortError } from '../../src/errors.js';
import { spawn } from '../../src/process/spawn.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { childEnv, fixture, reap, within } from './helpers.js';

leakGuard();

// v8.queryObjects (Node 20.13+) counts live objects after a full collection.
const queryObjects = (v8 as { queryObjects?: (ctor: Function) => number }).queryObjects;

test('ping(): nothing stays behind per ping while the child lives; pings in flight when it dies fail', { skip: queryObjects === undefined && 'needs v8.queryObjects' }, async () => {
  const h = spawn(fixture('behave'), { env: childEnv, args: ['idle'] });
  try {
    await within(h.ready, 30000, 'ready');
    for (let i = 0; i < 100; i++) await within(h.ping({ timeout: 30000 }), 40000, 'ping');
    // A heartbeat pings for the child's whole life: each answered ping must leave nothing (a
    // reaction on `exited` per ping kept its closure and two promises until the exit).
    const N = 3000;
    const before = queryObjects!(Promise);
    for (let i = 0; i < N; i++) await within(h.ping({ timeout: 30000 }), 40000, 'ping');
    const grown = queryObjects!(Promise) - before;
    assert.ok(grown < N / 10, `${grown} more promises alive after ${N} answered pings`);

    // A stopped child answers nothing: these pings are in flight when it is killed.
    process.kill(h.pid!, 'SIGSTOP');
    const pending = Array.from({ length: 3 }, () => h.ping({ timeout: Infinity }));
    h.kill('SIGKILL');
    for (const p of pending) await assert.rejects(within(p, 30000, 'pending ping'), { code: 'ERR_MULTIPROC_PROCESS_EXITED' });
    await assert.rejects(h.ping(), { code: 'ERR_MULTIPROC_PROCESS_EXITED' });
  } finally {
    await reap(h);
  }
});

test('ping() with a signal aborted already rejects with AbortError, as an abort during the wait does', async () => {
  const h = spawn(fixture('behave'), { env: childEnv, args: ['idle'] });
  try {
    await within(h.ready, 30000, 'ready');
    const ac = new AbortController();
    ac.abort('user stop');
    const isAbort = (cause: (c: unknown) => boolean) => (err: unknown) =>
      err instanceof AbortError && err.name === 'AbortError' && err.code === 'ABORT_ERR' && cause(err.cause);
    await assert.rejects(h.ping({ signal: ac.signal }), isAbort((c) => c === 'user stop'));
    const aborted = AbortSignal.abort();
    await assert.rejects(h.ping({ signal: aborted }), isAbort((c) => c === aborted.reason));
    const during = new AbortController();
    const p = h.ping({ timeout: Infinity, signal: during.signal });
    during.abort('user stop');
    await assert.rejects(within(p, 30000, 'ping'), isAbort((c) => c === 'user stop'));
    assert.equal(typeof (await within(h.ping({ timeout: 30000 }), 40000, 'ping')), 'number', 'the handle pings on');
  } finally {
    await reap(h);
  }
});

test('ping({ timeout: 2^35 }) waits for the answer: a timeout longer than a Node timer holds is not cut to 1 ms', async () => {
  const h = spawn(fixture('behave'), { env: childEnv, args: ['idle'] });
  try {
    await within(h.ready, 30000, 'ready');
    // Stopped, the child cannot answer: the ping must still be waiting a while later.
    process.kill(h.pid!, 'SIGSTOP');
    let outcome = 'pending';
    const p = h.ping({ timeout: 2 ** 35 }).then(
      () => (outcome = 'answered'),
      (e: { code?: string }) => (outcome = String(e.code)),
    );
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(outcome, 'pending');
    process.kill(h.pid!, 'SIGCONT');
    await within(p, 30000, 'ping');
    assert.equal(outcome, 'answered');
  } finally {
    await reap(h);
  }
});
