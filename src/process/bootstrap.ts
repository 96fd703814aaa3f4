/**
 * Loaded with `--import` into every child that spawn() starts, before the
 * user's module and before any `--import` of the caller's own:
 *
 * 1. removes itself from `process.execArgv`, so that `child_process.fork()`
 *    in user code does not run it again in a grandchild;
 * 2. asks the kernel to SIGKILL this process when its parent dies
 *    (PR_SET_PDEATHSIG), then checks that the parent is still the one that
 *    spawned it: if it died before the call, nothing would ever fire;
 *    marks the descriptors the parent passed close-on-exec;
 * 3. opens the control channel (fd 3), waits for the parent's hello (the
 *    names and descriptors of the channels it passed) and answers 'started';
 * 4. reports uncaught errors to the parent before the process dies.
 *
 * Parameters come in this module's URL: `?ppid=<parent pid>&exit=0|1&addon=0|1`
 * (exit: die with the parent; addon: the native addon may be loaded here).
 *
 * @internal
 */
import { ChildRuntime, installRuntime } from './child-runtime.js';
import { CONTROL_FD } from './control.js';

const params = new URL(import.meta.url).searchParams;
const expectedParent = Number(params.get('ppid'));
const exitWithParent = params.get('exit') === '1';
const addonAllowed = params.get('addon') === '1';

const self = process.execArgv.indexOf(`--import=${import.meta.url}`);
if (self >= 0) process.execArgv.splice(self, 1);

function parentDied(): never {
  // What PR_SET_PDEATHSIG would have done had it been in place in time.
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

let setCloseOnExec: ((fd: number, on: boolean) => void) | undefined;
if (addonAllowed) {
  try {
    const { native } = await import('../binding/native.js');
    setCloseOnExec = native.setCloseOnExec;
    if (exitWithParent && native.setParentDeathSignal(9) !== expectedParent) parentDied();
  } catch {
    // No addon here (a sandbox without --allow-addons): the control
    // channel's end-of-file is the only parent-death signal.
  }
}
if (exitWithParent && process.ppid !== expectedParent) parentDied();

const runtime = new ChildRuntime(expectedParent, exitWithParent);
installRuntime(runtime);
process.on('uncaughtExceptionMonitor', (err, origin) => {
  // A process with its own 'uncaughtException' handler survives this error.
  if (process.listenerCount('uncaughtException') > 0) return;
  runtime.report(err, origin, 'run');
});
await runtime.hello();
// The parent's descriptors must not leak into processes this one starts:
// a grandchild holding them would keep the parent from seeing them close.
for (const fd of [CONTROL_FD, ...runtime.fds]) {
  try {
    setCloseOnExec?.(fd, true);
  } catch {
    // already closed by user code
  }
}
// Written at once: the module may run, and exit, before the next event-loop turn.
runtime.control.sendSystemNow({ kind: 'started' }, CONTROL_FD);
