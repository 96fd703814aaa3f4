/**
 * The NATS benchmark: the nats channel through a local nats-server, beside
 * our Unix and TCP socket channels, measured in the same run, between two
 * processes on loopback.
 *
 *   node dist/bench/nats/run.js [--quick] [--json FILE]
 *
 * - round trip: one message out, the peer echoes it, p50/p99 over many;
 * - one-way throughput: a burst of messages, the peer counts them and
 *   answers once all arrived; messages/s and MB/s.
 *
 * The benchmark starts its own nats-server (no JetStream) on a free port and
 * stops it at the end; without nats-server installed it says so and exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Channel } from '../../src/channel/channel.js';
import { NatsChannel } from '../../src/channel/transports/nats.js';
import { Socket, type SocketServer } from '../../src/channel/transports/socket.js';
import { NatsServer, natsSkip } from '../../test/helpers/nats-server.js';
import { latency } from '../lib/stats.js';

const quick = process.argv.includes('--quick');
const jsonAt = process.argv.indexOf('--json');
const jsonFile = jsonAt > 0 ? process.argv[jsonAt + 1] : undefined;
const peer = fileURLToPath(new URL('./peer.js', import.meta.url));
const sizes = [100, 65536];

interface Row {
  mechanism: string;
  size: number;
  p50us: number;
  p99us: number;
  msgsPerSec: number;
  mbPerSec: number;
}

async function withPeer(args: string[], body: (ready: Promise<void>) => Promise<void>): Promise<void> {
  const child: ChildProcess = spawn(process.execPath, [peer, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (c) => reject(new Error(`peer exited with ${c}`)));
  });
  try {
    await body(ready);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

async function measure(ch: Channel<Uint8Array>, mechanism: string, size: number): Promise<Row> {
  const msg = new Uint8Array(size).fill(1);
  // Round trip.
  const rounds = quick ? 300 : size > 1000 ? 2000 : 5000;
  for (let i = 0; i < 100; i++) {
    await ch.send(msg, { type: 1 });
    await ch.receive();
  }
  const lat: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = process.hrtime.bigint();
    await ch.send(msg, { type: 1 });
    await ch.receive();
    lat.push(Number(process.hrtime.bigint() - t));
  }
  const l = latency(lat);
  // One-way throughput.
  const count = quick ? 2000 : size > 1000 ? 10_000 : 100_000;
  const n = Buffer.alloc(4);
  n.writeUInt32LE(count, 0);
  await ch.send(n, { type: 3 });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) if (!ch.trySend(msg, { type: 2 })) await ch.send(msg, { type: 2 });
  const got = Buffer.from(await ch.receive({ type: 3, timeout: 120_000 })).readUInt32LE(0);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (got !== count) throw new Error(`${mechanism}: the peer counted ${got} of ${count}`);
  return { mechanism, size, p50us: l.p50 / 1000, p99us: l.p99 / 1000, msgsPerSec: count / secs, mbPerSec: (count * size) / secs / 1e6 };
}

async function socketCase(kind: 'unix' | 'tcp', dir: string, rows: Row[]): Promise<void> {
  const server: SocketServer<Uint8Array> = await Socket.listen<Uint8Array>({ ...(kind === 'unix' ? { path: join(dir, 'b.sock') } : { port: 0 }), codec: 'raw', maxMessageSize: 1024 * 1024 - 256 });
  try {
    const where = kind === 'unix' ? join(dir, 'b.sock') : String(server.address.port);
    await withPeer([kind, where], async (ready) => {
      const it = server[Symbol.asyncIterator]();
      const conn = (await it.next()).value as Channel<Uint8Array>;
      await ready;
      for (const size of sizes) rows.push(await measure(conn, kind, size));
      await conn.send(new Uint8Array(0), { type: 4 });
      await conn.close();
    });
  } finally {
    await server.close();
  }
}

async function main(): Promise<void> {
  if (natsSkip) {
    console.error(`bench:nats skipped: ${natsSkip}`);
    return;
  }
  const rows: Row[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'mp-bench-nats-'));
  const server = await NatsServer.start({ jetstream: false });
  const onSignal = (): void => {
    void server.stop().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await withPeer(['nats', server.url, 'bench'], async (ready) => {
      await ready;
      const ch = await NatsChannel.open<Uint8Array>({ servers: server.url, send: 'bench.in', receive: 'bench.out', codec: 'raw' });
      // The peer subscribed before printing ready.
      for (const size of sizes) rows.push(await measure(ch, 'nats', size));
      await ch.send(new Uint8Array(0), { type: 4 });
      await ch.close();
    });
    await socketCase('unix', dir, rows);
    await socketCase('tcp', dir, rows);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const fmt = (x: number, d = 1): string => x.toFixed(d);
  console.log(`NATS benchmark (${cpus().length} cores, ${cpus()[0]?.model ?? '?'}; node ${process.version}; nats-server via loopback)`);
  console.log('| mechanism | size | round trip p50 (µs) | p99 (µs) | one-way msgs/s | MB/s |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.mechanism} | ${r.size} B | ${fmt(r.p50us)} | ${fmt(r.p99us)} | ${Math.round(r.msgsPerSec).toLocaleString('en-US')} | ${fmt(r.mbPerSec)} |`);
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ date: new Date().toISOString(), rows }, null, 2));
}

await main();
