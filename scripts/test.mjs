// Runs every compiled test file with node:test. Usage: node scripts/test.mjs [filter...]
// Each file runs in its own process; two at a time suits a 2-core machine.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function collect(dir, out = []) {
  for (const entry of readdirSync(dir)) {
    const p = join(dir, entry);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (entry.endsWith('.test.js')) out.push(p);
  }
  return out;
}

// POSIX message queues are visible (to tests and the leak guard) only where
// the mqueue file system is mounted.
spawnSync(process.execPath, [join(root, 'scripts', 'setup-mqueue.mjs')], { stdio: 'inherit' });
// The NATS tests need a nats-server binary (installed from Debian when missing and allowed).
if (filters.length === 0 || filters.some((x) => x.includes('nats'))) {
  spawnSync(process.execPath, [join(root, 'scripts', 'setup-nats.mjs')], { stdio: 'inherit' });
}

const files = collect(join(root, 'dist', 'test'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error('no test files found (did tsc run?)');
  process.exit(1);
}
// The HTML report and browser demo tests render in a headless Chromium (Debian's).
if (files.some((f) => ['cli', 'demo'].some((d) => f.includes(`${join('dist', 'test', d)}/`)))) {
  spawnSync(process.execPath, [join(root, 'scripts', 'setup-chromium.mjs')], { stdio: 'inherit' });
}
// Names the suite creates start with these; see test/helpers/names.ts.
const ours = (n) => n.includes('mpt-') && n.includes(`-r${process.pid}-`);
// The registry of named objects (src/resources/registry.ts): its records of
// our objects count, the directory itself does not.
const { registryPath } = await import(join(root, 'dist', 'src', 'resources', 'registry.js'));
const registry = registryPath() ?? '/nonexistent';
const listNames = () =>
  ['/dev/shm', '/dev/mqueue', registry].flatMap((d) => (existsSync(d) && statSync(d).isDirectory() ? readdirSync(d).map((n) => `${d}/${n}`) : []));
const before = new Set(listNames());

const r = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-timeout=300000', '--test-force-exit', ...files],
  // Children of this run carry its pid, so the leak check below never touches another run's.
  // No resource trackers: every test file would start one; the tests of the
  // tracker turn it on for the processes they start.
  { stdio: 'inherit', cwd: root, env: { MULTIPROC_TRACKER: '0', ...process.env, MULTIPROC_TEST_RUN: String(process.pid) } },
);

// After the whole suite: nothing of ours left behind, no test child alive.
const leftNames = listNames().filter((p) => !before.has(p) && ours(p.slice(p.lastIndexOf('/') + 1)));
const leftChildren = [];
for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    if (env.includes('MULTIPROC_TEST_CHILD=1') && env.includes(`MULTIPROC_TEST_RUN=${process.pid}`)) leftChildren.push(pid);
  } catch {
    // gone, or not ours to read
  }
}
let status = r.status ?? 1;
if (leftNames.length > 0) {
  console.error(`leak check: the suite left ${leftNames.join(', ')}`);
  status = status || 1;
}
if (leftChildren.length > 0) {
  console.error(`leak check: test child processes still alive: ${leftChildren.join(', ')}`);
  for (const pid of leftChildren) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  status = status || 1;
}
process.exit(status);
