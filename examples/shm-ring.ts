// ShmRing: a lock-free ring in shared memory, the fastest channel between two
// processes on one host. A child streams 100 000 messages; the parent counts them.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ShmRing } from 'multiproc';

const [role, name] = process.argv.slice(2);
const COUNT = 100_000;

if (role === 'sender') {
  await using tx = ShmRing.open<Uint8Array>(name!, { codec: 'raw', role: 'sender' });
  const message = new Uint8Array(64).fill(7);
  for (let i = 0; i < COUNT; i++) if (!tx.trySend(message)) await tx.send(message); // send waits for room
} else {
  await using ring = ShmRing.create<Uint8Array>(`example-ring-${process.pid}`, { capacity: 1 << 20, codec: 'raw', role: 'receiver' });
  spawn(process.execPath, [fileURLToPath(import.meta.url), 'sender', ring.name], { stdio: 'inherit' });
  const started = performance.now();
  let count = 0;
  for await (const _m of ring) count++; // ends when the sender has closed
  console.log(`received ${count} messages in ${Math.round(performance.now() - started)} ms`);
}
