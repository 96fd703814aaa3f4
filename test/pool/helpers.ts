/** Shared bits of the pool tests. */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Pool, type PoolOptions } from '../../src/pool/pool.js';
export { within } from '../process/helpers.js';

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

export async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}
