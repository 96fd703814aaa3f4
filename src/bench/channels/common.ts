/**
 * Shared types of the channel benchmark: what a trial is, what an adapter
 * (one mechanism) provides, and the small in-process inbox the event-based
 * baselines use.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** One trial: one mechanism, one message size, in a fresh process pair. */
export interface TrialSpec {
  mechanism: string;
  size: number;
  /** Unmeasured round trips before the measured ones. */
  warmup: number;
  /** Measured round trips. */
  roundTrips: number;
  /** Messages of the one-way run. */
  count: number;
  /** Unmeasured one-way messages before it (the receiver reports after them too). */
  onewayWarmup: number;
  /**
   * Round trips to an idle peer, after the busy ones: before each, the driver
   * sleeps `gapUs` (plus or minus `jitter` of it, at random) so that the
   * partner has gone to sleep in the kernel; only send -> reply is timed.
   * Absent or 0 round trips: not measured in this trial.
   */
  parked?: ParkedSpec;
  /** Base of every name this trial creates (queues, segments); unique per trial. */
  name: string;
  /** A directory of this trial for FIFOs and socket files; the runner removes it. */
  dir: string;
  /** The port the driver listens on (socket rows), for the partner. */
  port?: number;
}

/** How the parked round trips of a trial are run. */
export interface ParkedSpec {
  /** Unmeasured parked round trips first. */
  warmup: number;
  /** Measured parked round trips. */
  roundTrips: number;
  /** The pause before each round trip, µs. */
  gapUs: number;
  /** Random spread of the pause, a fraction of it: the pause is gapUs x (1 +- jitter). */
  jitter: number;
}

/** Latency percentiles of a series of round trips, µs. */
export interface RttFigures {
  n: number;
  p50: number;
  p99: number;
  mean: number;
}

/**
 * The comparison table's columns for one row: a channel's own `traits`
 * (read from the live channel during the trial), or, for what is not a
 * multiproc channel (the baselines, shared memory by hand), the adapter's.
 */
export interface BenchTraits {
  mechanism: string;
  medium: string;
  unit: string;
  direction: string;
  scope: string;
  use: string;
}

/** The figures of one trial. */
export interface TrialFigures {
  /** The traits of the channel the trial used, when it is a multiproc channel. */
  traits?: BenchTraits;
  rtt: RttFigures;
  /** Round trips to an idle (parked) peer, when the trial ran them (see {@link TrialSpec.parked}). */
  parked?: RttFigures;
  /** The whole trial, process start to exit, as the runner saw it. */
  wallSeconds?: number;
  oneway: { n: number; seconds: number; /** Node rows: until the sender's loop had handed over the last message. */ sendSeconds?: number };
}

/**
 * One side of a mechanism. `send` returns undefined when the message was
 * accepted at once, a promise when the caller must wait (backpressure).
 */
export interface Endpoint {
  send(message: unknown): void | Promise<void>;
  receive(): Promise<unknown>;
  /** Receives and drops `n` messages; resolves after the last. */
  drain?(n: number): Promise<void>;
  close(): Promise<void>;
  /** The channel's own traits, when the endpoint is a multiproc channel. */
  traits?: BenchTraits;
  /** The receiving channel, when it has receiveInto (see {@link intoVariant}). */
  into?: IntoReceiver;
}

/** A channel that can receive into a buffer of the caller's. */
export interface IntoReceiver {
  tryReceiveInto(target: Uint8Array): number | undefined;
  receiveInto(target: Uint8Array): Promise<number>;
}

/**
 * `ep` receiving the C reader's way: every message into one buffer it
 * reuses (grown when a message does not fit), no allocation per message.
 */
export function receivingInto(ep: Endpoint): Endpoint {
  const rx = ep.into;
  if (rx === undefined) throw new Error('this endpoint has no receiveInto');
  let into = new Uint8Array(1 << 16);
  const grow = (e: unknown): Promise<number> => {
    const size = (e as { size?: number }).size;
    if ((e as { code?: string }).code !== 'ERR_MULTIPROC_MESSAGE_TOO_LARGE' || size === undefined) throw e;
    into = new Uint8Array(size);
    return rx.receiveInto(into);
  };
  const one = (): Promise<number> | number => {
    try {
      return rx.tryReceiveInto(into) ?? rx.receiveInto(into).catch(grow);
    } catch (e) {
      return grow(e);
    }
  };
  return {
    ...ep,
    receive: async () => into.subarray(0, await one()),
    async drain(n) {
      for (let i = 0; i < n; i++) await one();
    },
  };
}

/** The row `base` with both ends receiving into a reused buffer ({@link receivingInto}), from `minSize` bytes on. */
export function intoVariant(base: Adapter, label: string, minSize: number): Adapter {
  return {
    ...base,
    id: `${base.id}-into`,
    label,
    minSize,
    async driver(spec) {
      const side = await base.driver(spec);
      return { ...side, ep: receivingInto(side.ep) };
    },
    async partner(spec) {
      return receivingInto(await base.partner(spec));
    },
  };
}

