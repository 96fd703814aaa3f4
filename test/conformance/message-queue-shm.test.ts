// The Channel contract over MessageQueue with the 'shm' backend: the creator
// sends, a second handle opened by name receives.
import { MessageQueue } from '../../src/index.js';
import { conformance } from './contract.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

// One million messages fit the time budget: the shm queue does not enter the kernel when it need not.
conformance({
  name: 'mqueue-shm',
  stressCount: 1_000_000,
  bounded: true,
  peerCloseEnds: false,
  async pair(opts) {
    const name = uniqueName('mqshm');
    const a = MessageQueue.create<any>(name, { backend: 'shm', ...opts });
    const b = MessageQueue.open<any>(name, { backend: 'shm', ...(opts.codec === undefined ? {} : { codec: opts.codec }) });
    return {
      a,
      b,
      async cleanup() {
        await b.close();
        await a.close();
      },
    };
  },
});
