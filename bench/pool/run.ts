/**
 * `npm run bench:pool`: our Pool against piscina, tinypool and workerpool, and
 * our RPC over a shared-memory ring and over a socket pair against plain
 * child_process IPC. Each trial runs in a fresh process (case.ts).
 *
 *   node dist/bench/pool/run.js [--quick] [--trials N] [--size N] [--tasks N]
 *        [--big-tasks N] [--elements N] [--items N] [--chunk-size N] [--concurrency N]
 *        [--calls N] [--in-flight N] [--only a,b] [--json FILE]
 *
 * Prints a table with ratios and writes the results to bench/results/pool-<time>.json.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine } from '../lib/machine.js';
import { median } from '../lib/stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = ((): string => {
  let dir = here;
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bench'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find the package root');
})();

const { values: a } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    trials: { type: 'string' },
    size: { type: 'string', default: '2' },
    tasks: { type: 'string' },
    'big-tasks': { type: 'string' },
    elements: { type: 'string', default: String(131072) },
    items: { type: 'string' },
    'chunk-size': { type: 'string', default: '1000' },
    concurrency: { type: 'string' },
    calls: { type: 'string' },
    'in-flight': { type: 'string', default: '64' },
    only: { type: 'string' },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (a.help) {
  console.log(`Usage: node dist/bench/pool/run.js [options]
  --quick          1 trial, fewer tasks (a smoke run)
  --trials N       trials per row, each in a fresh process (default 1; the median is reported)
  --size N         workers per pool (default 2)
  --tasks N        tiny tasks per trial (default 5000)
  --big-tasks N    tasks with a Float64Array argument per trial (default 200)
  --elements N     length of that Float64Array (default 131072: 1 MiB)
  --items N        items of the map case (default 1000000)
  --chunk-size N   items per chunk in the map case (default 1000)
  --concurrency N  concurrentTasksPerWorker of our Pool (default: the Pool's default)
  --calls N        RPC round trips per trial, after as many unmeasured (default 10000)
  --in-flight N    calls in flight in the pipelined RPC figure (default 64)
  --only a,b       only rows whose id contains one of these
  --json FILE      where to write the results (default bench/results/pool-<time>.json)`);
  process.exit(0);
}
const int = (v: string | undefined, fallback: number, what: string): number => {
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${what}: a positive integer`);
  return n;
};
const quick = a.quick === true;
const trials = int(a.trials, 1, 'trials');
const params = {
  size: int(a.size, 2, 'size'),
  tasks: int(a.tasks, quick ? 2000 : 5000, 'tasks'),
  bigTasks: int(a['big-tasks'], quick ? 50 : 200, 'big-tasks'),
  elements: int(a.elements, 131072, 'elements'),
  items: int(a.items, quick ? 200000 : 1000000, 'items'),
  chunkSize: int(a['chunk-size'], 1000, 'chunk-size'),
  ...(a.concurrency !== undefined ? { concurrency: int(a.concurrency, 16, 'concurrency') } : {}),
  calls: int(a.calls, quick ? 1000 : 10000, 'calls'),
  inFlight: int(a['in-flight'], 64, 'in-flight'),
};
const only = a.only?.split(',').map((s) => s.trim()).filter(Boolean);

interface Row {
  id: string;
  kind: 'tiny' | 'f64' | 'map' | 'rpc';
  impl: string;
  label: string;
}
const pools: [string, string][] = [
  ['multiproc-stream', 'multiproc Pool, socket pair (processes)'],
  ['multiproc-ring', 'multiproc Pool, shared-memory rings (processes)'],
  ['piscina', 'piscina (worker threads)'],
  ['tinypool', 'tinypool (worker threads)'],
  ['tinypool-process', 'tinypool (child processes)'],
  ['workerpool', 'workerpool (worker threads)'],
  ['workerpool-process', 'workerpool (child processes)'],
];
/** The process-based pools of other libraries: the yardstick of the 3x target. */
const processPools = new Set(['workerpool-process', 'tinypool-process']);
const rows: Row[] = (
  [
  ...pools.map(([impl, label]) => ({ id: `tiny/${impl}`, kind: 'tiny' as const, impl, label })),
  // workerpool's and tinypool's child processes talk JSON, which cannot carry a Float64Array.
  ...pools.filter(([impl]) => !processPools.has(impl)).map(([impl, label]) => ({ id: `f64/${impl}`, kind: 'f64' as const, impl, label })),
  // map-1M: Pool.map with chunkSize; the others run one task per chunk of the same size.
  ...pools
    .filter(([impl]) => ['multiproc-stream', 'multiproc-ring', 'piscina', 'tinypool-process', 'workerpool-process'].includes(impl))
    .map(([impl, label]) => ({ id: `map-1M/${impl}`, kind: 'map' as const, impl, label })),
  { id: 'rpc/ring', kind: 'rpc', impl: 'ring', label: 'multiproc RPC over ShmRing pair' },
  { id: 'rpc/ring-spin', kind: 'rpc', impl: 'ring-spin', label: 'multiproc RPC over ShmRing pair, spinUs: 50 on both ends' },
  { id: 'rpc/stream', kind: 'rpc', impl: 'stream', label: 'multiproc RPC over socket pair' },
  { id: 'rpc/fork', kind: 'rpc', impl: 'fork', label: 'child_process.fork IPC (send/message)' },
  ] as Row[]
).filter((r) => only === undefined || only.some((o) => r.id.includes(o)));

