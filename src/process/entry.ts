/**
 * The main module of every child that spawn() starts:
 * `node --import=<bootstrap> <this file> <module URL> ...args`.
 * Restores `process.argv` to `[node, <module path>, ...args]` and imports the
 * module; if that import fails (not found, a syntax error, a failing
 * dependency, a throw at top level), the parent hears of it as a load
 * failure, which before `ready()` makes the exit 'launch-failed'.
 *
 * @internal
 */
import { fileURLToPath } from 'node:url';
import { currentRuntime } from './child-runtime.js';

const url = process.argv[2]!;
process.argv.splice(1, 2, url.startsWith('file:') ? fileURLToPath(url) : url);

try {
  await import(url);
} catch (err) {
  currentRuntime()?.report(err, 'import', 'load');
  throw err;
}
