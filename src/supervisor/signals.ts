/**
 * SIGINT and SIGTERM for root supervisors: one listener per signal for the
 * whole process, however many supervisors there are, so that the process
 * ends only after every one of them has stopped its children.
 *
 * The first signal closes them all (ordered, graceful); then, when nobody
 * else listens for that signal, it is raised again so that the process ends
 * by it, as it would have without the handler. A second signal while they
 * stop destroys them (SIGKILL to every child).
 *
 * @internal
 */

/** What the signal handler needs from a supervisor. @internal */
export interface Stoppable {
  close(): Promise<void>;
  destroy(): Promise<void>;
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
const registered = new Set<Stoppable>();
let stopping: Set<Stoppable> | undefined;

function onSignal(signal: NodeJS.Signals): void {
  if (stopping !== undefined) {
    for (const s of stopping) void s.destroy();
    return;
  }
  const all = new Set(registered);
  stopping = all;
  void Promise.allSettled([...all].map((s) => s.close())).then(() => {
    stopping = undefined;
    uninstallIfIdle();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

function uninstallIfIdle(): void {
  if (registered.size > 0 || stopping !== undefined) return;
  for (const s of SIGNALS) process.off(s, onSignal);
}

/** Closes `s` on SIGINT / SIGTERM until {@link unregisterSignals}. @internal */
export function registerSignals(s: Stoppable): void {
  if (registered.size === 0 && stopping === undefined) for (const sig of SIGNALS) process.on(sig, onSignal);
  registered.add(s);
}

/** @internal */
export function unregisterSignals(s: Stoppable): void {
  registered.delete(s);
  uninstallIfIdle();
}
