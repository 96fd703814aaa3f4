// Mutex: a robust lock between processes. Three children do a slow
// read-modify-write of a shared total; the lock keeps every update.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Mutex, SharedMemory } from 'multiproc';

const [role, name] = process.argv.slice(2);

if (role === 'child') {
  using shm = SharedMemory.open(name!);
  const lock = new Mutex(shm, 0); // the lock lives in the segment, next to the data
  const total = new Int32Array(shm.buffer, 64, 1);
  for (let i = 0; i < 20; i++) {
    using _guard = await lock.acquire({ timeout: 10_000 }); // released at the end of the block
    const seen = total[0]!;
    await sleep(1); // without the lock, another process would write in between
    total[0] = seen + 1;
  }
} else {
  const segment = `example-mutex-${process.pid}`;
  using shm = SharedMemory.create(segment, 4096);
  const children = [1, 2, 3].map(() => spawn(process.execPath, [fileURLToPath(import.meta.url), 'child', segment], { stdio: 'inherit' }));
  await Promise.all(children.map((c) => once(c, 'exit')));
  console.log(`total = ${new Int32Array(shm.buffer, 64, 1)[0]} (3 processes x 20 locked updates)`);
}
