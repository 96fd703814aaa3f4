// RPC over NATS between two processes: a child exposes an API on a NATS
// channel (requests on one subject, replies on another); this process calls
// it through connect(). Errors keep class, code and stack; a timeout aborts
// the remote handler.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, rpcClient, NatsChannel } from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { NatsServer, natsSkip } from '../helpers/nats-server.js';

let server: NatsServer | undefined;
leakGuard({ allowChildren: () => (server?.running ? [server.pid] : []) });
before(async () => {
  if (!natsSkip) server = await NatsServer.start({ jetstream: false });
});
after(async () => {
  await server?.stop();
});

interface Api {
  add(a: number, b: number): number;
  pid(): number;
  echo<T>(x: T): T;
  fail(code: string): never;
  hang(): Promise<never>;
  aborted(): number;
}

const childSource = `
import { expose, callContext, NatsChannel } from 'multiproc';
const [url, base] = process.argv.slice(1);
const channel = await NatsChannel.open({ servers: url, receive: base + '.req', send: base + '.res' });
let aborted = 0;
const server = expose({
  add: (a, b) => a + b,
  pid: () => process.pid,
  echo: (x) => x,
  fail(code) { const e = new RangeError('failed in the child'); e.code = code; throw e; },
  hang() {
    const { signal } = callContext();
    return new Promise((_, reject) => signal.addEventListener('abort', () => { aborted++; reject(signal.reason); }));
  },
  aborted: () => aborted,
}, channel, { closeChannel: true });
console.log('ready');
process.on('SIGTERM', async () => { await server.close(); process.exit(0); });
`;

describe('RPC over NATS', { skip: natsSkip }, () => {
  test('calls, errors, timeouts between two processes', async () => {
    const base = `mpt.rpc.${uniqueName('r').replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const child = new Child(childSource, { args: [server!.url, base], timeout: 60_000 });
    const channel = await NatsChannel.open({ servers: server!.url, send: `${base}.req`, receive: `${base}.res` });
    try {
      await child.waitFor('ready');
      const remote = connect<Api>(channel, { timeout: 10_000 });
      assert.equal(await remote.add(2, 3), 5);
      assert.equal(await remote.pid(), child.pid);
      const rich = { m: new Map([[1, 'a']]), d: new Date(5), big: 2n ** 70n };
      assert.deepEqual(await remote.echo(rich), rich);
      const many = await Promise.all(Array.from({ length: 200 }, (_, i) => remote.add(i, i)));
      assert.deepEqual(many, Array.from({ length: 200 }, (_, i) => 2 * i));
      await assert.rejects(remote.fail('E_CHILD'), (e: any) => e instanceof RangeError && (e as any).code === 'E_CHILD' && /failed in the child/.test(e.message));
      await assert.rejects(remote.hang.with({ timeout: 100 })(), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
      for (let i = 0; i < 100 && (await remote.aborted()) === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await remote.aborted(), 1);
      await rpcClient(remote).close();
    } finally {
      child.process.kill('SIGTERM');
      await child.exited;
      await channel.close();
    }
  });
});
