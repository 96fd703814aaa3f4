// The contract suite over NATS: a real nats-server on loopback, each pair a
// sender and a receiver on their own connections, on a fresh subject.
//
// Flags, honestly for NATS:
// - bounded: true. Every connection bounds the bytes the server has not
//   confirmed (Nats `bufferSize`); beyond it trySend says false and send
//   waits for the server's PONG. The bound is on the way to the server, not
//   on the receiver: core NATS has no flow control to a subscriber.
// - The stress run has sender and receiver in one process: under heavy CPU
//   load the receiver can fall behind until the server's write deadline
//   (10 s by default) calls it a slow consumer and drops its connection,
//   which core NATS is allowed to do. The server here allows 60 s, as a
//   deployment would for bursty consumers.
// - peerCloseEnds: false. A subject outlives its publishers (any number may
//   come and go), so a sender's close does not end a receiver; close the
//   receiver, or send an end marker of your own.
import { after, before } from 'node:test';
import { conformance } from '../conformance/contract.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { NatsServer, natsSkip } from '../helpers/nats-server.js';
import { NatsChannel } from '../../src/channel/transports/nats.js';

let server: NatsServer | undefined;
leakGuard({ allowChildren: () => (server?.running ? [server.pid] : []) });

before(async () => {
  if (!natsSkip) server = await NatsServer.start({ jetstream: false, config: 'write_deadline: "60s"' });
});
after(async () => {
  const w = server?.warnings() ?? [];
  if (w.length > 0) console.error(`# nats-server said:\n${w.slice(0, 20).join('\n')}`);
  await server?.stop();
});

if (natsSkip) console.error(`# nats conformance skipped: ${natsSkip}`);

for (const bufferSize of [undefined, 64 * 1024]) {
  conformance({
    name: 'nats',
    stressCount: bufferSize === undefined ? 100_000 : 20_000,
    bounded: true,
    peerCloseEnds: false,
    skip: natsSkip,
    pair: async (opts) => {
      const subject = `mpt.${uniqueName('c').replace(/[^A-Za-z0-9_-]/g, '_')}`;
      const b = await NatsChannel.open({ servers: server!.url, receive: subject, ...opts });
      const a = await NatsChannel.open({ servers: server!.url, send: subject, ...(bufferSize ? { bufferSize } : {}), ...opts });
      return {
        a,
        b,
        async cleanup() {
          await Promise.allSettled([a.close(), b.close()]);
        },
      };
    },
  });
}
