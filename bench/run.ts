/**
 * `npm run bench`: the lock benchmarks, ours and the C reference side by
 * side, each trial in a fresh process. See docs/benchmarks.md.
 *
 *   node dist/bench/run.js [--quick] [--trials N] [--iterations N]
 *                          [--filter id,...] [--markdown] [--list]
 *   node dist/bench/run.js --from bench/results/latest.json [--markdown]
 */
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cases, type LockCase } from './locks/cases.js';
import { describeMachine } from './lib/machine.js';
import { checkTargets, computeRatios, fmtNs, renderMarkdown, renderText, type CaseResult, type RunResult } from './lib/report.js';
import { latency, median } from './lib/stats.js';

const here = dirname(fileURLToPath(import.meta.url));

function findRoot(): string {
  let dir = here;
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bench', 'c'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find the package root (package.json next to bench/c)');
}

const root = findRoot();
const cc = process.env['CC'] ?? 'cc';
const SHM_DIR = '/dev/shm';
/** Every shared-memory name of this run starts with this, so cleanup can find them all. */
const runPrefix = `mpbench-${process.pid}-${randomBytes(3).toString('hex')}-`;
let shmCounter = 0;

const usage = `Usage: node dist/bench/run.js [options]
  --quick            2 trials, 2000 round trips (a smoke run)
  --trials N         trials per row, each in a fresh process (default 5)
  --iterations N     round trips per handoff trial (default 20000);
                     uncontended trials run 100 x N lock+unlock pairs
  --filter a,b       only rows whose id contains one of these (see --list)
  --markdown         print the summary as Markdown (for docs/benchmarks.md)
  --from FILE        do not run: print the summary of a saved result
  --list             list the rows and what they measure`;

interface Options {
  trials: number;
  iterations: number;
  quick: boolean;
  filter: string[];
  markdown: boolean;
  from: string | undefined;
  list: boolean;
}

function positive(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      trials: { type: 'string' },
      iterations: { type: 'string' },
      filter: { type: 'string' },
      markdown: { type: 'boolean', default: false },
      from: { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const quick = values.quick === true;
  return {
    quick,
    trials: positive('trials', values.trials, quick ? 2 : 5),
    iterations: positive('iterations', values.iterations, quick ? 2000 : 20000),
    filter: values.filter === undefined ? [] : values.filter.split(',').map((s) => s.trim()).filter(Boolean),
    markdown: values.markdown === true,
    from: values.from,
    list: values.list === true,
  };
}

/** Removes every shared-memory name of this run (left by a crashed or killed trial). */
function cleanupShm(): string[] {
  let names: string[];
  try {
    names = readdirSync(SHM_DIR).filter((n) => n.startsWith(runPrefix));
  } catch {
    return [];
  }
  for (const n of names) rmSync(join(SHM_DIR, n), { force: true });
  return names;
}

function compileC(): Map<string, string> {
  const out = new Map<string, string>();
  const srcDir = join(root, 'bench', 'c');
  const buildDir = join(root, 'bench', 'build');
  mkdirSync(buildDir, { recursive: true });
  for (const file of readdirSync(srcDir).filter((f) => f.endsWith('.c')).sort()) {
    const name = basename(file, '.c');
    const bin = join(buildDir, name);
    execFileSync(cc, ['-O2', '-pthread', '-Wall', '-o', bin, join(srcDir, file)], { stdio: ['ignore', 'inherit', 'inherit'] });
    out.set(name, bin);
  }
  return out;
}

interface Running {
  pid: number;
}
let current: Running | undefined;

/** Kills a trial's process group (the trial and anything it started). */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the whole group is gone already
  }
}

interface TrialOutput {
  nsPerOp?: number;
  roundTripNs?: number[];
}

/** The line of a trial's stderr that says what went wrong (Node prints the source line and a caret first). */
function errorSummary(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l.length > 0 && !/^Node\.js v\d/.test(l));
  return lines.find((l) => /^(\w*Error|Error)\b|^[\w.]*Error:/.test(l)) ?? lines.slice(-2).join(' | ');
}

