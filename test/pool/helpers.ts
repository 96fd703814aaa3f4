/** Shared bits of the pool tests. */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Pool, type PoolOptions } from '../../src/pool/pool.js';

/** The compiled task module of the tests. */
export const tasks = fileURLToPath(new URL('./fixtures/tasks.js', import.meta.url));

/** Environment for workers: marks them for the suite's leak check. */
export const childEnv = { ...process.env, MULTIPROC_TEST_CHILD: '1' };

/** A pool over the test task module. */
export function makePool(options: Omit<PoolOptions, 'module'> = {}): Pool {
  return new Pool({ module: tasks, size: 1, env: childEnv, ...options });
}

/** Names in /dev/shm that belong to `pool`. */
export function shmOf(pool: Pool): string[] {
  return readdirSync('/dev/shm').filter((n) => n.includes(pool.namePrefix));
}

/** Rejects after `ms` with a message naming `what`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    }),
  ]);
}

/** Polls `check` every 20 ms until it is true; false after `ms`. */
export async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}
