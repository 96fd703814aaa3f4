/**
 * One benchmark case in this (fresh) process; prints one JSON line:
 *   node dist/bench/pool/case.js <case> <impl> <json params>
 * Cases: 'tiny' (many tiny tasks, all submitted at once), 'f64' (tasks with a
 * 1 MiB Float64Array argument), 'map' (a map over many small items in chunks:
 * Pool.map with chunkSize, the others one task per chunk of the same size),
 * 'rpc' (sequential round trips of a trivial call).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import Tinypool from 'tinypool';
import workerpool from 'workerpool';
import { Pool, ShmRing, connect, spawn } from '../../src/index.js';

const [kind, impl, paramsJson] = process.argv.slice(2) as [string, string, string];
const params = JSON.parse(paramsJson) as { tasks: number; size: number; calls: number; elements: number; inFlight: number; items: number; chunkSize: number; concurrency?: number };
const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));
const tasksPath = here('./tasks.js');

interface Runner {
  run(fn: string, arg: unknown): Promise<unknown>;
  /** Our Pool's own map, where there is one. */
  map?(fn: string, items: unknown[], chunkSize: number): Promise<unknown[]>;
  close(): Promise<void>;
}

function makeRunner(): Runner {
  switch (impl) {
    case 'multiproc-ring':
    case 'multiproc-stream': {
      const pool = new Pool({
        module: tasksPath,
        size: params.size,
        transport: impl === 'multiproc-ring' ? 'shm-ring' : 'stream',
        ...(params.concurrency !== undefined ? { concurrentTasksPerWorker: params.concurrency } : {}),
      });
      return { run: (fn, arg) => pool.run(fn, [arg]), map: (fn, items, chunkSize) => pool.map(fn, items, { chunkSize }), close: () => pool.close() };
    }
    case 'piscina': {
      const pool = new Piscina({ filename: tasksPath, minThreads: params.size, maxThreads: params.size });
      return { run: (fn, arg) => pool.run(arg, { name: fn }), close: () => pool.destroy() };
    }
    case 'tinypool': {
      const pool = new Tinypool({ filename: tasksPath, minThreads: params.size, maxThreads: params.size });
      return { run: (fn, arg) => pool.run(arg, { name: fn }), close: () => pool.destroy() };
    }
    case 'tinypool-process': {
      const pool = new Tinypool({ filename: tasksPath, minThreads: params.size, maxThreads: params.size, runtime: 'child_process' });
      return { run: (fn, arg) => pool.run(arg, { name: fn }), close: () => pool.destroy() };
    }
    case 'workerpool': {
      const pool = workerpool.pool(here('./workerpool-worker.js'), { minWorkers: params.size, maxWorkers: params.size, workerType: 'thread' });
      return { run: (fn, arg) => pool.exec(fn, [arg]) as unknown as Promise<unknown>, close: async () => void (await pool.terminate()) };
    }
    case 'workerpool-process': {
      const pool = workerpool.pool(here('./workerpool-worker.js'), { minWorkers: params.size, maxWorkers: params.size, workerType: 'process' });
      return { run: (fn, arg) => pool.exec(fn, [arg]) as unknown as Promise<unknown>, close: async () => void (await pool.terminate()) };
    }
  }
  throw new Error(`unknown implementation ${impl}`);
}

async function poolCase(): Promise<Record<string, number>> {
  const runner = makeRunner();
  try {
    const arg = kind === 'f64' ? new Float64Array(params.elements).fill(1) : 3;
    const fn = kind === 'f64' ? 'sum' : 'square';
    const expected = kind === 'f64' ? params.elements : 9;
    // Warm-up, the same for every pool: every worker started, and the code on both sides ran
    // often enough to be compiled. Tiny tasks: as many as measured, twice (after one burst of
    // 1000, a burst of 5000 ran at half the rate of the bursts after it).
    await Promise.all(Array.from({ length: params.size * 4 }, () => runner.run(fn, arg)));
    if (kind === 'tiny') {
      for (let r = 0; r < 2; r++) await Promise.all(Array.from({ length: Math.max(1000, params.tasks) }, () => runner.run(fn, arg)));
    }
    const t0 = performance.now();
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < params.tasks; i++) all.push(runner.run(fn, arg));
    const results = await Promise.all(all);
    const seconds = (performance.now() - t0) / 1000;
    if (results.some((r) => r !== expected)) throw new Error(`${impl}: wrong result`);
    return { tasksPerSecond: params.tasks / seconds, seconds };
  } finally {
    await runner.close();
  }
}

/** The spin budget of the ring-spin RPC row, µs: a few round trips of a trivial call. */
const RPC_SPIN_US = 50;

