/**
 * Looking at the registry: what `multiproc ls`, `stat` and `clean` show and
 * do, as functions. Inspection never opens an object through the library
 * (that would hold its record, and a last holder's close may remove it):
 * queues are read with the bare system calls.
 */
import { closeSync, fstatSync, readFileSync } from 'node:fs';
import { native } from '../binding/native.js';
import { validateBoolean, validateOptions, validateString } from '../errors.js';
import type { MessageQueueStat } from '../mqueue/backend.js';
import { H_MAGIC, MAGIC as SHMQ_MAGIC, ShmStore } from '../mqueue/shm-store.js';
import { posixStat } from '../mqueue/posix.js';
import { sysvStat } from '../mqueue/sysv.js';
import { isAlive, listRecords, objectExists, recordedQueueStat, registryDir, registryPath, sweep, type ResourceKind, type ResourceRecord } from './registry.js';
import { readStatuses } from './status.js';

export type { ResourceKind, ResourceRecord } from './registry.js';

/** One named object in the registry, as `multiproc ls` shows it. */
export interface ResourceInfo {
  /**
   * What it is: 'shm', 'shm-ring', 'mutex', 'semaphore', 'event',
   * 'condition', 'barrier', 'rwlock', 'mqueue-posix', 'mqueue-sysv',
   * 'mqueue-shm', 'mqueue-sysv-control', 'fifo' or 'socket'.
   */
  kind: string;
  /** The kind of kernel object: 'shm', 'mqueue' (POSIX), 'msg' (System V), 'fifo', 'socket'. */
  object: ResourceKind;
  /** The kernel name: '/name' in /dev/shm, 'name' of a queue, or a path. */
  name: string;
  /** The creator's pid. */
  ownerPid: number;
  /** Whether the creator still runs (same pid and start time). */
  ownerAlive: boolean;
  /** False for objects given up with `disown()`: only `clean --all` removes them. */
  owned: boolean;
  /** Processes that have it open now, or null when that cannot be told. */
  users: number | null;
  /** Their pids, when known. */
  userPids: number[] | null;
  /** Bytes, when known. */
  size: number | null;
  /** When it was created. */
  created: Date;
  /** Milliseconds since then. */
  ageMs: number;
  /** Messages queued (queues only), else null. */
  depth: number | null;
  /** Whether the object itself still exists (false: only a stale record is left). */
  exists: boolean;
  /** Whether a sweep would remove it now: owner dead, nobody holds it. */
  removable: boolean;
}

/** Full statistics of one object (`multiproc stat`). */
export interface ResourceStat extends ResourceInfo {
  /** The registry record as stored. */
  record: ResourceRecord;
  /** Queues: the `msqid_ds`-like fields of `MessageQueue.stat()`. */
  queue?: MessageQueueStat;
}

/** Options of {@link cleanResources}. */
export interface CleanOptions {
  /** Also remove unowned (disowned) objects and those of live owners, when no process has them open. Default false. */
  all?: boolean;
  /** Only report what would be removed. Default false. */
  dryRun?: boolean;
}

/** What {@link cleanResources} removed. */
export interface CleanResult {
  removed: Array<{ kind: string; object: ResourceKind; name: string; ownerPid: number; existed: boolean }>;
  /** Objects left because a live process has them open or owns them. */
  kept: number;
}

const PRIMITIVES = new Set(['mutex', 'semaphore', 'event', 'condition', 'barrier', 'rwlock']);

/** The kind shown for a record: named primitives, rings and queues live in segments with known prefixes. */
function displayKind(rec: ResourceRecord): string {
  switch (rec.kind) {
    case 'mqueue':
      return 'mqueue-posix';
    case 'msg':
      return 'mqueue-sysv';
    case 'shm': {
      const m = /^\/mp\.([a-z]+)\./.exec(rec.name);
      if (m === null) return 'shm';
      if (m[1] === 'ring') return 'shm-ring';
      if (m[1] === 'shmq') return 'mqueue-shm';
      if (m[1] === 'sysvq') return 'mqueue-sysv-control';
      return PRIMITIVES.has(m[1]!) ? m[1]! : 'shm';
    }
    default:
      return rec.kind;
  }
}

/** Flock holders per record file, from /proc/locks: 'major:minor:inode' -> pids. */
function lockHolders(): Map<string, number[]> | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/locks', 'utf8');
  } catch {
    return undefined;
  }
  const out = new Map<string, number[]>();
  for (const line of text.split('\n')) {
    // "1: FLOCK  ADVISORY  READ  1234 00:1b:5906 0 EOF"; waiters have '->'.
    const f = line.trim().split(/\s+/);
    if (f[1] !== 'FLOCK') continue;
    const [maj, min, ino] = (f[5] ?? '').split(':');
    if (ino === undefined) continue;
    const key = `${parseInt(maj!, 16)}:${parseInt(min!, 16)}:${ino}`;
    const list = out.get(key) ?? [];
    list.push(Number(f[4]));
    out.set(key, list);
  }
  return out;
}

function devKey(dev: number, ino: number): string {
  // Linux dev_t: minor in bits 0-7 and 20-31, major in bits 8-19.
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
  return `${major}:${minor}:${ino}`;
}

