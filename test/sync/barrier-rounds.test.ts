import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedMemory, Barrier } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child } from '../helpers/child.js';

leakGuard();

const ROUNDS = 30;
// Shared words: arrivals[k] at 16 + k, serials[k] at 64 + k, early passes at 8.
const party = `
  import { SharedMemory, Barrier } from 'multiproc';
  const [shmName, barrierName, mode] = process.argv.slice(1);
  const shm = SharedMemory.open(shmName);
  const b = Barrier.open(barrierName);
  const w = new Int32Array(shm.buffer);
  for (let k = 0; k < ${ROUNDS}; k++) {
    Atomics.add(w, 16 + k, 1);
    if (k % 3 === 0) await new Promise((r) => setTimeout(r, 1 + (k % 5)));
    const r = mode === 'async' ? await b.wait({ timeout: 60000 }) : b.waitSync({ timeout: 60000 });
    // Everyone must have arrived at round k before anyone passes it.
    if (Atomics.load(w, 16 + k) !== 4) Atomics.add(w, 8, 1);
    if (r.serial) Atomics.add(w, 64 + k, 1);
  }
  console.log('passed ' + ${ROUNDS});
  b.close();
  shm.close();
`;

test('a Barrier releases 4 processes together, round after round, with one serial party per round', async () => {
  using shm = SharedMemory.create(uniqueName('rounds'), 4096);
  const name = uniqueName('barrier');
  using b = Barrier.create(name, 4);
  assert.equal(b.parties, 4);
  const kids = [0, 1, 2, 3].map((i) => new Child(party, { args: [shm.name, name, i % 2 === 0 ? 'sync' : 'async'], timeout: 120000 }));
  const results = await Promise.all(kids.map((k) => k.exited));
  for (const r of results) {
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`passed ${ROUNDS}`));
  }
  const w = new Int32Array(shm.buffer);
  assert.equal(w[8], 0, 'nobody passed a round before all four arrived');
  for (let k = 0; k < ROUNDS; k++) {
    assert.equal(w[16 + k], 4, `four arrivals in round ${k}`);
    assert.equal(w[64 + k], 1, `one serial party in round ${k}`);
  }
  assert.equal(b.waiting, 0);
  assert.equal(b.broken, false);
});

test('a party that is still missing keeps the others waiting', async () => {
  const b = new Barrier(new SharedArrayBuffer(64), 0, 3);
  let passed = 0;
  const first = [b.wait({ timeout: 20000 }), b.wait({ timeout: 20000 })].map((p) => p.then((r) => (passed++, r)));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(passed, 0);
  assert.equal(b.waiting, 2);
  const last = await b.wait({ timeout: 20000 });
  const rest = await Promise.all(first);
  assert.deepEqual([last, ...rest].map((r) => r.serial).sort(), [false, false, true]);
  assert.equal(b.waiting, 0);
  // One party: every wait passes at once, and is serial.
  const solo = new Barrier(new SharedArrayBuffer(64), 0, 1);
  assert.deepEqual(await solo.wait({ timeout: 0 }), { serial: true });
  assert.deepEqual(solo.waitSync(), { serial: true });
});
