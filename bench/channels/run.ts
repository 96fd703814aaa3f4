/**
 * The channel benchmark: every mechanism between two real processes, beside
 * child_process IPC, worker_threads and a C reference, for several message
 * sizes, in one run.
 *
 *   node dist/bench/channels/run.js [--quick] [--trials N] [--sizes 100,65536,1048576]
 *        [--mechanisms a,b,...] [--json FILE] [--markdown] [--list]
 *
 * Each trial is a fresh process group: `node peer.js driver` (which starts
 * its partner) or the C reference binary (which forks). The runner kills what
 * is left of the group after each trial and removes every name the trial may
 * have created, also on SIGINT/SIGTERM/SIGHUP.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageQueue } from '../../src/index.js';
import { adapters } from './adapters/index.js';
import { queueNames } from './adapters/mqueue.js';
import { median, peerPath, type Family, type Group, type TrialFigures, type TrialSpec } from './common.js';

// ---- options ----

interface Options {
  quick: boolean;
  trials: number;
  sizes: number[];
  mechanisms: string[] | undefined;
  json: string | undefined;
  markdown: boolean;
  list: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, trials: 0, sizes: [100, 65536, 1048576], mechanisms: undefined, json: undefined, markdown: false, list: false };
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
    else if (a === '--json') o.json = value();
    else throw new Error(`unknown option ${a}`);
  }
  if (o.sizes.some((s) => !Number.isInteger(s) || s < 1)) throw new Error('--sizes: positive integers');
  if (o.trials === 0) o.trials = o.quick ? 1 : 3;
  if (!Number.isInteger(o.trials) || o.trials < 1) throw new Error('--trials: a positive integer');
  return o;
}

// ---- rows ----

interface Row {
  id: string;
  label: string;
  group: Group;
  family?: Family;
  maxSize: number;
}

const cRows: Row[] = [
  { id: 'c-pipe', label: 'C: two pipes', group: 'c', family: 'pipe', maxSize: Infinity },
  { id: 'c-socketpair', label: 'C: Unix socketpair', group: 'c', family: 'unix', maxSize: Infinity },
  { id: 'c-tcp', label: 'C: loopback TCP (TCP_NODELAY)', group: 'c', family: 'tcp', maxSize: Infinity },
  { id: 'c-ring', label: 'C: shared-memory SPSC rings, futex wake', group: 'c', family: 'ring', maxSize: Infinity },
];

function allRows(): Row[] {
  const ours: Row[] = adapters.map((a) => {
    const r: Row = { id: a.id, label: a.label, group: a.group, maxSize: a.maxSize() };
    if (a.family) r.family = a.family;
    return r;
  });
  return [...ours, ...cRows];
}

/** Iterations for one size: a byte budget for the one-way run, bounded. */
function sizing(quick: boolean, size: number): { warmup: number; roundTrips: number; count: number; onewayWarmup: number } {
  const budget = quick ? 16 << 20 : 128 << 20;
  const max = quick ? 20000 : 50000;
  const min = quick ? 16 : 64;
  const count = Math.max(min, Math.min(max, Math.floor(budget / size)));
  const rtts = quick ? (size >= 1 << 20 ? 30 : 300) : size >= 1 << 20 ? 200 : 2000;
  return { warmup: Math.max(10, Math.floor(rtts / 10)), roundTrips: rtts, count, onewayWarmup: Math.max(8, Math.floor(count / 4)) };
}

// ---- cleanup of names and processes ----

const runTag = `mpbch-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const runDir = mkdtempSync(path.join(os.tmpdir(), `${runTag}-`));
const livePgids = new Set<number>();
const usedNames: string[] = [];

function removeNames(): void {
  for (const dir of ['/dev/shm', '/dev/mqueue']) {
    let entries: string[] = [];
    try {
      entries = readdirSync(dir);
    } catch {
      continue;
    }
    for (const e of entries) {
      if (e.includes(runTag)) {
        try {
          unlinkSync(path.join(dir, e));
        } catch {
          /* already gone */
        }
      }
    }
  }
  // System V queues have no name: find them by the keys of this run's names.
  if (usedNames.length > 0 && existsSync('/proc/sysvipc/msg')) {
    const keys = new Set<number>();
    for (const n of usedNames) for (const q of queueNames({ name: n })) keys.add(MessageQueue.sysvKey(q));
    const lines = readFileSync('/proc/sysvipc/msg', 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      const [key, id] = line.trim().split(/\s+/);
      if (keys.has(Number(key))) {
        try {
          execFileSync('ipcrm', ['-q', String(id)], { stdio: 'ignore' });
        } catch {
          /* already gone */
        }
      }
    }
    usedNames.length = 0;
  }
}

function killGroups(): void {
  for (const pgid of livePgids) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  livePgids.clear();
}

function cleanupAll(): void {
  killGroups();
  removeNames();
  rmSync(runDir, { recursive: true, force: true });
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    cleanupAll();
    process.exit(130);
  });
}

// ---- C reference ----

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const cSource = path.join(repo, 'bench/c/ipc_ref.c');
const cBinary = path.join(repo, 'bench/build/ipc_ref');

function buildC(): string | undefined {
  try {
    mkdirSync(path.dirname(cBinary), { recursive: true });
    execFileSync(process.env['CC'] ?? 'cc', ['-O2', '-o', cBinary, cSource], { stdio: ['ignore', 'ignore', 'pipe'] });
    return undefined;
  } catch (err) {
    return `cannot build ${path.relative(repo, cSource)}: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
}

