/**
 * The channel benchmark, as `npm run bench:channels`: the measuring core is
 * src/bench/channels/core.ts (shared with `multiproc bench`); this runner
 * prints one line per trial and the summary, and writes JSON.
 *
 *   node dist/bench/channels/run.js [--quick] [--trials N] [--sizes 100,65536,1048576]
 *        [--mechanisms a,b,...] [--parked-gap MS] [--json FILE] [--markdown] [--list]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchRows, resultToJson, runChannelBenchmark, sizeName, type Cell, type ChannelBenchResult, type Row } from '../../src/bench/channels/core.js';

interface Options {
  quick: boolean;
  trials: number;
  sizes: number[];
  mechanisms: string[] | undefined;
  /** Pause before each parked round trip, ms (0: none). */
  parkedGap: number | undefined;
  json: string | undefined;
  markdown: boolean;
  list: boolean;
  /** Print the tables of an earlier run's JSON (`multiproc bench --json`) instead of running. */
  from: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, trials: 0, sizes: [100, 65536, 1048576], mechanisms: undefined, parkedGap: undefined, json: undefined, markdown: false, list: false, from: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--markdown') o.markdown = true;
    else if (a === '--list') o.list = true;
    else if (a === '--trials') o.trials = Number(value());
    else if (a === '--sizes') o.sizes = value().split(',').map((s) => Number(s));
    else if (a === '--mechanisms') o.mechanisms = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--parked-gap') o.parkedGap = Number(value());
    else if (a === '--json') o.json = value();
    else if (a === '--from') o.from = value();
    else throw new Error(`unknown option ${a}`);
  }
  if (o.trials === 0) o.trials = o.quick ? 1 : 3;
  return o;
}

