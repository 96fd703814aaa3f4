import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedMemory, Semaphore } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child } from '../helpers/child.js';

leakGuard();

// Gauge words in the shared segment: 0 inside now, 1 most ever inside, 2 entries.
const worker = `
  import { SharedMemory, Semaphore } from 'multiproc';
  const [shmName, semName, mode, rounds] = process.argv.slice(1);
  const shm = SharedMemory.open(shmName);
  const sem = semName === '-' ? new Semaphore(shm, 64) : Semaphore.open(semName);
  const g = new Int32Array(shm.buffer, 0, 3);
  const spin = (n) => { let x = 0; for (let i = 0; i < n; i++) x += i; return x; };
  for (let i = 0; i < Number(rounds); i++) {
    const permit = mode === 'async' ? await sem.acquire({ timeout: 60000 }) : sem.acquireSync({ timeout: 60000 });
    const inside = Atomics.add(g, 0, 1) + 1;
    let max = Atomics.load(g, 1);
    while (inside > max) max = Atomics.compareExchange(g, 1, max, inside) === max ? inside : Atomics.load(g, 1);
    Atomics.add(g, 2, 1);
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
    else spin(2000);
    Atomics.sub(g, 0, 1);
    permit.release();
  }
  sem.close();
  shm.close();
`;

async function runFour(shmName: string, semName: string, rounds: number): Promise<void> {
  const kids = [0, 1, 2, 3].map((i) => new Child(worker, { args: [shmName, semName, i % 2 === 0 ? 'sync' : 'async', String(rounds)], timeout: 120000 }));
  const results = await Promise.all(kids.map((k) => k.exited));
  for (const r of results) assert.equal(r.code, 0, r.stderr);
}

test('a named Semaphore of 2 never lets more than 2 of 4 processes in', async () => {
  using shm = SharedMemory.create(uniqueName('gauge'), 4096);
  const semName = uniqueName('sem');
  using sem = Semaphore.create(semName, { initial: 2, max: 2 });
  await runFour(shm.name, semName, 300);
  const g = new Int32Array(shm.buffer, 0, 3);
  assert.equal(g[2], 1200, 'every round entered once');
  assert.equal(g[0], 0);
  assert.ok(g[1]! >= 1 && g[1]! <= 2, `at most 2 inside at once, saw ${g[1]}`);
  assert.equal(sem.value, 2, 'every permit came back');
});

test('a Semaphore placed in shared memory works as a lock across 4 processes', async () => {
  using shm = SharedMemory.create(uniqueName('placed'), 4096);
  using sem = new Semaphore(shm, 64, { initial: 1 });
  await runFour(shm.name, '-', 200);
  const g = new Int32Array(shm.buffer, 0, 3);
  assert.equal(g[2], 800);
  assert.equal(g[1], 1, 'never two inside');
  assert.equal(sem.value, 1);
});

test('an opener sees the parameters the creator stored', async () => {
  const name = uniqueName('params');
  using sem = Semaphore.create(name, { initial: 3, max: 5 });
  const child = new Child(`
    import { Semaphore } from 'multiproc';
    const s = Semaphore.open(process.argv[1]);
    console.log('value ' + s.value + ' max ' + s.max);
    s.tryAcquire();
    s.close();
  `, { args: [name] });
  const r = await child.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^value 3 max 5$/m);
  assert.equal(sem.value, 2, 'the child took one permit');
  assert.equal(sem.max, 5);
});

test('a waiter in another process is woken by release()', async () => {
  const name = uniqueName('wake');
  using sem = Semaphore.create(name);
  const child = new Child(`
    import { Semaphore } from 'multiproc';
    const s = Semaphore.open(process.argv[1]);
    console.log('waiting');
    const p = await s.acquire({ timeout: 30000 });
    console.log('acquired');
    s.close();
  `, { args: [name] });
  await child.waitFor('waiting');
  sem.release();
  const r = await child.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /acquired/);
  assert.equal(sem.value, 0);
});
