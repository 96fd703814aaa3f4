/**
 * `multiproc top`: a live view of the supervisors and pools running on this
 * host (this user's), and of the message queues they share: processes,
 * roles, states, restarts, task rates and queue depths.
 */
import { Command, InvalidArgumentError } from 'commander';
import { listResources } from '../resources/inspect.js';
import { readStatuses, type StatusFile } from '../resources/status.js';
import type { PoolStats } from '../pool/pool.js';
import type { ChildInfo, SupervisorSnapshot } from '../supervisor/supervisor.js';
import { table, toJson } from './format.js';

type PoolData = PoolStats & { size: number };

/** One view of everything, ready to print or to serialise. */
export interface TopView {
  time: number;
  supervisors: Array<{ pid: number; name: string; snapshot: SupervisorSnapshot }>;
  pools: Array<{ pid: number; name: string; stats: PoolData; tasksPerSecond: number | null }>;
  queues: Array<{ kind: string; name: string; ownerPid: number; depth: number | null }>;
}

/** Task completions seen last time, per pool, for the rates. */
const last = new Map<string, { time: number; done: number }>();

function view(): TopView {
  const now = Date.now();
  const statuses = readStatuses();
  const pools = statuses
    .filter((s): s is StatusFile & { data: PoolData } => s.kind === 'pool')
    .map((s) => {
      const key = `${s.pid}.${s.name}`;
      const done = s.data.completed + s.data.failed;
      const prev = last.get(key);
      last.set(key, { time: s.updated, done });
      const rate = prev !== undefined && s.updated > prev.time ? ((done - prev.done) * 1000) / (s.updated - prev.time) : null;
      return { pid: s.pid, name: s.name, stats: s.data, tasksPerSecond: rate };
    });
  return {
    time: now,
    supervisors: statuses.filter((s) => s.kind === 'supervisor').map((s) => ({ pid: s.pid, name: s.name, snapshot: s.data as SupervisorSnapshot })),
    pools,
    queues: listResources()
      .filter((r) => r.kind.startsWith('mqueue-') && r.exists)
      .map((r) => ({ kind: r.kind.slice('mqueue-'.length), name: r.name, ownerPid: r.ownerPid, depth: r.depth })),
  };
}

function childRows(children: ChildInfo[], depth: number, out: string[][]): void {
  for (const c of children) {
    out.push([
      `${'  '.repeat(depth)}${c.name}${c.kind === 'process' ? `#${c.index}` : ' (supervisor)'}`,
      c.pid === undefined ? '-' : String(c.pid),
      c.supervisor?.state ?? c.state,
      String(c.restarts),
      c.lastExit ?? '',
    ]);
    if (c.supervisor !== undefined) childRows(c.supervisor.children, depth + 1, out);
  }
}

/** Renders a view as text. */
export function renderTop(v: TopView): string {
  const parts: string[] = [];
  parts.push(`multiproc top: ${v.supervisors.length} supervisor(s), ${v.pools.length} pool(s), ${v.queues.length} queue(s) at ${new Date(v.time).toISOString().slice(11, 19)}`);
  for (const s of v.supervisors) {
    const rows: string[][] = [];
    childRows(s.snapshot.children, 0, rows);
    parts.push(`\nSUPERVISOR ${s.name} (pid ${s.pid}): ${s.snapshot.state}, ${s.snapshot.strategy}, ${s.snapshot.recentRestarts} recent restart(s)`);
    parts.push(table(['CHILD', 'PID', 'STATE', 'RESTARTS', 'LAST EXIT'], rows));
  }
  if (v.pools.length > 0) {
    const rows = v.pools.map((p) => [
      p.name,
      String(p.pid),
      `${p.stats.workers}/${p.stats.size}`,
      String(p.stats.running),
      String(p.stats.queued),
      String(p.stats.completed),
      String(p.stats.failed),
      p.tasksPerSecond === null ? '-' : p.tasksPerSecond.toFixed(0),
      p.stats.runTime.count > 0 ? p.stats.runTime.p50.toFixed(2) : '-',
      String(p.stats.workerExits),
    ]);
    parts.push('\nPOOLS');
    parts.push(table(['MODULE', 'PID', 'WORKERS', 'RUNNING', 'QUEUED', 'DONE', 'FAILED', 'TASKS/S', 'P50 MS', 'WORKER EXITS'], rows));
  }
  if (v.queues.length > 0) {
    parts.push('\nQUEUES');
    parts.push(table(['BACKEND', 'NAME', 'OWNER', 'DEPTH'], v.queues.map((q) => [q.kind, q.name, String(q.ownerPid), q.depth === null ? '?' : String(q.depth)])));
  }
  if (v.supervisors.length + v.pools.length + v.queues.length === 0) parts.push('\nnothing running');
  return `${parts.join('\n')}\n`;
}

/** The `top` command. */
export function topCommand(): Command {
  return new Command('top')
    .description('a live view of running supervisors and pools: processes, roles, states, restarts, task rates, queue depths')
    .option('--once', 'print one view and exit')
    .option('--json', 'with --once: print the view as JSON')
    .option('--interval <ms>', 'refresh interval', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 100 || n > 60_000) throw new InvalidArgumentError('an integer from 100 to 60000');
      return n;
    }, 1000)
    .action((opts: { once?: boolean; json?: boolean; interval: number }) => {
      if (opts.once === true) {
        process.stdout.write(opts.json === true ? `${toJson(view())}\n` : renderTop(view()));
        return;
      }
      const draw = (): void => {
        // Home, clear, draw: a plain terminal redraw, no full-screen library needed.
        process.stdout.write(`\x1b[H\x1b[2J${renderTop(view())}\n(refreshing every ${opts.interval} ms; Ctrl-C to quit)\n`);
      };
      draw();
      const timer = setInterval(draw, opts.interval);
      process.once('SIGINT', () => {
        clearInterval(timer);
        process.exit(0);
      });
    });
}
