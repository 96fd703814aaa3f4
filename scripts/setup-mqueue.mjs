// Test setup: mounts the POSIX message-queue file system at /dev/mqueue when
// it is missing, so that tests (and the leak guard) can see queues there.
// Mounting needs root (CAP_SYS_ADMIN); without it this only explains, and the
// tests that look into /dev/mqueue skip with the same explanation.
// Usage: node scripts/setup-mqueue.mjs (scripts/test.mjs runs it first).
import { mkdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export function mqueueMounted() {
  try {
    return readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .some((line) => {
        const f = line.split(' ');
        return f[1] === '/dev/mqueue' && f[2] === 'mqueue';
      });
  } catch {
    return false;
  }
}

/** Returns { mounted, changed?, reason? }. */
export function ensureMqueueMounted() {
  if (mqueueMounted()) return { mounted: true };
  try {
    mkdirSync('/dev/mqueue', { recursive: true });
  } catch (err) {
    return { mounted: false, reason: `cannot create /dev/mqueue: ${err.message}` };
  }
  const r = spawnSync('mount', ['-t', 'mqueue', 'none', '/dev/mqueue'], { encoding: 'utf8' });
  if (r.status === 0 && mqueueMounted()) return { mounted: true, changed: true };
  return { mounted: false, reason: (r.stderr || r.error?.message || `mount exited with status ${r.status}`).trim() };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = ensureMqueueMounted();
  if (r.changed) console.error('setup: mounted the mqueue file system at /dev/mqueue');
  if (!r.mounted) {
    console.error(
      `setup: /dev/mqueue is not mounted and mounting it failed (${r.reason}); tests that look into /dev/mqueue ` +
        'will be skipped. As root: mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue',
    );
  }
}