async function rpcCase(): Promise<Record<string, number>> {
  const peer = here('./rpc-peer.js');
  const calls = params.calls;
  let call: (x: number) => Promise<unknown>;
  let cleanup: () => Promise<void>;
  if (impl === 'fork') {
    const child = fork(peer, ['fork'], { stdio: 'inherit' });
    // Replies come in order: a FIFO of waiting callers.
    const waiting: Array<(m: unknown) => void> = [];
    let head = 0;
    child.on('message', (m) => waiting[head++]!(m));
    await new Promise((r) => child.once('spawn', r));
    call = (x) =>
      new Promise((resolve) => {
        waiting.push(resolve);
        child.send(x);
      });
    cleanup = async () => {
      child.kill();
      await new Promise((r) => child.once('exit', r));
    };
  } else {
    const name = `mpbench-rpc-${process.pid}`;
    // ring-spin: both ends spin up to RPC_SPIN_US before polling (options.spinUs).
    const spinUs = impl === 'ring-spin' ? RPC_SPIN_US : 0;
    const ring = impl === 'stream' ? undefined : ShmRing.createDuplex(name, { capacity: 1 << 20, spinUs });
    const h = spawn(peer, { args: impl === 'stream' ? ['stream'] : ['ring', name, String(spinUs)], ...(impl === 'stream' ? { channels: { rpc: 'stream' } } : {}) });
    await h.ready;
    const remote = connect<{ echo(x: number): number }>(ring ?? h.channel('rpc'));
    call = (x) => remote.echo(x);
    cleanup = async () => {
      await h.close();
      await ring?.close();
    };
  }
  try {
    // Warm-up as long as the measured run: the first few thousand calls run
    // code V8 has not optimized yet (500 left the ring rows 2x slower at p50).
    for (let i = 0; i < Math.max(500, calls); i++) await call(i);
    // One call at a time: the round-trip latency (mean, and the distribution:
    // a call whose peer had parked pays that peer's wake-up).
    const each = new Float64Array(calls);
    let t0 = performance.now();
    for (let i = 0; i < calls; i++) {
      const s = performance.now();
      if ((await call(i)) !== i) throw new Error('wrong reply');
      each[i] = performance.now() - s;
    }
    const seqSeconds = (performance.now() - t0) / 1000;
    each.sort();
    const pct = (q: number): number => each[Math.min(calls - 1, Math.floor(calls * q))]! * 1000;
    // `inFlight` calls at a time: the throughput when callers do not wait for each other.
    // (fork IPC has no ids, so its replies are matched in order: each call gets the next reply.)
    let next = 0;
    let end = 0;
    const lane = async (): Promise<void> => {
      while (next < end) {
        const i = next++;
        await call(i);
      }
    };
    // The pipelined path is not the one-at-a-time path: it gets its own
    // unmeasured warm-up, for every row alike, and twice the calls (a burst of
    // 3000 is over before the JIT has compiled it: the first bursts ran at a
    // third of the later ones' rate).
    const pipelined = 2 * calls;
    end = pipelined;
    await Promise.all(Array.from({ length: params.inFlight }, lane));
    next = 0;
    t0 = performance.now();
    await Promise.all(Array.from({ length: params.inFlight }, lane));
    const parSeconds = (performance.now() - t0) / 1000;
    return { callsPerSecond: calls / seqSeconds, usPerCall: (seqSeconds * 1e6) / calls, p50Us: pct(0.5), p99Us: pct(0.99), pipelinedCallsPerSecond: pipelined / parSeconds };
  } finally {
    await cleanup();
  }
}

async function mapCase(): Promise<Record<string, number>> {
  const runner = makeRunner();
  try {
    const items = Array.from({ length: params.items }, (_, i) => i % 1000);
    const chunkSize = params.chunkSize;
    const viaChunks = async (): Promise<unknown[]> => {
      const chunks: number[][] = [];
      for (let i = 0; i < items.length; i += chunkSize) chunks.push(items.slice(i, i + chunkSize));
      const parts = (await Promise.all(chunks.map((c) => runner.run('squareAll', c)))) as number[][];
      return parts.flat();
    };
    const go = runner.map !== undefined ? () => runner.map!('square', items, chunkSize) : viaChunks;
    // Warm-up: every worker started and ran a few chunks.
    await Promise.all(Array.from({ length: params.size * 4 }, () => runner.run('squareAll', items.slice(0, chunkSize))));
    const t0 = performance.now();
    const results = await go();
    const seconds = (performance.now() - t0) / 1000;
    if (results.length !== items.length || results.some((r, i) => r !== items[i]! * items[i]!)) throw new Error(`${impl}: wrong result`);
    return { itemsPerSecond: items.length / seconds, seconds };
  } finally {
    await runner.close();
  }
}

const figures = kind === 'rpc' ? await rpcCase() : kind === 'map' ? await mapCase() : await poolCase();
process.stdout.write(JSON.stringify({ kind, impl, ...figures }) + '\n');
process.exit(0);
