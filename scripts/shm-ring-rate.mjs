// Quick self-measurement of ShmRing: messages per second between two
// processes (not a test, not the benchmark). Build first (npx tsc -p .).
//
//   node scripts/shm-ring-rate.mjs [--size 100] [--count 2000000] [--mode spsc|mpmc] [--recv try|await|view]
//
// The parent receives, a child process sends. Prints one line of results.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lib = pathToFileURL(join(root, 'dist', 'src', 'index.js')).href;
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '100' },
    count: { type: 'string', default: '2000000' },
    mode: { type: 'string', default: 'spsc' },
    recv: { type: 'string', default: 'try' },
    capacity: { type: 'string', default: String(1 << 20) },
    child: { type: 'string' },
  },
});
const size = Number(values.size);
const count = Number(values.count);
const { ShmRing } = await import(lib);

if (values.child !== undefined) {
  // Sender.
  const ring = ShmRing.open(values.child, { codec: 'raw', role: 'sender' });
  const msg = new Uint8Array(size).fill(7);
  let waits = 0;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    if (!ring.trySend(msg)) {
      waits++;
      await ring.send(msg);
    }
  }
  if (process.env.RATE_VERBOSE) console.error(`sender: ${(performance.now() - t0).toFixed(0)} ms, ${waits} waits for room`);
  await ring.close();
  process.exit(0);
}

const name = `rate-${process.pid}`;
const ring = ShmRing.create(name, { codec: 'raw', mode: values.mode, capacity: Number(values.capacity), role: 'receiver' });
const child = spawn(process.execPath, [...(process.env.RATE_CHILD_FLAGS ? process.env.RATE_CHILD_FLAGS.split(' ') : []), fileURLToPath(import.meta.url), '--child', name, '--size', String(size), '--count', String(count)], { stdio: 'inherit' });
let got = 0;
let bytes = 0;
let empties = 0;
let start = 0;
const first = await ring.receive();
start = performance.now();
got = 1;
bytes = first.length;
if (values.recv === 'try') {
  while (got < count) {
    let m = ring.tryReceive();
    if (m === undefined) {
      empties++;
      m = await ring.receive();
    }
    got++;
    bytes += m.length;
  }
} else if (values.recv === 'await') {
  while (got < count) {
    bytes += (await ring.receive()).length;
    got++;
  }
} else {
  while (got < count) {
    const m = ring.tryReceiveView() ?? (await ring.receiveView());
    bytes += m.size;
    ring.release();
    got++;
  }
}
const ms = performance.now() - start;
if (process.env.RATE_VERBOSE) console.error(`receiver: ${empties} times empty`);
await new Promise((r) => child.on('exit', r));
await ring.close();
const rate = (got - 1) / (ms / 1000);
console.log(`${values.mode} ${size} B x ${count} (${values.recv}): ${Math.round(rate).toLocaleString('en-US')} msg/s, ${((bytes / (ms / 1000)) / 2 ** 20).toFixed(1)} MiB/s, ${ms.toFixed(0)} ms`);
