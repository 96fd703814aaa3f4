// The contract suite over Unix-domain sockets: a file path and an abstract name.
import { conformance } from './contract.js';
import { socketPair } from '../socket/pair.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { uniqueName } from '../helpers/names.js';

leakGuard();
const dir = tempDir('unix');

conformance({
  name: 'unix',
  stressCount: 1_000_000,
  bounded: false,
  peerCloseEnds: true,
  pair: (opts) => socketPair({ path: dir.file('s'), ...opts }),
});

conformance({
  name: 'unix',
  stressCount: 50_000,
  bounded: false,
  peerCloseEnds: true,
  pair: (opts) => socketPair({ path: uniqueName('abs'), abstract: true, ...opts }),
});
