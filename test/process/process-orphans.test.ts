// No orphans: a child dies with its parent, also when the parent is SIGKILLed
// (PR_SET_PDEATHSIG), also without the addon (the control channel's EOF), and
// also when the parent died before the child could ask (the ppid check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn as spawnProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Child } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { alive, childEnv, fixture, gone } from './helpers.js';

leakGuard();

/** A parent process that spawns the idle fixture with `options`, prints the child's pid, and waits to be killed. */
function parentOf(options: object): Child {
  return new Child(
    `
    import { spawn } from 'multiproc';
    const [module, options] = process.argv.slice(1);
    const h = spawn(module, { ...JSON.parse(options), args: ['idle'], stdio: 'ignore' });
    await h.ready;
    console.log('child', h.pid);
    setInterval(() => {}, 1000);
    `,
    { args: [fixture('behave'), JSON.stringify(options)] },
  );
}

/** The pid the parent printed; fails with the parent's exit status and output if it died first. */
async function childPid(p: Child): Promise<number> {
  const deadline = Date.now() + 30000;
  for (;;) {
    const m = /child (\d+)/.exec(p.stdout);
    if (m) return Number(m[1]);
    const status = await Promise.race([p.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 50))]);
    if (status !== undefined) throw new Error(`the parent exited first (code ${status.code}, signal ${status.signal}); stdout: ${status.stdout}; stderr: ${status.stderr}`);
    if (Date.now() > deadline) throw new Error(`the parent printed no child pid within 30 s; stderr: ${p.stderr}`);
  }
}

async function orphanCase(options: object): Promise<void> {
  const p = parentOf(options);
  try {
    const pid = await childPid(p);
    assert.ok(alive(pid));
    p.kill('SIGKILL');
    await p.exited;
    assert.ok(await gone(pid, 10000), `child ${pid} outlived its SIGKILLed parent`);
  } finally {
    p.kill('SIGKILL');
    await p.exited;
  }
}

test('a child dies when its parent is SIGKILLed (parent-death signal)', async () => {
  await orphanCase({});
});

test('a child without the addon (sandbox, addons: false) dies too: end of the control channel', async () => {
  await orphanCase({ permissions: { addons: false } });
});

test('exitWithParent: false lets the child outlive its parent', async () => {
  const p = parentOf({ exitWithParent: false });
  let pid = 0;
  try {
    pid = await childPid(p);
    p.kill('SIGKILL');
    await p.exited;
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(alive(pid), 'the child is still running');
  } finally {
    p.kill('SIGKILL');
    await p.exited;
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    if (pid > 0) assert.ok(await gone(pid, 10000));
  }
});

test('a child whose parent died before the parent-death signal was set kills itself at once', async () => {
  // Started by hand, as spawn() would, but claiming a parent that is not ours:
  // what the bootstrap sees when the real parent died first and the child was
  // re-parented.
  const bootstrap = new URL('../../src/process/bootstrap.js', import.meta.url).href;
  const entry = fileURLToPath(new URL('../../src/process/entry.js', import.meta.url));
  for (const addon of [1, 0]) {
    const c = spawnProcess(process.execPath, [`--import=${bootstrap}?ppid=1&exit=1&addon=${addon}`, entry, pathToFileURL(fixture('behave')).href, 'idle'], {
      env: childEnv,
      stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    });
    const timer = setTimeout(() => c.kill('SIGKILL'), 20000);
    const [code, signal] = await once(c, 'exit');
    clearTimeout(timer);
    (c.stdio[3] as any)?.destroy();
    assert.deepEqual([code, signal], [null, 'SIGKILL'], `addon=${addon}`);
  }
});
