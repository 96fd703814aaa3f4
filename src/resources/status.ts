/**
 * Live status of running supervisors and pools, for `multiproc top`. Each
 * publishes one small JSON file in the registry directory
 * (`status.<pid>.<kind>.<n>`), written when something changes and about once
 * a second while it runs (never per message), and removed when it closes.
 * Readers skip, and remove, the files of processes that are gone.
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, processStart, registryDir, registryEntries } from './registry.js';

/** What a status file holds. */
export interface StatusFile {
  kind: 'supervisor' | 'pool';
  name: string;
  pid: number;
  /** The publisher's start time (clock ticks after boot), against pid reuse. */
  start: number;
  /** When it was written (ms since the epoch). */
  updated: number;
  /** A supervisor's `snapshot()`, or a pool's `stats()` with its size. */
  data: unknown;
}

const PREFIX = 'status.';
let counter = 0;
/** Publishers not closed yet: their files go when the process exits (a test runner's forced exit, a process.exit()). */
const live = new Set<StatusPublisher>();
let exitHook = false;

/** Publishes a status file until closed. @internal */
export class StatusPublisher {
  readonly #path: string | null;
  readonly #kind: StatusFile['kind'];
  readonly #name: string;
  readonly #snapshot: () => unknown;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(kind: StatusFile['kind'], name: string, snapshot: () => unknown, intervalMs = 1000) {
    this.#kind = kind;
    this.#name = name;
    this.#snapshot = snapshot;
    const dir = process.env.MULTIPROC_STATUS === '0' ? null : registryDir(true);
    this.#path = dir === null ? null : join(dir, `${PREFIX}${process.pid}.${kind}.${++counter}`);
    if (this.#path === null) return;
    this.#timer = setInterval(() => this.update(), intervalMs);
    this.#timer.unref();
    live.add(this);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const p of live) p.close();
      });
    }
    this.update();
  }

  /** Writes the file now (best effort: a full or read-only file system only loses the view). */
  update(): void {
    if (this.#closed || this.#path === null) return;
    const file: StatusFile = {
      kind: this.#kind,
      name: this.#name,
      pid: process.pid,
      start: processStart(process.pid) ?? 0,
      updated: Date.now(),
      data: this.#snapshot(),
    };
    const tmp = `${this.#path}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(file), { mode: 0o600 });
      renameSync(tmp, this.#path);
    } catch {
      // best effort
    }
  }

  /** Stops publishing and removes the file. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    live.delete(this);
    clearInterval(this.#timer);
    if (this.#path === null) return;
    try {
      unlinkSync(this.#path);
    } catch {
      // gone already
    }
  }
}

/** The status files of live supervisors and pools on this host (this user's); removes those of dead processes. */
export function readStatuses(): StatusFile[] {
  const listed = registryEntries();
  if (listed === undefined) return [];
  const { dir, files: names } = listed;
  const out: StatusFile[] = [];
  for (const n of names) {
    if (!n.startsWith(PREFIX) || n.endsWith('.tmp')) continue;
    const path = join(dir, n);
    let file: StatusFile;
    try {
      file = JSON.parse(readFileSync(path, 'utf8')) as StatusFile;
    } catch {
      continue;
    }
    if (!isAlive(file.pid, file.start)) {
      try {
        unlinkSync(path);
      } catch {
        // someone else removed it
      }
      continue;
    }
    out.push(file);
  }
  return out.sort((a, b) => a.pid - b.pid || a.name.localeCompare(b.name));
}
