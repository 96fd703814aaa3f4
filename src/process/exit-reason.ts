/**
 * Why a child process ended, after Chromium's TerminationStatus
 * (base/process/kill.h): one small closed set that callers can switch on
 * instead of decoding exit codes and signals themselves.
 */
import { constants } from 'node:os';
import { typeError } from '../errors.js';

/**
 * How a child process ended:
 * - `'clean-exit'`: exit code 0;
 * - `'error-exit'`: a non-zero exit code (an uncaught exception is code 1);
 * - `'killed'`: ended by a signal that is not a crash signal (SIGKILL, SIGTERM, SIGINT, SIGHUP, ...);
 * - `'crashed'`: ended by a crash signal (SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS);
 * - `'out-of-memory'`: V8 ran out of heap ("JavaScript heap out of memory" on stderr, then
 *   SIGABRT; exit code 134 when a shell reported it), or the kernel's OOM killer sent SIGKILL
 *   (see {@link ChildHandle} for how that is told apart from an ordinary SIGKILL);
 * - `'launch-failed'`: the process never ran the module: the spawn itself failed (ENOENT,
 *   EACCES, a missing `cwd`), Node refused its arguments, or importing the module failed
 *   before the child called `ready()`;
 * - `'hung'`: the child stopped answering heartbeats (`handle.ping()`) and its
 *   supervisor killed it (SIGKILL). Only a `Supervisor` reports it: neither
 *   {@link exitReason} nor a `ChildHandle` on its own returns it.
 */
export type ExitReason = 'clean-exit' | 'error-exit' | 'killed' | 'crashed' | 'out-of-memory' | 'launch-failed' | 'hung';

/** Every {@link ExitReason}, in a stable order. */
export const exitReasons: readonly ExitReason[] = ['clean-exit', 'error-exit', 'killed', 'crashed', 'out-of-memory', 'launch-failed', 'hung'];

/** Signals whose default action means the process faulted (Chromium's PROCESS_CRASHED set). */
const CRASH_SIGNALS = new Set<string>(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGTRAP', 'SIGSYS']);

/**
 * What V8 and Node print when the heap is exhausted:
 * "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
 * "FATAL ERROR: invalid table size Allocation failed - JavaScript heap out of memory",
 * "Fatal process out of memory: Zone", "# Fatal JavaScript out of memory: ...".
 */
const OOM_TEXT = /JavaScript heap out of memory|Fatal (?:process|JavaScript) out of memory|Allocation failed - process out of memory/;

/** True when `text` holds V8's out-of-memory message. @internal */
export function mentionsOutOfMemory(text: string): boolean {
  return OOM_TEXT.test(text);
}

/**
 * Classifies an exit status, as given by `child_process`'s 'exit' event.
 *
 * `stderrTail`, the end of the child's stderr, tells a V8 heap exhaustion from
 * another abort: with it, SIGABRT (or exit code 134) after the out-of-memory
 * message is `'out-of-memory'` (the text alone, with another exit, is not). `code` and `signal` both null means the process
 * never started: `'launch-failed'`. An exit code from a shell that reports a
 * signal as 128 + n stays `'error-exit'`, except 134 with the out-of-memory text.
 *
 * This function sees only the exit status; a {@link ChildHandle} also knows
 * whether the module loaded and whether it sent the SIGKILL itself, and
 * refines the reason with that (see `ChildExit.reason`).
 *
 * Errors: `ERR_INVALID_ARG_TYPE` for arguments of the wrong type.
 */
export function exitReason(code: number | null, signal: NodeJS.Signals | null, stderrTail?: string): ExitReason {
  if (code !== null && (typeof code !== 'number' || !Number.isInteger(code))) {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "code" argument must be an integer or null. Received ${String(code)}`);
  }
  if (signal !== null && (typeof signal !== 'string' || !(signal in constants.signals))) {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "signal" argument must be a signal name such as 'SIGTERM', or null. Received ${String(signal)}`);
  }
  if (stderrTail !== undefined && typeof stderrTail !== 'string') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "stderrTail" argument must be of type string. Received type ${typeof stderrTail}`);
  }
  if (code === null && signal === null) return 'launch-failed';
  if (signal === null && code === 0) return 'clean-exit';
  // V8 prints the message and then aborts; text alone (a program that printed it
  // and exited 1) is not enough.
  const aborted = signal !== null ? CRASH_SIGNALS.has(signal) : code === 128 + constants.signals.SIGABRT;
  if (aborted && stderrTail !== undefined && mentionsOutOfMemory(stderrTail)) return 'out-of-memory';
  if (signal !== null) return CRASH_SIGNALS.has(signal) ? 'crashed' : 'killed';
  return 'error-exit';
}
