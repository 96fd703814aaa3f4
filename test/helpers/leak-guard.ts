/**
 * After each test: fail if the test left named objects of ours in /dev/shm
 * (or /dev/mqueue), or child processes of this process still alive.
 */
import { afterEach } from 'node:test';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { TEST_PREFIX, issuedNames } from './names.js';
import { sysvKey } from '../../src/mqueue/sysv-key.js';
import { isRecordFile, registryPath } from '../../src/resources/registry.js';

function ours(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const mine = `-${process.pid}-`;
  return readdirSync(dir).filter((n) => n.includes(TEST_PREFIX) && n.includes(mine));
}

/** Registry records (src/resources/registry.ts) of our objects; the directory itself is not a leak. */
export function recordsLeft(): string[] {
  const dir = registryPath();
  if (dir === null) return [];
  return ours(dir).filter(isRecordFile);
}

/** Test names whose System V message queue (by key, see MessageQueue.sysvKey) still exists: what `ipcs -q` would show. */
export function sysvQueuesLeft(): string[] {
  if (issuedNames.length === 0 || !existsSync('/proc/sysvipc/msg')) return [];
  const keys = new Set(
    readFileSync('/proc/sysvipc/msg', 'utf8')
      .split('\n')
      .slice(1)
      .map((l) => Number(l.trim().split(/\s+/)[0]))
      .filter((k) => Number.isInteger(k)),
  );
  if (keys.size === 0) return [];
  return issuedNames.filter((n) => keys.has(sysvKey(n)));
}

/** Pids of live (non-zombie) children of this process. */
export function liveChildren(): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === process.pid && fields[0] !== 'Z') out.push(Number(entry));
    } catch {
      // the process went away while we looked
    }
  }
  return out;
}

/**
 * Installs the guard for every test of the calling file. `allowChildren`
 * names children that outlive single tests on purpose (a server the file's
 * `before` started and its `after` stops).
 */
export function leakGuard(options: { allowChildren?: () => Iterable<number> } = {}): void {
  afterEach(async () => {
    const allowed = (): Set<number> => new Set(options.allowChildren?.() ?? []);
    const mine = (): number[] => liveChildren().filter((p) => !allowed().has(p));
    // Children that were just killed may need a moment to be reaped.
    let children = mine();
    for (let i = 0; i < 50 && children.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      children = mine();
    }
    const shm = ours('/dev/shm');
    const mq = ours('/dev/mqueue');
    const msg = sysvQueuesLeft();
    const records = recordsLeft();
    const problems: string[] = [];
    if (shm.length > 0) problems.push(`left in /dev/shm: ${shm.join(', ')}`);
    if (mq.length > 0) problems.push(`left in /dev/mqueue: ${mq.join(', ')}`);
    if (msg.length > 0) problems.push(`System V message queues left (ipcs -q): ${msg.join(', ')}`);
    if (records.length > 0) problems.push(`registry records left: ${records.join(', ')}`);
    if (children.length > 0) problems.push(`child processes still alive: ${children.join(', ')}`);
    if (problems.length > 0) {
      for (const c of children) {
        try {
          process.kill(c, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      throw new Error(`leak guard: ${problems.join('; ')}`);
    }
  });
}
