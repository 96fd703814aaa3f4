// The contract suite over a FIFO (both ends in this process): an exclusive
// writer, then a shared one (whole frames of at most PIPE_BUF per write).
import { NamedPipe } from '../../src/channel/transports/named-pipe.js';
import { conformance } from './contract.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const tmp = tempDir('fifo');

for (const shared of [false, true]) {
  conformance({
    name: 'fifo',
    stressCount: shared ? 100_000 : 1_000_000,
    bounded: true,
    peerCloseEnds: true,
    ...(shared ? { maxSize: NamedPipe.maxSharedMessageSize } : {}),
    async pair(opts) {
      const fifo = NamedPipe.create(tmp.file('fifo'));
      const b = fifo.reader(opts);
      const a = await fifo.writer({ ...opts, shared, timeout: 10000 });
      return {
        a,
        b,
        async cleanup() {
          a.destroy();
          b.destroy();
          await fifo.close();
        },
      };
    },
  });
}
