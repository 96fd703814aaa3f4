/**
 * The raw StreamChannel over a Unix socket pair that the parent hands to the
 * child as descriptor 3 (libuv makes a socketpair for every extra 'pipe').
 */
import { Socket } from 'node:net';
import { native } from '../../../binding/native.js';
import { resolveCodec } from '../../../channel/codec.js';
import { StreamChannel } from '../../../channel/stream-channel.js';
import { BYTE_MESSAGES, fastSend, tryDrain, startPartner, type Adapter, type Endpoint } from '../common.js';

/** `direct`: the parent's side, which reads and writes large frames directly (as spawn() gives it). */
function channelOver(socket: Socket, size: number, direct: boolean): StreamChannel<Uint8Array> {
  return new StreamChannel<Uint8Array>({
    ...(direct ? { readInto: native.readInto, writeFrom: native.writeFrom } : {}),
    stream: socket,
    traits: { mechanism: 'socketpair', medium: 'socket', unit: 'stream', direction: 'two-way', scope: 'same-host', use: 'parent-child messaging over an inherited socket pair (what spawn() channels use)' },
    codec: resolveCodec<Uint8Array>('raw', 'raw'),
    maxMessageSize: Math.max(size, 16),
    label: 'socketpair',
    canSend: true,
    canReceive: true,
  });
}

function endpoint(ch: StreamChannel<Uint8Array>): Endpoint {
  return { send: fastSend(ch), receive: () => ch.receive(), drain: tryDrain(ch), close: () => ch.close(), traits: ch.traits };
}

export const socketPair: Adapter = {
  id: 'stream-socketpair',
  label: 'StreamChannel over a Unix socket pair (stdio fd 3)',
  group: 'ours',
  family: 'unix',
  maxSize: () => Infinity,
  ...BYTE_MESSAGES,
  async driver(spec) {
    const { child, exit } = startPartner(spec, ['pipe' as never]);
    const ch = channelOver(child.stdio[3] as Socket, spec.size, true);
    return { ep: endpoint(ch), partnerExit: exit, kill: () => child.kill('SIGKILL') };
  },
  async partner(spec) {
    return endpoint(channelOver(new Socket({ fd: 3, readable: true, writable: true }), spec.size, false));
  },
};
