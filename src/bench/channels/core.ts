/**
 * The measuring core of the channel benchmark: every mechanism between two
 * real processes, beside child_process IPC, worker_threads and a C reference,
 * for several message sizes, in one run. Used by `multiproc bench` and by
 * `npm run bench:channels` (bench/channels/run.ts); it lives under src/ so
 * that it ships with the package and the installed CLI can run it.
 *
 * Each trial is a fresh process group: `node peer.js driver` (which starts
 * its partner) or the C reference binary (which forks). After each trial the
 * runner kills what is left of the group and removes every name the trial may
 * have created, also on SIGINT/SIGTERM/SIGHUP.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageQueue } from '../../index.js';
import { adapters } from './adapters/index.js';
import { queueNames } from './adapters/mqueue.js';
import { median, peerPath, type BenchTraits, type Family, type Group, type ParkedSpec, type TrialFigures, type TrialSpec } from './common.js';

export type { BenchTraits, Family, Group, ParkedSpec, RttFigures, TrialFigures } from './common.js';

/** What to run. */
export interface ChannelBenchOptions {
  /** Smaller byte budgets and fewer round trips. */
  quick: boolean;
  /** Trials per (mechanism, size); the summary takes the median. */
  trials: number;
  /** Message sizes in bytes. */
  sizes: number[];
  /** Row ids to run (see {@link benchRows}); all rows when undefined. */
  mechanisms?: string[] | undefined;
  /** Leave out the diagnostic rows unless `mechanisms` names them. */
  skipDiagnostic?: boolean;
  /**
   * The pause before each parked round trip (the peer idle, asleep in the
   * kernel), ms; default {@link PARKED_GAP_MS}. 0 leaves the parked round trips out.
   */
  parkedGapMs?: number;
}

/** One row of the table: a mechanism. */
export interface Row {
  id: string;
  label: string;
  group: Group;
  family?: Family;
  /** A variant that explains a figure rather than one a user would pick. */
  diagnostic?: boolean;
  maxSize: number;
  /** Sizes below this are not measured (a variant for large messages). */
  minSize?: number;
  /** Cap on the one-way count of a trial (slow rows). */
  maxCount?: number;
  /** Declared traits (rows that are not multiproc channels); channels report theirs in each trial. */
  traits?: BenchTraits;
}

/** Summary of one (row, size). */
export interface Cell {
  row: string;
  size: number;
  status: 'ok' | 'n/a' | 'failed';
  note?: string;
  trials: TrialFigures[];
  errors: string[];
  /** Round-trip latency, µs (median over trials of each trial's percentile). */
  rttP50: number;
  rttP99: number;
  /**
   * Round-trip latency to an idle peer, µs (median over trials of each
   * trial's percentile): the requester pauses before each round trip, long
   * enough for the peer to have gone to sleep. Measured at one size of the
   * run (see {@link ChannelBenchResult.parked}); NaN at the others.
   */
  parkedP50: number;
  parkedP99: number;
  /** One-way rate. */
  msgsPerSec: number;
  mbPerSec: number;
  ratios: { vsForkJson: Ratio; vsWorker: Ratio; vsC: Ratio & { ref?: string } };
}

/** How a row compares with a reference row of the same size; NaN when either is missing. */
export interface Ratio {
  /** one-way messages/s (and so MB/s) of this row divided by the reference's */
  oneway: number;
  /** the reference's round-trip p50 divided by this row's (above 1: faster) */
  rtt: number;
  /** the reference's round-trip p99 divided by this row's (above 1: faster) */
  rttP99: number;
  /** this row's round-trip p50 divided by the reference's (how many times slower) */
  rttSlowdown: number;
  /** this row's parked round-trip p50 divided by the reference's (how many times slower) */
  parkedSlowdown: number;
}

export interface Target {
  id: string;
  what: string;
  value: number;
  goal: string;
  pass: boolean | null;
}

export interface Machine {
  cpu: string;
  cores: number;
  kernel: string;
  node: string;
  arch: string;
  memoryGiB: number;
  loadavgBefore?: number[];
  loadavgAfter?: number[];
}

