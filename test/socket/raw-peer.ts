/** A peer that speaks the socket protocol by hand, for tests of what a server does with what arrives. */
import assert from 'node:assert/strict';
import { createConnection, type Socket as NetSocket } from 'node:net';
import { once } from 'node:events';
import type { SocketServer } from '../../src/index.js';

/** A plain connection to `server`, no handshake. */
export function raw(server: SocketServer<any>): NetSocket {
  const a = server.address;
  return a.path !== undefined ? createConnection(a.path) : createConnection(a.port!, a.address);
}

/** Speaks the handshake by hand (no authKey) and returns the socket, ready for frames. */
export async function rawHandshake(server: SocketServer<any>): Promise<NetSocket> {
  const s = raw(server);
  await once(s, 'connect');
  const hello = Buffer.alloc(48);
  hello.write('MPSK', 0, 'latin1');
  hello.writeUInt16LE(1, 4);
  hello.writeUInt32LE(1 << 20, 8);
  s.write(hello);
  await once(s, 'readable');
  assert.equal((s.read(48) as Buffer).subarray(0, 4).toString('latin1'), 'MPSK');
  return s;
}

/** A frame header: payload length, magic, version, type. */
export function header(length: number, type = 1): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(length, 0);
  h.writeUInt16LE(0x4d50, 4);
  h.writeUInt16LE(1, 6);
  h.writeInt32LE(type, 8);
  return h;
}
