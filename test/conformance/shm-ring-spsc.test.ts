// The Channel contract over a SPSC ShmRing: sender and receiver are two
// handles on one named ring (cross-process runs are in test/shm-ring/).
import { ShmRing } from '../../src/index.js';
import { conformance } from './contract.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

conformance({
  name: 'shm-ring',
  // The contract's md5 per message dominates in-process; the 1,000,000-message run is
  // cross-process, with crc32 (test/shm-ring/shm-ring-cross-process.test.ts).
  stressCount: 250_000,
  bounded: true,
  // Closing the last sender marks the ring closed: receivers end after the queued messages.
  peerCloseEnds: true,
  async pair(opts) {
    const name = uniqueName('ring');
    const a = ShmRing.create<any>(name, { mode: 'spsc', capacity: 1 << 22, codec: opts.codec, maxMessageSize: opts.maxMessageSize, role: 'sender' });
    const b = ShmRing.open<any>(name, { codec: opts.codec, role: 'receiver' });
    return {
      a,
      b,
      async cleanup() {
        b.destroy();
        a.destroy();
      },
    };
  },
});