/** Everything one run measured; JSON-serialisable (NaN is written as null). */
export interface ChannelBenchResult {
  benchmark: 'channels';
  started: string;
  finished: string;
  options: ChannelBenchOptions;
  machine: Machine;
  rows: Row[];
  /** Traits per row id: the channel's own (from a trial) or the row's declared ones. */
  traits: Record<string, BenchTraits>;
  sizing: Record<string, Sizing>;
  cells: Cell[];
  targets: Target[];
  /** Why the C rows could not run, when they could not. */
  cError?: string;
  /** How the parked round trips ran, and at which size; absent when they did not. */
  parked?: ParkedSpec & { size: number };
}

/** Progress events. */
export interface ChannelBenchHooks {
  /** Before the first trial. */
  onStart?(plan: { rows: Row[]; sizes: number[]; total: number; machine: Machine }): void;
  /** After each trial, passed or failed. */
  onTrial?(event: { done: number; total: number; row: Row; size: number; figures?: TrialFigures; error?: string }): void;
  /** A remark worth showing (the C reference could not be built). */
  onNote?(text: string): void;
}

export interface Sizing {
  warmup: number;
  roundTrips: number;
  count: number;
  onewayWarmup: number;
}

/** Default pause before a parked round trip, ms: past the C ring's spin and ShmRing's 1 ms polling budget. */
export const PARKED_GAP_MS = 2;
/** The pause varies by up to this fraction either way, so that it does not lock onto a timer tick. */
export const PARKED_JITTER = 0.1;

/** Parked round trips of one trial (few: each costs a pause). */
export function parkedSizing(quick: boolean, gapMs: number): ParkedSpec {
  return { warmup: quick ? 3 : 5, roundTrips: quick ? 40 : 150, gapUs: gapMs * 1000, jitter: PARKED_JITTER };
}

const cRows: Row[] = [
  { id: 'c-pipe', label: 'C: two pipes', group: 'c', family: 'pipe', maxSize: Infinity },
  { id: 'c-socketpair', label: 'C: Unix socketpair', group: 'c', family: 'unix', maxSize: Infinity },
  { id: 'c-tcp', label: 'C: loopback TCP (TCP_NODELAY)', group: 'c', family: 'tcp', maxSize: Infinity },
  { id: 'c-ring', label: 'C: shared-memory SPSC rings, futex wake', group: 'c', family: 'ring', maxSize: Infinity },
];

const cTraits: Record<string, BenchTraits> = {
  'c-pipe': { mechanism: 'c-pipe', medium: 'file', unit: 'stream', direction: 'two-way', scope: 'parent-child', use: 'reference: read/write on two pipes in C' },
  'c-socketpair': { mechanism: 'c-socketpair', medium: 'socket', unit: 'stream', direction: 'two-way', scope: 'parent-child', use: 'reference: a Unix socket pair in C' },
  'c-tcp': { mechanism: 'c-tcp', medium: 'socket', unit: 'stream', direction: 'two-way', scope: 'network', use: 'reference: loopback TCP in C' },
  'c-ring': { mechanism: 'c-ring', medium: 'memory', unit: 'message', direction: 'two-way', scope: 'same-host', use: 'reference: shared-memory rings with futex wake-ups in C' },
};

/** Every row, in table order: Node's own baselines, multiproc's mechanisms, the C references. */
export function benchRows(): Row[] {
  const ours: Row[] = adapters.map((a) => {
    const r: Row = { id: a.id, label: a.label, group: a.group, maxSize: a.maxSize() };
    if (a.family) r.family = a.family;
    if (a.diagnostic) r.diagnostic = true;
    if (a.traits) r.traits = a.traits;
    if (a.maxCount !== undefined) r.maxCount = a.maxCount;
    if (a.minSize !== undefined) r.minSize = a.minSize;
    return r;
  });
  return [...ours, ...cRows.map((r) => ({ ...r, traits: cTraits[r.id]! }))];
}

