// The Channel contract over MessageQueue with the 'sysv' backend: the creator
// sends, a second handle opened by name receives.
import { MessageQueue } from '../../src/index.js';
import { conformance } from './contract.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

// Kernel queues cost two system calls per message: 50,000 keep this file within its time budget.
conformance({
  name: 'mqueue-sysv',
  stressCount: 50_000,
  maxSize: 8192,
  bounded: true,
  peerCloseEnds: false,
  async pair(opts) {
    const name = uniqueName('mqsysv');
    const a = MessageQueue.create<any>(name, { backend: 'sysv', ...opts });
    const b = MessageQueue.open<any>(name, { backend: 'sysv', ...(opts.codec === undefined ? {} : { codec: opts.codec }) });
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
