/** Shared bits of the supervisor tests. */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Supervisor, SupervisorEvents } from '../../src/supervisor/supervisor.js';

/** Path of a compiled fixture module (test/supervisor/fixtures/<name>.ts). */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}.js`, import.meta.url));
}

/** Environment for supervised children: marks them for the suite's leak check. */
export const childEnv = { ...process.env, MULTIPROC_TEST_CHILD: '1' };

/** A spec running the member fixture. */
export function member(name: string, log: string, extra: Record<string, unknown> = {}, flags: string[] = []): any {
  return { name, module: fixture('member'), args: [log, ...flags], env: childEnv, shutdownTimeout: 2000, ...extra };
}

/** Resolves with the arguments of the `count`-th `event` that satisfies `match`; rejects after `ms`. */
export function nextEvent<K extends keyof SupervisorEvents>(
  sup: Supervisor,
  event: K,
  match: (...args: SupervisorEvents[K]) => boolean = () => true,
  ms = 30000,
  count = 1,
): Promise<SupervisorEvents[K]> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const listener = (...args: any[]): void => {
      if (!(match as (...a: any[]) => boolean)(...args)) return;
      if (++seen < count) return;
      clearTimeout(timer);
      sup.off(event, listener as any);
      resolve(args as SupervisorEvents[K]);
    };
    const timer = setTimeout(() => {
      sup.off(event, listener as any);
      reject(new Error(`no '${String(event)}' event within ${ms} ms; snapshot: ${JSON.stringify(sup.snapshot())}`));
    }, ms);
    sup.on(event, listener as any);
  });
}

/** The lines of a log file the member fixture wrote, as [what, name] pairs. */
export function logLines(path: string): Array<[string, string]> {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split(' ').slice(0, 2) as [string, string]);
}

/** Current pids of the children, by name#index. */
export function pids(sup: Supervisor): Record<string, number | undefined> {
  return Object.fromEntries(sup.children().map((c) => [`${c.name}#${c.index}`, c.pid]));
}
