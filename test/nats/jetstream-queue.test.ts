// JetStreamQueue on a real nats-server with JetStream: the queue semantics
// (types, priorities, stat, ack, redelivery, dead letters), and N messages
// across three consumer processes, one killed with SIGKILL midway.
//
// MULTIPROC_NATS_QUEUE_N sets N (default 100000: about 10-25 s on a loaded
// two-core machine).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { Child } from '../helpers/child.js';
import { NatsServer, natsSkip } from '../helpers/nats-server.js';
import { JetStreamQueue } from '../../src/mqueue/jetstream.js';
import { NatsChannel } from '../../src/channel/transports/nats.js';

let server: NatsServer | undefined;
leakGuard({ allowChildren: () => (server?.running ? [server.pid] : []) });
before(async () => {
  if (!natsSkip) server = await NatsServer.start();
});
after(async () => {
  await server?.stop();
});

const qname = (): string => uniqueName('q').replace(/[^A-Za-z0-9_-]/g, '_');
const T = { timeout: 20000 };

describe('JetStreamQueue', { skip: natsSkip }, () => {
  test('types by the System V rule and priorities within the prefetch window; stat from stream info', async () => {
    const q = await JetStreamQueue.create<string>(qname(), { servers: server!.url, codec: 'json', storage: 'memory' });
    try {
      assert.equal(q.backend, 'jetstream');
      assert.equal(q.traits.scope, 'network');
      await q.send('t3', { type: 3 });
      await q.send('t1', { type: 1 });
      await q.send('t2-low', { type: 2 });
      await q.send('t2-high', { type: 2, priority: 5 });
      const st = await q.stat();
      assert.equal(st.messages, 4);
      assert.equal(st.pending, 4);
      assert.equal(await q.receive({ type: 2, ...T }), 't2-high');
      assert.equal(await q.receive({ type: -2, ...T }), 't1');
      const m = await q.receiveMessage({ type: -3, ...T });
      assert.deepEqual([m.data, m.type], ['t2-low', 2]);
      assert.equal(await q.receive(T), 't3');
      await assert.rejects(q.receive({ timeout: 200 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
      // Acks are asynchronous: the stream empties shortly after.
      for (let i = 0; i < 100 && (await q.stat()).messages > 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal((await q.stat()).messages, 0);
    } finally {
      await q.unlink();
      await q.close();
    }
  });

  test('consume: ack after the handler, redelivery after a throw, dead letter after maxDeliver', async () => {
    const name = qname();
    const q = await JetStreamQueue.create<{ n: number }>(name, { servers: server!.url, codec: 'json', maxDeliver: 3, retryDelay: 20, storage: 'memory' });
    try {
      await q.send({ n: 1 });
      await q.send({ n: 2 });
      const seen: Array<[number, number]> = [];
      const c = q.consume(async (d, info) => {
        seen.push([d.n, info.deliveries]);
        if (d.n === 2) throw new Error(`cannot do ${d.n}`);
        if (d.n === 1 && info.deliveries === 1) throw new Error('flaky');
      });
      for (let i = 0; i < 400 && c.deadLettered + c.processed < 2; i++) await new Promise((r) => setTimeout(r, 25));
      await c.stop();
      assert.equal(c.processed, 1);
      assert.equal(c.deadLettered, 1);
      assert.deepEqual(
        seen.filter(([n]) => n === 1),
        [
          [1, 1],
          [1, 2],
        ],
      );
      assert.deepEqual(
        seen.filter(([n]) => n === 2).map(([, d]) => d),
        [1, 2, 3],
      );
      const dead = await q.deadLetters();
      assert.equal(dead.length, 1);
      assert.deepEqual(dead[0]!.data, { n: 2 });
      assert.equal(dead[0]!.deliveries, 3);
      assert.match(dead[0]!.error, /cannot do 2/);
      assert.equal((await q.stat()).deadLetters, 1);
    } finally {
      await q.unlink();
      await q.close();
    }
  });

  test('consume with a signal aborted already throws ABORT_ERR and consumes nothing', async () => {
    const q = await JetStreamQueue.create<number>(qname(), { servers: server!.url, codec: 'json', storage: 'memory' });
    try {
      await q.send(1);
      const ac = new AbortController();
      ac.abort();
      const handled: number[] = [];
      assert.throws(
        () => q.consume((n) => void handled.push(n), { signal: ac.signal }),
        (e: any) => e.code === 'ABORT_ERR' && e.name === 'AbortError',
      );
      await assert.rejects(q.receive({ signal: ac.signal }), (e: any) => e.code === 'ABORT_ERR');
      // The message is still there for the next taker, and no handler ran.
      assert.equal(await q.receive(T), 1);
      assert.deepEqual(handled, []);
    } finally {
      await q.unlink();
      await q.close();
    }
  });

  test('creation modes and coded errors', async () => {
    const name = qname();
    await assert.rejects(JetStreamQueue.open(name, { servers: server!.url }), (e: any) => e.code === 'ERR_MULTIPROC_JETSTREAM');
    const q = await JetStreamQueue.create(name, { servers: server!.url, creation: 'create', storage: 'memory' });
    try {
      await assert.rejects(JetStreamQueue.create(name, { servers: server!.url, creation: 'create' }), (e: any) => e.code === 'ERR_MULTIPROC_JETSTREAM');
      const o = await JetStreamQueue.open(name, { connection: q.connection });
      await o.close();
      await assert.rejects(JetStreamQueue.create('bad.name', { servers: server!.url }), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
      await assert.rejects(JetStreamQueue.create(name, { servers: server!.url, maxDeliver: 0 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
      assert.throws(() => q.consume(42 as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
    } finally {
      await q.unlink();
      await q.close();
    }
  });

  const N = Number(process.env.MULTIPROC_NATS_QUEUE_N ?? 100_000);
  test(`${N} messages, 3 consumer processes, one SIGKILLed midway: all processed, duplicates only where the ack was lost`, { timeout: 110_000 }, async () => {
    const name = qname();
    const results = `mpt.res.${name}`;
    const q = await JetStreamQueue.create<number>(name, { servers: server!.url, codec: 'json', ackWait: 3000, storage: 'memory' });
    const rx = await NatsChannel.open<{ pid: number; ids: number[] }>({ servers: server!.url, receive: results, codec: 'json' });
    // Each consumer reports the ids it processed, a batch at a time, and
    // acknowledges a message only after the report containing it went out.
    const consumer = `
      import { JetStreamQueue, NatsChannel } from 'multiproc';
      const [url, name, results] = process.argv.slice(1);
      const q = await JetStreamQueue.open(name, { servers: url, codec: 'json' , prefetch: 256 });
      const tx = await NatsChannel.open({ connection: q.connection, send: results, codec: 'json' });
      let batch = [], waiting = [];
      const flush = async () => {
        const ids = batch, w = waiting; batch = []; waiting = [];
        await tx.send({ pid: process.pid, ids });
        await q.connection.connection.flush();
        for (const r of w) r();
      };
      const timer = setInterval(() => { if (batch.length) flush(); }, 20);
      q.consume((id) => new Promise((resolve) => { batch.push(id); waiting.push(resolve); if (batch.length >= 200) flush(); }), { concurrency: 256 });
      console.log('ready');
      process.on('SIGTERM', async () => { clearInterval(timer); await q.close(); process.exit(0); });
    `;
    const children = [0, 1, 2].map(() => new Child(consumer, { args: [server!.url, name, results], timeout: 100_000 }));
    try {
      await Promise.all(children.map((c) => c.waitFor('ready')));
      const counts = new Map<number, number[]>(); // id -> pids that processed it
      let reports = 0;
      const collecting = (async () => {
        for await (const r of rx) {
          for (const id of r.ids) {
            const l = counts.get(id);
            if (l === undefined) counts.set(id, [r.pid]);
            else l.push(r.pid);
          }
          reports += r.ids.length;
        }
      })();
      const victim = children[1]!;
      let killed = false;
      for (let i = 0; i < N; i++) {
        if (!q.trySend(i)) await q.send(i, T);
        if (!killed && i % 1000 === 0 && counts.size >= N / 3) {
          victim.process.kill('SIGKILL');
          killed = true;
        }
      }
      const deadline = Date.now() + 90_000;
      while (!killed && counts.size < N / 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      if (!killed) {
        victim.process.kill('SIGKILL');
        killed = true;
      }
      while (counts.size < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(counts.size, N, `every message processed (${counts.size} of ${N})`);
      for (let i = 0; i < N; i++) assert.ok(counts.has(i), `message ${i} processed`);
      const dupes = [...counts].filter(([, pids]) => pids.length > 1);
      // A duplicate is a message the killed consumer processed (its report went
      // out) but whose ack died with it; the survivors process nothing twice.
      for (const [id, pids] of dupes) {
        assert.ok(pids.includes(victim.pid), `message ${id} processed twice by survivors: ${pids.join(', ')}`);
        assert.equal(pids.filter((p) => p !== victim.pid).length, 1, `message ${id}: ${pids.join(', ')}`);
      }
      const byVictim = [...counts.values()].filter((p) => p.includes(victim.pid)).length;
      console.error(`# ${N} messages: ${dupes.length} duplicates (acks lost with the killed consumer, which processed ${byVictim}); ${reports} handler runs reported`);
      assert.equal((await victim.exited).signal, 'SIGKILL');
      rx.destroy();
      await collecting;
    } finally {
      for (const c of children) if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGTERM');
      await Promise.all(children.map((c) => c.exited));
      rx.destroy();
      await q.unlink();
      await q.close();
    }
  });
});
