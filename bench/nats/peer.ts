/**
 * The echo peer of the NATS benchmark, in its own process:
 *
 *   node peer.js nats <url> <subject-base> | unix <path> | tcp <port>
 *
 * Type 1 messages are echoed; type 2 messages are counted; a type 3 message
 * is answered with the count (4 bytes) once that many have arrived.
 */
import type { Channel } from '../../src/channel/channel.js';
import { NatsChannel } from '../../src/channel/transports/nats.js';
import { Socket } from '../../src/channel/transports/socket.js';

const [kind, where, base] = process.argv.slice(2);
let ch: Channel<Uint8Array>;
const max = 1024 * 1024 - 256;
if (kind === 'nats') ch = await NatsChannel.open<Uint8Array>({ servers: where!, receive: `${base}.in`, send: `${base}.out`, codec: 'raw' });
else ch = await Socket.connect<Uint8Array>({ ...(kind === 'unix' ? { path: where! } : { port: Number(where) }), codec: 'raw', maxMessageSize: max, retry: true, timeout: 20_000 });
process.stdout.write('ready\n');
let count = 0;
let expect = -1;
for (;;) {
  let m;
  try {
    m = await ch.receiveMessage();
  } catch {
    break;
  }
  if (m.type === 1) {
    if (!ch.trySend(m.data, { type: 1 })) await ch.send(m.data, { type: 1 });
  } else if (m.type === 2) {
    count++;
  } else if (m.type === 3) {
    expect = Buffer.from(m.data).readUInt32LE(0);
  } else if (m.type === 4) break;
  if (expect >= 0 && count >= expect) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(count, 0);
    await ch.send(b, { type: 3 });
    count = 0;
    expect = -1;
  }
}
await ch.close();
process.exit(0);