/** What the driver side gets: its endpoint and a way to wait for the partner's end. */
export interface DriverSide {
  ep: Endpoint;
  /** Resolves when the partner has exited (cleanly, or rejects). */
  partnerExit: Promise<void>;
  /** Kills the partner at once (on failure). */
  kill(): void;
}

export type Group = 'baseline' | 'ours' | 'c';
/** Which C reference a row is compared with. */
export type Family = 'pipe' | 'unix' | 'tcp' | 'ring';

export interface Adapter {
  id: string;
  /** What it is, for the table. */
  label: string;
  group: Group;
  family?: Family;
  /** A variant that explains a figure rather than one a user would pick. */
  diagnostic?: boolean;
  /** The table's columns, for rows whose endpoints are not multiproc channels. */
  traits?: BenchTraits;
  /** Largest message this mechanism can carry here; larger sizes are "n/a". */
  maxSize(): number;
  /** Smallest message size the row is measured at (a variant that only matters for large messages); smaller sizes are "n/a". */
  minSize?: number;
  /** At most this many one-way messages per trial (a slow row keeps its trials within seconds). */
  maxCount?: number;
  /** The message of `size` bytes this mechanism sends. */
  payload(size: number): unknown;
  /** The one-way run's final report from the receiver. */
  ack(): unknown;
  /** Driver side: set up, start the partner, return the endpoint. */
  driver(spec: TrialSpec): Promise<DriverSide>;
  /** Partner side (in the partner process or worker). */
  partner(spec: TrialSpec): Promise<Endpoint>;
}

/** The messages of the rows that carry bytes: `size` bytes of 'x', and a 1-byte ack. */
export const BYTE_MESSAGES = {
  payload: (size: number): Uint8Array => new Uint8Array(size).fill(120),
  ack: (): Uint8Array => new Uint8Array(1),
};

export const peerPath = fileURLToPath(new URL('./peer.js', import.meta.url));

/** Starts `node peer.js partner <spec>`; extra stdio entries are appended after 0-2. */
export function startPartner(spec: TrialSpec, extra: StdioOptions[] = []): { child: ChildProcess; exit: Promise<void> } {
  const stdio = ['ignore', 'ignore', 'inherit', ...extra] as StdioOptions;
  const child = spawn(process.execPath, [peerPath, 'partner', JSON.stringify(spec)], { stdio });
  return { child, exit: childExit(child) };
}

export function childExit(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`partner exited with ${signal ?? `code ${code}`}`));
    });
  });
}

/** A FIFO of messages pushed by an event handler, with async receive and counting. */
export class Inbox {
  #items: unknown[] = [];
  #head = 0;
  #waiter: ((m: unknown) => void) | undefined;
  #countLeft = 0;
  #countDone: (() => void) | undefined;

  push(m: unknown): void {
    if (this.#countDone !== undefined) {
      if (--this.#countLeft === 0) {
        const done = this.#countDone;
        this.#countDone = undefined;
        done();
      }
      return;
    }
    if (this.#waiter !== undefined) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w(m);
      return;
    }
    this.#items.push(m);
  }

  receive(): Promise<unknown> {
    if (this.#head < this.#items.length) {
      const m = this.#items[this.#head];
      this.#items[this.#head++] = undefined;
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      }
      return Promise.resolve(m);
    }
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  /** Counts `n` messages in the event handler itself (the baselines' best case). */
  drain(n: number): Promise<void> {
    const queued = this.#items.length - this.#head;
    const taken = Math.min(queued, n);
    this.#head += taken;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    }
    if (taken === n) return Promise.resolve();
    this.#countLeft = n - taken;
    return new Promise((resolve) => {
      this.#countDone = resolve;
    });
  }
}

export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.round(q * (sorted.length - 1)))]!;
}

/** Percentiles and mean of latencies in µs (sorts `lat` in place). */
export function rttFigures(lat: number[]): RttFigures {
  const sum = lat.reduce((a, b) => a + b, 0);
  lat.sort((a, b) => a - b);
  return { n: lat.length, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), mean: sum / lat.length };
}

/** The pause before a parked round trip, µs: `gapUs` spread by +- `jitter` of it. */
export function parkedGap(p: ParkedSpec): number {
  return p.gapUs * (1 + p.jitter * (2 * Math.random() - 1));
}

export function median(values: number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * What a consumer after throughput does: take what is there (tryReceive),
 * wait only when nothing is. `receive` is the waiting form (default: plain receive()).
 */
export function tryDrain(ch: { tryReceive(): unknown; receive(): Promise<unknown> }, receive: () => Promise<unknown> = () => ch.receive()): (n: number) => Promise<void> {
  return async (n) => {
    for (let i = 0; i < n; i++) if (ch.tryReceive() === undefined) await receive();
  };
}

/** Sends without waiting when the channel takes the message at once. */
export function fastSend(ch: { trySend(m: Uint8Array): boolean; send(m: Uint8Array): Promise<void> }): (m: unknown) => void | Promise<void> {
  return (m) => (ch.trySend(m as Uint8Array) ? undefined : ch.send(m as Uint8Array));
}
