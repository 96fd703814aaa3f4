import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Child } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { tempDir } from '../helpers/temp-files.js';
import { processStart, registryPath } from '../../src/resources/registry.js';
import { cleanResources } from '../../src/resources/inspect.js';
import type { ResourceInfo, ResourceStat } from '../../src/index.js';
import { recordPath } from './helpers.js';

leakGuard();
// A registry of these tests' own: `clean` here never touches another test's objects.
const registry = tempDir('reg').dir;
const env = { MULTIPROC_REGISTRY_DIR: registry, MULTIPROC_TRACKER: '0' };
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the multiproc command as its own process. */
function multiproc(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

async function ls(): Promise<ResourceInfo[]> {
  const r = await multiproc('ls', '--json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ResourceInfo[];
}

/** A process that creates what `source` says, prints 'ready' and waits. */
async function owner(source: string): Promise<Child> {
  const c = new Child(`import { MessageQueue, SharedMemory } from 'multiproc'; ${source}; console.log('ready'); setInterval(() => {}, 60000);`, { env });
  await c.waitFor('ready');
  return c;
}

test('ls finds what a SIGKILLed process left and what a live one owns; clean removes only the former', async () => {
  const dead = uniqueName('dead');
  const deadq = uniqueName('deadq');
  const live = uniqueName('live');
  const given = uniqueName('given');
  const a = await owner(
    `SharedMemory.create('${dead}', 8192); const q = MessageQueue.create('${deadq}', { backend: 'posix' }); await q.send('a'); await q.send('b'); SharedMemory.create('${given}', 4096).disown()`,
  );
  const b = await owner(`SharedMemory.create('${live}', 4096)`);
  try {
    a.kill('SIGKILL');
    await a.exited;

    const list = await ls();
    const d = list.find((r) => r.name === `/${dead}`);
    const q = list.find((r) => r.name === deadq);
    const l = list.find((r) => r.name === `/${live}`);
    assert.ok(d && q && l, JSON.stringify(list));
    assert.equal(d.kind, 'shm');
    assert.equal(d.ownerPid, a.pid);
    assert.equal(d.ownerAlive, false);
    assert.equal(d.users, 0);
    assert.equal(d.size, 8192);
    assert.equal(d.removable, true);
    assert.equal(q.kind, 'mqueue-posix');
    assert.equal(q.depth, 2);
    assert.equal(l.ownerAlive, true);
    assert.equal(l.users, 1);
    assert.equal(l.removable, false);
    const g = list.find((r) => r.name === `/${given}`);
    assert.equal(g?.owned, false, 'disown() is recorded');

    const human = await multiproc('ls');
    assert.match(human.stdout, new RegExp(`${dead}.*${a.pid} \\(dead\\)`));

    const st = await multiproc('stat', deadq, '--json');
    assert.equal(st.code, 0, st.stderr);
    const [s] = JSON.parse(st.stdout) as ResourceStat[];
    assert.equal(s!.queue!.messages, 2);
    assert.equal(s!.queue!.backend, 'posix');
    assert.ok(s!.queue!.capacityMessages! > 0);
    assert.equal((await multiproc('stat', uniqueName('none'))).code, 1);

    // --all must be confirmed; without a terminal that takes --yes.
    const refused = await multiproc('clean', '--all');
    assert.equal(refused.code, 2);
    assert.ok(existsSync(`/dev/shm/${dead}`));

    const c = await multiproc('clean');
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /removed 2 objects/);
    assert.ok(!existsSync(`/dev/shm/${dead}`));
    assert.ok(!existsSync(`/dev/mqueue/${deadq}`));
    assert.ok(existsSync(`/dev/shm/${live}`), 'the live owner keeps its segment');
    assert.ok(existsSync(`/dev/shm/${given}`), 'a disowned segment stays');

    const all = await multiproc('clean', '--all', '--yes');
    assert.equal(all.code, 0, all.stderr);
    assert.ok(!existsSync(`/dev/shm/${given}`), '--all removes a disowned segment nobody holds');
    assert.ok(existsSync(`/dev/shm/${live}`), '--all never removes what a live process holds');
  } finally {
    a.kill('SIGKILL');
    b.kill('SIGKILL');
    await Promise.all([a.exited, b.exited]);
  }
  const c = await multiproc('clean');
  assert.match(c.stdout, /removed 1 object;/);
  assert.ok(!existsSync(`/dev/shm/${live}`));
  assert.deepEqual(await ls(), []);
});

test('a reused pid is not the owner: the start time decides', async () => {
  const name = uniqueName('reuse');
  const a = await owner(`SharedMemory.create('${name}', 4096)`);
  a.kill('SIGKILL');
  await a.exited;
  const file = recordPath('shm', `/${name}`, registry);
  const rec = JSON.parse(readFileSync(file, 'utf8')) as { pid: number; start: number };
  const childStart = rec.start;
  // This live process takes the dead owner's pid, as a reused pid would.
  writeFileSync(file, JSON.stringify({ ...rec, pid: process.pid }));
  let [info] = (await ls()).filter((r) => r.name === `/${name}`);
  assert.equal(info!.ownerAlive, false, 'same pid, other start time: not the owner');

  writeFileSync(file, JSON.stringify({ ...rec, pid: process.pid, start: processStart(process.pid) }));
  [info] = (await ls()).filter((r) => r.name === `/${name}`);
  assert.equal(info!.ownerAlive, true);
  await multiproc('clean');
  assert.ok(existsSync(`/dev/shm/${name}`), 'a live owner keeps it');

  writeFileSync(file, JSON.stringify({ ...rec, pid: process.pid, start: childStart }));
  const c = await multiproc('clean');
  assert.match(c.stdout, /removed 1 object;/);
  assert.ok(!existsSync(`/dev/shm/${name}`));
  assert.ok(!existsSync(file));
});

test('clean also removes the status files of supervisors and pools whose process is gone, and keeps a live one', async () => {
  const dir = registryPath();
  assert.ok(dir !== null);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // A pid that is gone: a child that has exited.
  const dead = new Child('process.exit(0)');
  const deadPid = dead.pid;
  await dead.exited;
  const stale = join(dir, `status.${deadPid}.pool.1`);
  const live = join(dir, `status.${process.pid}.pool.${uniqueName('st').replace(/[^0-9a-z]/gi, '')}`);
  const file = (pid: number): string => JSON.stringify({ kind: 'pool', name: 'test', pid, start: processStart(pid) ?? 0, updated: Date.now(), data: {} });
  writeFileSync(stale, file(deadPid), { mode: 0o600 });
  writeFileSync(live, file(process.pid), { mode: 0o600 });
  try {
    cleanResources();
    assert.equal(existsSync(stale), false, "the dead process's status file is still there");
    assert.equal(existsSync(live), true, "a live process's status file was removed");
  } finally {
    rmSync(stale, { force: true });
    rmSync(live, { force: true });
  }
});
