// A worker thread blocked in a wait without a timeout can still be stopped:
// worker.terminate() and process.exit() only stop running JavaScript, so a
// thread asleep in the kernel for good would keep them waiting for ever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { Event, Mutex, RWLock, ShmRing } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child, libraryUrl } from '../helpers/child.js';
import { uniqueName } from '../helpers/names.js';

leakGuard();

/** Generous: a blocked wait comes back to JavaScript within a fraction of a second. */
const BOUND_MS = 10_000;

// Each body runs in a worker with `lib` and `sab` in scope and blocks for ever.
const waits: Record<string, string> = {
  'Event.waitSync': `new lib.Event(sab, 0).waitSync();`,
  'Semaphore.acquireSync': `new lib.Semaphore(sab, 64, { initial: 0 }).acquireSync();`,
  'Mutex.acquireSync': `new lib.Mutex(sab, 128).acquireSync();`,
  'Condition.waitSync': `const m = new lib.Mutex(sab, 192); m.acquireSync(); new lib.Condition(sab, 256).waitSync(m);`,
  'Barrier.waitSync': `new lib.Barrier(sab, 320, 2).waitSync();`,
  'RWLock.acquireReadSync': `new lib.RWLock(sab, 384).acquireReadSync();`,
  'ShmRing.receiveSync': `lib.ShmRing.open(workerData.ring, { codec: 'json', role: 'receiver' }).receiveSync();`,
};

function blockedWorker(body: string, sab: SharedArrayBuffer, ring: string): Worker {
  const source = `
    const { workerData, parentPort } = require('node:worker_threads');
    const sab = workerData.sab;
    import(${JSON.stringify(libraryUrl)}).then((lib) => {
      parentPort.postMessage('blocking');
      ${body}
      parentPort.postMessage('returned');
    }, (e) => parentPort.postMessage(String(e)));
  `;
  return new Worker(source, { eval: true, workerData: { sab, ring } });
}

for (const [kind, body] of Object.entries(waits)) {
  test(`worker.terminate() ends a worker blocked in ${kind} without a timeout`, { timeout: 60_000 }, async () => {
    const sab = new SharedArrayBuffer(512);
    // Held here so that the worker's acquire blocks.
    const mutex = new Mutex(sab, 128);
    const held = mutex.acquireSync();
    const rw = new RWLock(sab, 384);
    const write = rw.acquireWriteSync();
    const name = uniqueName('ring-term');
    const ring = ShmRing.create(name, { capacity: 4096, codec: 'json', role: 'sender' });
    try {
      const worker = blockedWorker(body, sab, name);
      const [first] = await once(worker, 'message');
      assert.equal(first, 'blocking');
      // Let it get into the kernel.
      await new Promise((r) => setTimeout(r, 300));
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        worker.terminate().then(() => 'terminated'),
        new Promise((r) => (timer = setTimeout(() => r('still running'), BOUND_MS))),
      ]);
      clearTimeout(timer);
      assert.equal(outcome, 'terminated');
    } finally {
      held.release();
      write.release();
      await ring.close();
    }
  });
}

test('process.exit() returns while a worker is blocked in Event.waitSync without a timeout', { timeout: 60_000 }, async () => {
  const child = new Child(
    `
    import { Worker } from 'node:worker_threads';
    const sab = new SharedArrayBuffer(64);
    const w = new Worker(\`
      const { workerData, parentPort } = require('node:worker_threads');
      import(\${JSON.stringify(process.argv[1])}).then(({ Event }) => {
        parentPort.postMessage('blocking');
        new Event(workerData, 0).waitSync();
      });
    \`, { eval: true, workerData: sab, execArgv: [] });
    w.once('message', () => setTimeout(() => process.exit(7), 300));
    `,
    { args: [libraryUrl], timeout: BOUND_MS + 5000 },
  );
  const r = await child.exited;
  assert.equal(r.signal, null, `killed after ${BOUND_MS + 5000} ms: process.exit() did not return`);
  assert.equal(r.code, 7, r.stderr);
});

test('a blocking wait with a timeout still times out, and one that is woken still returns', { timeout: 60_000 }, () => {
  const sab = new SharedArrayBuffer(64);
  const ev = new Event(sab, 0);
  assert.throws(() => ev.waitSync({ timeout: 50 }), { code: 'ERR_MULTIPROC_TIMEOUT' });
  ev.set();
  ev.waitSync({ timeout: 1000 });
});
