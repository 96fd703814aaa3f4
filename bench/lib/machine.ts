/** What the numbers were measured on, recorded with every result. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Machine {
  cpu: string;
  /** Logical CPUs this process may run on. */
  cores: number;
  /** Logical CPUs listed in /proc/cpuinfo. */
  cpusOnline: number;
  kernel: string;
  node: string;
  v8: string;
  glibc: string | undefined;
  cc: string | undefined;
  /** `git describe --always --dirty` of the tree that was measured. */
  commit: string | undefined;
  /** 1-minute load average when the run started and ended: other work on the machine skews results. */
  loadavg: { start: number; end?: number };
}

function tryRun(cmd: string, args: string[], cwd: string): string | undefined {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

export function describeMachine(root: string, cc: string): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  let cpusOnline = os.cpus().length;
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const models = [...info.matchAll(/^model name\s*:\s*(.*)$/gm)].map((m) => m[1]!.trim());
    if (models.length > 0) cpu = models[0]!;
    const processors = info.match(/^processor\s*:/gm);
    if (processors) cpusOnline = processors.length;
  } catch {
    // not Linux, or /proc is hidden: os.cpus() is the fallback
  }
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return {
    cpu,
    cores: os.availableParallelism(),
    cpusOnline,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
    glibc: header?.glibcVersionRuntime,
    cc: tryRun(cc, ['--version'], root)?.split('\n')[0],
    commit: tryRun('git', ['describe', '--always', '--dirty'], root),
    loadavg: { start: os.loadavg()[0]! },
  };
}
