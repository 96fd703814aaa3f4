/** Helpers for message-queue tests: the /dev/mqueue mount, and small C programs built at test time. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TempDir } from './temp-files.js';

function mounted(): boolean {
  try {
    return readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[1] === '/dev/mqueue' && l.split(' ')[2] === 'mqueue');
  } catch {
    return false;
  }
}

let mountResult: string | false | undefined;

/**
 * Makes sure the mqueue file system is mounted at /dev/mqueue (as
 * scripts/setup-mqueue.mjs does before `npm test`). Returns false when it is,
 * or the reason it is not, for `test(..., { skip })`.
 */
export function devMqueueSkip(): string | false {
  if (mountResult !== undefined) return mountResult;
  if (!mounted()) {
    try {
      mkdirSync('/dev/mqueue', { recursive: true });
      spawnSync('mount', ['-t', 'mqueue', 'none', '/dev/mqueue'], { stdio: 'ignore' });
    } catch {
      // reported below
    }
  }
  mountResult = mounted() ? false : '/dev/mqueue is not mounted and could not be mounted (needs root: mount -t mqueue none /dev/mqueue)';
  return mountResult;
}

let cc: string | null | undefined;

/** The C compiler, or null when there is none (tests that need one skip). */
export function cCompiler(): string | null {
  if (cc !== undefined) return cc;
  cc = null;
  for (const candidate of [process.env.CC, 'cc', 'gcc', 'clang']) {
    if (!candidate) continue;
    if (spawnSync(candidate, ['--version'], { stdio: 'ignore' }).status === 0) {
      cc = candidate;
      break;
    }
  }
  return cc;
}

/** Compiles `source` into an executable in `dir`; returns its path. */
export function compileC(dir: TempDir, name: string, source: string, libs: string[] = []): string {
  const src = join(dir.dir, `${name}.c`);
  const exe = join(dir.dir, name);
  writeFileSync(src, source);
  execFileSync(cCompiler()!, ['-O1', '-o', exe, src, ...libs], { stdio: ['ignore', 'pipe', 'pipe'] });
  return exe;
}