function runTrial(cmd: string, args: string[], timeoutMs: number): Promise<TrialOutput> {
  return new Promise((resolve, reject) => {
    // Its own process group, so a partner process can never outlive the trial.
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid);
    }, timeoutMs);
    if (child.pid !== undefined) current = { pid: child.pid };
    child.on('error', (err) => {
      clearTimeout(timer);
      current = undefined;
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      if (child.pid !== undefined) killGroup(child.pid);
      const tail = errorSummary(stderr);
      if (timedOut) return reject(new Error(`timed out after ${timeoutMs} ms`));
      if (code !== 0) return reject(new Error(`exited with ${code ?? signal}${tail ? `: ${tail}` : ''}`));
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last) as TrialOutput);
      } catch {
        reject(new Error(`no result line in its output${tail ? `: ${tail}` : ''}`));
      }
    });
  });
}

function commandFor(c: LockCase, opts: Options, bins: Map<string, string>): { cmd: string; args: string[] } {
  const ops = opts.iterations * 100;
  const warmupTrips = Math.max(100, Math.round(opts.iterations / 10));
  if ('js' in c.run) {
    const trial = join(here, 'locks', 'trial.js');
    const handoff = c.group === 'handoff';
    const count = handoff ? opts.iterations : ops;
    const warmup = handoff ? warmupTrips : Math.round(ops / 10);
    return { cmd: process.execPath, args: [trial, c.run.js, String(count), String(warmup), `${runPrefix}${++shmCounter}`] };
  }
  const bin = bins.get(c.run.c);
  if (bin === undefined) throw new Error(`bench/c/${c.run.c}.c was not compiled`);
  if (c.run.c === 'lock_uncontended') return { cmd: bin, args: [c.run.kind, String(ops)] };
  return { cmd: bin, args: [c.run.kind, String(opts.iterations), String(warmupTrips)] };
}

