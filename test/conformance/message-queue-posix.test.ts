// The Channel contract over MessageQueue with the 'posix' backend: the creator
// sends, a second handle opened by name receives.
import { MessageQueue } from '../../src/index.js';
import { conformance } from './contract.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { devMqueueSkip } from '../helpers/mqueue.js';

leakGuard();
// Mount /dev/mqueue when we can, so the leak guard sees queues left behind.
devMqueueSkip();

// Kernel queues cost two system calls per message and hold 10 messages by default:
// 50,000 messages keep this file within its time budget.
conformance({
  name: 'mqueue-posix',
  stressCount: 50_000,
  maxSize: 8192 - 8,
  bounded: true,
  peerCloseEnds: false,
  async pair(opts) {
    const name = uniqueName('mqposix');
    const a = MessageQueue.create<any>(name, { backend: 'posix', ...opts });
    const b = MessageQueue.open<any>(name, { backend: 'posix', ...(opts.codec === undefined ? {} : { codec: opts.codec }) });
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
