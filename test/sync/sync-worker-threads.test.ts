import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { Semaphore, Barrier, RWLock, Event, Mutex, Condition } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { libraryUrl } from '../helpers/child.js';

leakGuard();

// Runs `body` (an async function body with `lib`, `sab`, `index` in scope) in
// `count` worker threads sharing `sab`; resolves with what each returned.
async function inWorkers(count: number, sab: SharedArrayBuffer, body: string): Promise<unknown[]> {
  const source = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(${JSON.stringify(libraryUrl)})
      .then(async (lib) => {
        const { sab, index } = workerData;
        return (async () => { ${body} })();
      })
      .then((r) => parentPort.postMessage({ ok: r }), (e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
  `;
  const workers = Array.from({ length: count }, (_, index) => new Worker(source, { eval: true, workerData: { sab, index } }));
  try {
    const messages = await Promise.all(workers.map(async (w) => (await once(w, 'message'))[0] as { ok?: unknown; error?: string }));
    for (const m of messages) if (m.error !== undefined) assert.fail(m.error);
    return messages.map((m) => m.ok);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

test('worker threads share a Semaphore through a SharedArrayBuffer (blocking and async forms)', async () => {
  const sab = new SharedArrayBuffer(256);
  const sem = new Semaphore(sab, 64, { initial: 2, max: 2 });
  await inWorkers(4, sab, `
    const sem = new lib.Semaphore(sab, 64);
    const g = new Int32Array(sab, 0, 3);
    for (let i = 0; i < 300; i++) {
      const p = index % 2 === 0 ? sem.acquireSync({ timeout: 60000 }) : await sem.acquire({ timeout: 60000 });
      const inside = Atomics.add(g, 0, 1) + 1;
      let max = Atomics.load(g, 1);
      while (inside > max) max = Atomics.compareExchange(g, 1, max, inside) === max ? inside : Atomics.load(g, 1);
      Atomics.add(g, 2, 1);
      Atomics.sub(g, 0, 1);
      p.release();
    }
  `);
  const g = new Int32Array(sab, 0, 3);
  assert.equal(g[2], 1200);
  assert.ok(g[1]! <= 2, `at most 2 inside, saw ${g[1]}`);
  assert.equal(sem.value, 2);
});

test('worker threads pass a Barrier together, round after round', async () => {
  const sab = new SharedArrayBuffer(512);
  new Barrier(sab, 0, 4);
  const results = await inWorkers(4, sab, `
    const b = new lib.Barrier(sab, 0);
    const w = new Int32Array(sab);
    let serial = 0, early = 0;
    for (let k = 0; k < 50; k++) {
      Atomics.add(w, 16 + k, 1);
      const r = index % 2 === 0 ? b.waitSync({ timeout: 60000 }) : await b.wait({ timeout: 60000 });
      if (Atomics.load(w, 16 + k) !== 4) early++;
      if (r.serial) serial++;
    }
    return { serial, early };
  `) as Array<{ serial: number; early: number }>;
  assert.equal(results.reduce((n, r) => n + r.early, 0), 0);
  assert.equal(results.reduce((n, r) => n + r.serial, 0), 50);
});

test('worker threads share an RWLock, an Event and a Condition', async () => {
  const sab = new SharedArrayBuffer(512);
  const ev = new Event(sab, 64);
  const results = inWorkers(3, sab, `
    const lock = new lib.RWLock(sab, 0), ev = new lib.Event(sab, 64);
    const m = new lib.Mutex(sab, 128), cv = new lib.Condition(sab, 192);
    const w = new Int32Array(sab);
    ev.waitSync({ timeout: 60000 });
    let bad = 0;
    for (let i = 0; i < 200; i++) {
      if (i % 5 === index) {
        const g = lock.acquireWriteSync({ timeout: 60000 });
        if (Atomics.add(w, 60, 1) !== 0 || Atomics.load(w, 61) !== 0) bad++;
        Atomics.sub(w, 60, 1);
        g.release();
      } else {
        const g = lock.acquireReadSync({ timeout: 60000 });
        Atomics.add(w, 61, 1);
        if (Atomics.load(w, 60) !== 0) bad++;
        Atomics.sub(w, 61, 1);
        g.release();
      }
    }
    // Then a countdown under a condition: the last one in wakes the others.
    const g = m.acquireSync({ timeout: 60000 });
    w[100]++;
    if (w[100] === 3) cv.notifyAll();
    while (w[100] < 3) cv.waitSync(m, { timeout: 60000 });
    g.release();
    return bad;
  `);
  await new Promise((r) => setTimeout(r, 20));
  ev.set();
  assert.deepEqual(await results, [0, 0, 0]);
  assert.equal(new RWLock(sab, 0).readers, 0);
  assert.equal(new Condition(sab, 192).waiting, 0);
  assert.equal(new Mutex(sab, 128).locked, false);
});