/** Iterations for one size: a byte budget for the one-way run, bounded. */
export function sizing(quick: boolean, size: number): Sizing {
  const budget = quick ? 4 << 20 : 128 << 20;
  // Enough small messages that the one-way run of a fast row lasts a few
  // hundred milliseconds: at 50,000 it was over in 70 ms, mostly start-up.
  const max = quick ? 5000 : 250_000;
  const min = quick ? 8 : 64;
  const count = Math.max(min, Math.min(max, Math.floor(budget / size)));
  const rtts = quick ? (size >= 1 << 20 ? 10 : size >= 1 << 16 ? 50 : 200) : size >= 1 << 20 ? 200 : 2000;
  // Unmeasured round trips first: a Node row's first thousands run code V8
  // has not optimized yet. Small messages get 10,000 (ShmRing's p50 after
  // 2000 was still about twice what it settles at); larger ones, whose round
  // trips take 100 µs and more, as many as they measure.
  const warmup = quick ? rtts : size < 4096 ? Math.max(rtts, 10_000) : rtts;
  return { warmup, roundTrips: rtts, count, onewayWarmup: Math.max(4, Math.floor(count / 4)) };
}

export const sizeName = (s: number): string => (s >= 1 << 20 && s % (1 << 20) === 0 ? `${s >> 20} MiB` : s >= 1024 && s % 1024 === 0 ? `${s >> 10} KiB` : `${s} B`);

/** Parses '100', '64k', '64KiB', '1m', '1MiB' into bytes; NaN when it is none of these. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+)\s*(b|k|kb|kib|m|mb|mib)?\s*$/i.exec(text);
  if (!m) return NaN;
  const unit = (m[2] ?? 'b').toLowerCase();
  return Number(m[1]) * (unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1 << 20 : 1);
}

function loadavg(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}

function machine(): Machine {
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

const here = path.dirname(fileURLToPath(import.meta.url));
/** The package root: this file is dist/src/bench/channels/core.js. */
const packageRoot = path.resolve(here, '../../../..');
/** Shipped with the package (`files` has src/), compiled at run time into the run's directory. */
const cSource = path.join(packageRoot, 'src/bench/c/ipc_ref.c');

function buildC(dir: string): { binary?: string; error?: string } {
  const binary = path.join(dir, 'ipc_ref');
  if (!existsSync(cSource)) return { error: `C reference source not found at ${cSource}` };
  try {
    execFileSync(process.env['CC'] ?? 'cc', ['-O2', '-o', binary, cSource], { stdio: ['ignore', 'ignore', 'pipe'] });
    return { binary };
  } catch (err) {
    return { error: `cannot build the C reference (${path.basename(cSource)}): ${String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim()}` };
  }
}

