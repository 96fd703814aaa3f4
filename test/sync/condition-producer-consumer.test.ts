import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedMemory, Mutex, Condition } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child } from '../helpers/child.js';

leakGuard();

// Queue words: 0 head, 1 tail, 2 length; slots from word 16. Guarded by the mutex.
const CAPACITY = 4;
const ITEMS = 500;

const producer = `
  import { SharedMemory, Mutex, Condition } from 'multiproc';
  const [shmName, mName, notEmptyName, notFullName] = process.argv.slice(1);
  const shm = SharedMemory.open(shmName);
  const m = Mutex.open(mName), notEmpty = Condition.open(notEmptyName), notFull = Condition.open(notFullName);
  const q = new Int32Array(shm.buffer);
  for (let i = 1; i <= ${ITEMS}; i++) {
    const g = m.acquireSync({ timeout: 30000 });
    while (q[2] === ${CAPACITY}) notFull.waitSync(m, { timeout: 30000 });
    q[16 + q[1]] = i;
    q[1] = (q[1] + 1) % ${CAPACITY};
    q[2]++;
    notEmpty.notify();
    g.release();
  }
  for (const x of [m, notEmpty, notFull, shm]) x.close();
`;

const consumer = `
  import { SharedMemory, Mutex, Condition } from 'multiproc';
  const [shmName, mName, notEmptyName, notFullName] = process.argv.slice(1);
  const shm = SharedMemory.open(shmName);
  const m = Mutex.open(mName), notEmpty = Condition.open(notEmptyName), notFull = Condition.open(notFullName);
  const q = new Int32Array(shm.buffer);
  let sum = 0;
  for (let expected = 1; expected <= ${ITEMS}; expected++) {
    const g = await m.acquire({ timeout: 30000 });
    while (q[2] === 0) await notEmpty.wait(m, { timeout: 30000 });
    const v = q[16 + q[0]];
    q[0] = (q[0] + 1) % ${CAPACITY};
    q[2]--;
    notFull.notify();
    g.release();
    if (v !== expected) { console.error('got ' + v + ', expected ' + expected); process.exit(3); }
    sum += v;
  }
  console.log('sum ' + sum);
  for (const x of [m, notEmpty, notFull, shm]) x.close();
`;

test('producer and consumer processes hand 500 items through a bounded queue with two Conditions', async () => {
  using shm = SharedMemory.create(uniqueName('queue'), 4096);
  const names = [uniqueName('mu'), uniqueName('notempty'), uniqueName('notfull')] as const;
  using m = Mutex.create(names[0]);
  using notEmpty = Condition.create(names[1]);
  using notFull = Condition.create(names[2]);
  const args = [shm.name, ...names];
  const kids = [new Child(consumer, { args, timeout: 120000 }), new Child(producer, { args, timeout: 120000 })];
  const [c, p] = await Promise.all(kids.map((k) => k.exited));
  assert.equal(p!.code, 0, p!.stderr);
  assert.equal(c!.code, 0, c!.stderr);
  assert.match(c!.stdout, new RegExp(`^sum ${(ITEMS * (ITEMS + 1)) / 2}$`, 'm'));
  assert.equal(new Int32Array(shm.buffer)[2], 0);
  assert.equal(notEmpty.waiting, 0);
  assert.equal(notFull.waiting, 0);
  assert.equal(m.locked, false);
});

test('a waiter in another process returns after notify() and holds the mutex again', async () => {
  using shm = SharedMemory.create(uniqueName('cv'), 4096);
  const m = new Mutex(shm, 0);
  const cv = new Condition(shm, 64);
  const flag = new Int32Array(shm.buffer, 128, 1);
  const child = new Child(`
    import { SharedMemory, Mutex, Condition } from 'multiproc';
    const shm = SharedMemory.open(process.argv[1]);
    const m = new Mutex(shm, 0), cv = new Condition(shm, 64);
    const flag = new Int32Array(shm.buffer, 128, 1);
    const g = await m.acquire({ timeout: 30000 });
    console.log('waiting');
    while (flag[0] === 0) await cv.wait(m, { timeout: 30000 });
    console.log('woken, holding: ' + m.locked);
    g.release();
    shm.close();
  `, { args: [shm.name] });
  await child.waitFor('waiting');
  // The child released the mutex inside wait(): we can take it.
  const g = await m.acquire({ timeout: 30000 });
  flag[0] = 1;
  cv.notify();
  g.release();
  const r = await child.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /woken, holding: true/);
  assert.equal(cv.waiting, 0);
});
