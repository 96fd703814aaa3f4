// Timeouts: per call through .with(), by default from connect options; the
// caller rejects with ERR_MULTIPROC_TIMEOUT and the remote method's signal aborts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimeoutError, callContext, connect, expose, rpcClient, type CallContext } from '../../src/index.js';
import { channelPair } from '../helpers/socket-pair.js';
import { aborted, deferred, rpcPair } from '../helpers/rpc-pair.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

function slowApi() {
  const contexts: CallContext[] = [];
  const started = new Map<string, ReturnType<typeof deferred<void>>>();
  const release = deferred<string>();
  return {
    contexts,
    started,
    release,
    api: {
      hang(tag: string): Promise<string> {
        contexts.push(callContext());
        started.get(tag)?.resolve();
        return release.promise;
      },
      quick: (x: number) => x + 1,
    },
  };
}

test('a call past its timeout rejects with ERR_MULTIPROC_TIMEOUT and aborts the remote signal with a TimeoutError', async () => {
  const s = slowApi();
  s.started.set('t', deferred());
  const { remote, client, server, cleanup } = await rpcPair(s.api);
  try {
    const call = remote.hang.with({ timeout: 50 })('t');
    await s.started.get('t')!.promise;
    await assert.rejects(call, (e: any) => {
      assert.equal(e instanceof TimeoutError, true);
      assert.equal(e.code, 'ERR_MULTIPROC_TIMEOUT');
      assert.equal(e.timeout, 50);
      assert.match(e.message, /hang\(\) timed out after 50 ms/);
      assert.match(e.stack, /rpc-timeout\.test\.js/);
      return true;
    });
    assert.equal(client.pending, 0);
    const reason: any = await aborted(s.contexts[0]!.signal);
    assert.ok(reason instanceof TimeoutError);
    assert.equal(reason.timeout, 50);
    // The late reply is dropped; the connection goes on.
    s.release.resolve('late');
    assert.equal(await remote.quick(1), 2);
    await server.close();
    assert.equal(server.pending, 0);
  } finally {
    cleanup();
  }
});

test('connect({ timeout }) is the default of every call; .with() overrides it, Infinity disables it', async () => {
  const s = slowApi();
  const { a, b, cleanup } = await channelPair();
  try {
    const server = expose(s.api, a);
    const remote = connect<typeof s.api>(b, { timeout: 40 });
    await assert.rejects(remote.hang('a'), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT' && e.timeout === 40);
    s.started.set('b', deferred());
    const patient = remote.hang.with({ timeout: Infinity })('b');
    const longer = remote.hang.with({ timeout: 60_000 })('c');
    await s.started.get('b')!.promise;
    // Well past the default: still waiting.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(rpcClient(remote).pending, 2);
    s.release.resolve('done');
    assert.deepEqual(await Promise.all([patient, longer]), ['done', 'done']);
    assert.equal(await remote.quick(1), 2);
    await rpcClient(remote).close();
    await server.close();
  } finally {
    cleanup();
  }
});

test('a timeout of 0 fails the call at once, without sending it', async () => {
  const calls: number[] = [];
  const { remote, cleanup } = await rpcPair({ quick: (x: number) => (calls.push(x), x) });
  try {
    await assert.rejects(remote.quick.with({ timeout: 0 })(1), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT' && e.timeout === 0);
    assert.equal(await remote.quick(2), 2);
    assert.deepEqual(calls, [2]);
  } finally {
    cleanup();
  }
});

test('many calls time out at once while others complete', async () => {
  const s = slowApi();
  const { remote, client, cleanup } = await rpcPair(s.api);
  try {
    const hanging = Array.from({ length: 200 }, (_, i) => remote.hang.with({ timeout: 30 + (i % 5) })(`h${i}`));
    const quick = Array.from({ length: 200 }, (_, i) => remote.quick(i));
    const results = await Promise.allSettled(hanging);
    assert.ok(results.every((r) => r.status === 'rejected' && (r.reason as any).code === 'ERR_MULTIPROC_TIMEOUT'));
    assert.deepEqual(await Promise.all(quick), Array.from({ length: 200 }, (_, i) => i + 1));
    assert.equal(client.pending, 0);
    await Promise.all(s.contexts.map((c) => aborted(c.signal)));
    s.release.resolve('x');
  } finally {
    cleanup();
  }
});
