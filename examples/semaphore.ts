// Semaphore: at most N processes at once in a section. Four children share two
// permits; a counter in shared memory records the most that were ever inside.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Semaphore, SharedMemory } from 'multiproc';

const [role, name] = process.argv.slice(2);

if (role === 'child') {
  using slots = Semaphore.open(name!);
  using shm = SharedMemory.open(name!);
  const [inside, most] = [new Int32Array(shm.buffer, 0, 1), new Int32Array(shm.buffer, 4, 1)];
  using _permit = await slots.acquire({ timeout: 10_000 });
  const now = Atomics.add(inside, 0, 1) + 1;
  for (let m = Atomics.load(most, 0); now > m; m = Atomics.load(most, 0)) Atomics.compareExchange(most, 0, m, now);
  await sleep(50); // the work that only two may do at a time
  Atomics.sub(inside, 0, 1);
} else {
  const id = `example-sem-${process.pid}`;
  using _slots = Semaphore.create(id, { initial: 2, max: 2 });
  using shm = SharedMemory.create(id, 4096);
  const children = [1, 2, 3, 4].map(() => spawn(process.execPath, [fileURLToPath(import.meta.url), 'child', id], { stdio: 'inherit' }));
  await Promise.all(children.map((c) => once(c, 'exit')));
  console.log(`at most ${Atomics.load(new Int32Array(shm.buffer), 1)} of 4 processes held a permit at once`);
}
