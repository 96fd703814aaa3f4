/**
 * One trial of the channel benchmark.
 *
 *   node peer.js driver <spec>    started by run.js in a fresh process group:
 *                                 sets the mechanism up, starts the partner,
 *                                 measures, prints "RESULT <json>" and exits
 *   node peer.js partner <spec>   the other process (or worker thread): echoes
 *                                 the round trips, counts the one-way messages
 *                                 and reports once it has them all
 */
import { isMainThread, workerData } from 'node:worker_threads';
import { adapterById } from './adapters/index.js';
import { percentile, type BenchTraits, type Endpoint, type TrialFigures, type TrialSpec } from './common.js';

async function sendOne(ep: Endpoint, m: unknown): Promise<void> {
  const p = ep.send(m);
  if (p) await p;
}

function pickTraits(t: BenchTraits): BenchTraits {
  return { mechanism: t.mechanism, medium: t.medium, unit: t.unit, direction: t.direction, scope: t.scope, use: t.use };
}

async function runDriver(spec: TrialSpec): Promise<TrialFigures> {
  const adapter = adapterById(spec.mechanism);
  const side = await adapter.driver(spec);
  // A partner that dies must fail the trial at once, not hang it: a queue or a
  // ring does not notice its peer's death, so every wait races the partner's exit.
  let partnerError: unknown;
  const died = side.partnerExit.then(
    () => new Promise<never>(() => {}),
    (err: unknown) => {
      partnerError = err;
      throw err;
    },
  );
  died.catch(() => {});
  const raw = side.ep;
  const ep: Endpoint = {
    send: (m) => {
      const p = raw.send(m);
      return p ? Promise.race([p, died]) : undefined;
    },
    receive: () => Promise.race([raw.receive(), died]),
    close: () => raw.close(),
  };
  try {
    const payload = adapter.payload(spec.size);
    const lat: number[] = [];
    for (let i = 0; i < spec.warmup + spec.roundTrips; i++) {
      const t0 = process.hrtime.bigint();
      await sendOne(ep, payload);
      await ep.receive();
      if (i >= spec.warmup) lat.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
    // One-way warm-up (the burst path is not the round-trip path: it needs its own JIT warm-up).
    for (let i = 0; i < spec.onewayWarmup; i++) {
      const p = ep.send(payload);
      if (p) await p;
    }
    await ep.receive();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < spec.count; i++) {
      const p = ep.send(payload);
      if (p) await p;
    }
    const sendSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await ep.receive();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await side.partnerExit;
    await ep.close();
    const sum = lat.reduce((a, b) => a + b, 0);
    lat.sort((a, b) => a - b);
    const traits = raw.traits ? pickTraits(raw.traits) : adapter.traits;
    return { ...(traits ? { traits } : {}), rtt: { n: lat.length, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), mean: sum / lat.length }, oneway: { n: spec.count, seconds, sendSeconds } };
  } catch (err) {
    side.kill();
    raw.close().catch(() => {});
    throw partnerError ?? err;
  }
}

async function runPartner(spec: TrialSpec): Promise<void> {
  const adapter = adapterById(spec.mechanism);
  const ep = await adapter.partner(spec);
  for (let i = 0; i < spec.warmup + spec.roundTrips; i++) {
    await sendOne(ep, await ep.receive());
  }
  for (const n of [spec.onewayWarmup, spec.count]) {
    if (ep.drain) await ep.drain(n);
    else for (let i = 0; i < n; i++) await ep.receive();
    await sendOne(ep, adapter.ack());
  }
  await ep.close();
}

if (!isMainThread) {
  const data = workerData as { role: 'partner'; spec: TrialSpec };
  await runPartner(data.spec);
} else {
  const [role, json] = process.argv.slice(2);
  const spec = JSON.parse(json ?? '{}') as TrialSpec;
  try {
    if (role === 'driver') {
      const figures = await runDriver(spec);
      process.stdout.write(`RESULT ${JSON.stringify(figures)}\n`);
      process.exit(0);
    } else if (role === 'partner') {
      await runPartner(spec);
      process.exit(0);
    } else {
      throw new Error('usage: peer.js driver|partner <spec json>');
    }
  } catch (err) {
    // One line for the runner's report; the stack with BENCH_DEBUG=1.
    if (process.env['BENCH_DEBUG']) process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.stderr.write(`${role} ${spec.mechanism} ${spec.size} B: ${(err as Error).message ?? err}\n`);
    process.exit(1);
  }
}
