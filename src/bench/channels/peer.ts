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
import { parkedGap, rttFigures, type BenchTraits, type Endpoint, type TrialFigures, type TrialSpec } from './common.js';

async function sendOne(ep: Endpoint, m: unknown): Promise<void> {
  const p = ep.send(m);
  if (p) await p;
}

const sleepWord = new Int32Array(new SharedArrayBuffer(4));
/** Sleeps the whole thread in the kernel (a futex wait that nothing wakes): finer than a timer's milliseconds. */
function sleepUs(us: number): void {
  Atomics.wait(sleepWord, 0, 0, us / 1000);
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
    // Round trips to an idle peer: the driver sleeps (the thread blocked, like
    // the C reference's nanosleep) long enough for the partner to stop spinning
    // and park; only send -> reply is timed.
    const parkedLat: number[] = [];
    const parked = spec.parked;
    if (parked && parked.roundTrips > 0) {
      for (let i = 0; i < parked.warmup + parked.roundTrips; i++) {
        sleepUs(parkedGap(parked));
        const t0 = process.hrtime.bigint();
        await sendOne(ep, payload);
        await ep.receive();
        if (i >= parked.warmup) parkedLat.push(Number(process.hrtime.bigint() - t0) / 1e3);
      }
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
    const traits = raw.traits ? pickTraits(raw.traits) : adapter.traits;
    return {
      ...(traits ? { traits } : {}),
      rtt: rttFigures(lat),
      ...(parkedLat.length > 0 ? { parked: rttFigures(parkedLat) } : {}),
      oneway: { n: spec.count, seconds, sendSeconds },
    };
  } catch (err) {
    side.kill();
    raw.close().catch(() => {});
    throw partnerError ?? err;
  }
}

async function runPartner(spec: TrialSpec): Promise<void> {
  const adapter = adapterById(spec.mechanism);
  const ep = await adapter.partner(spec);
  // The busy round trips, then the parked ones: the partner just echoes.
  const echoes = spec.warmup + spec.roundTrips + (spec.parked ? spec.parked.warmup + spec.parked.roundTrips : 0);
  for (let i = 0; i < echoes; i++) {
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