/** Names, directories and process groups of one run, removed at its end or on a signal. */
class RunScope {
  readonly tag = `mpbch-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  readonly dir = mkdtempSync(path.join(os.tmpdir(), `${this.tag}-`));
  readonly pgids = new Set<number>();
  readonly names: string[] = [];
  #onSignal = (sig: NodeJS.Signals): void => {
    this.cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };

  constructor() {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, this.#onSignal);
  }

  removeNames(): void {
    for (const dir of ['/dev/shm', '/dev/mqueue']) {
      let entries: string[] = [];
      try {
        entries = readdirSync(dir);
      } catch {
        continue;
      }
      for (const e of entries) {
        if (!e.includes(this.tag)) continue;
        try {
          unlinkSync(path.join(dir, e));
        } catch {
          /* already gone */
        }
      }
    }
    // System V queues have no name: find them by the keys of this run's names.
    if (this.names.length > 0 && existsSync('/proc/sysvipc/msg')) {
      const keys = new Set<number>();
      for (const n of this.names) for (const q of queueNames({ name: n })) keys.add(MessageQueue.sysvKey(q));
      const lines = readFileSync('/proc/sysvipc/msg', 'utf8').trim().split('\n').slice(1);
      for (const line of lines) {
        const [key, id] = line.trim().split(/\s+/);
        if (!keys.has(Number(key))) continue;
        try {
          execFileSync('ipcrm', ['-q', String(id)], { stdio: 'ignore' });
        } catch {
          /* already gone */
        }
      }
    }
    this.names.length = 0;
  }

  cleanup(): void {
    for (const pgid of this.pgids) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    this.pgids.clear();
    this.removeNames();
    rmSync(this.dir, { recursive: true, force: true });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, this.#onSignal);
  }

  /** Runs one trial process in its own group; resolves with its RESULT line. */
  runProcess(cmd: string, args: string[], timeoutMs: number): Promise<TrialFigures> {
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      if (child.pid !== undefined) this.pgids.add(child.pid);
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
        this.pgids.delete(child.pid!);
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
}

const noRatio = (): Ratio => ({ oneway: NaN, rtt: NaN, rttP99: NaN, rttSlowdown: NaN, parkedSlowdown: NaN });

function ratio(a: Cell | undefined, ref: Cell | undefined): Ratio {
  if (!a || !ref || a.status !== 'ok' || ref.status !== 'ok') return noRatio();
  return {
    oneway: a.msgsPerSec / ref.msgsPerSec,
    rtt: ref.rttP50 / a.rttP50,
    rttP99: ref.rttP99 / a.rttP99,
    rttSlowdown: a.rttP50 / ref.rttP50,
    parkedSlowdown: a.parkedP50 / ref.parkedP50,
  };
}

const cByFamily: Record<Family, string> = { pipe: 'c-pipe', unix: 'c-socketpair', tcp: 'c-tcp', ring: 'c-ring' };

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
    // Only when the run measured parked round trips at this size.
    if (Number.isFinite(ring.parkedP50)) add('shmring-parked-vs-c', `ShmRing ${sizeName(small)} parked RTT p50 vs C futex ring (times slower)`, ring.ratios.vsC.parkedSlowdown, '<= 2x', (v) => v <= 2);
  }
  // The target's "busy peer (spin, then park)": both ends with options.spinUs, as the C ring spins.
  const spinning = cell('shmring-spin', small);
  if (spinning) {
    add('shmring-spin-rtt-vs-c', `ShmRing ${sizeName(small)} round trip p50 with spinUs vs C ring (times slower)`, spinning.ratios.vsC.rttSlowdown, '<= 3x', (v) => v <= 3);
    add('shmring-spin-oneway-vs-fork', `ShmRing ${sizeName(small)} one-way with spinUs vs child_process json`, spinning.ratios.vsForkJson.oneway, '>= 20x', (v) => v >= 20);
  }
  // Like for like: the C reader copies every message into one buffer it reuses, as receiveInto does.
  const intoBig = cell('shmring-into', big);
  if (intoBig) add('shmring-1mib-vs-c', `ShmRing ${sizeName(big)} bandwidth vs C ring (send + receiveInto a reused buffer, as the C reader)`, intoBig.ratios.vsC.oneway, '>= 0.50x', (v) => v >= 0.5);
  // receive() hands out a fresh buffer per message: memory the caches have not seen.
  const ringBig = cell('shmring', big);
  if (ringBig) add('shmring-receive-1mib-vs-c', `ShmRing ${sizeName(big)} bandwidth vs C ring (send + receive, a new buffer per message)`, ringBig.ratios.vsC.oneway, '>= 0.50x', (v) => v >= 0.5);
  for (const [id, name] of [['pipe', 'Pipe'], ['fifo', 'NamedPipe (FIFO)'], ['unix', 'Socket unix'], ['tcp', 'Socket tcp']] as const) {
    const s = cell(id, small);
    if (s) add(`${id}-oneway-vs-fork`, `${name} ${sizeName(small)} one-way vs child_process json`, s.ratios.vsForkJson.oneway, '>= 5x', (v) => v >= 5);
    const b = cell(id, big);
    if (b) add(`${id}-1mib-vs-c`, `${name} ${sizeName(big)} bandwidth vs C ${b.ratios.vsC.ref ?? ''} (receive, a new buffer per message)`.trim(), b.ratios.vsC.oneway, '>= 0.50x', (v) => v >= 0.5);
    // Like for like, as for the ring: the C reader reads every message into one buffer it reuses.
    const bi = cell(`${id}-into`, big);
    if (bi) add(`${id}-into-1mib-vs-c`, `${name} ${sizeName(big)} bandwidth vs C ${bi.ratios.vsC.ref ?? ''} (receiveInto a reused buffer, as the C reader)`.trim(), bi.ratios.vsC.oneway, '>= 0.50x', (v) => v >= 0.5);
  }
  return t;
}

/** Picks the rows `options` asks for; throws on an unknown id. */
export function selectRows(options: Pick<ChannelBenchOptions, 'mechanisms' | 'skipDiagnostic'>): Row[] {
  const rows = benchRows();
  if (options.mechanisms) {
    const unknown = options.mechanisms.filter((m) => !rows.some((r) => r.id === m));
    if (unknown.length) throw new Error(`unknown mechanism(s): ${unknown.join(', ')}`);
    return rows.filter((r) => options.mechanisms!.includes(r.id));
  }
  return options.skipDiagnostic ? rows.filter((r) => !r.diagnostic) : rows;
}

/** Runs the benchmark and returns its results; never leaves processes or names behind. */
export async function runChannelBenchmark(options: ChannelBenchOptions, hooks: ChannelBenchHooks = {}): Promise<ChannelBenchResult> {
  if (options.sizes.length === 0 || options.sizes.some((s) => !Number.isInteger(s) || s < 1)) throw new Error('sizes: positive integers');
  if (!Number.isInteger(options.trials) || options.trials < 1) throw new Error('trials: a positive integer');
  const gapMs = options.parkedGapMs ?? PARKED_GAP_MS;
  if (!(Number.isFinite(gapMs) && gapMs >= 0 && gapMs <= 1000)) throw new Error('parkedGapMs: a number of ms from 0 to 1000');
  // Parked round trips at one size only (the smallest: 100 B by default), to keep the run short.
  const parkedSize = gapMs > 0 ? Math.min(...options.sizes) : undefined;
  const parked = parkedSizing(options.quick, gapMs);
  const rows = selectRows(options);
  const scope = new RunScope();
  try {
    const loadBefore = loadavg();
    const started = new Date();
    const cells = new Map<string, Cell>();
    const key = (row: string, size: number): string => `${row}@${size}`;
    for (const r of rows) {
      for (const size of options.sizes) {
        const c: Cell = { row: r.id, size, status: 'ok', trials: [], errors: [], rttP50: NaN, rttP99: NaN, parkedP50: NaN, parkedP99: NaN, msgsPerSec: NaN, mbPerSec: NaN, ratios: { vsForkJson: noRatio(), vsWorker: noRatio(), vsC: noRatio() } };
        if (size > r.maxSize) {
          c.status = 'n/a';
          c.note = `above the mechanism's limit here (${r.maxSize} B)`;
        } else if (size < (r.minSize ?? 0)) {
          c.status = 'n/a';
          c.note = `a variant for large messages, measured from ${r.minSize} B`;
        }
        cells.set(key(r.id, size), c);
      }
    }
    const total = [...cells.values()].filter((c) => c.status === 'ok').length * options.trials;
    const m = machine();
    hooks.onStart?.({ rows, sizes: options.sizes, total, machine: m });
    const c = rows.some((r) => r.group === 'c') ? buildC(scope.dir) : {};
    if (c.error) hooks.onNote?.(c.error);

    const timeoutMs = options.quick ? 30_000 : 120_000;
    let done = 0;
    let trialNo = 0;
    // Interleave: trial 1 of every cell, then trial 2..., so drift spreads over all rows.
    for (let t = 0; t < options.trials; t++) {
      for (const size of options.sizes) {
        const n = sizing(options.quick, size);
        for (const r of rows) {
          const cell = cells.get(key(r.id, size))!;
          if (cell.status === 'n/a') continue;
          done++;
          if (r.group === 'c' && c.error) {
            cell.errors.push(c.error);
            hooks.onTrial?.({ done, total, row: r, size, error: 'C reference not built' });
            continue;
          }
          const name = `${scope.tag}-${trialNo++}`;
          const dir = path.join(scope.dir, String(trialNo));
          mkdirSync(dir);
          scope.names.push(name);
          const count = Math.min(n.count, r.maxCount ?? Infinity);
          const spec: TrialSpec = { mechanism: r.id, size, ...n, count, onewayWarmup: Math.min(n.onewayWarmup, Math.max(4, Math.floor(count / 4))), name, dir };
          if (size === parkedSize) spec.parked = parked;
          const cArgs = [r.id.slice(2), String(size), String(n.warmup), String(n.roundTrips), String(spec.count), String(spec.onewayWarmup)];
          if (spec.parked) cArgs.push(String(parked.warmup), String(parked.roundTrips), String(parked.gapUs), String(parked.jitter));
          // The pauses of the parked round trips come on top (long with a large --parked-gap).
          const trialTimeoutMs = timeoutMs + (spec.parked ? (parked.warmup + parked.roundTrips) * (1 + parked.jitter) * (parked.gapUs / 1000) : 0);
          const trialStart = performance.now();
          try {
            const fig =
              r.group === 'c'
                ? await scope.runProcess(c.binary!, cArgs, trialTimeoutMs)
                : await scope.runProcess(process.execPath, [peerPath, 'driver', JSON.stringify(spec)], trialTimeoutMs);
            fig.wallSeconds = Math.round(performance.now() - trialStart) / 1000;
            cell.trials.push(fig);
            hooks.onTrial?.({ done, total, row: r, size, figures: fig });
          } catch (err) {
            cell.errors.push((err as Error).message);
            hooks.onTrial?.({ done, total, row: r, size, error: (err as Error).message });
          } finally {
            scope.removeNames();
            rmSync(dir, { recursive: true, force: true });
          }
        }
      }
    }

    // Summaries: the median of the trials of each figure.
    for (const cell of cells.values()) {
      if (cell.status === 'n/a') continue;
      if (cell.trials.length === 0) {
        cell.status = 'failed';
        continue;
      }
      cell.rttP50 = median(cell.trials.map((f) => f.rtt.p50));
      cell.rttP99 = median(cell.trials.map((f) => f.rtt.p99));
      cell.parkedP50 = median(cell.trials.map((f) => f.parked?.p50 ?? NaN));
      cell.parkedP99 = median(cell.trials.map((f) => f.parked?.p99 ?? NaN));
      cell.msgsPerSec = median(cell.trials.map((f) => f.oneway.n / f.oneway.seconds));
      cell.mbPerSec = (cell.msgsPerSec * cell.size) / 1e6;
    }
    const cell = (row: string, size: number): Cell | undefined => cells.get(key(row, size));
    const traits: Record<string, BenchTraits> = {};
    for (const r of rows) {
      for (const size of options.sizes) {
        const x = cell(r.id, size)!;
        x.ratios.vsForkJson = ratio(x, cell('fork-json', size));
        x.ratios.vsWorker = ratio(x, cell('worker', size));
        const ref = r.family ? cByFamily[r.family] : undefined;
        x.ratios.vsC = ref && ref !== r.id ? { ...ratio(x, cell(ref, size)), ref } : noRatio();
        const live = x.trials.find((f) => f.traits)?.traits;
        if (live && !traits[r.id]) traits[r.id] = live;
      }
      if (!traits[r.id] && r.traits) traits[r.id] = r.traits;
    }
    const result: ChannelBenchResult = {
      benchmark: 'channels',
      started: started.toISOString(),
      finished: new Date().toISOString(),
      options,
      machine: { ...m, loadavgBefore: loadBefore, loadavgAfter: loadavg() },
      rows,
      traits,
      sizing: Object.fromEntries(options.sizes.map((s) => [s, sizing(options.quick, s)])),
      cells: [...cells.values()],
      targets: targets(cell),
    };
    if (c.error) result.cError = c.error;
    if (parkedSize !== undefined) result.parked = { ...parked, size: parkedSize };
    return result;
  } finally {
    scope.cleanup();
  }
}

/** The result as JSON: non-finite numbers become null. */
export function resultToJson(result: ChannelBenchResult): string {
  return JSON.stringify(result, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
}

/** A result read back from JSON: nulls in number fields become NaN again. */
export function resultFromJson(text: string): ChannelBenchResult {
  const r = JSON.parse(text) as ChannelBenchResult;
  for (const c of r.cells) {
    // (parkedP50/P99 are missing from files written before they existed.)
    for (const k of ['rttP50', 'rttP99', 'parkedP50', 'parkedP99', 'msgsPerSec', 'mbPerSec'] as const) c[k] = (c[k] as number | null | undefined) ?? NaN;
  }
  for (const row of r.rows) row.maxSize = (row.maxSize as number | null) ?? Infinity;
  return r;
}
