/**
 * Runs code in a fresh Node process, as ES module source that can import the
 * library as 'multiproc'. For crash and exit behaviour, and for every test
 * that needs a second process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
/** file:// URL of the compiled library entry point. */
export const libraryUrl = pathToFileURL(join(here, '..', '..', 'src', 'index.js')).href;

/** Replaces `from 'multiproc'` with the compiled entry point. */
function prepare(source: string): string {
  return source.replace(/from\s+['"]multiproc['"]/g, `from '${libraryUrl}'`);
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ChildOptions {
  /** Extra arguments, available as process.argv.slice(1) in the child. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Kill the child (SIGKILL) and fail after this many ms. Default 60000. */
  timeout?: number;
}

/** A child process running `source`, with helpers to read its output. */
export class Child {
  readonly process: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<ChildResult>;

  constructor(source: string, options: ChildOptions = {}) {
    this.process = spawn(process.execPath, ['--input-type=module', '-e', prepare(source), '--', ...(options.args ?? [])], {
      env: { ...process.env, ...options.env, MULTIPROC_TEST_CHILD: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    this.process.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    const timeout = options.timeout ?? 60000;
    const timer = setTimeout(() => this.process.kill('SIGKILL'), timeout);
    this.exited = once(this.process, 'close').then(([code, signal]) => {
      clearTimeout(timer);
      return { code: code as number | null, signal: signal as NodeJS.Signals | null, stdout: this.stdout, stderr: this.stderr };
    });
  }

  get pid(): number {
    return this.process.pid!;
  }

  /** Resolves when stdout contains `text` (or a line matching it). Fails after `timeout` ms or if the child exits first. */
  waitFor(text: string | RegExp, timeout = 30000): Promise<string> {
    const match = (): string | undefined => {
      if (typeof text === 'string') return this.stdout.includes(text) ? text : undefined;
      return this.stdout.match(text)?.[0];
    };
    return new Promise<string>((resolve, reject) => {
      const out = this.process.stdout!;
      const check = (): void => {
        const m = match();
        if (m !== undefined) {
          cleanup();
          resolve(m);
        }
      };
      const onExit = (): void => {
        // Output may still be in flight when 'exit' fires: look once more after 'close'.
        this.process.once('close', () => {
          const m = match();
          cleanup();
          if (m !== undefined) resolve(m);
          else reject(new Error(`child exited before printing ${String(text)}; stdout: ${this.stdout}; stderr: ${this.stderr}`));
        });
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`child did not print ${String(text)} within ${timeout} ms; stdout: ${this.stdout}; stderr: ${this.stderr}`));
      }, timeout);
      const cleanup = (): void => {
        clearTimeout(timer);
        out.off('data', check);
        this.process.off('exit', onExit);
      };
      out.on('data', check);
      this.process.on('exit', onExit);
      if (this.process.exitCode !== null || this.process.signalCode !== null) onExit();
      // The 'data' listener that fills this.stdout was added first, so it has run before check.
      check();
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.process.kill(signal);
  }
}

/** Runs `source` in a fresh process and resolves with its exit code, signal and output. */
export function runChild(source: string, options?: ChildOptions): Promise<ChildResult> {
  return new Child(source, options).exited;
}
