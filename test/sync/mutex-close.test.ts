// close() ends the pending acquire() calls of its handle with
// ERR_MULTIPROC_CLOSED, like every other primitive: never a guard over
// unmapped memory, never a promise left pending for ever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { Mutex } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { libraryUrl } from '../helpers/child.js';

leakGuard();

/** How a promise settles within `ms`: 'resolved', the rejection's code, or 'pending'. */
async function settle(p: Promise<unknown>, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.then(
      () => 'resolved',
      (e: { code?: string }) => String(e.code),
    ),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve('pending'), ms))),
  ]);
  clearTimeout(timer);
  return r;
}

for (const timeout of [undefined, 20_000]) {
  test(`closing a named mutex rejects its pending acquire() with ERR_MULTIPROC_CLOSED (timeout ${timeout ?? 'none'}); other handles still get the lock`, { timeout: 60_000 }, async () => {
    const name = uniqueName('mclose');
    using owner = Mutex.create(name);
    const waiter = Mutex.open(name);
    // Another thread holds the lock until told to release it.
    const w = new Worker(
      `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.lib).then(({ Mutex }) => {
        const m = Mutex.open(workerData.name);
        const g = m.acquireSync();
        parentPort.postMessage('held');
        parentPort.once('message', () => { g.release(); m.close(); parentPort.postMessage('released'); });
      });
      `,
      { eval: true, workerData: { lib: libraryUrl, name } },
    );
    try {
      await once(w, 'message');
      const pending = waiter.acquire(timeout === undefined ? undefined : { timeout });
      // Let it park.
      await new Promise((r) => setTimeout(r, 100));
      waiter.close();
      assert.equal(await settle(pending, 10_000), 'ERR_MULTIPROC_CLOSED');
      w.postMessage('release');
      await once(w, 'message');
      // The closed waiter gave up its turn: the lock is free for the others.
      const g = await owner.acquire({ timeout: 10_000 });
      g.release();
    } finally {
      waiter.close();
      await w.terminate();
    }
  });
}

test('closing a mutex rejects an acquire() waiting for a release by its own thread', { timeout: 60_000 }, async () => {
  const sab = new SharedArrayBuffer(64);
  const m = new Mutex(sab, 0);
  const guard = m.acquireSync();
  const pending = m.acquire({ timeout: 20_000 });
  await new Promise((r) => setTimeout(r, 50));
  m.close();
  assert.equal(await settle(pending, 10_000), 'ERR_MULTIPROC_CLOSED');
  guard.release();
  // The memory is the caller's: a new handle finds the lock free.
  const other = new Mutex(sab, 0);
  const g = other.tryAcquire();
  assert.notEqual(g, null);
  g!.release();
});
