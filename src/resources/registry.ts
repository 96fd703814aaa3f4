/**
 * The registry of named objects: one small record file per object that
 * multiproc created (shared-memory segments, POSIX and System V message
 * queues, FIFOs, Unix socket files), in a per-user directory on tmpfs.
 *
 * - A record says what the object is (kind, name, identity: inode or queue
 *   id), who created it (pid, start time, boot id: a reused pid is not the
 *   owner), whether it is owned, and the process tree it belongs to.
 * - Every process that has the object open holds a shared flock on the
 *   record file; the kernel drops it when the process dies, even by SIGKILL.
 * - A sweep removes an object only when it can take the exclusive lock
 *   without waiting (nobody has it open) AND its owner is dead: never while
 *   a live process uses it (unlike Python's resource tracker, cpython#82300).
 *
 * Only creation, open and close touch the registry; nothing per message.
 * The registry is a safety net: when it cannot be used (no writable tmpfs,
 * a sandbox without file-system access), objects work untracked.
 *
 * @internal
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
  ftruncateSync,
} from 'node:fs';
import { spawn as spawnProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { threadId } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { native } from '../binding/native.js';

/** What a record stands for. */
export type ResourceKind = 'shm' | 'mqueue' | 'msg' | 'fifo' | 'socket';

/** The content of a record file. */
export interface ResourceRecord {
  kind: ResourceKind;
  /** shm: '/name'; mqueue and msg: 'name'; fifo and socket: the absolute path. */
  name: string;
  /** The owner: the creator, or the process it handed the object over to. */
  pid: number;
  /** The owner's start time (clock ticks after boot, /proc/<pid>/stat field 22). */
  start: number;
  /** /proc/sys/kernel/random/boot_id at creation. */
  boot: string;
  /** The process tree: '<pid>:<start>' of its root. */
  tree: string;
  /** Creation time, ms since the epoch. */
  created: number;
  /** Bytes, when known. */
  size: number | null;
  /** False once the creator called disown(): sweeps leave it alone (`clean --all` does not). */
  owned: boolean;
  /** Identity of the object: inode and device (shm, mqueue, fifo, socket). */
  ino?: number;
  dev?: number;
  /** System V: queue id and key. */
  id?: number;
  key?: number;
}

/** Identity and size given by a creator. @internal */
export interface RecordInfo {
  size?: number;
  ino?: number;
  dev?: number;
  id?: number;
  key?: number;
}

// --- the directory ------------------------------------------------------------

const ENV_DIR = 'MULTIPROC_REGISTRY_DIR';
const ENV_TRACKER = 'MULTIPROC_TRACKER';
const ENV_TREE = 'MULTIPROC_TREE';
const ENV_TRACKED = 'MULTIPROC_TRACKED_TREE';
/** Variables a child must share with its parent to be part of the same registry and tree. */
export const registryEnvKeys: readonly string[] = [ENV_DIR, ENV_TRACKER, ENV_TREE, ENV_TRACKED];

let dirCache: string | null | undefined;

/** Where the registry lives for this user; the directory may not exist yet. */
export function registryPath(): string | null {
  const env = process.env[ENV_DIR];
  if (env === 'off') return null;
  if (env !== undefined && env !== '') return env;
  const uid = process.getuid?.() ?? 0;
  // Not in /dev/shm: that directory is for the segments themselves, and
  // tools that list it should see only those.
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg !== undefined && xdg !== '') return join(xdg, 'multiproc');
  return join(tmpdir(), `multiproc-${uid}`);
}

/**
 * The registry directory, created (mode 0700) on first use; null when it is
 * disabled or unusable. A directory that another user owns, or that others
 * may write, is refused: their records could make us remove our objects.
 */
export function registryDir(create = true): string | null {
  if (dirCache !== undefined && (dirCache !== null || !create)) return dirCache;
  let dir: string | null;
  try {
    // Under Node's permission model even existsSync may throw ERR_ACCESS_DENIED.
    dir = registryPath();
  } catch {
    return (dirCache = null);
  }
  if (dir === null) return (dirCache = null);
  try {
    let st;
    try {
      st = lstatSync(dir);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT' || !create) {
        if (!create) return null;
        throw err;
      }
      mkdirSync(dir, { mode: 0o700 });
      st = lstatSync(dir);
    }
    const uid = process.getuid?.();
    if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) return (dirCache = null);
    return (dirCache = dir);
  } catch {
    // no tmpfs, a read-only file system, a permission-model sandbox: untracked
    return (dirCache = null);
  }
}

