/** Shared bits of the process tests: fixture paths and bounded waits. */
import { fileURLToPath } from 'node:url';
import { existsSync, readFileSync } from 'node:fs';
import type { ChildHandle } from '../../src/process/spawn.js';

/** Path of a compiled fixture module (test/process/fixtures/<name>.ts). */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}.js`, import.meta.url));
}

/** Environment for spawned children: marks them for the suite's leak check. */
export const childEnv = { ...process.env, MULTIPROC_TEST_CHILD: '1' };

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

/** Kills what a failed test left running; for `finally` blocks. */
export async function reap(...handles: ChildHandle[]): Promise<void> {
  for (const h of handles) h.kill('SIGKILL');
  await Promise.all(handles.map((h) => within(h.exited, 10000, 'reap')));
}

/** Whether `pid` is a live process (a zombie counts as gone). */
export function alive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Polls until `pid` is gone; false if it is still alive after `ms`. */
export async function gone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}