async function runAll(opts: Options): Promise<RunResult> {
  const selected = cases.filter((c) => opts.filter.length === 0 || opts.filter.some((f) => c.id.includes(f)));
  if (selected.length === 0) throw new Error(`no row matches --filter ${opts.filter.join(',')} (see --list)`);
  const startedAt = new Date().toISOString();
  const machine = describeMachine(root, cc);
  console.log(`multiproc lock benchmarks: ${selected.length} rows x ${opts.trials} trials`);
  console.log(`${machine.cpu}, ${machine.cores} cores, ${machine.kernel}, Node ${machine.node}, load ${machine.loadavg.start.toFixed(2)}`);
  if (machine.loadavg.start > 0.5) console.log('note: the machine is busy (load average above 0.5); results will be noisy');

  let bins = new Map<string, string>();
  let compileError: string | undefined;
  if (selected.some((c) => 'c' in c.run)) {
    try {
      bins = compileC();
      console.log(`compiled bench/c/*.c with ${cc} -O2 -pthread into ${relative(root, join(root, 'bench', 'build'))}/`);
    } catch (err) {
      compileError = `C reference not built: ${(err as Error).message}`;
      console.log(compileError);
    }
  }

  const results = new Map<string, CaseResult>();
  const samples = new Map<string, number[]>();
  for (const c of selected) {
    results.set(c.id, { id: c.id, group: c.group, impl: c.impl, label: c.label, failures: [] });
    samples.set(c.id, []);
  }
  const total = selected.length * opts.trials;
  const width = Math.max(...selected.map((c) => c.id.length));
  const timeoutMs = 60000 + opts.iterations * 5;
  let n = 0;
  // Trials interleave across rows so that drift in machine state spreads over all of them.
  for (let t = 1; t <= opts.trials; t++) {
    for (const c of selected) {
      n++;
      const r = results.get(c.id)!;
      const prefix = `[${String(n).padStart(String(total).length)}/${total}] ${c.id.padEnd(width)}  trial ${t}/${opts.trials}`;
      try {
        if ('c' in c.run && compileError !== undefined) throw new Error(compileError);
        const { cmd, args } = commandFor(c, opts, bins);
        const out = await runTrial(cmd, args, timeoutMs);
        if (c.group === 'uncontended') {
          if (typeof out.nsPerOp !== 'number') throw new Error('result has no nsPerOp');
          (r.trialsNsPerOp ??= []).push(out.nsPerOp);
          console.log(`${prefix}  ${fmtNs(out.nsPerOp)}/op`);
        } else {
          if (!Array.isArray(out.roundTripNs) || out.roundTripNs.length === 0) throw new Error('result has no roundTripNs');
          const perHandoff = out.roundTripNs.map((x) => x / 2);
          const l = latency(perHandoff);
          (r.trialsHandoff ??= []).push(l);
          samples.get(c.id)!.push(...perHandoff);
          console.log(`${prefix}  p50 ${fmtNs(l.p50)}  p99 ${fmtNs(l.p99)}  mean ${fmtNs(l.mean)}`);
        }
      } catch (err) {
        const message = (err as Error).message;
        r.failures.push(`trial ${t}: ${message}`);
        console.log(`${prefix}  FAILED: ${message}`);
      } finally {
        const left = cleanupShm();
        if (left.length > 0) console.log(`${prefix}  removed leftover shared memory: ${left.join(', ')}`);
      }
    }
  }

  for (const r of results.values()) {
    if (r.trialsNsPerOp !== undefined && r.trialsNsPerOp.length > 0) {
      r.nsPerOp = { median: median(r.trialsNsPerOp), min: Math.min(...r.trialsNsPerOp), max: Math.max(...r.trialsNsPerOp) };
    }
    const s = samples.get(r.id)!;
    if (s.length > 0) r.handoff = latency(s);
  }
  const list = [...results.values()];
  const ratios = computeRatios(list);
  machine.loadavg.end = os.loadavg()[0]!;
  return {
    schema: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    options: { trials: opts.trials, iterations: opts.iterations, uncontendedOps: opts.iterations * 100, quick: opts.quick, filter: opts.filter },
    machine,
    cases: list,
    ratios,
    targets: checkTargets(list, ratios),
  };
}

function save(run: RunResult): string {
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = run.startedAt.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
  const file = join(dir, `${stamp}.json`);
  const text = `${JSON.stringify(run, null, 2)}\n`;
  writeFileSync(file, text);
  writeFileSync(join(dir, 'latest.json'), text);
  return relative(root, file);
}

function onSignal(signal: NodeJS.Signals): void {
  if (current !== undefined) killGroup(current.pid);
  cleanupShm();
  console.error(`\ninterrupted by ${signal}; shared memory of this run removed`);
  process.exit(128 + (os.constants.signals[signal] ?? 0));
}

async function main(): Promise<void> {
  const opts = parseOptions();
  if (opts.list) {
    for (const c of cases) console.log(`${c.id.padEnd(28)} ${c.impl.padEnd(10)} ${c.label}\n${' '.repeat(40)}${c.description}`);
    return;
  }
  let run: RunResult;
  if (opts.from !== undefined) {
    run = JSON.parse(readFileSync(opts.from, 'utf8')) as RunResult;
    // Ratios and targets follow the current definitions in locks/cases.ts.
    run.ratios = computeRatios(run.cases);
    run.targets = checkTargets(run.cases, run.ratios);
  } else {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);
    const t0 = Date.now();
    try {
      run = await runAll(opts);
    } finally {
      cleanupShm();
    }
    const file = save(run);
    console.log(`\ndone in ${((Date.now() - t0) / 1000).toFixed(1)} s; results in ${file} and bench/results/latest.json`);
  }
  console.log(opts.markdown ? `\n${renderMarkdown(run)}` : renderText(run));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
