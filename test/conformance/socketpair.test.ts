// The contract suite over the parent-child channels of spawn(): the
// SocketPairChannel of named 'stream' channels, and the control channel's user
// view (library frames taken out; close() ends the view, not the socket, so
// the peer does not see an end). Over a connected Unix socket, as the
// socket pair spawn() creates is one.
import { createConnection, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveCodec } from '../../src/channel/codec.js';
import { validateMaxMessageSize } from '../../src/channel/base-channel.js';
import { SocketPairChannel } from '../../src/process/socket-pair-channel.js';
import { ControlChannel } from '../../src/process/control.js';
import { conformance } from './contract.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

async function socketPair(): Promise<[Socket, Socket]> {
  const path = join(tmpdir(), `${uniqueName('sock')}.sock`);
  const server = createServer();
  server.listen(path);
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = createConnection(path);
  await once(client, 'connect');
  const [conn] = (await accepted) as [Socket];
  server.close();
  return [client, conn];
}

conformance({
  name: 'socketpair',
  stressCount: 200_000,
  bounded: false,
  async pair(opts) {
    const [x, y] = await socketPair();
    const make = (s: Socket, label: string) =>
      new SocketPairChannel<any>({ socket: s, codec: resolveCodec(opts.codec, 'structured'), maxMessageSize: validateMaxMessageSize(opts.maxMessageSize), label });
    const a = make(x, 'a');
    const b = make(y, 'b');
    return {
      a,
      b,
      async cleanup() {
        a.destroy();
        b.destroy();
      },
    };
  },
});

conformance({
  name: 'socketpair',
  stressCount: 200_000,
  bounded: false,
  peerCloseEnds: false,
  async pair(opts) {
    const [x, y] = await socketPair();
    const user = { codec: resolveCodec<unknown>(opts.codec, 'structured'), maxMessageSize: validateMaxMessageSize(opts.maxMessageSize) };
    const a = new ControlChannel(x, 'control a', () => {}, user);
    const b = new ControlChannel(y, 'control b', () => {}, user);
    return {
      a,
      b,
      async cleanup() {
        a.destroyTransport();
        b.destroyTransport();
      },
    };
  },
});
