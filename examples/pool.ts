// Pool: the exported functions of a module run in worker processes. Big typed
// arrays travel through shared memory; a worker killed in the middle of a
// task fails only that task, and the pool replaces it.
import { fileURLToPath } from 'node:url';
import { Pool, parent, type WorkerExitedError } from 'multiproc';

export function square(x: number): number {
  return x * x;
}

export function norm(v: Float64Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

export function die(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

// In a worker this module is only imported for its functions; `parent` is set there.
if (parent === null) {
  await using pool = new Pool({ module: fileURLToPath(import.meta.url), size: 2 });
  console.log(`squares: ${(await pool.map('square', [1, 2, 3, 4])).join(' ')}`);
  console.log(`norm of 131072 ones: ${(await pool.run('norm', [new Float64Array(131072).fill(1)])).toFixed(2)}`);
  const err = (await pool.run('die').catch((e: unknown) => e)) as WorkerExitedError;
  console.log(`a worker died: ${err.code} (${err.reason})`);
  console.log(`the next task still runs: ${await pool.run('square', [12])}`);
}
