/**
 * One trial of one JavaScript lock case, in a fresh process.
 * Usage: node trial.js <case> <count> <warmup> <shmName>
 *
 * Uncontended cases run `count` lock+unlock pairs after `warmup` more and
 * print {"ops","ns","nsPerOp"}. Handoff cases start a partner process
 * (partner.js), run `count` round trips after `warmup` more and print
 * {"roundTripNs":[...]}, the same output as the C programs in bench/c.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Mutex, SharedMemory } from '../../src/index.js';
import { native } from '../../src/binding/native.js';
import { HANDOFF_SEGMENT_SIZE, handoffModes, Rotation, type HandoffMode } from './rotation.js';

type Loop = (ops: number) => void | Promise<void>;

function uncontendedLoops(m: Mutex, shm: SharedMemory): Record<string, Loop> {
  const buffer = shm.buffer;
  const { mutexTryLock, mutexUnlock, mutexHeldIn } = native;
  const i32 = new Int32Array(buffer);
  const word = 64 / 4; // away from the mutex at offset 0
  const tid = native.threadInfo().tid;
  return {
    'try-guard': (ops) => {
      for (let i = 0; i < ops; i++) {
        const g = m.tryAcquire();
        if (g === null) throw new Error('tryAcquire failed on a free mutex');
        g.release();
      }
    },
    'try-direct': (ops) => {
      for (let i = 0; i < ops; i++) {
        if (m.tryAcquire() === null) throw new Error('tryAcquire failed on a free mutex');
        m.release();
      }
    },
    'sync-guard': (ops) => {
      for (let i = 0; i < ops; i++) m.acquireSync().release();
    },
    'sync-direct': (ops) => {
      for (let i = 0; i < ops; i++) {
        m.acquireSync();
        m.release();
      }
    },
    'async-guard': async (ops) => {
      for (let i = 0; i < ops; i++) (await m.acquire()).release();
    },
    'native-pair': (ops) => {
      for (let i = 0; i < ops; i++) {
        if (mutexTryLock(buffer, 0, 0) !== 1) throw new Error('mutexTryLock failed on a free mutex');
        mutexUnlock(buffer, 0);
      }
    },
    'addon-floor': (ops) => {
      let n = 0;
      for (let i = 0; i < ops; i++) n += mutexHeldIn(buffer) + mutexHeldIn(buffer);
      if (n !== 0) throw new Error('unexpected held mutex');
    },
    'js-atomics': (ops) => {
      for (let i = 0; i < ops; i++) {
        if (Atomics.compareExchange(i32, word, 0, tid) !== 0) throw new Error('lock word not free');
        Atomics.store(i32, word, 0);
      }
    },
  };
}

async function uncontended(caseName: string, ops: number, warmup: number, shmName: string): Promise<object> {
  const shm = SharedMemory.create(shmName, 4096);
  // Nobody else needs the name: remove it now so nothing can be left behind.
  shm.unlink();
  try {
    const loop = uncontendedLoops(new Mutex(shm, 0), shm)[caseName];
    if (loop === undefined) throw new Error(`unknown case '${caseName}'`);
    await loop(warmup);
    const t0 = process.hrtime.bigint();
    await loop(ops);
    const ns = Number(process.hrtime.bigint() - t0);
    return { ops, ns, nsPerOp: ns / ops };
  } finally {
    shm.close();
  }
}

async function waitReady(rotation: Rotation, partner: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30000;
  while (!rotation.ready) {
    if (partner.exitCode !== null || partner.signalCode !== null) throw new Error(`partner exited early (${partner.exitCode ?? partner.signalCode})`);
    if (Date.now() > deadline) throw new Error('partner did not attach within 30 s');
    await new Promise((r) => setTimeout(r, 1));
  }
}

async function handoff(mode: HandoffMode, roundTrips: number, warmup: number, shmName: string): Promise<object> {
  const steps = roundTrips + warmup;
  const shm = SharedMemory.create(shmName, HANDOFF_SEGMENT_SIZE);
  const rotation = new Rotation(shm, mode);
  let partner: ChildProcess | undefined;
  try {
    rotation.start('A');
    const partnerPath = fileURLToPath(new URL('./partner.js', import.meta.url));
    partner = spawn(process.execPath, [partnerPath, mode, shmName, String(steps)], { stdio: ['ignore', 'ignore', 'inherit'] });
    const exited = once(partner, 'exit');
    exited.catch(() => undefined); // awaited below; no unhandled rejection if we fail first
    await waitReady(rotation, partner);
    // The partner has it mapped: the name is no longer needed.
    shm.unlink();
    const samples = new Float64Array(roundTrips);
    await rotation.runA(steps, samples);
    rotation.releaseAll();
    const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
    if (code !== 0) throw new Error(`partner failed (${code ?? signal})`);
    return { roundTripNs: Array.from(samples, (ms) => Math.round(ms * 1e6)) };
  } finally {
    rotation.releaseAll();
    if (partner !== undefined && partner.exitCode === null && partner.signalCode === null) partner.kill('SIGKILL');
    if (shm.owner) shm.unlink();
    shm.close();
  }
}

async function main(): Promise<void> {
  const [caseName, countArg, warmupArg, shmName] = process.argv.slice(2);
  const count = Number(countArg);
  const warmup = Number(warmupArg);
  if (caseName === undefined || shmName === undefined || !(count > 0) || !(warmup >= 0)) {
    throw new Error('usage: trial.js <case> <count> <warmup> <shmName>');
  }
  let result: object;
  const mode = caseName.startsWith('handoff-') ? caseName.slice('handoff-'.length) : undefined;
  if (mode !== undefined) {
    if (!handoffModes.includes(mode as HandoffMode)) throw new Error(`unknown case '${caseName}'`);
    result = await handoff(mode as HandoffMode, count, warmup, shmName);
  } else result = await uncontended(caseName, count, warmup, shmName);
  // No process.exit(): a natural exit flushes the pipe first.
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
