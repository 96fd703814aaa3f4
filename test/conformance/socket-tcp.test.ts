// The contract suite over TCP on loopback, without and with authKey.
import { conformance } from './contract.js';
import { socketPair } from '../socket/pair.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

conformance({
  name: 'tcp',
  stressCount: 1_000_000,
  bounded: false,
  peerCloseEnds: true,
  pair: (opts) => socketPair({ port: 0, ...opts }),
});

conformance({
  name: 'tcp',
  stressCount: 50_000,
  bounded: false,
  peerCloseEnds: true,
  pair: (opts) => socketPair({ port: 0, host: '::1', authKey: 'conformance secret', ...opts }),
});
