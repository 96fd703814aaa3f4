/**
 * Summaries, ratios and target checks of a lock benchmark run, rendered as a
 * plain-text table or as Markdown (for docs/benchmarks.md).
 */
import { cases, references, targets, type Group, type Impl } from '../locks/cases.js';
import type { Latency } from './stats.js';
import type { Machine } from './machine.js';

export interface CaseResult {
  id: string;
  group: Group;
  impl: Impl;
  label: string;
  /** Uncontended: ns per lock+unlock, one value per trial. */
  trialsNsPerOp?: number[];
  /** Handoff: per-handoff latency (round trip / 2) of each trial, ns. */
  trialsHandoff?: Latency[];
  /** Uncontended: median over trials, ns per lock+unlock. */
  nsPerOp?: { median: number; min: number; max: number };
  /** Handoff: per-handoff latency over the samples of all trials, ns. */
  handoff?: Latency;
  failures: string[];
}

export interface TargetCheck {
  name: string;
  value: number;
  limit: number;
  unit: 'ns' | 'x';
  pass: boolean;
}

export interface RunResult {
  schema: 1;
  startedAt: string;
  finishedAt: string;
  options: { trials: number; iterations: number; uncontendedOps: number; quick: boolean; filter: string[] };
  machine: Machine;
  cases: CaseResult[];
  ratios: Record<string, Record<string, number>>;
  targets: TargetCheck[];
}

/** Headline value of a row: ns/op (uncontended) or p50 handoff (handoff). */
function headline(r: CaseResult | undefined): number | undefined {
  if (r === undefined) return undefined;
  return r.group === 'uncontended' ? r.nsPerOp?.median : r.handoff?.p50;
}

export function computeRatios(results: CaseResult[]): Record<string, Record<string, number>> {
  const byId = new Map(results.map((r) => [r.id, r]));
  const out: Record<string, Record<string, number>> = {};
  for (const r of results) {
    if (r.impl === 'c') continue;
    const refs = references[r.group] as Record<string, string>;
    const v = headline(r);
    if (v === undefined) continue;
    const row: Record<string, number> = {};
    for (const [name, refId] of Object.entries(refs)) {
      const ref = headline(byId.get(refId));
      if (ref !== undefined && ref > 0) row[name] = v / ref;
    }
    if (r.group === 'handoff' && r.handoff !== undefined) {
      const ref = byId.get(references.handoff.futex)?.handoff;
      if (ref !== undefined) {
        row['futexMean'] = r.handoff.mean / ref.mean;
        row['futexP99'] = r.handoff.p99 / ref.p99;
      }
    }
    out[r.id] = row;
  }
  return out;
}

export function checkTargets(results: CaseResult[], ratios: Record<string, Record<string, number>>): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const r of results) {
    if (!(targets.uncontendedRows as readonly string[]).includes(r.id) || r.nsPerOp === undefined) continue;
    const value = r.nsPerOp.median;
    checks.push({ name: `uncontended ${r.label} < ${targets.uncontendedNs} ns`, value, limit: targets.uncontendedNs, unit: 'ns', pass: value < targets.uncontendedNs });
  }
  const sync = ratios['handoff/sync']?.['futex'];
  if (sync !== undefined) {
    checks.push({ name: `sync handoff p50 within ${targets.syncHandoffRatio}x of C futex`, value: sync, limit: targets.syncHandoffRatio, unit: 'x', pass: sync <= targets.syncHandoffRatio });
  }
  const asyncRatio = ratios['handoff/async']?.['futex'];
  if (asyncRatio !== undefined) {
    checks.push({ name: `async handoff p50 within ${targets.asyncHandoffRatio}x of C futex`, value: asyncRatio, limit: targets.asyncHandoffRatio, unit: 'x', pass: asyncRatio <= targets.asyncHandoffRatio });
  }
  return checks;
}

/** ns with a unit that keeps 3-4 significant digits. */
export function fmtNs(ns: number | undefined): string {
  if (ns === undefined || Number.isNaN(ns)) return '-';
  if (ns < 1000) return `${ns.toFixed(ns < 100 ? 1 : 0)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 2 : 1)} µs`;
  return `${(ns / 1e6).toFixed(2)} ms`;
}

export function fmtRatio(x: number | undefined): string {
  if (x === undefined || Number.isNaN(x)) return '-';
  return `${x.toFixed(x < 10 ? 2 : 1)}x`;
}

const implNames: Record<Impl, string> = { ours: 'ours', c: 'C', diagnostic: 'diag' };

interface Table {
  title: string;
  head: string[];
  rows: string[][];
  /** Columns aligned right (numbers). */
  right: boolean[];
}

