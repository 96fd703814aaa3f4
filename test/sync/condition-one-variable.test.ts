import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { SharedMemory, Mutex, Condition, TimeoutError } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child, libraryUrl } from '../helpers/child.js';

leakGuard();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeout = 30000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(5);
  }
}

// One Condition for two predicates (a single-slot mailbox): Mutex at 0,
// Condition at 64, `full` at byte 128, the value at byte 132. Each side
// notifies the other and then, next round, waits itself: a notify it could
// take back would leave both sides waiting.
const ROUNDS = 2000;

function side(role: 'put' | 'take', how: 'async' | 'sync', wakeAll: boolean): string {
  const [waitFor, after] = role === 'put' ? ['w[0] === 1', 'w[0] = 1; w[1] = i;'] : ['w[0] === 0', 'if (w[1] !== i) throw new Error("got " + w[1] + ", expected " + i); w[0] = 0;'];
  const notify = wakeAll ? 'cv.notifyAll()' : 'cv.notify()';
  const loop = (acquire: string, wait: string): string => `
    const m = new Mutex(sab, 0), cv = new Condition(sab, 64);
    const w = new Int32Array(sab, 128, 2);
    for (let i = 1; i <= ${ROUNDS}; i++) {
      const g = ${acquire};
      while (${waitFor}) ${wait};
      ${after}
      ${notify};
      g.release();
    }
    m.close(); cv.close();
  `;
  if (how === 'async') {
    return `
      import { SharedMemory, Mutex, Condition } from 'multiproc';
      const shm = SharedMemory.open(process.argv[1]);
      const sab = shm.buffer;
      ${loop('await m.acquire({ timeout: 60000 })', 'await cv.wait(m, { timeout: 60000 })')}
      shm.close();
      console.log('done ${role}');
    `;
  }
  // Blocking waits, in a worker thread of the child process.
  // (Dynamic imports: the child runs with --input-type=module, which eval workers inherit.)
  const worker = `
    import('node:worker_threads').then(async ({ workerData, parentPort }) => {
      const { Mutex, Condition } = await import(${JSON.stringify(libraryUrl)});
      const { sab } = workerData;
      try {
        ${loop('m.acquireSync({ timeout: 60000 })', 'cv.waitSync(m, { timeout: 60000 })')}
        parentPort.postMessage('ok');
      } catch (e) {
        parentPort.postMessage(String(e && e.stack || e));
      }
    });
  `;
  return `
    import { SharedMemory } from 'multiproc';
    import { Worker } from 'node:worker_threads';
    import { once } from 'node:events';
    const shm = SharedMemory.open(process.argv[1]);
    const worker = new Worker(${JSON.stringify(worker)}, { eval: true, workerData: { sab: shm.buffer } });
    const [msg] = await once(worker, 'message');
    await worker.terminate();
    shm.close();
    if (msg !== 'ok') { console.error(msg); process.exit(3); }
    console.log('done ${role}');
  `;
}

for (const [how, wakeAll] of [
  ['async', false],
  ['sync', false],
  ['async', true],
] as const) {
  test(`two processes share one Condition for two predicates: ${ROUNDS} exact handoffs (${how} waits, ${wakeAll ? 'notifyAll' : 'notify'})`, async () => {
    using shm = SharedMemory.create(uniqueName('cv1'), 4096);
    const kids = [new Child(side('take', how, wakeAll), { args: [shm.name], timeout: 240000 }), new Child(side('put', how, wakeAll), { args: [shm.name], timeout: 240000 })];
    const [take, put] = await Promise.all(kids.map((k) => k.exited));
    assert.equal(put!.code, 0, put!.stderr);
    assert.equal(take!.code, 0, take!.stderr);
    assert.match(put!.stdout, /done put/);
    assert.match(take!.stdout, /done take/);
    const w = new Int32Array(shm.buffer, 128, 2);
    assert.deepEqual([w[0], w[1]], [0, ROUNDS]);
    const cv = new Condition(shm, 64);
    assert.equal(cv.waiting, 0);
    assert.equal(new Mutex(shm, 0).locked, false);
  });
}

// Each worker: take the mutex, wait once, count itself woken (word 32), release.
const waiterSource = `
  const { workerData, parentPort } = require('node:worker_threads');
  import(${JSON.stringify(libraryUrl)}).then(({ Mutex, Condition }) => {
    const { sab, timeout } = workerData;
    const m = new Mutex(sab, 0), cv = new Condition(sab, 64);
    const woken = new Int32Array(sab, 128, 1);
    const g = m.acquireSync({ timeout: 60000 });
    try {
      cv.waitSync(m, { timeout });
      Atomics.add(woken, 0, 1);
      parentPort.postMessage('woken');
    } catch (e) {
      parentPort.postMessage(e.code);
    } finally {
      g.release();
    }
  });
`;

function waiter(sab: SharedArrayBuffer, timeout = 60000): { worker: Worker; result: Promise<string> } {
  const worker = new Worker(waiterSource, { eval: true, workerData: { sab, timeout } });
  return { worker, result: once(worker, 'message').then(([m]) => m as string) };
}

test('the notifier cannot take back its own notify: it goes to the thread that was waiting', async () => {
  const sab = new SharedArrayBuffer(256);
  const m = new Mutex(sab, 0);
  const cv = new Condition(sab, 64);
  const w = waiter(sab);
  try {
    await until('one waiter', () => cv.waiting === 1);
    const g = await m.acquire({ timeout: 30000 });
    cv.notify();
    assert.equal(cv.waiting, 0);
    // We wait right after our notify, before the woken worker has the mutex back.
    await assert.rejects(cv.wait(m, { timeout: 300 }), (e: any) => e instanceof TimeoutError);
    assert.equal(await w.result, 'woken');
    assert.equal(Atomics.load(new Int32Array(sab, 128, 1), 0), 1);
    g.release();
  } finally {
    await w.worker.terminate();
  }
});

