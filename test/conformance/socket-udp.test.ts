// The contract suite over UDP on loopback. UDP may lose datagrams; on
// loopback, credit-based flow control keeps the receiver's buffer from
// overflowing, so the "none lost" run holds there.
import { conformance } from './contract.js';
import { socketPair } from '../socket/pair.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { UDP_MAX_PAYLOAD } from '../../src/channel/transports/udp.js';

leakGuard();

conformance({
  name: 'udp',
  stressCount: 200_000,
  bounded: true,
  peerCloseEnds: true,
  maxSize: UDP_MAX_PAYLOAD,
  pair: (opts) => socketPair({ port: 0, protocol: 'udp', ...opts }),
});

conformance({
  name: 'udp',
  stressCount: 20_000,
  bounded: true,
  peerCloseEnds: true,
  maxSize: UDP_MAX_PAYLOAD,
  pair: (opts) => socketPair({ port: 0, host: '::1', protocol: 'udp', authKey: 'conformance secret', ...opts }),
});
