// Many calls in flight, replies matched by id, completion in any order,
// several connections sharing one channel end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, expose, rpcClient } from '../../src/index.js';
import { channelPair } from '../helpers/socket-pair.js';
import { deferred, rpcPair, until } from '../helpers/rpc-pair.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

test('5,000 concurrent calls each get their own result', async () => {
  const api = {
    square: (x: number) => x * x,
    async tagged(x: number) {
      if (x % 3 === 0) await new Promise((r) => setImmediate(r));
      return `v${x}`;
    },
  };
  const { remote, client, server, cleanup } = await rpcPair(api);
  try {
    const n = 5_000;
    const squares = Array.from({ length: n }, (_, i) => remote.square(i));
    const tags = Array.from({ length: n / 4 }, (_, i) => remote.tagged(i));
    assert.ok(client.pending > 0);
    const got = await Promise.all(squares);
    for (let i = 0; i < n; i++) assert.equal(got[i], i * i);
    const gotTags = await Promise.all(tags);
    for (let i = 0; i < n / 4; i++) assert.equal(gotTags[i], `v${i}`);
    assert.equal(client.pending, 0);
    assert.equal(server.pending, 0);
  } finally {
    cleanup();
  }
});

test('replies complete out of order: a call started first may finish last', async () => {
  const gates = new Map<string, ReturnType<typeof deferred<string>>>();
  const gate = (key: string) => {
    if (!gates.has(key)) gates.set(key, deferred<string>());
    return gates.get(key)!;
  };
  const api = {
    wait: (key: string) => gate(key).promise,
    open(key: string, value: string) {
      gate(key).resolve(value);
    },
  };
  const { remote, cleanup } = await rpcPair(api);
  try {
    const order: string[] = [];
    const first = remote.wait('a').then((v) => order.push(v));
    const second = remote.wait('b').then((v) => order.push(v));
    const third = remote.wait('c').then((v) => order.push(v));
    await remote.open('c', 'C');
    await third;
    await remote.open('b', 'B');
    await second;
    assert.deepEqual(order, ['C', 'B']);
    await remote.open('a', 'A');
    await first;
    assert.deepEqual(order, ['C', 'B', 'A']);
  } finally {
    cleanup();
  }
});

test('several connections on one channel end share it without taking each other\'s replies', async () => {
  const { a, b, cleanup } = await channelPair();
  try {
    const server = expose({ id: (who: string, i: number) => `${who}:${i}` }, a);
    const remotes = ['x', 'y', 'z'].map((who) => [who, connect<{ id(who: string, i: number): string }>(b)] as const);
    const all = remotes.flatMap(([who, r]) => Array.from({ length: 1000 }, (_, i) => r.id(who, i).then((v) => assert.equal(v, `${who}:${i}`))));
    await Promise.all(all);
    // Closing one leaves the others working.
    await rpcClient(remotes[0]![1]).close();
    assert.equal(await remotes[1]![1].id('y', 1), 'y:1');
    await Promise.all(remotes.slice(1).map(([, r]) => rpcClient(r).close()));
    await server.close();
  } finally {
    cleanup();
  }
});

test('destroy() of one connection on a shared channel end rejects its own calls only; pending counts are per connection', async () => {
  const { a, b, cleanup } = await channelPair();
  try {
    const gates: Array<() => void> = [];
    const server = expose({ wait: (who: string) => new Promise<string>((resolve) => gates.push(() => resolve(who))) }, a);
    const x = connect<{ wait(who: string): string }>(b);
    const y = connect<{ wait(who: string): string }>(b);
    const xs = [x.wait('x1'), x.wait('x2')];
    const ys = [y.wait('y1'), y.wait('y2'), y.wait('y3')];
    for (const p of [...xs, ...ys]) p.catch(() => {});
    assert.equal(rpcClient(x).pending, 2);
    assert.equal(rpcClient(y).pending, 3);
    rpcClient(x).destroy();
    for (const p of xs) await assert.rejects(p, { code: 'ERR_MULTIPROC_CLOSED' });
    assert.equal(rpcClient(x).pending, 0);
    assert.equal(rpcClient(y).pending, 3);
    // The other connection's calls are answered.
    await until(() => gates.length === 5);
    for (const g of gates) g();
    assert.deepEqual(await Promise.all(ys), ['y1', 'y2', 'y3']);
    assert.equal(rpcClient(y).pending, 0);
    await rpcClient(y).close();
    await server.close();
  } finally {
    cleanup();
  }
});

test('large arguments and results interleave with small calls', async () => {
  const api = { sum: (bytes: Uint8Array) => bytes.reduce((s, x) => s + x, 0), make: (n: number) => new Uint8Array(n).fill(1), ping: () => 'pong' };
  const { remote, cleanup } = await rpcPair(api);
  try {
    const big = new Uint8Array(4 << 20).fill(2);
    const results = await Promise.all([remote.sum(big), remote.ping(), remote.make(3 << 20), remote.ping(), remote.sum(big.subarray(0, 10))]);
    assert.equal(results[0], 8 << 20);
    assert.equal(results[1], 'pong');
    assert.equal((results[2] as Uint8Array).length, 3 << 20);
    assert.equal(results[4], 20);
  } finally {
    cleanup();
  }
});