test('a thread that starts waiting after a notify is not woken by it', async () => {
  const sab = new SharedArrayBuffer(256);
  const m = new Mutex(sab, 0);
  const cv = new Condition(sab, 64);
  const woken = new Int32Array(sab, 128, 1);
  const first = waiter(sab);
  let second: ReturnType<typeof waiter> | undefined;
  try {
    await until('first waiter', () => cv.waiting === 1);
    const g = await m.acquire({ timeout: 30000 });
    cv.notify();
    // The second waiter queues on the mutex now and waits only after we release it.
    second = waiter(sab);
    await sleep(50);
    g.release();
    assert.equal(await first.result, 'woken');
    await until('second waiter', () => cv.waiting === 1);
    await sleep(200);
    assert.equal(Atomics.load(woken, 0), 1, 'the second waiter is still waiting');
    cv.notify();
    assert.equal(await second.result, 'woken');
    assert.equal(Atomics.load(woken, 0), 2);
  } finally {
    await Promise.all([first.worker.terminate(), second?.worker.terminate()]);
  }
});

test('notify() lets exactly one waiter of several processes and threads return each time', async () => {
  using shm = SharedMemory.create(uniqueName('cvn'), 4096);
  const m = new Mutex(shm, 0);
  const cv = new Condition(shm, 64);
  const woken = new Int32Array(shm.buffer, 128, 1);
  // Three async waiters in a child process, two here.
  const child = new Child(`
    import { SharedMemory, Mutex, Condition } from 'multiproc';
    const shm = SharedMemory.open(process.argv[1]);
    const m = new Mutex(shm, 0), cv = new Condition(shm, 64);
    const woken = new Int32Array(shm.buffer, 128, 1);
    await Promise.all([0, 1, 2].map(async () => {
      const g = await m.acquire({ timeout: 60000 });
      await cv.wait(m, { timeout: 60000 });
      Atomics.add(woken, 0, 1);
      g.release();
    }));
    shm.close();
  `, { args: [shm.name], timeout: 120000 });
  const local = [0, 1].map(async () => {
    const g = await m.acquire({ timeout: 60000 });
    await cv.wait(m, { timeout: 60000 });
    Atomics.add(woken, 0, 1);
    g.release();
  });
  await until('five waiters', () => cv.waiting === 5);
  for (let k = 1; k <= 4; k++) {
    cv.notify();
    assert.equal(cv.waiting, 5 - k);
    await until(`${k} woken`, () => Atomics.load(woken, 0) === k);
    await sleep(100);
    assert.equal(Atomics.load(woken, 0), k, `notify number ${k} let exactly one return`);
  }
  cv.notifyAll();
  await Promise.all(local);
  const r = await child.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(Atomics.load(woken, 0), 5);
  assert.equal(cv.waiting, 0);
});

test('a waiter that gave up does not swallow a notify meant for the threads still waiting', async () => {
  const sab = new SharedArrayBuffer(256);
  const m = new Mutex(sab, 0);
  const cv = new Condition(sab, 64);
  const woken = new Int32Array(sab, 128, 1);
  const a = waiter(sab);
  let b: ReturnType<typeof waiter> | undefined;
  try {
    await until('first waiter', () => cv.waiting === 1);
    // Our wait sits between the two workers' and is given up.
    const g = await m.acquire({ timeout: 30000 });
    const ac = new AbortController();
    const mine = cv.wait(m, { timeout: 60000, signal: ac.signal });
    b = waiter(sab);
    await until('three waiters', () => cv.waiting === 3);
    ac.abort();
    await assert.rejects(mine, (e: any) => e.code === 'ABORT_ERR');
    g.release();
    assert.equal(cv.waiting, 2);
    cv.notify();
    await until('one woken', () => Atomics.load(woken, 0) >= 1);
    cv.notify();
    assert.deepEqual(await Promise.all([a.result, b.result]), ['woken', 'woken']);
    assert.equal(cv.waiting, 0);
  } finally {
    await Promise.all([a.worker.terminate(), b?.worker.terminate()]);
  }
});

test('a notified wait takes the mutex back when its holder was killed holding it', async () => {
  using shm = SharedMemory.create(uniqueName('cvdied'), 4096);
  const m = new Mutex(shm, 0);
  const cv = new Condition(shm, 64);
  const g = await m.acquire({ timeout: 30000 });
  const waited = cv.wait(m, { timeout: 60000 });
  const child = new Child(`
    import { SharedMemory, Mutex, Condition } from 'multiproc';
    const shm = SharedMemory.open(process.argv[1]);
    const m = new Mutex(shm, 0), cv = new Condition(shm, 64);
    m.acquireSync({ timeout: 30000 });
    cv.notify();
    console.log('holding');
    setInterval(() => {}, 1000);
  `, { args: [shm.name] });
  await child.waitFor('holding');
  child.process.kill('SIGKILL');
  await child.exited;
  await waited;
  assert.equal(m.locked, true);
  assert.equal(cv.waiting, 0);
  g.release();
  assert.equal(m.locked, false);
  const again = m.tryAcquire();
  assert.ok(again);
  assert.equal(again.ownerDied, false, 'the owner-died mark was consumed by the wait');
  again.release();
});