/** Maps a segment copy-on-write, runs `fn`, unmaps. */
function withSegment<R>(name: string, fn: (buffer: SharedArrayBuffer, mode: number) => R): R | undefined {
  let fd: number;
  try {
    fd = native.shmOpen(name, native.O_RDONLY, 0);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (st.size === 0) return undefined;
    const buffer = native.map(fd, 0, st.size, native.PROT_READ | native.PROT_WRITE, native.MAP_PRIVATE);
    try {
      return fn(buffer, st.mode & 0o777);
    } finally {
      native.release(buffer);
    }
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}


/** The queue statistics of a record, read without opening the queue through the library. */
function queueStat(rec: ResourceRecord): MessageQueueStat | undefined {
  if (rec.kind === 'mqueue') {
    let mqd: number;
    try {
      mqd = native.mqOpen(`/${rec.name}`, native.O_RDONLY, 0, 0, 0);
    } catch {
      return undefined;
    }
    try {
      const out = new Int32Array(3);
      native.mqGetattr(mqd, out);
      return posixStat(mqd, rec.name, out);
    } catch {
      return undefined;
    } finally {
      native.mqClose(mqd);
    }
  }
  if (rec.kind === 'msg') {
    // Undefined when the queue is gone (so is an id-less record).
    const s = recordedQueueStat(rec);
    if (s === undefined) return undefined;
    // The largest message is in the control segment (word 8).
    const max = withSegment(`/mp.sysvq.${rec.name}`, (b) => new Int32Array(b)[8]!) ?? null;
    return sysvStat(s, rec.name, max ?? s[5]!, rec.key ?? s[0]!, rec.id!);
  }
  if (rec.kind === 'shm' && rec.name.startsWith('/mp.shmq.')) {
    return withSegment(rec.name, (b, mode) => {
      const store = new ShmStore(b);
      if (store.i32[H_MAGIC] !== SHMQ_MAGIC) return undefined;
      return store.stat(rec.name.slice('/mp.shmq.'.length), store.maxMessageSize, mode);
    });
  }
  return undefined;
}

function describe(
  entry: ReturnType<typeof listRecords>[number],
  holders: Map<string, number[]> | undefined,
  now: number,
  withQueue: boolean,
): ResourceStat {
  const rec = entry.record;
  const ownerAlive = isAlive(rec.pid, rec.start, rec.boot);
  const userPids = holders === undefined ? null : [...new Set(holders.get(devKey(entry.recordDev, entry.recordIno)) ?? [])].sort((a, b) => a - b);
  const exists = objectExists(rec);
  const queue = withQueue && exists ? queueStat(rec) : undefined;
  const info: ResourceStat = {
    kind: displayKind(rec),
    object: rec.kind,
    name: rec.name,
    ownerPid: rec.pid,
    ownerAlive,
    owned: rec.owned,
    users: userPids === null ? null : userPids.length,
    userPids,
    size: rec.size,
    created: new Date(rec.created),
    ageMs: Math.max(0, now - rec.created),
    depth: queue?.messages ?? null,
    exists,
    removable: rec.owned && !ownerAlive && userPids !== null && userPids.length === 0,
    record: rec,
  };
  if (queue !== undefined) info.queue = queue;
  return info;
}

/**
 * Every named object multiproc created on this host for this user, from the
 * registry. Reads only: nothing is opened through the library, nothing removed.
 */
export function listResources(): ResourceInfo[] {
  const holders = lockHolders();
  const now = Date.now();
  return listRecords().map((e) => {
    const { record: _record, queue: _queue, ...info } = describe(e, holders, now, true);
    return info;
  });
}

/**
 * The full statistics of the objects named `name`: the kernel name ('/jobs',
 * 'jobs', a path) or the name given to multiproc ('jobs' finds the shm
 * queue '/mp.shmq.jobs', the mutex '/mp.mutex.jobs', ...). Empty when none.
 *
 * Errors: `ERR_INVALID_ARG_TYPE`.
 */
export function statResource(name: string): ResourceStat[] {
  validateString(name, 'name');
  const bare = name.startsWith('/') ? name.slice(1) : name;
  const holders = lockHolders();
  const now = Date.now();
  return listRecords()
    .filter((e) => {
      const n = e.record.name;
      if (n === name || n === `/${bare}` || n === bare) return true;
      return e.record.kind === 'shm' && /^\/mp\.[a-z]+\./.test(n) && n.slice(n.indexOf('.', 4) + 1) === bare;
    })
    .map((e) => describe(e, holders, now, true));
}

/**
 * Removes objects whose owner is dead and that no live process has open
 * (with `all`, also unowned ones and those of live owners that nobody has
 * open), with their records, and the status files (`multiproc top`) of
 * processes that are gone. Never removes an object a live process holds.
 *
 * Errors: `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE` (unknown option).
 */
export function cleanResources(options?: CleanOptions): CleanResult {
  const o = validateOptions<CleanOptions>(options, 'options', ['all', 'dryRun']);
  const all = o.all === undefined ? false : validateBoolean(o.all, 'options.all');
  const dryRun = o.dryRun === undefined ? false : validateBoolean(o.dryRun, 'options.dryRun');
  const r = sweep({ all, dryRun });
  // The status files of supervisors and pools whose process is gone (a reader would remove them too).
  if (!dryRun) readStatuses();
  return {
    removed: r.removed.map((e) => ({ kind: displayKind(e.record), object: e.record.kind, name: e.record.name, ownerPid: e.record.pid, existed: e.existed })),
    kept: r.kept,
  };
}

/** The registry directory in use (or that would be used), and whether it exists. */
export function resourceRegistry(): { path: string | null; exists: boolean } {
  const path = registryPath();
  return { path, exists: path !== null && registryDir(false) !== null };
}
