/**
 * A connected pair of Unix stream sockets (through a listening socket in
 * os.tmpdir() that is closed, and its path removed, once connected), and a
 * pair of StreamChannels over it.
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamChannel } from '../../src/channel/stream-channel.js';
import { resolveCodec, type CodecOption } from '../../src/channel/codec.js';
import { validateMaxMessageSize } from '../../src/channel/base-channel.js';
import { uniqueName } from './names.js';

/** Two connected sockets, and a function that closes the listening socket (already closed; kept for callers that want to be explicit). */
export async function socketPair(): Promise<[Socket, Socket, () => void]> {
  const path = join(tmpdir(), `${uniqueName('sock')}.sock`);
  const server = createServer();
  server.listen(path);
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = createConnection(path);
  await once(client, 'connect');
  const [conn] = (await accepted) as [Socket];
  server.close();
  return [client, conn, () => server.close()];
}

const traits = { mechanism: 'stream', medium: 'socket', unit: 'stream', direction: 'two-way', scope: 'same-host', use: 'test' } as const;

export interface StreamChannelOptions {
  codec?: CodecOption<any>;
  maxMessageSize?: number;
}

/** A two-way StreamChannel over `stream`. */
export function streamChannel(stream: Socket, opts: StreamChannelOptions = {}, label = 'test stream'): StreamChannel<any> {
  return new StreamChannel({
    stream,
    traits,
    codec: resolveCodec(opts.codec, 'structured'),
    maxMessageSize: validateMaxMessageSize(opts.maxMessageSize),
    label,
    canSend: true,
    canReceive: true,
  });
}

/** Two connected StreamChannels over a Unix socket pair; `cleanup` destroys both. */
export async function channelPair(opts: StreamChannelOptions = {}): Promise<{ a: StreamChannel<any>; b: StreamChannel<any>; cleanup(): void }> {
  const [x, y] = await socketPair();
  const a = streamChannel(x, opts, 'test stream a');
  const b = streamChannel(y, opts, 'test stream b');
  return {
    a,
    b,
    cleanup() {
      a.destroy();
      b.destroy();
    },
  };
}
