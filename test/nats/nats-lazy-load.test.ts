// The NATS client libraries load on the first connect, not on import: pool
// workers and children that never use NATS do not pay for them. Runs in a
// fresh process (this one has loaded them already through other imports).
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/nats-server.js';

const index = fileURLToPath(new URL('../../src/index.js', import.meta.url));

test('importing the package loads no NATS client module; the first connect does', { timeout: 60000 }, async () => {
  const port = await freePort();
  const script = `
    import { createRequire } from 'node:module';
    const cache = createRequire(import.meta.url).cache;
    const loaded = () => Object.keys(cache).filter((k) => k.includes('@nats-io')).length;
    const { Nats } = await import(${JSON.stringify(index)});
    const before = loaded();
    const code = await Nats.connect({ servers: '127.0.0.1:${port}' }).then(() => 'connected', (e) => e.code);
    console.log(JSON.stringify({ before, after: loaded(), code }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 50000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim()) as { before: number; after: number; code: string };
  assert.equal(out.before, 0, 'a NATS module was loaded by the import');
  assert.equal(out.code, 'ERR_MULTIPROC_NATS_UNAVAILABLE');
  assert.ok(out.after > 0, 'the connect did not load the client (so the check above could not see it either)');
});