// ---- one trial ----

function runProcess(cmd: string, args: string[], timeoutMs: number): Promise<TrialFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) livePgids.add(child.pid);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      err += `\ntimed out after ${timeoutMs} ms`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      // Whatever the trial left behind in its group goes now.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
      livePgids.delete(child.pid!);
      const line = out.split('\n').find((l) => l.startsWith('RESULT ') || l.startsWith('{'));
      if (code === 0 && line) {
        try {
          resolve(JSON.parse(line.startsWith('RESULT ') ? line.slice(7) : line) as TrialFigures);
          return;
        } catch {
          /* fall through */
        }
      }
      reject(new Error(`${signal ?? `exit code ${code}`}: ${err.trim().split('\n').slice(-2).join(' | ')}`));
    });
  });
}

// ---- output helpers ----

const fmt = (v: number, digits = 1): string => (Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');
const fmtInt = (v: number): string => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const fmtRatio = (v: number): string => (Number.isFinite(v) ? (v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toPrecision(1)) + 'x' : '-');
const sizeName = (s: number): string => (s >= 1 << 20 && s % (1 << 20) === 0 ? `${s >> 20} MiB` : s >= 1024 && s % 1024 === 0 ? `${s >> 10} KiB` : `${s} B`);

function loadavg(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}

function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    arch: process.arch,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  };
}

// ---- summary ----

interface Cell {
  row: string;
  size: number;
  status: 'ok' | 'n/a' | 'failed';
  note?: string;
  trials: TrialFigures[];
  errors: string[];
  rttP50: number;
  rttP99: number;
  msgsPerSec: number;
  mbPerSec: number;
  ratios: { vsForkJson: Ratio; vsWorker: Ratio; vsC: Ratio & { ref?: string } };
}

interface Ratio {
  /** one-way messages/s of this row divided by the reference's */
  oneway: number;
  /** the reference's round-trip p50 divided by this row's (above 1: faster) */
  rtt: number;
  /** this row's round-trip p50 divided by the reference's (how many times slower) */
  rttSlowdown: number;
}

function ratio(a: Cell | undefined, ref: Cell | undefined): Ratio {
  if (!a || !ref || a.status !== 'ok' || ref.status !== 'ok') return { oneway: NaN, rtt: NaN, rttSlowdown: NaN };
  return { oneway: a.msgsPerSec / ref.msgsPerSec, rtt: ref.rttP50 / a.rttP50, rttSlowdown: a.rttP50 / ref.rttP50 };
}

const cByFamily: Record<Family, string> = { pipe: 'c-pipe', unix: 'c-socketpair', tcp: 'c-tcp', ring: 'c-ring' };

interface Target {
  id: string;
  what: string;
  value: number;
  goal: string;
  pass: boolean | null;
}

