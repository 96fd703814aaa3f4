// Both ends of one two-way channel expose and connect: requests and replies
// of both directions never mix, and calls may nest (a call back into the caller).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callContext, connect, expose, rpcClient, type Remote } from '../../src/index.js';
import { channelPair } from '../helpers/socket-pair.js';
import { aborted, deferred } from '../helpers/rpc-pair.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

interface Side {
  whoAmI(): string;
  double(x: number): number;
  /** Asks the other side to double `x` and adds one. */
  doubleThere(x: number): Promise<number>;
}

function side(name: string, peer: () => Remote<Side>): Side {
  return {
    whoAmI: () => name,
    double: (x) => 2 * x,
    async doubleThere(x) {
      return (await peer().double(x)) + 1;
    },
  };
}

test('both sides expose and connect on one channel; thousands of calls both ways at once', async () => {
  const { a, b, cleanup } = await channelPair();
  try {
    let toB!: Remote<Side>;
    let toA!: Remote<Side>;
    const serverA = expose(side('A', () => toB), a);
    const serverB = expose(side('B', () => toA), b);
    toB = connect<Side>(a);
    toA = connect<Side>(b);
    assert.equal(await toB.whoAmI(), 'B');
    assert.equal(await toA.whoAmI(), 'A');
    // Both sides number their calls from the same start: ids must not collide across directions.
    const n = 2000;
    const fromA = Array.from({ length: n }, (_, i) => toB.double(i));
    const fromB = Array.from({ length: n }, (_, i) => toA.double(-i));
    const whoB = Array.from({ length: 100 }, () => toB.whoAmI());
    const whoA = Array.from({ length: 100 }, () => toA.whoAmI());
    (await Promise.all(fromA)).forEach((v, i) => assert.equal(v, 2 * i));
    (await Promise.all(fromB)).forEach((v, i) => assert.equal(v, -2 * i));
    assert.ok((await Promise.all(whoB)).every((w) => w === 'B'));
    assert.ok((await Promise.all(whoA)).every((w) => w === 'A'));
    await Promise.all([rpcClient(toA).close(), rpcClient(toB).close(), serverA.close(), serverB.close()]);
  } finally {
    cleanup();
  }
});

test('nested calls: a method calls back into its caller while the first call is in flight', async () => {
  const { a, b, cleanup } = await channelPair();
  try {
    let toB!: Remote<Side>;
    let toA!: Remote<Side>;
    expose(side('A', () => toB), a);
    expose(side('B', () => toA), b);
    toB = connect<Side>(a);
    toA = connect<Side>(b);
    // A -> B.doubleThere -> A.double, many at once from both sides.
    const results = await Promise.all([
      ...Array.from({ length: 200 }, (_, i) => toB.doubleThere(i)),
      ...Array.from({ length: 200 }, (_, i) => toA.doubleThere(i + 1000)),
    ]);
    results.forEach((v, i) => assert.equal(v, 2 * (i < 200 ? i : i - 200 + 1000) + 1));
  } finally {
    cleanup();
  }
});

test('an abort from one side reaches a handler on the other while calls run the other way', async () => {
  const { a, b, cleanup } = await channelPair();
  try {
    const started = deferred<AbortSignal>();
    const apiB = {
      wait(): Promise<void> {
        const { signal } = callContext();
        started.resolve(signal);
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      },
    };
    const apiA = { ping: () => 'pong' };
    expose(apiA, a);
    expose(apiB, b);
    const toB = connect<typeof apiB>(a);
    const toA = connect<typeof apiA>(b);
    const ac = new AbortController();
    const call = toB.wait.with({ signal: ac.signal })();
    const signal = await started.promise;
    assert.equal(await toA.ping(), 'pong');
    ac.abort();
    await assert.rejects(call, (e: any) => e.code === 'ABORT_ERR');
    assert.equal((await aborted(signal) as any).code, 'ABORT_ERR');
    assert.equal(await toA.ping(), 'pong');
  } finally {
    cleanup();
  }
});
