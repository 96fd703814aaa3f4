// Calls and results: sync and async methods, `this`, codecs, the typed proxy,
// call by name, one-way channel pairs, application messages beside RPC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, defaultMessageTypes, expose, rpcClient, type Remote } from '../../src/index.js';
import { channelPair } from '../helpers/socket-pair.js';
import { rpcPair } from '../helpers/rpc-pair.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

class Counter {
  #count = 0;
  step = 1;
  increment(by = this.step): number {
    this.#count += by;
    return this.#count;
  }
  async later(x: number): Promise<number> {
    await new Promise((r) => setImmediate(r));
    return x * 2;
  }
  nothing(): void {}
  echo<T>(value: T): T {
    return value;
  }
  args(...all: unknown[]): number {
    return all.length;
  }
}

test('sync and async methods return their results; `this` is the exposed object (private fields too)', async () => {
  const { remote, client, server, cleanup } = await rpcPair(new Counter());
  try {
    assert.equal(await remote.increment(), 1);
    assert.equal(await remote.increment(5), 6);
    assert.equal(await remote.later(21), 42);
    assert.equal(await remote.nothing(), undefined);
    assert.equal(await remote.args(), 0);
    assert.equal(await remote.args(1, undefined, 3), 3);
    assert.equal(client.pending, 0);
    assert.equal(server.pending, 0);
  } finally {
    cleanup();
  }
});

test('the proxy: stable method functions, usable detached, not a thenable, read-only', async () => {
  const { remote, cleanup } = await rpcPair(new Counter());
  try {
    assert.equal(remote.increment, remote.increment);
    const { later } = remote;
    assert.equal(await later(2), 4);
    assert.equal((remote as any).then, undefined);
    // An async function may return the proxy: it must not be taken for a promise.
    const same = await (async () => remote)();
    assert.equal(same, remote);
    assert.throws(() => {
      (remote as any).increment = 1;
    }, TypeError);
    assert.equal(typeof remote[Symbol.asyncDispose], 'function');
  } finally {
    cleanup();
  }
});

test('structured codec (the default): Map, Set, Date, BigInt, typed arrays, nested objects pass both ways', async () => {
  const { remote, cleanup } = await rpcPair(new Counter());
  try {
    const value = {
      map: new Map<unknown, unknown>([['a', 1], [2, { b: [3n] }]]),
      set: new Set(['x', 'y']),
      when: new Date(1_700_000_000_000),
      big: 2n ** 70n,
      bytes: new Uint8Array([1, 2, 3]),
      floats: new Float64Array([0.5, -1]),
      nested: { list: [null, true, 'text', 1.5] },
    };
    assert.deepEqual(await remote.echo(value), value);
  } finally {
    cleanup();
  }
});

for (const codec of ['json', 'msgpack'] as const) {
  test(`codec ${codec}: calls, results, undefined results`, async () => {
    const { remote, cleanup } = await rpcPair(new Counter(), { channel: { codec } });
    try {
      assert.equal(await remote.increment(3), 3);
      assert.deepEqual(await remote.echo({ a: [1, 'two', null], b: { c: true } }), { a: [1, 'two', null], b: { c: true } });
      assert.equal(await remote.nothing(), undefined);
      assert.equal(await remote.later(4), 8);
    } finally {
      cleanup();
    }
  });
}

test('rpcClient(remote).call calls by name with arguments and options', async () => {
  const { remote, client, cleanup } = await rpcPair(new Counter());
  try {
    assert.equal(await client.call('increment', [7]), 7);
    assert.equal(await client.call('later', [1], { timeout: 10000 }), 2);
    await assert.rejects(client.call(42 as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
    await assert.rejects(client.call('x', 'y' as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
    assert.throws(() => rpcClient({}), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
    assert.equal(rpcClient(remote), client);
  } finally {
    cleanup();
  }
});

test('argument checks of expose, connect and .with()', async () => {
  const { a, b, cleanup } = await channelPair();
  try {
    assert.throws(() => expose(null as any, a), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
    assert.throws(() => expose({}, {} as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
    assert.throws(() => expose({}, a, { closeChanel: true } as any), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
    assert.throws(() => connect(b, { timeout: -1 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
    assert.throws(() => connect(b, { messageTypes: { request: 5, response: 5 } }), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
    assert.throws(() => connect(b, { messageTypes: { request: 0, response: 5 } }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
    const remote = connect<Counter>(b);
    assert.throws(() => remote.increment.with({ timout: 5 } as any), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
    assert.throws(() => remote.increment.with({ signal: {} as any }), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
    assert.throws(() => remote.increment.with({ timeout: NaN }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
    rpcClient(remote).destroy();
  } finally {
    cleanup();
  }
});

test('two one-way channels { sender, receiver } carry RPC like one two-way channel', async () => {
  const there = await channelPair();
  const back = await channelPair();
  try {
    // Requests go a -> b on `there`; replies go b -> a on `back`.
    const server = expose(new Counter(), { sender: back.b, receiver: there.b });
    const remote = connect<Counter>({ sender: there.a, receiver: back.a });
    assert.equal(await remote.increment(2), 2);
    assert.equal(await remote.later(5), 10);
    await rpcClient(remote).close();
    await server.close();
  } finally {
    there.cleanup();
    back.cleanup();
  }
});

test('application messages of other types share the channel with RPC', async () => {
  const { remote, a, b, cleanup } = await rpcPair(new Counter());
  try {
    await b.send('app-1', { type: 1 });
    const calls = [remote.increment(1), remote.increment(1)];
    await b.send('app-2', { type: 1 });
    assert.deepEqual((await Promise.all(calls)).sort(), [1, 2]);
    assert.equal(await a.receive({ type: 1, timeout: 10000 }), 'app-1');
    assert.equal(await a.receive({ type: 1, timeout: 10000 }), 'app-2');
    // The System V "lowest type up to N" selector does not reach RPC's types.
    assert.ok(defaultMessageTypes.request > 2 ** 30 && defaultMessageTypes.response > 2 ** 30);
  } finally {
    cleanup();
  }
});

test('custom messageTypes: two services on one channel', async () => {
  const { a, b, cleanup } = await channelPair();
  try {
    const first = { name: () => 'first' };
    const second = { name: () => 'second' };
    const types2 = { request: 100, response: 101 };
    const s1 = expose(first, a);
    const s2 = expose(second, a, { messageTypes: types2 });
    const r1 = connect<typeof first>(b);
    const r2 = connect<typeof second>(b, { messageTypes: types2 });
    assert.deepEqual(await Promise.all([r1.name(), r2.name(), r1.name(), r2.name()]), ['first', 'second', 'first', 'second']);
    await Promise.all([rpcClient(r1).close(), rpcClient(r2).close(), s1.close(), s2.close()]);
  } finally {
    cleanup();
  }
});

// Type-level checks: compiled by tsc, never run.
export function typeChecks(remote: Remote<Counter>): void {
  const n: Promise<number> = remote.increment(1);
  // Generic methods lose their type parameters: the result is unknown.
  const s: Promise<unknown> = remote.echo('x');
  const w: Promise<number> = remote.later.with({ timeout: 5 })(2);
  // @ts-expect-error wrong argument type
  void remote.increment('one');
  // @ts-expect-error no such method
  void remote.decrement();
  // @ts-expect-error non-function members are not on the proxy
  void remote.step;
  // @ts-expect-error results are promises
  const bad: number = remote.increment();
  void [n, s, w, bad];
}
