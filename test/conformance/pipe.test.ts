// The contract suite over an anonymous pipe (both ends in this process), one
// way, and over a duplex pipe pair, both ways.
import { Pipe } from '../../src/channel/transports/pipe.js';
import { conformance } from './contract.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

conformance({
  name: 'pipe',
  stressCount: 1_000_000,
  bounded: true,
  peerCloseEnds: true,
  async pair(opts) {
    const pipe = Pipe.create();
    const a = pipe.writer(opts);
    const b = pipe.reader(opts);
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
  name: 'pipe',
  stressCount: 100_000,
  bounded: true,
  peerCloseEnds: true,
  async pair(opts) {
    const pipes = Pipe.duplex();
    const a = pipes.open('a', opts);
    const b = pipes.open('b', opts);
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
