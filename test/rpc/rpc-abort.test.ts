// Abort: the caller rejects with ABORT_ERR and the remote method's signal
// aborts; callContext() and its rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AbortError, callContext, type CallContext } from '../../src/index.js';
import { aborted, deferred, rpcPair, until } from '../helpers/rpc-pair.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

function api() {
  const contexts: CallContext[] = [];
  const started = deferred();
  const calls: string[] = [];
  return {
    contexts,
    started,
    calls,
    api: {
      async work(tag: string): Promise<string> {
        calls.push(tag);
        const ctx = callContext();
        contexts.push(ctx);
        started.resolve();
        await new Promise((resolve, reject) => {
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
        });
        return 'never';
      },
      describe(): { method: string; id: number; aborted: boolean } {
        const { method, id, signal } = callContext();
        return { method, id, aborted: signal.aborted };
      },
      async afterAwait(): Promise<string> {
        await null;
        try {
          callContext();
        } catch (e: any) {
          return e.code;
        }
        return 'no error';
      },
    },
  };
}

test("aborting a call rejects it with ABORT_ERR (cause: the signal's reason) and aborts the remote signal with an AbortError", async () => {
  const s = api();
  const { remote, client, server, cleanup } = await rpcPair(s.api);
  try {
    const ac = new AbortController();
    const call = remote.work.with({ signal: ac.signal })('x');
    await s.started.promise;
    assert.equal(s.contexts[0]!.signal.aborted, false);
    ac.abort('user pressed stop');
    await assert.rejects(call, (e: any) => {
      assert.equal(e instanceof AbortError, true);
      assert.equal(e.code, 'ABORT_ERR');
      assert.equal(e.name, 'AbortError');
      assert.equal(e.cause, 'user pressed stop');
      assert.match(e.message, /work\(\) was aborted/);
      return true;
    });
    assert.equal(client.pending, 0);
    const reason: any = await aborted(s.contexts[0]!.signal);
    assert.ok(reason instanceof AbortError);
    assert.equal(reason.code, 'ABORT_ERR');
    // The handler's rejection after the abort is not sent (the caller is gone).
    await server.close();
    assert.equal(server.pending, 0);
  } finally {
    cleanup();
  }
});

test('an already aborted signal rejects at once and sends nothing', async () => {
  const s = api();
  const { remote, cleanup } = await rpcPair(s.api);
  try {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(remote.work.with({ signal: ac.signal })('never-sent'), (e: any) => e.code === 'ABORT_ERR');
    assert.deepEqual((await remote.describe()).method, 'describe');
    assert.deepEqual(s.calls, []);
  } finally {
    cleanup();
  }
});

test('one signal for many calls aborts them all, remotely too', async () => {
  const s = api();
  const { remote, cleanup } = await rpcPair(s.api);
  try {
    const ac = new AbortController();
    const run = remote.work.with({ signal: ac.signal });
    const calls = Array.from({ length: 50 }, (_, i) => run(`c${i}`));
    await until(() => s.contexts.length === 50, 10000, 'all 50 calls started');
    ac.abort();
    const results = await Promise.allSettled(calls);
    assert.ok(results.every((r) => r.status === 'rejected' && (r.reason as any).code === 'ABORT_ERR'));
    await Promise.all(s.contexts.map((c) => aborted(c.signal)));
  } finally {
    cleanup();
  }
});

test('callContext(): method, id and a not-aborted signal at the start of a method; ERR_INVALID_STATE after an await or outside', async () => {
  const s = api();
  const { remote, cleanup } = await rpcPair(s.api);
  try {
    const d = await remote.describe();
    assert.equal(d.method, 'describe');
    assert.ok(Number.isInteger(d.id) && d.id > 0);
    assert.equal(d.aborted, false);
    const d2 = await remote.describe();
    assert.notEqual(d2.id, d.id);
    assert.equal(await remote.afterAwait(), 'ERR_INVALID_STATE');
    assert.throws(() => callContext(), (e: any) => e.code === 'ERR_INVALID_STATE');
  } finally {
    cleanup();
  }
});

test('a signal first read after the cancel arrived is already aborted', async () => {
  const started = deferred();
  const gate = deferred();
  let seen: unknown;
  const { remote, cleanup } = await rpcPair({
    async lazy() {
      const ctx = callContext();
      started.resolve();
      await gate.promise;
      seen = ctx.signal.aborted ? ctx.signal.reason : 'not aborted';
    },
    ping: () => 'pong',
  });
  try {
    const ac = new AbortController();
    const call = remote.lazy.with({ signal: ac.signal })();
    await started.promise;
    ac.abort();
    await assert.rejects(call, (e: any) => e.code === 'ABORT_ERR');
    // The cancel has reached the exposer once a later call's reply is back (messages keep their order).
    assert.equal(await remote.ping(), 'pong');
    gate.resolve();
    await new Promise((r) => setImmediate(r));
    assert.ok(seen instanceof AbortError);
  } finally {
    cleanup();
  }
});
