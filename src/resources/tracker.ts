/**
 * The tracker: a detached process that a tree's root starts at its first
 * named creation (see registry.ts). It waits, without polling, for the root
 * to die (the root holds `tree.<pid>.<start>` exclusively for its whole
 * life; the kernel drops that lock even on SIGKILL), then sweeps the tree's
 * objects whose owners are dead and that nobody holds. Objects that live
 * processes of the tree still own or hold are looked at again every second
 * until none is left; then the tracker exits. It never removes an object a
 * live process holds.
 *
 * Usage: node tracker.js <registry dir> <tree> [locked]
 * ('locked': flock(1) already waited for the root and holds the lock shared).
 *
 * @internal
 */
import { closeSync, openSync, unlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { native } from '../binding/native.js';
import { sweep, treeLockFile } from './registry.js';

const RECHECK_MS = 1000;

async function main(): Promise<void> {
  const [dir, tree, locked] = process.argv.slice(2);
  if (dir === undefined || tree === undefined) process.exit(2);
  process.env.MULTIPROC_REGISTRY_DIR = dir;
  process.env.MULTIPROC_TRACKER = '0';
  const lockFile = treeLockFile(dir, tree);
  if (locked !== 'locked') {
    let fd: number;
    try {
      fd = openSync(lockFile, 'r');
    } catch {
      process.exit(0); // the root is gone and someone cleaned up after it
    }
    // Blocks this (dedicated) thread until the root dies.
    native.fileLock(fd, true, true);
    closeSync(fd);
  }
  for (;;) {
    const r = sweep({ tree });
    if (r.kept === 0) break;
    await sleep(RECHECK_MS);
  }
  try {
    unlinkSync(lockFile);
  } catch {
    // removed by a `multiproc clean`
  }
}

void main().then(
  () => process.exit(0),
  () => process.exit(1),
);
