// Test setup: installs Debian's chromium when it is missing, for the tests
// that render HTML reports in a headless browser (test/cli/). Installing needs
// root (CI runs as root); without it, or without apt-get, this only explains,
// and those tests skip with the same explanation.
// Usage: node scripts/setup-chromium.mjs (scripts/test.mjs runs it first).
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const chromiumPath = '/usr/bin/chromium';

/** Returns { installed, changed?, reason? }. */
export function ensureChromium() {
  if (existsSync(chromiumPath)) return { installed: true };
  if (process.getuid?.() !== 0) return { installed: false, reason: 'not root, cannot apt-get install chromium' };
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => spawnSync('apt-get', args, { env, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  let r = run(['update', '-qq']);
  if (r.status === 0) r = run(['install', '-y', '-qq', '--no-install-recommends', 'chromium']);
  if (r.status === 0 && existsSync(chromiumPath)) return { installed: true, changed: true };
  return { installed: false, reason: (r.stderr || r.error?.message || `apt-get exited with status ${r.status}`).trim().split('\n').slice(-2).join(' ') };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = ensureChromium();
  if (r.changed) console.error('setup: installed chromium from Debian');
  if (!r.installed) {
    console.error(`setup: ${chromiumPath} is missing and installing it failed (${r.reason}); the HTML report tests will be skipped. As root: apt-get install chromium`);
  }
}
