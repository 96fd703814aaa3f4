// Closing: the channel, the server (graceful and forceful), the client
// (graceful and forceful), closeChannel, idempotence, dispose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClosedError, ShmRing, callContext, connect, expose, rpcClient, type CallContext } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { channelPair } from '../helpers/socket-pair.js';
import { aborted, deferred, rpcPair, until } from '../helpers/rpc-pair.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

function api() {
  const contexts: CallContext[] = [];
  const release = deferred<string>();
  return {
    contexts,
    release,
    api: {
      hang(): Promise<string> {
        contexts.push(callContext());
        return release.promise;
      },
      quick: (x: number) => x,
    },
  };
}

const closed = (e: any) => e instanceof ClosedError && e.code === 'ERR_MULTIPROC_CLOSED';

test('the peer closing the channel rejects every pending call with ERR_MULTIPROC_CLOSED; later calls too', async () => {
  const s = api();
  const { remote, client, server, a, cleanup } = await rpcPair(s.api);
  try {
    const calls = Array.from({ length: 20 }, () => remote.hang());
    const settled = Promise.allSettled(calls);
    await until(() => s.contexts.length === 20);
    await a.close();
    const results = await settled;
    assert.ok(results.every((r) => r.status === 'rejected' && closed(r.reason)), JSON.stringify(results.map((r) => (r as any).reason?.code)));
    assert.match((results[0] as PromiseRejectedResult).reason.message, /hang\(\)/);
    assert.equal(client.pending, 0);
    assert.equal(client.closed, true);
    await assert.rejects(remote.quick(1), closed);
    // The server saw its own channel close: it stopped and aborted its calls.
    await server.finished;
    assert.equal(server.closed, true);
    await Promise.all(s.contexts.map((c) => aborted(c.signal)));
    assert.ok(closed(s.contexts[0]!.signal.reason));
  } finally {
    cleanup();
  }
});

test("destroying the caller's own channel rejects its pending calls with ERR_MULTIPROC_CLOSED", async () => {
  const s = api();
  const { remote, b, server, cleanup } = await rpcPair(s.api);
  try {
    const call = remote.hang();
    await until(() => s.contexts.length === 1);
    b.destroy();
    await assert.rejects(call, closed);
    // The exposer sees the connection end: its server stops and the call's signal aborts.
    await server.finished;
    await aborted(s.contexts[0]!.signal);
  } finally {
    cleanup();
  }
});

