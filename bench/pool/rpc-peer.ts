/**
 * The serving side of the RPC round-trip benchmark.
 *   spawn()ed:  rpc-peer.js ring <ring name> <spin µs>   RPC over a pair of shared-memory rings
 *               rpc-peer.js stream             RPC over spawn()'s socket-pair channel
 *   fork()ed:   rpc-peer.js fork               child_process IPC: answers each message
 */
import { ShmRing, expose, parentChannel, ready } from '../../src/index.js';

const [mode, name, spinUs] = process.argv.slice(2);
const api = {
  echo(x: unknown): unknown {
    return x;
  },
};
if (mode === 'fork') {
  process.on('message', (m) => process.send!(m));
} else {
  const channel = mode === 'ring' ? ShmRing.openDuplex(name!, { spinUs: Number(spinUs ?? 0) }) : await parentChannel('rpc');
  expose(api, channel);
  ready();
}
