// How waiting operations of one MessageQueue handle behave together, on every
// backend: many waits sharing one AbortSignal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { MessageQueue, type MessageQueueBackend } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { devMqueueSkip } from '../helpers/mqueue.js';

leakGuard();
devMqueueSkip();

const backends: MessageQueueBackend[] = ['shm', 'sysv', 'posix'];

for (const backend of backends) {
  test(`${backend}: many waits on one signal add one listener to it, and its abort ends them all with ABORT_ERR`, async () => {
    const name = uniqueName(`sig${backend}`);
    const q = MessageQueue.create<number>(name, { backend, codec: 'json' });
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(`${w.name}: ${w.message}`);
    };
    process.on('warning', onWarning);
    try {
      const ac = new AbortController();
      const waits = Array.from({ length: 16 }, (_, i) => q.receive({ signal: ac.signal, timeout: 20000, ...(i % 2 === 1 ? { type: i } : {}) }));
      // A receive may take a moment to reach its wait in the backend.
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(getEventListeners(ac.signal, 'abort').length <= 1, `${getEventListeners(ac.signal, 'abort').length} abort listeners on the caller's signal`);
      ac.abort();
      const codes = await Promise.all(waits.map((w) => w.then(() => 'resolved', (e: any) => e.code)));
      assert.deepEqual(new Set(codes), new Set(['ABORT_ERR']));
      // process.emitWarning reports on the next tick.
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')), []);
    } finally {
      process.off('warning', onWarning);
      await q.close();
    }
  });
}