function trial(row: Row): Promise<Record<string, number>> {
  const p = { ...params, tasks: row.kind === 'f64' ? params.bigTasks : params.tasks };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(here, 'case.js'), row.kind, row.impl, JSON.stringify(p)], { timeout: 120_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${row.id}: ${err.message}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop()!));
      } catch {
        reject(new Error(`${row.id}: no result\n${stdout}\n${stderr}`));
      }
    });
  });
}

const machine = describeMachine(root, process.env['CC'] ?? 'cc');
const startedAt = new Date().toISOString();
const results: Array<Row & { trials: Record<string, number>[]; median: Record<string, number>; error?: string }> = [];
for (const row of rows) {
  const ts: Record<string, number>[] = [];
  let error: string | undefined;
  for (let t = 0; t < trials; t++) {
    try {
      ts.push(await trial(row));
    } catch (err) {
      error = (err as Error).message;
      break;
    }
  }
  const keys = ts.length > 0 ? Object.keys(ts[0]!).filter((k) => typeof ts[0]![k] === 'number') : [];
  const med = Object.fromEntries(keys.map((k) => [k, median(ts.map((x) => x[k]!))]));
  results.push({ ...row, trials: ts, median: med, ...(error !== undefined ? { error } : {}) });
  const head =
    row.kind === 'rpc'
      ? `${fmt(med.callsPerSecond)} calls/s (${fmt(med.usPerCall)} µs each), ${fmt(med.pipelinedCallsPerSecond)} calls/s with ${params.inFlight} in flight`
      : row.kind === 'map'
        ? `${fmt(med.itemsPerSecond)} items/s`
        : `${fmt(med.tasksPerSecond)} tasks/s`;
  console.error(`${row.id.padEnd(28)} ${error !== undefined ? `FAILED: ${error.split('\n')[0]}` : head}`);
}

function fmt(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1);
}
function ratio(x: number | undefined, y: number | undefined): string {
  return x === undefined || y === undefined || y === 0 ? '-' : `${(x / y).toFixed(2)}x`;
}

