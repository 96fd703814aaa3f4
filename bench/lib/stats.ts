/** Small statistics helpers for benchmark samples. */

/** Sorted ascending copy. */
export function sorted(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** Nearest-rank percentile (0 < p <= 100) of ascending `s`. */
export function percentile(s: readonly number[], p: number): number {
  if (s.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length, Math.max(1, rank)) - 1]!;
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Median (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  const s = sorted(values);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Latency summary in ns. */
export interface Latency {
  p50: number;
  p99: number;
  mean: number;
  max: number;
  count: number;
}

export function latency(values: readonly number[]): Latency {
  const s = sorted(values);
  return { p50: percentile(s, 50), p99: percentile(s, 99), mean: mean(s), max: s[s.length - 1] ?? NaN, count: s.length };
}