const fmt = (v: number, digits = 1): string => (Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');
const fmtInt = (v: number): string => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const fmtRatio = (v: number): string => (Number.isFinite(v) ? (v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toPrecision(1)) + 'x' : '-');

function table(rows: Row[], sizes: number[], cell: (row: string, size: number) => Cell | undefined, markdown: boolean): string {
  const head = ['mechanism', 'size', 'RTT p50 µs', 'RTT p99 µs', 'one-way msg/s', 'MB/s', 'x fork json', 'x worker', 'x C', 'C RTT / RTT'];
  const body: string[][] = [];
  for (const size of sizes) {
    for (const r of rows) {
      const c = cell(r.id, size);
      if (!c) continue;
      if (c.status !== 'ok') {
        body.push([r.id, sizeName(size), c.status, '', '', '', '', '', '', '']);
        continue;
      }
      body.push([
        r.id,
        sizeName(size),
        fmt(c.rttP50),
        fmt(c.rttP99),
        fmtInt(c.msgsPerSec),
        fmt(c.mbPerSec),
        r.group === 'c' ? '-' : fmtRatio(c.ratios.vsForkJson.oneway),
        r.group === 'c' ? '-' : fmtRatio(c.ratios.vsWorker.oneway),
        fmtRatio(c.ratios.vsC.oneway),
        fmtRatio(c.ratios.vsC.rtt),
      ]);
    }
  }
  if (markdown) {
    const line = (cols: string[]): string => `| ${cols.join(' | ')} |`;
    return [line(head), line(head.map((_, i) => (i < 2 ? '---' : '---:'))), ...body.map(line)].join('\n');
  }
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cols: string[]): string => cols.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

function parkedTable(rows: Row[], size: number, cell: (row: string, size: number) => Cell | undefined, markdown: boolean): string {
  const head = ['mechanism', 'busy RTT p50 µs', 'parked RTT p50 µs', 'parked RTT p99 µs', 'x fork json', 'C / parked'];
  const body: string[][] = [];
  for (const r of rows) {
    const c = cell(r.id, size);
    if (!c || c.status !== 'ok' || !Number.isFinite(c.parkedP50)) continue;
    // Ratios above 1: this row is faster than the reference.
    body.push([r.id, fmt(c.rttP50), fmt(c.parkedP50), fmt(c.parkedP99), r.group === 'c' ? '-' : fmtRatio(1 / c.ratios.vsForkJson.parkedSlowdown), fmtRatio(1 / c.ratios.vsC.parkedSlowdown)]);
  }
  if (markdown) {
    const line = (cols: string[]): string => `| ${cols.join(' | ')} |`;
    return [line(head), line(head.map((_, i) => (i < 1 ? '---' : '---:'))), ...body.map(line)].join('\n');
  }
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cols: string[]): string => cols.map((c, i) => (i < 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.list) {
    for (const r of benchRows()) console.log(`${r.id.padEnd(20)} ${r.group.padEnd(9)} ${r.label}${Number.isFinite(r.maxSize) ? ` (max ${r.maxSize} B)` : ''}`);
    return;
  }
  const result: ChannelBenchResult = opts.from !== undefined ? (JSON.parse(readFileSync(opts.from, 'utf8')) as ChannelBenchResult) : await runChannelBenchmark(
    { quick: opts.quick, trials: opts.trials, sizes: opts.sizes, mechanisms: opts.mechanisms, ...(opts.parkedGap !== undefined ? { parkedGapMs: opts.parkedGap } : {}) },
    {
      onStart: ({ rows, sizes, machine }) => {
        console.log(`channel benchmark: ${rows.length} mechanisms x ${sizes.length} sizes x ${opts.trials} trial(s)${opts.quick ? ' (quick)' : ''}`);
        console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.kernel}, Node ${machine.node}`);
      },
      onNote: (text) => console.log(text),
      onTrial: ({ done, total, row, size, figures, error }) => {
        const prefix = `[${String(done).padStart(String(total).length)}/${total}] ${row.id.padEnd(18)} ${sizeName(size).padStart(8)}`;
        if (!figures) {
          console.log(`${prefix}  FAILED: ${error}`);
          return;
        }
        const rate = figures.oneway.n / figures.oneway.seconds;
        const sent = figures.oneway.sendSeconds !== undefined ? `  (sender done at ${Math.round((100 * figures.oneway.sendSeconds) / figures.oneway.seconds)}%)` : '';
        const parked = figures.parked ? `  parked RTT p50 ${fmt(figures.parked.p50)} µs p99 ${fmt(figures.parked.p99)} µs` : '';
        console.log(`${prefix}  RTT p50 ${fmt(figures.rtt.p50).padStart(9)} µs  p99 ${fmt(figures.rtt.p99).padStart(9)} µs  one-way ${fmtInt(rate).padStart(10)} msg/s ${fmt((rate * size) / 1e6).padStart(8)} MB/s${sent}${parked}`);
      },
    },
  );
  const byKey = new Map(result.cells.map((c) => [`${c.row}@${c.size}`, c]));
  const cell = (row: string, size: number): Cell | undefined => byKey.get(`${row}@${size}`);
  console.log('');
  if (opts.from !== undefined) {
    opts.trials = result.options.trials;
    opts.sizes = result.options.sizes;
  }
  console.log(`summary (median of ${opts.trials} trial(s); ratios are one-way messages/s against the reference in this run, "C RTT / RTT" is the C round-trip p50 over this row's: 1x = as fast as C)`);
  console.log(table(result.rows, opts.sizes, cell, opts.markdown));
  console.log('');
  if (result.parked) {
    const p = result.parked;
    console.log(`parked round trips, ${sizeName(p.size)} (the requester sleeps ${p.gapUs / 1000} ms +-${Math.round(p.jitter * 100)}% before each, so the peer sleeps in the kernel; ${p.roundTrips} timed per trial; "C / parked" is the C parked p50 over this row's)`);
    console.log(parkedTable(result.rows, p.size, cell, opts.markdown));
    console.log('');
  }
  console.log('targets:');
  for (const t of result.targets) console.log(`  ${t.pass === null ? 'N/A ' : t.pass ? 'PASS' : 'MISS'}  ${t.what}: ${Number.isFinite(t.value) ? `${t.value.toPrecision(3)}x` : 'n/a'} (target ${t.goal})`);
  console.log('');
  const m = result.machine;
  console.log(`load average before ${m.loadavgBefore?.join(' ')}, after ${m.loadavgAfter?.join(' ')} (${m.cores} cores)`);
  if (opts.from !== undefined) return;
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  const jsonPath = opts.json ?? path.join(repo, 'bench/results/channels-latest.json');
  mkdirSync(path.dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, resultToJson(result));
  console.log(`results: ${path.resolve(jsonPath)}`);
}

try {
  await main();
} catch (err) {
  console.error(`channel benchmark: ${(err as Error).message}`);
  process.exitCode = 2;
}
// A stray handle must not keep the runner alive.
setImmediate(() => process.exit(process.exitCode ?? 0)).unref();
