// Timeouts longer than a Node timer can hold (2^31 - 1 ms, about 24.8 days)
// are real timeouts: the wait neither fails at once nor wakes every
// millisecond (Node fires such a timer after 1 ms, with a warning).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { Event, Mutex } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { libraryUrl } from '../helpers/child.js';

leakGuard();

const HUGE = 2 ** 35; // about a year

/** Runs `fn`, failing if Node warned about a timer it could not hold. */
async function noOverflow(fn: () => Promise<void>): Promise<void> {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => {
    if (w.name === 'TimeoutOverflowWarning') warnings.push(w.message);
  };
  process.on('warning', onWarning);
  try {
    await fn();
    // Warnings are emitted on a later tick.
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('warning', onWarning);
  }
  assert.deepEqual(warnings, []);
}

test('Mutex.acquire({ timeout: 2^35 }) waits for a release by its own thread', { timeout: 60_000 }, async () => {
  await noOverflow(async () => {
    const m = new Mutex(new SharedArrayBuffer(64), 0);
    const g = m.acquireSync();
    const t = setTimeout(() => g.release(), 300);
    try {
      (await m.acquire({ timeout: HUGE })).release();
    } finally {
      clearTimeout(t);
    }
  });
});

test('Mutex.acquire({ timeout: 2^35 }) waits for a release by another thread', { timeout: 60_000 }, async () => {
  const sab = new SharedArrayBuffer(64);
  const w = new Worker(
    `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.lib).then(({ Mutex }) => {
      const g = new Mutex(workerData.sab, 0).acquireSync();
      parentPort.postMessage('held');
      setTimeout(() => { g.release(); parentPort.postMessage('released'); }, 300);
    });
    `,
    { eval: true, workerData: { lib: libraryUrl, sab } },
  );
  try {
    await once(w, 'message');
    await noOverflow(async () => {
      (await new Mutex(sab, 0).acquire({ timeout: HUGE })).release();
    });
  } finally {
    await w.terminate();
  }
});

test('Event.wait({ timeout: 2^35 }) sleeps until set()', { timeout: 60_000 }, async () => {
  await noOverflow(async () => {
    const ev = new Event(new SharedArrayBuffer(32), 0);
    const t = setTimeout(() => ev.set(), 300);
    try {
      await ev.wait({ timeout: HUGE });
    } finally {
      clearTimeout(t);
    }
  });
});
