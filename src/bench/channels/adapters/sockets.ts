/**
 * Socket connections: the driver listens (a Unix socket file in the trial's
 * directory, or an ephemeral loopback port), the partner connects.
 */
import path from 'node:path';
import { Socket, UDP_MAX_PAYLOAD } from '../../../index.js';
import { BYTE_MESSAGES, fastSend, intoVariant, tryDrain, startPartner, type Adapter, type Endpoint, type Family, type TrialSpec } from '../common.js';

type Kind = 'unix' | 'tcp' | 'udp';

function address(kind: Kind, spec: TrialSpec): { path: string } | { port: number; protocol: 'tcp' | 'udp' } {
  if (kind === 'unix') return { path: path.join(spec.dir, 's.sock') };
  return { port: spec.port ?? 0, protocol: kind };
}

function endpoint(conn: Awaited<ReturnType<typeof Socket.connect<Uint8Array>>>, kind: Kind): Endpoint {
  // UDP may lose a datagram; a bounded receive turns that into a failed trial, not a hang.
  const receive = kind === 'udp' ? () => conn.receive({ timeout: 10_000 }) : () => conn.receive();
  return { send: fastSend(conn), receive, drain: tryDrain(conn, receive), close: () => conn.close(), traits: conn.traits, into: conn };
}

function socketAdapter(kind: Kind): Adapter {
  const family: Family | undefined = kind === 'unix' ? 'unix' : kind === 'tcp' ? 'tcp' : undefined;
  const a: Adapter = {
    id: kind,
    label: kind === 'udp' ? 'Socket, UDP on loopback (credit flow control)' : `Socket, ${kind === 'unix' ? 'Unix socket file' : 'TCP on loopback'}`,
    group: 'ours',
    maxSize: () => (kind === 'udp' ? UDP_MAX_PAYLOAD : Infinity),
    ...BYTE_MESSAGES,
    async driver(spec) {
      const server = await Socket.listen<Uint8Array>({ ...address(kind, spec), codec: 'raw', maxMessageSize: Math.max(spec.size, 16) });
      const port = kind === 'unix' ? undefined : (server.address as { port: number }).port;
      const accepted = new Promise<Awaited<ReturnType<typeof Socket.connect<Uint8Array>>>>((resolve, reject) => {
        server.once('connection', resolve);
        server.once('error', reject);
      });
      const { child, exit } = startPartner(port === undefined ? spec : { ...spec, port });
      try {
        const conn = await Promise.race([accepted, exit.then(() => Promise.reject(new Error('partner exited before connecting')))]);
        const ep = endpoint(conn, kind);
        const close = ep.close;
        ep.close = async () => {
          await close();
          await server.close();
        };
        return { ep, partnerExit: exit, kill: () => child.kill('SIGKILL') };
      } catch (err) {
        child.kill('SIGKILL');
        server.destroy();
        throw err;
      }
    },
    async partner(spec) {
      const conn = await Socket.connect<Uint8Array>({ ...address(kind, spec), codec: 'raw', maxMessageSize: Math.max(spec.size, 16), retry: true, timeout: 20_000 });
      return endpoint(conn, kind);
    },
  };
  if (family) a.family = family;
  return a;
}

export const sockets: Adapter[] = [socketAdapter('unix'), socketAdapter('tcp'), socketAdapter('udp')];

/** Unix and TCP with receiveInto one reused buffer on both ends (as the C reader), for large messages. */
export const socketsInto: Adapter[] = [
  intoVariant(sockets[0]!, 'Socket, Unix socket file, receiveInto() one reused buffer (as the C reader)', 64 * 1024),
  intoVariant(sockets[1]!, 'Socket, TCP on loopback, receiveInto() one reused buffer (as the C reader)', 64 * 1024),
];
