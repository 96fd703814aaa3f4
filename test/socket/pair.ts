/** A connected pair over Socket.listen/connect, for the contract suite and socket tests. */
import type { Pair } from '../conformance/contract.js';
import { Socket, type SocketConnection, type SocketListenOptions, type SocketServer } from '../../src/channel/transports/socket.js';

export interface SocketPair extends Pair {
  a: SocketConnection<any>;
  b: SocketConnection<any>;
  server: SocketServer<any>;
}

/** Listens with `listen`, connects a client to it, and returns (client, accepted connection). */
export async function socketPair(listen: SocketListenOptions<any>, connect: Record<string, unknown> = {}): Promise<SocketPair> {
  const server = await Socket.listen(listen);
  const at = server.address.path !== undefined ? { path: server.address.path } : { port: server.address.port, host: server.address.address, protocol: listen.protocol };
  const accepted = server[Symbol.asyncIterator]().next();
  const a = await Socket.connect({ ...at, codec: listen.codec, maxMessageSize: listen.maxMessageSize, authKey: listen.authKey, timeout: 10000, ...connect });
  const next = await accepted;
  if (next.done) throw new Error('the server closed before accepting');
  const b = next.value;
  return {
    a,
    b,
    server,
    async cleanup() {
      a.destroy();
      b.destroy();
      await server.close();
    },
  };
}
