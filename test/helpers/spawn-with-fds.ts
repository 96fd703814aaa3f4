/**
 * Spawns a Node child running ES-module source (where `from 'multiproc'`
 * imports the compiled library) with extra descriptors after stdin, stdout
 * and stderr: `extra[0]` becomes fd 3 in the child, `extra[1]` fd 4, ...
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { libraryUrl, type ChildResult } from './child.js';

export interface FdChild {
  process: ChildProcess;
  exited: Promise<ChildResult>;
  readonly stdout: string;
}

export function spawnWithFds(source: string, extra: Array<number | 'ignore'>, args: string[] = [], timeout = 60000): FdChild {
  const code = source.replace(/from\s+['"]multiproc['"]/g, `from '${libraryUrl}'`);
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', ...extra];
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code, '--', ...args], {
    env: { ...process.env, MULTIPROC_TEST_CHILD: '1' },
    stdio,
  });
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeout);
  const exited = once(proc, 'close').then(([c, signal]) => {
    clearTimeout(timer);
    return { code: c as number | null, signal: signal as NodeJS.Signals | null, stdout, stderr };
  });
  return {
    process: proc,
    exited,
    get stdout() {
      return stdout;
    },
  };
}
