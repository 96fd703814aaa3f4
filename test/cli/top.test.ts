// multiproc top, run as the real command: it shows a running supervisor's tree
// (states, restarts after a crash) and a pool's workers and tasks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { spawn } from '../../src/process/spawn.js';
import type { TopView } from '../../src/cli/top.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/top-tree.js', import.meta.url));
const env = { ...process.env, MULTIPROC_TEST_CHILD: '1' };

async function top(): Promise<TopView> {
  const { stdout } = await promisify(execFile)(process.execPath, [cli, 'top', '--once', '--json'], { env, timeout: 30_000 });
  return JSON.parse(stdout) as TopView;
}

async function until<T>(get: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  const end = Date.now() + 30_000;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('top shows a supervisor tree and a pool, and the restart after a child is killed', { timeout: 90_000 }, async () => {
  const h = spawn(fixture, { args: ['root'], env, shutdownTimeout: 5000 });
  try {
    const { pids } = (await h.ready) as { pids: number[] };
    const mine = (v: TopView) => v.supervisors.find((s) => s.pid === h.pid && s.name === 'toptest');
    let v = await until(top, (x) => mine(x)?.snapshot.children.every((c) => c.state === 'running') === true, 'the supervisor');
    assert.deepEqual(mine(v)!.snapshot.children.map((c) => [c.name, c.index, c.pid]), [['worker', 0, pids[0]], ['worker', 1, pids[1]]]);
    const pool = await until(top, (x) => x.pools.some((p) => p.pid === h.pid && p.stats.running === 1), 'the pool');
    assert.equal(pool.pools.find((p) => p.pid === h.pid)!.name, 'top-tree.js');

    process.kill(pids[1]!, 'SIGKILL');
    v = await until(top, (x) => mine(x)?.snapshot.children[1]?.restarts === 1 && mine(x)?.snapshot.children[1]?.state === 'running', 'the restart');
    assert.equal(mine(v)!.snapshot.children[1]!.lastExit, 'killed');
    assert.notEqual(mine(v)!.snapshot.children[1]!.pid, pids[1]);

    // The text view names the same things.
    const { stdout } = await promisify(execFile)(process.execPath, [cli, 'top', '--once'], { env, timeout: 30_000 });
    assert.match(stdout, /SUPERVISOR toptest \(pid \d+\): running/);
    assert.match(stdout, /worker#1 +\d+ +running +1 +killed/);
    assert.match(stdout, /top-tree\.js/);
  } finally {
    await h.close();
  }
  // Gone from the view once closed.
  const after = await top();
  assert.equal(after.supervisors.some((s) => s.pid === h.pid), false);
  assert.equal(after.pools.some((p) => p.pid === h.pid), false);
});
