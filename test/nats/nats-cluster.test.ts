// Faults on a three-server JetStream cluster on loopback: a queue replicated
// on all three (R3); the server the producer is connected to is SIGKILLed in
// the middle of the stream. Every message whose send resolved (the stream
// stored it on a quorum) must be there afterwards, none twice; the producer
// reconnects to a survivor on its own.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { NatsCluster, natsSkip } from '../helpers/nats-server.js';
import { JetStreamQueue } from '../../src/mqueue/jetstream.js';
import { Nats } from '../../src/nats/connection.js';
import { NatsChannel } from '../../src/channel/transports/nats.js';

let cluster: NatsCluster | undefined;
leakGuard({ allowChildren: () => cluster?.pids ?? [] });
before(async () => {
  if (!natsSkip) cluster = await NatsCluster.start(3);
});
after(async () => {
  await cluster?.stop();
});

/** Creates the queue once the cluster has elected its JetStream leader. */
/** Tries `make` until JetStream answers: a cluster elects its meta leader after a start or a loss. */
async function whenReady<T>(make: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 45_000;
  for (;;) {
    try {
      return await make();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

const createWhenReady = (name: string, nats: Nats): Promise<JetStreamQueue<number>> =>
  whenReady(() => JetStreamQueue.create<number>(name, { connection: nats, codec: 'json', replicas: 3, ackWait: 5000 }));

describe('NATS cluster faults', { skip: natsSkip }, () => {
  test('R3 queue: a server killed mid-stream loses no acknowledged message; clients reconnect', { timeout: 200_000 }, async () => {
    const name = uniqueName('cl').replace(/[^A-Za-z0-9_-]/g, '_');
    const producerConn = await Nats.connect({ servers: cluster!.urls, reconnect: { minDelay: 50, maxDelay: 500 } });
    const q = await createWhenReady(name, producerConn);
    // A core-NATS channel on the same connection, to see that it comes back too.
    const ch = await NatsChannel.open<string>({ connection: producerConn, send: `mpt.ping.${name}`, receive: `mpt.ping.${name}` });
    const M = 3000;
    const acked: number[] = [];
    let next = 0;
    let killedUrl: string | undefined;
    try {
      const worker = async (): Promise<void> => {
        for (;;) {
          const i = next++;
          if (i >= M) return;
          if (i === Math.floor(M / 3) && killedUrl === undefined) {
            // The server this client is connected to goes down hard.
            const current = producerConn.connection.getServer();
            const victim = cluster!.servers.find((s) => current.endsWith(`:${s.port}`))!;
            killedUrl = victim.url;
            await victim.kill();
          }
          await q.send(i, { timeout: 60_000 });
          acked.push(i);
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      assert.ok(killedUrl !== undefined);
      assert.equal(acked.length, M);
      assert.ok(producerConn.reconnects >= 1, 'the producer reconnected');
      assert.equal(producerConn.state, 'connected');
      assert.ok(!producerConn.connection.getServer().endsWith(killedUrl.slice(killedUrl.lastIndexOf(':'))), 'now on a surviving server');
      // The core channel works again after the reconnect.
      await ch.send('ping', { timeout: 10_000 });
      assert.equal(await ch.receive({ timeout: 10_000 }), 'ping');

      // Read everything back through a fresh connection to the survivors.
      const reader = await whenReady(() => JetStreamQueue.open<number>(name, { servers: cluster!.servers.filter((s) => s.running).map((s) => s.url), codec: 'json' }));
      try {
        const seen = new Map<number, number>();
        // Right after the loss the consumer may still be electing a leader: ask again.
        let st;
        for (let i = 0; ; i++) {
          try {
            st = await reader.stat();
            break;
          } catch (err) {
            if (i >= 5) throw err;
          }
        }
        assert.equal(st.replicas, 3);
        while (seen.size < M) {
          const v = await reader.receive({ timeout: 30_000 });
          seen.set(v, (seen.get(v) ?? 0) + 1);
        }
        for (const i of acked) assert.ok(seen.has(i), `acknowledged message ${i} is there`);
        assert.deepEqual([...seen.values()].filter((n) => n > 1), [], 'none stored twice (Nats-Msg-Id dedupe of resends)');
        await assert.rejects(reader.receive({ timeout: 500 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
      } finally {
        await reader.unlink();
        await reader.close();
      }
    } finally {
      await ch.close();
      await q.close();
      await producerConn.close();
    }
  });
});
