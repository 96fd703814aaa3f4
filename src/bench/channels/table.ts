/**
 * The comparison table of a channel benchmark run: each mechanism's traits
 * (medium, unit, direction, scope, when to use) with the measured figures
 * beside them, and each figure as a ratio to child_process IPC.
 */
import type { BenchTraits, Cell, ChannelBenchResult, Row } from './core.js';
import { sizeName } from './core.js';

/** The row every ratio is taken against. */
export const REFERENCE_ROW = 'fork-json';

const names: Record<string, string> = {
  'fork-json': 'child_process IPC (json)',
  'fork-advanced': 'child_process IPC (advanced)',
  worker: 'worker_threads',
  'mq-posix': 'MessageQueue posix',
  'mq-sysv': 'MessageQueue sysv',
  'mq-shm': 'MessageQueue shm',
  pipe: 'Pipe',
  fifo: 'NamedPipe',
  'stream-socketpair': 'socket pair (spawn channel)',
  unix: 'Socket unix',
  tcp: 'Socket tcp',
  udp: 'Socket udp',
  shmring: 'ShmRing',
  'shmring-sync': 'ShmRing, sync calls',
  'shmring-view': 'ShmRing zero-copy',
  'shmring-into': 'ShmRing receiveInto',
  file: 'FileChannel',
  'shm-mutex': 'SharedMemory + Mutex',
  'mmap-mutex': 'MemoryMap + Mutex',
  'c-pipe': 'C: pipes',
  'c-socketpair': 'C: socketpair',
  'c-tcp': 'C: TCP',
  'c-ring': 'C: shared-memory ring',
};

/** A short name for a row, for tables and charts. */
export function displayName(row: Pick<Row, 'id'>): string {
  return names[row.id] ?? row.id;
}

const fmt = (v: number, digits = 1): string => (Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-');
const fmtInt = (v: number): string => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '-');
/** Ratios with 2 significant digits: 0.031x, 0.45x, 3.2x, 27x. */
export const fmtRatio = (v: number): string => (Number.isFinite(v) ? `${v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toPrecision(2)}x` : '-');

export interface TableRow {
  id: string;
  name: string;
  traits: BenchTraits | undefined;
  cell: Cell;
}

export const tableHead = ['mechanism', 'medium', 'unit', 'direction', 'scope', 'RTT p50 µs', 'RTT p99 µs', 'msg/s', 'MB/s', 'p50 x IPC', 'p99 x IPC', 'msg/s x IPC', 'when to use'];

/** The rows of one message size, in table order. */
export function rowsForSize(result: ChannelBenchResult, size: number): TableRow[] {
  const byKey = new Map(result.cells.map((c) => [`${c.row}@${c.size}`, c]));
  return result.rows.flatMap((r) => {
    const cell = byKey.get(`${r.id}@${size}`);
    return cell ? [{ id: r.id, name: displayName(r), traits: result.traits[r.id], cell }] : [];
  });
}

/** The cells of one table row, formatted: the traits, then the figures, then "when to use". */
export function formatRow(r: TableRow): string[] {
  const t = r.traits;
  const c = r.cell;
  const traitCols = [t?.medium ?? '?', t?.unit ?? '?', t?.direction ?? '?', t?.scope ?? '?'];
  const use = t?.use ?? '';
  if (c.status !== 'ok') {
    return [r.name, ...traitCols, c.status === 'n/a' ? 'n/a' : 'failed', '', '', '', '', '', '', use];
  }
  const q = c.ratios.vsForkJson;
  return [r.name, ...traitCols, fmt(c.rttP50), fmt(c.rttP99), fmtInt(c.msgsPerSec), fmt(c.mbPerSec), fmtRatio(q.rtt), fmtRatio(q.rttP99), fmtRatio(q.oneway), use];
}

export const parkedHead = ['mechanism', 'busy RTT p50 µs', 'parked RTT p50 µs', 'parked RTT p99 µs', 'parked p50 x IPC', 'parked p50 / C'];

/** The rows of the parked round-trip table (rows that measured it), formatted; empty when the run did not. */
export function parkedRows(result: ChannelBenchResult): string[][] {
  if (!result.parked) return [];
  return rowsForSize(result, result.parked.size)
    .filter((r) => r.cell.status === 'ok' && Number.isFinite(r.cell.parkedP50))
    .map((r) => {
      const c = r.cell;
      const vsC = c.ratios.vsC;
      return [r.name, fmt(c.rttP50), fmt(c.parkedP50), fmt(c.parkedP99), fmtRatio(1 / c.ratios.vsForkJson.parkedSlowdown), Number.isFinite(vsC.parkedSlowdown) ? `${fmtRatio(vsC.parkedSlowdown)} ${vsC.ref ?? ''}`.trim() : '-'];
    });
}

/** What the parked table shows, in one sentence. */
export function parkedCaption(result: ChannelBenchResult): string {
  const p = result.parked;
  if (!p) return '';
  return [
    `Parked: before each round trip the requester sleeps ${p.gapUs / 1000} ms (+-${Math.round(p.jitter * 100)}%), so the peer has stopped spinning and sleeps in the kernel;`,
    `only send -> reply is timed (${p.roundTrips} per trial). "x IPC": times faster than child_process IPC (json); "/ C": times slower than the C reference of the same kind.`,
  ].join('\n');
}

/** Plain-text tables, one per message size, for a terminal. */
export function renderTable(result: ChannelBenchResult): string {
  const out: string[] = [];
  const right = (i: number): boolean => i >= 5 && i < tableHead.length - 1;
  for (const size of result.options.sizes) {
    const body = rowsForSize(result, size).map(formatRow);
    const widths = tableHead.map((h, i) => (i === tableHead.length - 1 ? 0 : Math.max(h.length, ...body.map((b) => b[i]!.length))));
    const line = (cols: string[]): string =>
      cols
        .map((c, i) => (i === cols.length - 1 ? c : right(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd();
    out.push('', `${sizeName(size)} messages`, line(tableHead), line(widths.map((w, i) => '-'.repeat(i === widths.length - 1 ? 11 : w))), ...body.map(line));
  }
  const parked = parkedRows(result);
  if (parked.length > 0) {
    const widths = parkedHead.map((h, i) => Math.max(h.length, ...parked.map((b) => b[i]!.length)));
    const line = (cols: string[]): string => cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
    out.push('', `${sizeName(result.parked!.size)} round trips to a parked peer`, line(parkedHead), line(widths.map((w) => '-'.repeat(w))), ...parked.map(line), parkedCaption(result));
  }
  const failed = result.cells.filter((c) => c.status === 'failed');
  if (failed.length > 0) out.push('', 'Failed:', ...failed.map((c) => `  ${c.row} ${sizeName(c.size)}: ${c.errors[0] ?? ''}`));
  if (result.cells.some((c) => c.status === 'n/a')) out.push('', 'n/a: the size is above what the mechanism carries here (a kernel queue\'s message limit, a UDP datagram).');
  out.push(
    '',
    'RTT: round trip (send, the peer echoes, receive), median of each trial\'s percentile. msg/s, MB/s: a one-way burst until the',
    `receiver has counted every message. "x IPC": times better than child_process IPC (json) in this run (above 1x: better).`,
  );
  const m = result.machine;
  out.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.kernel}, Node ${m.node}; load average ${m.loadavgBefore?.join(' ') ?? '?'} -> ${m.loadavgAfter?.join(' ') ?? '?'}.`);
  return out.join('\n');
}