function targets(cell: (row: string, size: number) => Cell | undefined): Target[] {
  const t: Target[] = [];
  const add = (id: string, what: string, value: number, goal: string, ok: (v: number) => boolean): void => {
    t.push({ id, what, value, goal, pass: Number.isFinite(value) ? ok(value) : null });
  };
  // The targets are stated for 100 B and 1 MiB; a run without those sizes checks fewer.
  const small = 100;
  const big = 1 << 20;
  const ring = cell('shmring', small);
  if (ring) {
    add('shmring-oneway-vs-fork', `ShmRing ${sizeName(small)} one-way vs child_process json`, ring.ratios.vsForkJson.oneway, '>= 20x', (v) => v >= 20);
    add('shmring-oneway-vs-worker', `ShmRing ${sizeName(small)} one-way vs worker_threads`, ring.ratios.vsWorker.oneway, '>= 8x', (v) => v >= 8);
    add('shmring-oneway-vs-c', `ShmRing ${sizeName(small)} one-way vs C ring`, ring.ratios.vsC.oneway, '>= 0.30x', (v) => v >= 0.3);
    add('shmring-rtt-vs-c', `ShmRing ${sizeName(small)} round trip p50 vs C ring (times slower)`, ring.ratios.vsC.rttSlowdown, '<= 3x', (v) => v <= 3);
  }
  const ringBig = cell('shmring', big);
  if (ringBig) add('shmring-1mib-vs-c', `ShmRing ${sizeName(big)} bandwidth vs C ring`, ringBig.ratios.vsC.oneway, '>= 0.50x', (v) => v >= 0.5);
  for (const [id, name] of [['pipe', 'Pipe'], ['fifo', 'NamedPipe (FIFO)'], ['unix', 'Socket unix'], ['tcp', 'Socket tcp']] as const) {
    const s = cell(id, small);
    if (s) add(`${id}-oneway-vs-fork`, `${name} ${sizeName(small)} one-way vs child_process json`, s.ratios.vsForkJson.oneway, '>= 5x', (v) => v >= 5);
    const b = cell(id, big);
    if (b) add(`${id}-1mib-vs-c`, `${name} ${sizeName(big)} bandwidth vs C ${b.ratios.vsC.ref ?? ''}`.trim(), b.ratios.vsC.oneway, '>= 0.50x', (v) => v >= 0.5);
  }
  return t;
}

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

