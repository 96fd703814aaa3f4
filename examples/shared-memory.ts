// SharedMemory: a segment that several processes map; Atomics work across them.
// Two child processes each add 1000 to a counter in the segment.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { SharedMemory } from 'multiproc';

const [role, name] = process.argv.slice(2);

if (role === 'child') {
  using shm = SharedMemory.open(name!);
  const counter = new Int32Array(shm.buffer, 0, 1);
  for (let i = 0; i < 1000; i++) Atomics.add(counter, 0, 1);
} else {
  const segment = `example-shm-${process.pid}`;
  using shm = SharedMemory.create(segment, 4096); // removed again when closed
  const children = [1, 2].map(() => spawn(process.execPath, [fileURLToPath(import.meta.url), 'child', segment], { stdio: 'inherit' }));
  await Promise.all(children.map((c) => once(c, 'exit')));
  console.log(`counter = ${Atomics.load(new Int32Array(shm.buffer), 0)}`); // counter = 2000
}
