// The task module every pool of the benchmark runs (piscina and tinypool call these by name too).

/** A tiny task. */
export function square(x: number): number {
  return x * x;
}

/** A task over a large array: its sum. */
export function sum(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s;
}

/** A chunk of tiny tasks at once: what a pool without chunking runs for map (the same chunks as Pool.map). */
export function squareAll(xs: number[]): number[] {
  const out = new Array<number>(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = xs[i]! * xs[i]!;
  return out;
}
