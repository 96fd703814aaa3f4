// The wire protocol seen from a peer that does not follow it: undecodable
// and malformed messages, duplicate ids, stray replies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, defaultMessageTypes, expose, rpcClient } from '../../src/index.js';
import { header } from '../../src/channel/framing.js';
import { socketPair, streamChannel } from '../helpers/socket-pair.js';
import { deferred } from '../helpers/rpc-pair.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

const { request, response } = defaultMessageTypes;
const T = { timeout: 10000 };

async function rawPair() {
  const [x, y] = await socketPair();
  const a = streamChannel(x, { codec: 'json' });
  const b = streamChannel(y, { codec: 'json' });
  return { x, y, a, b, cleanup: () => (a.destroy(), b.destroy()) };
}

test('a message the codec cannot decode is skipped; the server goes on', async () => {
  const { y, a, b, cleanup } = await rawPair();
  try {
    const server = expose({ add: (p: number, q: number) => p + q }, a);
    const junk = Buffer.from('{not json');
    y.write(Buffer.concat([header(junk.length, request, 0), junk]));
    await b.send([1, 1, 'add', [2, 3]], { type: request });
    assert.deepEqual(await b.receive({ type: response, ...T }), [3, 1, 5]);
    assert.equal(server.closed, false);
  } finally {
    cleanup();
  }
});

test('malformed calls with an id are answered with ERR_MULTIPROC_PROTOCOL; messages without one are ignored', async () => {
  const { a, b, cleanup } = await rawPair();
  try {
    expose({ add: (p: number, q: number) => p + q }, a);
    await b.send({ not: 'an array' }, { type: request });
    await b.send([1, 'not an id', 'add', [1, 2]], { type: request });
    await b.send([9, 3], { type: request });
    await b.send([1, 4, 'add', 'not an array'], { type: request });
    const reply = (await b.receive({ type: response, ...T })) as [number, number, { className: string; code: string }];
    assert.equal(reply[0], 4);
    assert.equal(reply[1], 4);
    assert.equal(reply[2].className, 'ProtocolError');
    assert.equal(reply[2].code, 'ERR_MULTIPROC_PROTOCOL');
    await b.send([1, 5, 'add', [1, 1]], { type: request });
    assert.deepEqual(await b.receive({ type: response, ...T }), [3, 5, 2]);
  } finally {
    cleanup();
  }
});

test('a second call with the id of a call in progress is refused; the first completes', async () => {
  const { a, b, cleanup } = await rawPair();
  try {
    const gate = deferred<string>();
    expose({ wait: () => gate.promise }, a);
    await b.send([1, 7, 'wait', []], { type: request });
    await b.send([1, 7, 'wait', []], { type: request });
    const refused = (await b.receive({ type: response, ...T })) as [number, number, { code: string; message: string }];
    assert.equal(refused[0], 4);
    assert.equal(refused[2].code, 'ERR_MULTIPROC_PROTOCOL');
    assert.match(refused[2].message, /already in progress/);
    gate.resolve('done');
    assert.deepEqual(await b.receive({ type: response, ...T }), [3, 7, 'done']);
  } finally {
    cleanup();
  }
});

test('replies for unknown ids and malformed replies are ignored by the caller', async () => {
  const { a, b, cleanup } = await rawPair();
  try {
    const remote = connect<{ add(p: number, q: number): number }>(b);
    const call = remote.add(1, 2);
    const [kind, id, method, args] = (await a.receive({ type: request, ...T })) as [number, number, string, number[]];
    assert.deepEqual([kind, method, args], [1, 'add', [1, 2]]);
    await a.send([3, id + 1000, 'wrong call'], { type: response });
    await a.send('garbage', { type: response });
    await a.send([7, id, 'unknown kind'], { type: response });
    await a.send([3, id, 3], { type: response });
    assert.equal(await call, 3);
    assert.equal(rpcClient(remote).pending, 0);
  } finally {
    cleanup();
  }
});

test('a timed-out call sends a cancel after the call, with the reason and timeout', async () => {
  const { a, b, cleanup } = await rawPair();
  try {
    const remote = connect<{ slow(): void }>(b);
    await assert.rejects(remote.slow.with({ timeout: 30 })(), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
    const call = (await a.receive({ type: request, ...T })) as unknown[];
    const cancel = (await a.receive({ type: request, ...T })) as unknown[];
    assert.equal(call[0], 1);
    assert.deepEqual(cancel, [2, call[1], 'timeout', 30]);
  } finally {
    cleanup();
  }
});
