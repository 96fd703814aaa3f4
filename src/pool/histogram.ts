/**
 * A latency histogram of fixed size: logarithmic buckets 5% wide from 1 µs to
 * about 3 hours, so percentiles are within 5% whatever the number of samples.
 *
 * @internal
 */

/** Summary of a histogram, in milliseconds. */
export interface LatencySummary {
  /** Number of samples. */
  count: number;
  /** Mean, exact. */
  mean: number;
  /** Median (within 5%). */
  p50: number;
  /** 99th percentile (within 5%). */
  p99: number;
  /** Largest sample, exact. */
  max: number;
}

const GROWTH = 1.05;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = 480;

/** @internal */
export class Histogram {
  readonly #counts = new Uint32Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #max = 0;

  /** Adds a sample, in milliseconds. */
  record(ms: number): void {
    const us = ms * 1000;
    const i = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(us) / LOG_GROWTH));
    this.#counts[i]!++;
    this.#count++;
    this.#sum += ms;
    if (ms > this.#max) this.#max = ms;
  }

  #quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.ceil(q * this.#count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(this.#max, GROWTH ** i / 1000);
    }
    return this.#max;
  }

  summary(): LatencySummary {
    return {
      count: this.#count,
      mean: this.#count === 0 ? 0 : this.#sum / this.#count,
      p50: this.#quantile(0.5),
      p99: this.#quantile(0.99),
      max: this.#max,
    };
  }
}
