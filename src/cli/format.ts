/** Output helpers shared by the CLI commands. */
import type { ResourceInfo } from '../resources/inspect.js';

/** 1536 -> '1.5K'. */
export function formatSize(bytes: number | null): string {
  if (bytes === null) return '-';
  const units = ['', 'K', 'M', 'G', 'T'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? String(v) : `${v < 10 ? v.toFixed(1) : Math.round(v)}${units[u]}`;
}

/** 93000 -> '1m33s'. */
export function formatAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

/** The owner column: '1234' or '1234 (dead)', '-' when disowned. */
export function formatOwner(r: ResourceInfo): string {
  if (!r.owned) return `${r.ownerPid} (disowned)`;
  return r.ownerAlive ? String(r.ownerPid) : `${r.ownerPid} (dead)`;
}

/** Left-aligned columns. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** JSON with dates as ISO strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