function tables(run: RunResult): Table[] {
  const order = new Map(cases.map((c, i) => [c.id, i]));
  const rows = [...run.cases].sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  const out: Table[] = [];
  const un = rows.filter((r) => r.group === 'uncontended');
  if (un.length > 0) {
    out.push({
      title: 'Uncontended lock+unlock (one process, free lock; median of trials)',
      head: ['', 'case', 'ns/op', 'trial min', 'trial max', 'vs C futex', 'vs C pthread', 'vs C pthread robust'],
      right: [false, false, true, true, true, true, true, true],
      rows: un.map((r) => {
        const q = run.ratios[r.id];
        return [
          implNames[r.impl],
          r.label,
          fmtNs(r.nsPerOp?.median),
          fmtNs(r.nsPerOp?.min),
          fmtNs(r.nsPerOp?.max),
          r.impl === 'c' ? '' : fmtRatio(q?.['futex']),
          r.impl === 'c' ? '' : fmtRatio(q?.['pthread']),
          r.impl === 'c' ? '' : fmtRatio(q?.['pthreadRobust']),
        ];
      }),
    });
  }
  const ho = rows.filter((r) => r.group === 'handoff');
  if (ho.length > 0) {
    out.push({
      title: 'Cross-process handoff, per handoff (round trip / 2; all trials pooled)',
      head: ['', 'case', 'p50', 'p99', 'mean', 'p50 vs C futex', 'mean vs C futex', 'p50 vs C futex+spin', 'p50 vs C pthread'],
      right: [false, false, true, true, true, true, true, true, true],
      rows: ho.map((r) => {
        const q = run.ratios[r.id];
        return [
          implNames[r.impl],
          r.label,
          fmtNs(r.handoff?.p50),
          fmtNs(r.handoff?.p99),
          fmtNs(r.handoff?.mean),
          r.impl === 'c' ? '' : fmtRatio(q?.['futex']),
          r.impl === 'c' ? '' : fmtRatio(q?.['futexMean']),
          r.impl === 'c' ? '' : fmtRatio(q?.['futexSpin']),
          r.impl === 'c' ? '' : fmtRatio(q?.['pthread']),
        ];
      }),
    });
  }
  return out;
}

function targetLines(run: RunResult): string[] {
  return run.targets.map((t) => {
    const v = t.unit === 'ns' ? fmtNs(t.value) : fmtRatio(t.value);
    return `${t.pass ? 'PASS' : 'MISS'}  ${t.name}: ${v}`;
  });
}

function failureLines(run: RunResult): string[] {
  return run.cases.flatMap((r) => r.failures.map((f) => `${r.id}: ${f}`));
}

function machineLine(m: Machine): string {
  return `${m.cpu}, ${m.cores} cores, ${m.kernel}, Node ${m.node}, glibc ${m.glibc ?? '?'}, ${m.cc ?? 'cc ?'}; commit ${m.commit ?? '?'}; load ${m.loadavg.start.toFixed(2)} -> ${m.loadavg.end?.toFixed(2) ?? '?'}`;
}

function runLine(run: RunResult): string {
  const o = run.options;
  return `${o.trials} trials per row, ${o.iterations} round trips per handoff trial, ${o.uncontendedOps} lock+unlock pairs per uncontended trial${o.quick ? ' (--quick)' : ''}${o.filter.length > 0 ? `, filter ${o.filter.join(',')}` : ''}; ${run.startedAt}`;
}

export function renderText(run: RunResult): string {
  const lines: string[] = [];
  for (const t of tables(run)) {
    const width = t.head.map((h, i) => Math.max(h.length, ...t.rows.map((r) => r[i]!.length)));
    const cell = (s: string, i: number): string => (t.right[i] ? s.padStart(width[i]!) : s.padEnd(width[i]!));
    lines.push('', t.title, t.head.map(cell).join('  '), width.map((w) => '-'.repeat(w)).join('  '));
    for (const r of t.rows) lines.push(r.map(cell).join('  ').trimEnd());
  }
  lines.push('', 'Targets');
  lines.push(...targetLines(run).map((l) => `  ${l}`));
  const failures = failureLines(run);
  if (failures.length > 0) lines.push('', 'Failed trials', ...failures.map((l) => `  ${l}`));
  lines.push('', `Machine: ${machineLine(run.machine)}`, `Run: ${runLine(run)}`);
  return lines.join('\n');
}

export function renderMarkdown(run: RunResult): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const lines: string[] = [];
  for (const t of tables(run)) {
    lines.push(`**${t.title}**`, '', `| ${t.head.map(esc).join(' | ')} |`, `|${t.right.map((r) => (r ? ' ---: ' : ' --- ')).join('|')}|`);
    for (const r of t.rows) lines.push(`| ${r.map(esc).join(' | ')} |`);
    lines.push('');
  }
  lines.push('**Targets**', '');
  for (const l of targetLines(run)) lines.push(`- ${l}`);
  const failures = failureLines(run);
  if (failures.length > 0) lines.push('', '**Failed trials**', '', ...failures.map((l) => `- ${esc(l)}`));
  lines.push('', `Machine: ${machineLine(run.machine)}.`, '', `Run: ${runLine(run)}.`);
  return lines.join('\n');
}