/** The record file name of an object. @internal */
export function recordFile(kind: ResourceKind, name: string): string {
  const base = (kind === 'shm' || kind === 'mqueue') && name.startsWith('/') ? name.slice(1) : name;
  let enc = encodeURIComponent(base);
  if (enc.length > 200) enc = `~${createHash('sha256').update(base).digest('hex')}`;
  return `${kind}.${enc}`;
}

const KINDS: readonly ResourceKind[] = ['shm', 'mqueue', 'msg', 'fifo', 'socket'];

/** Whether a directory entry is a record (not a temporary file or a tree lock). @internal */
export function isRecordFile(file: string): boolean {
  const dot = file.indexOf('.');
  return dot > 0 && (KINDS as readonly string[]).includes(file.slice(0, dot));
}

// --- processes ------------------------------------------------------------------

let bootCache: string | undefined;
function bootId(): string {
  if (bootCache !== undefined) return bootCache;
  try {
    return (bootCache = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  } catch {
    return (bootCache = '');
  }
}

/** Start time of a live process (clock ticks after boot), or undefined when it is gone or a zombie. @internal */
export function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** Is the process that had `pid` and started at `start` (after boot `boot`) still running? @internal */
export function isAlive(pid: number, start: number, boot?: string): boolean {
  if (boot !== undefined && boot !== '' && bootId() !== '' && boot !== bootId()) return false;
  // Without a readable /proc nothing can be told: take every owner for alive.
  if (self().start === 0) return true;
  const s = processStart(pid);
  return s !== undefined && s === start;
}

let selfCache: { pid: number; start: number } | undefined;
function self(): { pid: number; start: number } {
  // A forked worker has another pid: cache per pid.
  if (selfCache === undefined || selfCache.pid !== process.pid) selfCache = { pid: process.pid, start: processStart(process.pid) ?? 0 };
  return selfCache;
}

function parseTree(tree: string | undefined): { pid: number; start: number } | undefined {
  if (tree === undefined) return undefined;
  const m = /^(\d+):(\d+)$/.exec(tree);
  return m === null ? undefined : { pid: Number(m[1]), start: Number(m[2]) };
}

let treeCache: string | undefined;

/**
 * This process's tree: inherited from the parent while the tree's root
 * lives, else this process is a root. Exported to children through the
 * environment. @internal
 */
export function treeId(): string {
  if (treeCache !== undefined) return treeCache;
  const me = self();
  const inherited = parseTree(process.env[ENV_TREE]);
  treeCache = inherited !== undefined && inherited.pid !== me.pid && isAlive(inherited.pid, inherited.start) ? process.env[ENV_TREE]! : `${me.pid}:${me.start}`;
  process.env[ENV_TREE] = treeCache;
  return treeCache;
}

// --- the tracker ------------------------------------------------------------------

let trackerChecked = false;
/** Held for the life of a root that started a tracker: the tracker waits for its release. */
let treeLockFd: number | undefined;

/** The lock file a tree's root holds (exclusively) while it lives. @internal */
export function treeLockFile(dir: string, tree: string): string {
  return join(dir, `tree.${tree.replace(':', '.')}`);
}

const trackerPath = fileURLToPath(new URL('./tracker.js', import.meta.url));

/**
 * Makes sure a tracker watches this process's tree, once per process: the
 * root of a tree starts one, detached, that sweeps the tree's objects when
 * the root dies. `MULTIPROC_TRACKER=0` turns it off.
 */
function ensureTracker(dir: string): void {
  if (trackerChecked) return;
  trackerChecked = true;
  if (process.env[ENV_TRACKER] === '0') return;
  let tree = treeId();
  if (process.env[ENV_TRACKED] === tree) return;
  const me = self();
  if (tree !== `${me.pid}:${me.start}`) {
    // The tree's root never started a tracker: become a root of our own.
    tree = treeCache = `${me.pid}:${me.start}`;
    process.env[ENV_TREE] = tree;
  }
  let fd: number | undefined;
  try {
    const lockFile = treeLockFile(dir, tree);
    fd = openSync(lockFile, 'w', 0o600);
    if (!native.fileLock(fd, false)) throw new Error('tree lock taken');
    const args = [trackerPath, dir, tree];
    const flock = ['/usr/bin/flock', '/bin/flock'].find((p) => existsSync(p));
    // flock(1) waits for the root's death at the cost of a tiny process;
    // Node starts only for the sweep.
    // Not the root's Node options: an --inspect port or a preload is not the tracker's.
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const opts = { detached: true, stdio: 'ignore', cwd: '/', env } as const;
    const child = flock !== undefined ? spawnProcess(flock, ['-s', lockFile, process.execPath, ...args, 'locked'], opts) : spawnProcess(process.execPath, args, opts);
    child.on('error', () => {});
    child.unref();
    treeLockFd = fd;
    process.env[ENV_TRACKED] = tree;
  } catch {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The tree lock of this process, if it started a tracker (tests). @internal */
export function hasTracker(): boolean {
  return treeLockFd !== undefined;
}

// --- holds ---------------------------------------------------------------------------

/**
 * This process's shared lock on one record. Handles of one object in one
 * process share it; the last release closes the descriptor (and the lock).
 * @internal
 */
export interface Hold {
  readonly path: string;
  fd: number;
  readonly ino: number;
  refs: number;
}

const holds = new Map<string, Hold>();
let tmpCounter = 0;

function share(path: string): Hold | undefined {
  const h = holds.get(path);
  if (h === undefined || h.refs === 0) return undefined;
  try {
    if (statSync(path).ino !== h.ino) return undefined;
  } catch {
    return undefined;
  }
  h.refs++;
  return h;
}

/**
 * Records an object this process just created (exclusively, so the name was
 * free) and holds the record. A stale record of the same name is replaced.
 * Never throws: on failure the object is simply untracked.
 * @internal
 */
export function recordCreated(kind: ResourceKind, name: string, info: RecordInfo = {}): Hold | undefined {
  const dir = registryDir();
  if (dir === null) return undefined;
  let fd: number | undefined;
  let tmp: string | undefined;
  try {
    ensureTracker(dir);
    const me = self();
    const rec: ResourceRecord = {
      kind,
      name,
      pid: me.pid,
      start: me.start,
      boot: bootId(),
      tree: treeId(),
      created: Date.now(),
      size: info.size ?? null,
      owned: true,
      ...info,
    };
    tmp = join(dir, `.tmp.${me.pid}.${threadId}.${++tmpCounter}`);
    fd = openSync(tmp, 'w+', 0o600);
    writeSync(fd, JSON.stringify(rec));
    // Locked before it has its name: no sweep ever sees it unlocked.
    native.fileLock(fd, false, true);
    const path = join(dir, recordFile(kind, name));
    renameSync(tmp, path);
    const hold: Hold = { path, fd, ino: fstatSync(fd).ino, refs: 1 };
    holds.set(path, hold);
    return hold;
  } catch {
    // The directory may have been removed: look again next time.
    dirCache = undefined;
    if (fd !== undefined) closeSync(fd);
    if (tmp !== undefined) {
      try {
        unlinkSync(tmp);
      } catch {
        // renamed already, or never created
      }
    }
    return undefined;
  }
}

/**
 * Holds the record of an object this process is about to open, so that no
 * sweep removes it from now on. Undefined when the object has no record (a
 * program other than multiproc made it) or the registry is unusable.
 * @internal
 */
export function recordOpened(kind: ResourceKind, name: string): Hold | undefined {
  const dir = registryDir(false);
  if (dir === null) return undefined;
  const path = join(dir, recordFile(kind, name));
  const shared = share(path);
  if (shared !== undefined) return shared;
  for (let attempt = 0; attempt < 3; attempt++) {
    const fd = openQuietly(path);
    if (fd === undefined) return undefined;
    try {
      // A sweep holds the exclusive lock only while it removes: wait it out.
      native.fileLock(fd, true, true);
      const ino = fstatSync(fd).ino;
      if (statSync(path).ino === ino) {
        const hold: Hold = { path, fd, ino, refs: 1 };
        holds.set(path, hold);
        return hold;
      }
    } catch {
      // removed meanwhile: look again
    }
    closeSync(fd);
  }
  return undefined;
}

/**
 * Lets go of a hold. When this was the last holder anywhere and the owner is
 * dead, the object is removed now: its last user is done with it.
 * @internal
 */
export function releaseHold(hold: Hold | undefined): void {
  if (hold === undefined || hold.refs === 0) return;
  if (--hold.refs > 0) return;
  if (holds.get(hold.path) === hold) holds.delete(hold.path);
  const fd = hold.fd;
  try {
    // Converting to exclusive succeeds only when no other process holds it.
    if (native.fileLock(fd, false)) {
      const me = self();
      removeIfStale(hold.path, fd, (rec) => rec.owned && !(rec.pid === me.pid && rec.start === me.start) && !isAlive(rec.pid, rec.start, rec.boot), true);
    }
  } catch {
    // best effort: a later sweep does it
  } finally {
    closeSync(fd);
  }
}

/**
 * The object is gone (its owner closed it, or someone unlinked it): removes
 * its record, if the record is still the one held, and lets go.
 * @internal
 */
export function recordRemoved(hold: Hold | undefined): void {
  if (hold === undefined || hold.refs === 0) return;
  try {
    if (statSync(hold.path).ino === hold.ino) unlinkSync(hold.path);
  } catch {
    // gone already
  }
  if (holds.get(hold.path) === hold) holds.delete(hold.path);
  // Nothing is left to sweep: just let go.
  if (--hold.refs === 0) closeSync(hold.fd);
}

/** The object was removed by name without a hold of ours: drop its record if it names a gone object. @internal */
export function recordUnlinked(kind: ResourceKind, name: string): void {
  const dir = registryDir(false);
  if (dir === null) return;
  const path = join(dir, recordFile(kind, name));
  withRecordFile(path, (fd) => removeIfStale(path, fd, (rec) => !objectExists(rec), false));
}

/** The owner gave the object up: mark the record unowned. @internal */
export function recordDisowned(hold: Hold | undefined): void {
  rewriteOwned(hold, (rec) => {
    rec.owned = false;
  });
}

/**
 * The owner hands the object over to another process (`pid` with start time
 * `start`), which is to remove it: the record names that process as the
 * owner, so sweeps keep the object while it lives and remove it once it is
 * dead and nobody holds it. Unlike an unowned record, it is never left for
 * `clean --all` only. @internal
 */
export function recordHandedOver(hold: Hold | undefined, owner: { pid: number; start: number }): void {
  rewriteOwned(hold, (rec) => {
    rec.pid = owner.pid;
    rec.start = owner.start;
  });
}

/** Rewrites the held record of an owned object with `change`. */
function rewriteOwned(hold: Hold | undefined, change: (rec: ResourceRecord) => void): void {
  if (hold === undefined || hold.refs === 0) return;
  try {
    const rec = readRecord(hold.fd);
    if (rec === undefined || !rec.owned) return;
    change(rec);
    const text = JSON.stringify(rec);
    // One write from offset 0; readers that see a torn record retry.
    const wfd = openSync(hold.path, 'r+');
    try {
      writeSync(wfd, text, 0);
      ftruncateSync(wfd, Buffer.byteLength(text));
    } finally {
      closeSync(wfd);
    }
  } catch {
    // best effort
  }
}

// --- reading and removing ------------------------------------------------------------------

/** Reads and parses a record through its descriptor; undefined when unreadable. @internal */
export function readRecord(fd: number): ResourceRecord | undefined {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const buf = Buffer.alloc(Math.max(1, fstatSync(fd).size));
      const n = readSync(fd, buf, 0, buf.length, 0);
      const rec = JSON.parse(buf.subarray(0, n).toString('utf8')) as ResourceRecord;
      if (typeof rec === 'object' && rec !== null && (KINDS as readonly string[]).includes(rec.kind) && typeof rec.name === 'string') return rec;
      return undefined;
    } catch {
      // torn by a concurrent disown: read again
    }
  }
  return undefined;
}

/** A read-only descriptor of `path`; undefined when it cannot be opened. */
function openQuietly(path: string): number | undefined {
  try {
    return openSync(path, 'r');
  } catch {
    return undefined;
  }
}

/**
 * Opens `path` read-only and runs `use` on the descriptor, closing it after;
 * undefined when it cannot be opened (removed meanwhile). Errors of `use` propagate.
 */
function withRecordFile<R>(path: string, use: (fd: number) => R): R | undefined {
  const fd = openQuietly(path);
  if (fd === undefined) return undefined;
  try {
    return use(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads the record open at `fd`; when `stale(record)` says it is to go and
 * `path` still names that record, removes it, and with `withObject` its
 * object first (if that is still the same one). Never throws.
 */
function removeIfStale(path: string, fd: number, stale: (rec: ResourceRecord) => boolean, withObject: boolean): void {
  const rec = readRecord(fd);
  if (rec === undefined || !stale(rec) || !sameFile(path, fd)) return;
  if (withObject) removeObject(rec);
  unlinkQuietly(path);
}

function sameFile(path: string, fd: number): boolean {
  try {
    return statSync(path).ino === fstatSync(fd).ino;
  } catch {
    return false;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // gone already
  }
}

function isCode(err: unknown, code: string): boolean {
  return (err as { code?: unknown } | null)?.code === code;
}

/** Where the object's file is, for kinds that have one in a file system. */
function objectFile(rec: ResourceRecord): string | undefined {
  switch (rec.kind) {
    case 'shm':
      return `/dev/shm${rec.name}`;
    case 'mqueue':
      return `/dev/mqueue/${rec.name}`;
    case 'fifo':
    case 'socket':
      return rec.name;
    default:
      return undefined;
  }
}

/**
 * What `native.msgStat` says of the System V queue a record describes, while
 * it is still that queue (same id and key); undefined once it is gone.
 * @internal
 */
export function recordedQueueStat(rec: ResourceRecord): Float64Array | undefined {
  if (rec.id === undefined) return undefined;
  const out = new Float64Array(12);
  try {
    native.msgStat(rec.id, out);
  } catch {
    return undefined;
  }
  return rec.key === undefined || out[0] === rec.key ? out : undefined;
}

/**
 * Whether the object the record describes still exists and is the same one
 * (same inode, same System V key): a name reused by a newer object is not it.
 * @internal
 */
export function objectExists(rec: ResourceRecord): boolean {
  if (rec.kind === 'msg') return recordedQueueStat(rec) !== undefined;
  const file = objectFile(rec);
  if (file === undefined) return false;
  try {
    const st = lstatSync(file);
    if (rec.ino !== undefined && st.ino !== rec.ino) return false;
    if (rec.kind === 'fifo' && !st.isFIFO()) return false;
    if (rec.kind === 'socket' && !st.isSocket()) return false;
    return true;
  } catch (err) {
    // /dev/mqueue not mounted: the name may still exist; try to remove it.
    return rec.kind === 'mqueue' && !isCode(err, 'ENOENT');
  }
}

/** Removes the object a record describes, if it is still the same object. Never throws. @internal */
export function removeObject(rec: ResourceRecord): boolean {
  if (!objectExists(rec)) return false;
  try {
    switch (rec.kind) {
      case 'shm':
        native.shmUnlink(rec.name);
        return true;
      case 'mqueue':
        native.mqUnlink(`/${rec.name}`);
        return true;
      case 'msg':
        native.msgRemove(rec.id!);
        return true;
      case 'fifo':
      case 'socket':
        unlinkSync(rec.name);
        return true;
    }
  } catch {
    return false;
  }
  return false;
}

// --- sweeping -------------------------------------------------------------------------------

/** Which records a sweep may consider. @internal */
export interface SweepFilter {
  /** Only records of this tree. */
  tree?: string;
  /** ...or created by this pid. */
  pid?: number;
  /** Also unowned records (disowned objects) and records of live owners, when nobody holds them. */
  all?: boolean;
  /** Report, change nothing. */
  dryRun?: boolean;
}

/** One record a sweep looked at. @internal */
export interface SweepEntry {
  record: ResourceRecord;
  /** Whether the object still existed. */
  existed: boolean;
}

/** What a sweep did. @internal */
export interface SweepResult {
  /** Records removed, with their objects. */
  removed: SweepEntry[];
  /** Matching owned records left because a live process holds them or their owner lives. */
  kept: number;
}

/**
 * Removes the objects whose owner is dead and that no live process holds
 * (with `all`, also unowned ones nobody holds), with their records. Each
 * record is locked exclusively without waiting first: a held record is left
 * at the cost of one system call.
 * @internal
 */
export function sweep(filter: SweepFilter = {}): SweepResult {
  const result: SweepResult = { removed: [], kept: 0 };
  const listed = registryEntries();
  if (listed === undefined) return result;
  const { dir, files } = listed;
  for (const file of files) {
    if (!isRecordFile(file)) continue;
    const path = join(dir, file);
    withRecordFile(path, (fd) => {
      try {
        sweepRecord(path, fd, filter, result);
      } catch {
        // one bad record must not stop the sweep
      }
    });
  }
  if (!filter.dryRun) removeLeftovers(dir, files);
  return result;
}

/** One record of a sweep, open at `fd`. */
function sweepRecord(path: string, fd: number, filter: SweepFilter, result: SweepResult): void {
  if (!native.fileLock(fd, false)) {
    if (filter.tree !== undefined || filter.pid !== undefined) {
      const rec = readRecord(fd);
      if (rec !== undefined && rec.owned && matches(rec, filter)) result.kept++;
    } else {
      result.kept++;
    }
    return;
  }
  if (!sameFile(path, fd)) return;
  const rec = readRecord(fd);
  if (rec === undefined) return;
  if (!matches(rec, filter)) return;
  const alive = isAlive(rec.pid, rec.start, rec.boot);
  if (!filter.all && (!rec.owned || alive)) {
    if (rec.owned) result.kept++;
    return;
  }
  const existed = objectExists(rec);
  if (!filter.dryRun) {
    // A record stays with an object that could not be removed (EPERM...): it is still there.
    if (existed && !removeObject(rec)) return;
    unlinkQuietly(path);
  }
  result.removed.push({ record: rec, existed });
}

function matches(rec: ResourceRecord, f: SweepFilter): boolean {
  if (f.tree === undefined && f.pid === undefined) return true;
  return (f.tree !== undefined && rec.tree === f.tree) || (f.pid !== undefined && rec.pid === f.pid);
}

/** Temporary files of dead creators and tree locks nobody holds. */
function removeLeftovers(dir: string, files: string[]): void {
  for (const file of files) {
    const tmp = /^\.tmp\.(\d+)\./.exec(file);
    if (tmp !== null) {
      if (processStart(Number(tmp[1])) === undefined) unlinkQuietly(join(dir, file));
      continue;
    }
    const tree = /^tree\.(\d+)\.(\d+)$/.exec(file);
    if (tree !== null && !isAlive(Number(tree[1]), Number(tree[2]))) {
      // The tracker holds it shared while it works: leave it to the tracker then.
      const path = join(dir, file);
      withRecordFile(path, (fd) => {
        try {
          if (native.fileLock(fd, false) && sameFile(path, fd)) unlinkQuietly(path);
        } catch {
          // leave it
        }
      });
    }
  }
}

/** A record with its file, as {@link listRecords} lists it. @internal */
export interface ListedRecord {
  file: string;
  path: string;
  record: ResourceRecord;
  recordIno: number;
  recordDev: number;
}

/** The registry directory and the names in it; undefined when there is none or it cannot be read. @internal */
export function registryEntries(): { dir: string; files: string[] } | undefined {
  const dir = registryDir(false);
  if (dir === null) return undefined;
  try {
    return { dir, files: readdirSync(dir) };
  } catch {
    return undefined;
  }
}

/** Every record with its file, read without locking. @internal */
export function listRecords(): ListedRecord[] {
  const listed = registryEntries();
  if (listed === undefined) return [];
  const { dir, files } = listed;
  const out: ListedRecord[] = [];
  for (const file of files.sort()) {
    if (!isRecordFile(file)) continue;
    const path = join(dir, file);
    withRecordFile(path, (fd) => {
      const rec = readRecord(fd);
      const st = fstatSync(fd);
      if (rec !== undefined) out.push({ file, path, record: rec, recordIno: st.ino, recordDev: st.dev });
    });
  }
  return out;
}