test('server.close() is graceful: calls in progress finish and are answered; then `finished` resolves', async () => {
  const s = api();
  const { remote, server, cleanup } = await rpcPair(s.api);
  try {
    const call = remote.hang();
    const timingOut = remote.hang.with({ timeout: 100 })();
    await until(() => s.contexts.length === 2);
    const closing = server.close();
    assert.equal(server.close(), closing);
    assert.equal(server.closed, true);
    let done = false;
    void closing.then(() => (done = true));
    // While closing: new calls are refused, cancels still reach the calls in progress.
    await assert.rejects(remote.quick(1), (e: any) => closed(e) && /server is closing/.test(e.message));
    await assert.rejects(timingOut, (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
    assert.equal((await aborted(s.contexts[1]!.signal) as any).code, 'ERR_MULTIPROC_TIMEOUT');
    assert.equal(done, false);
    s.release.resolve('finished anyway');
    assert.equal(await call, 'finished anyway');
    await closing;
    await server.finished;
    assert.equal(s.contexts[0]!.signal.aborted, false);
    // Calls after close are not answered.
    await assert.rejects(remote.quick.with({ timeout: 100 })(1), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
  } finally {
    cleanup();
  }
});

test('server.destroy() answers calls in progress with ERR_MULTIPROC_CLOSED and aborts their signals', async () => {
  const s = api();
  const { remote, server, cleanup } = await rpcPair(s.api);
  try {
    const calls = [remote.hang(), remote.hang()];
    await until(() => s.contexts.length === 2);
    server.destroy();
    server.destroy();
    for (const r of await Promise.allSettled(calls)) {
      assert.equal(r.status, 'rejected');
      assert.ok(closed((r as PromiseRejectedResult).reason));
      assert.match((r as PromiseRejectedResult).reason.message, /destroyed while hang\(\) ran/);
    }
    for (const c of s.contexts) assert.ok(closed(await aborted(c.signal)));
    await server.finished;
    s.release.resolve('too late');
  } finally {
    cleanup();
  }
});

test('client close(): new calls reject at once, pending calls still complete, then it resolves', async () => {
  const s = api();
  const { remote, client, cleanup } = await rpcPair(s.api);
  try {
    const call = remote.hang();
    await until(() => s.contexts.length === 1);
    const closing = client.close();
    assert.equal(client.close(), closing);
    assert.equal(client.closed, true);
    await assert.rejects(remote.quick(1), (e: any) => closed(e) && /was not sent/.test(e.message));
    s.release.resolve('ok');
    assert.equal(await call, 'ok');
    await closing;
    assert.equal(client.pending, 0);
  } finally {
    cleanup();
  }
});

test('client destroy(): pending calls reject now and the remote signals abort with a ClosedError', async () => {
  const s = api();
  const { remote, client, cleanup } = await rpcPair(s.api);
  try {
    const first = remote.hang();
    const second = remote.hang();
    await until(() => s.contexts.length === 2);
    client.destroy();
    await assert.rejects(first, closed);
    await assert.rejects(second, closed);
    for (const c of s.contexts) assert.ok(closed(await aborted(c.signal)));
    await assert.rejects(remote.quick(1), closed);
    client.destroy();
  } finally {
    cleanup();
  }
});

test('client destroy(err) rejects pending calls with err', async () => {
  const s = api();
  const { remote, client, cleanup } = await rpcPair(s.api);
  try {
    const call = remote.hang();
    await until(() => s.contexts.length === 1);
    const err = new Error('shutting down');
    client.destroy(err);
    await assert.rejects(call, (e) => e === err);
  } finally {
    cleanup();
  }
});

test('closeChannel: the client closes its channel; the server sees the end and stops', async () => {
  const s = api();
  const { a, b, cleanup } = await channelPair();
  try {
    const server = expose(s.api, a, { closeChannel: true });
    const remote = connect<typeof s.api>(b, { closeChannel: true });
    assert.equal(await remote.quick(3), 3);
    await rpcClient(remote).close();
    assert.equal(b.closed, true);
    await server.finished;
    assert.equal(server.closed, true);
    await server.close();
    assert.equal(a.closed, true);
  } finally {
    cleanup();
  }
});

test('Symbol.asyncDispose closes the remote and the server', async () => {
  const s = api();
  const { remote, client, server, cleanup } = await rpcPair(s.api);
  try {
    assert.equal(await remote.quick(1), 1);
    await remote[Symbol.asyncDispose]();
    assert.equal(client.closed, true);
    await server[Symbol.asyncDispose]();
    assert.equal(server.closed, true);
  } finally {
    cleanup();
  }
});

test('one server per channel end; after close another may serve; closed channels are refused', async () => {
  const { a, b, cleanup } = await channelPair();
  try {
    const first = expose({ who: () => 'first' }, a);
    assert.throws(() => expose({ who: () => 'second' }, a), (e: any) => e.code === 'ERR_INVALID_STATE');
    await first.close();
    const second = expose({ who: () => 'second' }, a);
    const remote = connect<{ who(): string }>(b);
    assert.equal(await remote.who(), 'second');
    await rpcClient(remote).close();
    // A new connection on the same channel end after the previous one closed.
    const again = connect<{ who(): string }>(b);
    assert.equal(await again.who(), 'second');
    await rpcClient(again).close();
    await second.close();
    await b.close();
    assert.throws(() => connect(b), closed);
    assert.throws(() => expose({}, b), closed);
  } finally {
    cleanup();
  }
});

test('a graceful server.close() waiting for a call ends when the channel ends', async () => {
  const s = api();
  const { remote, b, server, cleanup } = await rpcPair(s.api);
  try {
    const call = remote.hang();
    await until(() => s.contexts.length === 1);
    const closing = server.close();
    b.destroy();
    await assert.rejects(call, closed);
    await closing;
    await server.finished;
    assert.ok(closed(await aborted(s.contexts[0]!.signal)));
  } finally {
    cleanup();
  }
});

test('from inside a synchronous method: server.pending counts it, destroy() answers it with ERR_MULTIPROC_CLOSED and aborts its signal, close() lets it answer', async () => {
  let server!: import('../../src/index.js').RpcServer;
  let seenPending = -1;
  let signal: AbortSignal | undefined;
  const p = await rpcPair({
    count(): number {
      seenPending = server.pending;
      return 7;
    },
    selfDestroy(): number {
      signal = callContext().signal;
      server.destroy();
      return 1;
    },
  });
  server = p.server;
  try {
    assert.equal(await p.remote.count(), 7);
    assert.equal(seenPending, 1);
    assert.equal(server.pending, 0);
    await assert.rejects(p.remote.selfDestroy(), (e: any) => e instanceof ClosedError && e.code === 'ERR_MULTIPROC_CLOSED');
    assert.equal(signal?.aborted, true);
  } finally {
    p.cleanup();
  }

  const q = await rpcPair({
    selfClose(): number {
      void server.close();
      return 2;
    },
  });
  server = q.server;
  try {
    assert.equal(await q.remote.selfClose(), 2);
    await server.finished;
    assert.equal(server.closed, true);
  } finally {
    q.cleanup();
  }
});

test('server.close() waits for a reply that is still waiting for room in the channel, even with closeChannel', async () => {
  const name = uniqueName('rpc-queued-reply');
  // A ring of 4 KiB holds one reply of 3000 characters at a time.
  const a = ShmRing.createDuplex<unknown>(name, { capacity: 4096, codec: 'json' });
  const b = ShmRing.openDuplex<unknown>(name, { codec: 'json' });
  let closing: Promise<void> | undefined;
  let pendingWhenClosed = -1;
  let calls = 0;
  const server = expose(
    {
      big(): string {
        // The server takes both calls in one turn: the second reply finds no
        // room and waits in the outbox. Close right after it was queued.
        if (++calls === 2) {
          queueMicrotask(() => {
            pendingWhenClosed = server.pending;
            closing = server.close();
          });
        }
        return 'x'.repeat(3000);
      },
    },
    b,
    { closeChannel: true },
  );
  const remote = connect<{ big(): string }>(a);
  try {
    const [r1, r2] = await Promise.all([remote.big(), remote.big()]);
    assert.equal(r1.length, 3000);
    assert.equal(r2.length, 3000);
    assert.ok(closing !== undefined, 'the server did not take both calls');
    assert.equal(pendingWhenClosed, 1, 'a call whose reply waits for room is still in progress');
    await closing;
    assert.equal(server.closed, true);
  } finally {
    await rpcClient(remote).close();
    await a.close();
    await b.close();
  }
});
