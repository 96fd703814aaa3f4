// Test setup: makes sure nats-server is installed, for the NATS tests and
// benchmarks (test/nats/, bench/nats/). When it is missing and this runs as
// root (or passwordless sudo works), installs Debian's nats-server package;
// otherwise only explains, and the NATS tests skip with the same explanation.
// Usage: node scripts/setup-nats.mjs (scripts/test.mjs runs it first).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export function natsServerInstalled() {
  return spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).status === 0;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status === 0;
}

/** Returns { installed, changed?, reason? }. */
export function ensureNatsServer() {
  if (natsServerInstalled()) return { installed: true };
  if (spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status !== 0) {
    return { installed: false, reason: 'apt-get is not available on this system' };
  }
  let prefix;
  if (process.getuid?.() === 0) prefix = [];
  else if (spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0) prefix = ['sudo', '-n'];
  else return { installed: false, reason: 'not root and sudo needs a password' };
  const [cmd, ...pre] = prefix.length > 0 ? prefix : ['env'];
  console.error('setup: installing nats-server (apt-get)');
  if (!run(cmd, [...pre, 'apt-get', 'update', '-qq'])) return { installed: false, reason: 'apt-get update failed' };
  if (!run(cmd, [...pre, 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'nats-server'])) return { installed: false, reason: 'apt-get install nats-server failed' };
  return natsServerInstalled() ? { installed: true, changed: true } : { installed: false, reason: 'nats-server is still not on PATH after installing' };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = ensureNatsServer();
  if (r.changed) console.error('setup: installed nats-server');
  if (!r.installed) {
    console.error(`setup: nats-server is not installed and could not be installed (${r.reason}); the NATS tests will be skipped. As root: apt-get install nats-server`);
  }
}