// ---- main ----

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  let rows = allRows();
  if (opts.list) {
    for (const r of rows) console.log(`${r.id.padEnd(20)} ${r.group.padEnd(9)} ${r.label}${Number.isFinite(r.maxSize) ? ` (max ${r.maxSize} B)` : ''}`);
    return;
  }
  if (opts.mechanisms) {
    const unknown = opts.mechanisms.filter((m) => !rows.some((r) => r.id === m));
    if (unknown.length) throw new Error(`unknown mechanism(s): ${unknown.join(', ')} (see --list)`);
    rows = rows.filter((r) => opts.mechanisms!.includes(r.id));
  }
  const loadBefore = loadavg();
  const started = new Date();
  console.log(`channel benchmark: ${rows.length} mechanisms x ${opts.sizes.length} sizes x ${opts.trials} trial(s)${opts.quick ? ' (quick)' : ''}; load average ${loadBefore.join(' ')}`);
  const m = machine();
  console.log(`machine: ${m['cpu']}, ${m['cores']} cores, ${m['kernel']}, Node ${m['node']}`);
  const cError = rows.some((r) => r.group === 'c') ? buildC() : undefined;
  if (cError) console.log(cError);

  const cells = new Map<string, Cell>();
  const key = (row: string, size: number): string => `${row}@${size}`;
  for (const r of rows) {
    for (const size of opts.sizes) {
      const c: Cell = {
        row: r.id,
        size,
        status: 'ok',
        trials: [],
        errors: [],
        rttP50: NaN,
        rttP99: NaN,
        msgsPerSec: NaN,
        mbPerSec: NaN,
        ratios: { vsForkJson: ratio(undefined, undefined), vsWorker: ratio(undefined, undefined), vsC: ratio(undefined, undefined) },
      };
      if (size > r.maxSize) {
        c.status = 'n/a';
        c.note = `above the mechanism's limit here (${r.maxSize} B)`;
      }
      cells.set(key(r.id, size), c);
    }
  }

  const timeoutMs = opts.quick ? 30_000 : 120_000;
  const total = [...cells.values()].filter((c) => c.status === 'ok').length * opts.trials;
  let done = 0;
  let trialNo = 0;
  // Interleave: trial 1 of every cell, then trial 2..., so drift spreads over all rows.
  for (let t = 0; t < opts.trials; t++) {
    for (const size of opts.sizes) {
      const n = sizing(opts.quick, size);
      for (const r of rows) {
        const c = cells.get(key(r.id, size))!;
        if (c.status === 'n/a') continue;
        done++;
        const prefix = `[${String(done).padStart(String(total).length)}/${total}] ${r.id.padEnd(18)} ${sizeName(size).padStart(8)}`;
        if (r.group === 'c' && cError) {
          c.errors.push(cError);
          console.log(`${prefix}  FAILED: C reference not built`);
          continue;
        }
        const name = `${runTag}-${trialNo++}`;
        const dir = path.join(runDir, String(trialNo));
        mkdirSync(dir);
        usedNames.push(name);
        const spec: TrialSpec = { mechanism: r.id, size, ...n, name, dir };
        const trialStart = performance.now();
        try {
          const fig =
            r.group === 'c'
              ? await runProcess(cBinary, [r.id.slice(2), String(size), String(n.warmup), String(n.roundTrips), String(n.count), String(n.onewayWarmup)], timeoutMs)
              : await runProcess(process.execPath, [peerPath, 'driver', JSON.stringify(spec)], timeoutMs);
          fig.wallSeconds = Math.round(performance.now() - trialStart) / 1000;
          c.trials.push(fig);
          const rate = fig.oneway.n / fig.oneway.seconds;
          console.log(`${prefix}  RTT p50 ${fmt(fig.rtt.p50).padStart(9)} µs  p99 ${fmt(fig.rtt.p99).padStart(9)} µs  one-way ${fmtInt(rate).padStart(10)} msg/s ${fmt((rate * size) / 1e6).padStart(8)} MB/s${fig.oneway.sendSeconds !== undefined ? `  (sender done at ${Math.round((100 * fig.oneway.sendSeconds) / fig.oneway.seconds)}%)` : ''}`);
        } catch (err) {
          c.errors.push((err as Error).message);
          console.log(`${prefix}  FAILED: ${(err as Error).message}`);
        } finally {
          removeNames();
          rmSync(dir, { recursive: true, force: true });
        }
      }
    }
  }

  // Summaries: the median of the trials of each figure.
  for (const c of cells.values()) {
    if (c.status === 'n/a') continue;
    if (c.trials.length === 0) {
      c.status = 'failed';
      continue;
    }
    c.rttP50 = median(c.trials.map((f) => f.rtt.p50));
    c.rttP99 = median(c.trials.map((f) => f.rtt.p99));
    c.msgsPerSec = median(c.trials.map((f) => f.oneway.n / f.oneway.seconds));
    c.mbPerSec = (c.msgsPerSec * c.size) / 1e6;
  }
  const cell = (row: string, size: number): Cell | undefined => cells.get(key(row, size));
  for (const r of rows) {
    for (const size of opts.sizes) {
      const c = cell(r.id, size)!;
      c.ratios.vsForkJson = ratio(c, cell('fork-json', size));
      c.ratios.vsWorker = ratio(c, cell('worker', size));
      const ref = r.family ? cByFamily[r.family] : undefined;
      c.ratios.vsC = ref && ref !== r.id ? { ...ratio(c, cell(ref, size)), ref } : ratio(undefined, undefined);
    }
  }

  const loadAfter = loadavg();
  console.log('');
  console.log(`summary (median of ${opts.trials} trial(s); ratios are one-way messages/s against the reference in this run, "C RTT / RTT" is the C round-trip p50 over this row's: 1x = as fast as C)`);
  console.log(table(rows, opts.sizes, cell, opts.markdown));
  const checks = targets(cell);
  console.log('');
  console.log('targets:');
  for (const t of checks) console.log(`  ${t.pass === null ? 'N/A ' : t.pass ? 'PASS' : 'MISS'}  ${t.what}: ${Number.isFinite(t.value) ? `${t.value.toPrecision(3)}x` : 'n/a'} (target ${t.goal})`);
  console.log('');
  console.log(`load average before ${loadBefore.join(' ')}, after ${loadAfter.join(' ')} (${os.cpus().length} cores)`);

  const result = {
    benchmark: 'channels',
    started: started.toISOString(),
    finished: new Date().toISOString(),
    options: opts,
    machine: { ...machine(), loadavgBefore: loadBefore, loadavgAfter: loadAfter },
    rows,
    sizing: Object.fromEntries(opts.sizes.map((s) => [s, sizing(opts.quick, s)])),
    cells: [...cells.values()],
    targets: checks,
  };
  const jsonPath = opts.json ?? path.join(repo, 'bench/results/channels-latest.json');
  mkdirSync(path.dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, JSON.stringify(result, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2));
  console.log(`results: ${path.resolve(jsonPath)}`);
}

try {
  await main();
} catch (err) {
  console.error(`channel benchmark: ${(err as Error).message}`);
  process.exitCode = 2;
} finally {
  cleanupAll();
}
// A stray handle must not keep the runner alive.
setImmediate(() => process.exit(process.exitCode ?? 0)).unref();