const byId = new Map(results.map((r) => [r.id, r]));
const lines: string[] = [];
for (const kind of ['tiny', 'f64'] as const) {
  const what = kind === 'tiny' ? `${params.tasks} tiny tasks (x*x)` : `${params.bigTasks} tasks with a ${((params.elements * 8) / 1048576).toFixed(2)} MiB Float64Array argument (sum)`;
  lines.push(``, `Pools, ${params.size} workers: ${what}, all submitted at once`);
  lines.push(`${'implementation'.padEnd(50)} ${'tasks/s'.padStart(10)} ${'vs piscina'.padStart(11)} ${'ours/this'.padStart(10)}`);
  const ref = byId.get(`${kind}/piscina`)?.median.tasksPerSecond;
  const ours = byId.get(`${kind}/multiproc-ring`)?.median.tasksPerSecond;
  for (const r of results.filter((x) => x.kind === kind)) {
    const v = r.median.tasksPerSecond;
    lines.push(`${r.label.padEnd(50)} ${fmt(v).padStart(10)} ${ratio(v, ref).padStart(11)} ${ratio(ours, v).padStart(10)}`);
  }
}
const mapRows = results.filter((x) => x.kind === 'map');
if (mapRows.length > 0) {
  lines.push(``, `map over ${params.items.toLocaleString('en-US')} small items (x*x) in chunks of ${params.chunkSize}, ${params.size} workers (Pool.map; the others one task per chunk)`);
  lines.push(`${'implementation'.padEnd(50)} ${'items/s'.padStart(10)} ${'vs piscina'.padStart(11)} ${'ours/this'.padStart(10)}`);
  const ref = byId.get('map-1M/piscina')?.median.itemsPerSecond;
  const ours = byId.get('map-1M/multiproc-ring')?.median.itemsPerSecond;
  for (const r of mapRows) {
    const v = r.median.itemsPerSecond;
    lines.push(`${r.label.padEnd(50)} ${fmt(v).padStart(10)} ${ratio(v, ref).padStart(11)} ${ratio(ours, v).padStart(10)}`);
  }
}
// The acceptance targets: our Pool (the faster of its transports) on tiny tasks.
{
  const tps = (id: string): number | undefined => byId.get(id)?.median.tasksPerSecond;
  const oursList = [tps('tiny/multiproc-ring'), tps('tiny/multiproc-stream')].filter((x): x is number => x !== undefined);
  const procList = [...processPools].map((impl) => tps(`tiny/${impl}`)).filter((x): x is number => x !== undefined);
  const piscina = tps('tiny/piscina');
  if (oursList.length > 0) {
    const ours = Math.max(...oursList);
    const verdict = (x: number, goal: number): string => `${x.toFixed(2)}x, ${x >= goal ? 'PASS' : 'MISS'}`;
    lines.push(``, `targets (tiny tasks, our Pool's faster transport):`);
    if (procList.length > 0) lines.push(`  Pool >= 3x the best process-based pool (${fmt(Math.max(...procList))} tasks/s): ${verdict(ours / Math.max(...procList), 3)}`);
    if (piscina !== undefined) lines.push(`  Pool >= 1x piscina (${fmt(piscina)} tasks/s): ${verdict(ours / piscina, 1)}`);
  }
}
const rpc = results.filter((x) => x.kind === 'rpc');
if (rpc.length > 0) {
  const fork = byId.get('rpc/fork')?.median;
  lines.push(``, `RPC round trips of a trivial call (echo of a number), ${params.calls} per trial`);
  lines.push(`${'implementation'.padEnd(50)} ${'calls/s'.padStart(10)} ${'µs/call'.padStart(9)} ${'vs fork'.padStart(8)} ${'p50 µs'.padStart(8)} ${'vs fork'.padStart(8)} ${'p99 µs'.padStart(8)} ${`${params.inFlight} in flight`.padStart(14)} ${'vs fork'.padStart(8)}`);
  for (const r of rpc) {
    const m = r.median;
    // Latency ratios: the fork figure over ours (2x = half the time).
    const faster = (ours: number | undefined, base: number | undefined): string => (ours !== undefined && base !== undefined ? ratio(base, ours) : '-');
    lines.push(
      `${r.label.padEnd(50)} ${fmt(m.callsPerSecond).padStart(10)} ${fmt(m.usPerCall).padStart(9)} ${ratio(m.callsPerSecond, fork?.callsPerSecond).padStart(8)} ${fmt(m.p50Us).padStart(8)} ${faster(m.p50Us, fork?.p50Us).padStart(8)} ${fmt(m.p99Us).padStart(8)} ${fmt(m.pipelinedCallsPerSecond).padStart(14)} ${ratio(m.pipelinedCallsPerSecond, fork?.pipelinedCallsPerSecond).padStart(8)}`,
    );
  }
  for (const [id, what] of [
    ['rpc/ring', 'RPC over ring'],
    ['rpc/ring-spin', 'RPC over ring with spinUs'],
  ] as const) {
    const ring = byId.get(id)?.median;
    const p50VsFork = (fork?.p50Us ?? NaN) / (ring?.p50Us ?? NaN);
    if (Number.isFinite(p50VsFork)) lines.push(`target: ${what} >= 10x child_process IPC (round-trip p50): ${p50VsFork.toFixed(2)}x, ${p50VsFork >= 10 ? 'PASS' : 'MISS'}`);
    const ringVsFork = (ring?.pipelinedCallsPerSecond ?? NaN) / (fork?.pipelinedCallsPerSecond ?? NaN);
    // Not a target: the target is the round trip; with many in flight both sides are bound by their CPU.
    if (Number.isFinite(ringVsFork)) lines.push(`info: ${what} with ${params.inFlight} in flight: ${ringVsFork.toFixed(2)}x child_process IPC's calls/s`);
  }
}
machine.loadavg.end = (await import('node:os')).loadavg()[0]!;
lines.push(``, `machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, load average ${machine.loadavg.start.toFixed(1)} -> ${machine.loadavg.end.toFixed(1)}`);
console.log(lines.join('\n'));

const out = a.json ?? join(root, 'bench', 'results', `pool-${startedAt.replace(/[:.]/g, '-').slice(0, 19)}Z.json`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ schema: 1, benchmark: 'pool', startedAt, finishedAt: new Date().toISOString(), options: { trials, quick, ...params }, machine, results }, null, 2) + '\n');
console.log(`results: ${out}`);
