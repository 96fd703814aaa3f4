/** Shared bits of the registry tests: where objects are, and bounded polling. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sysvKey } from '../../src/mqueue/sysv-key.js';
import { isRecordFile, recordFile, registryPath, type ResourceKind } from '../../src/resources/registry.js';

/** Path of the compiled fixture (test/resources/fixtures/objects.ts). */
export const objectsFixture = fileURLToPath(new URL('./fixtures/objects.js', import.meta.url));

/** Whether a System V queue of this name (by key) exists. */
export function sysvExists(name: string): boolean {
  const key = sysvKey(name);
  return readFileSync('/proc/sysvipc/msg', 'utf8')
    .split('\n')
    .slice(1)
    .some((l) => Number(l.trim().split(/\s+/)[0]) === key);
}

/** What is left of the objects `create-all` makes for `base` (fixtures/objects.ts). */
export function leftOfAll(base: string, fifo: string, sock: string, dir = registryPath()): string[] {
  const left: string[] = [];
  if (existsSync(`/dev/shm/${base}-shm`)) left.push('shm segment');
  if (existsSync(fifo)) left.push('fifo');
  if (existsSync(sock)) left.push('socket file');
  if (existsSync(`/dev/mqueue/${base}-pq`)) left.push('posix queue');
  if (sysvExists(`${base}-sq`)) left.push('sysv queue');
  if (existsSync(`/dev/shm/mp.sysvq.${base}-sq`)) left.push('sysv control segment');
  if (dir !== null && existsSync(dir)) {
    const records = readdirSync(dir).filter((f) => isRecordFile(f) && (f.includes(base) || f.includes(encodeURIComponent(fifo)) || f.includes(encodeURIComponent(sock))));
    if (records.length > 0) left.push(`records ${records.join(', ')}`);
  }
  return left;
}

/** The record file of an object, in the registry `dir`. */
export function recordPath(kind: ResourceKind, name: string, dir = registryPath()!): string {
  return join(dir, recordFile(kind, name));
}

/** Polls `check` every 50 ms until it returns true; false after `ms`. */
export async function eventually(check: () => boolean, ms = 30000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Pids of tracker processes watching the tree whose root is `rootPid`. */
export function trackersOf(rootPid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.endsWith('tracker.js')) && argv.some((a) => a.startsWith(`${rootPid}:`))) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}
