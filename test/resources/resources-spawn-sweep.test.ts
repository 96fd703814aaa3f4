import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { SharedMemory, spawn } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { tempDir } from '../helpers/temp-files.js';
import { childEnv, reap, within } from '../process/helpers.js';
import { leftOfAll, objectsFixture } from './helpers.js';

leakGuard();
const tmp = tempDir('res');

test('a child killed with SIGKILL leaves nothing: spawn sweeps its segment, FIFO and queues when it exits', async () => {
  const base = uniqueName('sw');
  const fifo = tmp.file('fifo');
  const sock = tmp.file('sock');
  const child = spawn(objectsFixture, { args: ['create-all', base, fifo, sock], env: childEnv });
  try {
    await within(child.ready, 30000, 'ready');
    const made = leftOfAll(base, fifo, sock);
    assert.deepEqual(made.filter((x) => !x.startsWith('records')).sort(), ['fifo', 'posix queue', 'shm segment', 'socket file', 'sysv control segment', 'sysv queue']);
    assert.ok(made.some((x) => x.startsWith('records')), 'the objects are recorded');
    child.kill('SIGKILL');
    const exit = await within(child.exited, 30000, 'exit');
    assert.equal(exit.signal, 'SIGKILL');
    assert.deepEqual(leftOfAll(base, fifo, sock), []);
  } finally {
    await reap(child);
  }
});

test('an object whose owner died is kept while another live process has it open, and removed after that one exits', async () => {
  const name = uniqueName('held');
  const owner = spawn(objectsFixture, { args: ['create-shm', name], env: childEnv });
  await within(owner.ready, 30000, 'owner ready');
  const user = spawn(objectsFixture, { args: ['open-shm', name], env: childEnv });
  try {
    await within(user.ready, 30000, 'user ready');
    owner.kill('SIGKILL');
    await within(owner.exited, 30000, 'owner exit');
    assert.ok(existsSync(`/dev/shm/${name}`), 'kept: a live process has it open');
    user.kill('SIGKILL');
    await within(user.exited, 30000, 'user exit');
    assert.ok(!existsSync(`/dev/shm/${name}`), 'removed once its last user is gone');
  } finally {
    await reap(owner, user);
  }
});

test('the last user to close an object whose owner died removes it', async () => {
  const name = uniqueName('last');
  const owner = spawn(objectsFixture, { args: ['create-shm', name], env: childEnv });
  try {
    await within(owner.ready, 30000, 'owner ready');
    const shm = SharedMemory.open(name);
    owner.kill('SIGKILL');
    await within(owner.exited, 30000, 'owner exit');
    assert.ok(existsSync(`/dev/shm/${name}`), 'kept while this process has it open');
    new Int32Array(shm.buffer)[0] = 1;
    shm.close();
    assert.ok(!existsSync(`/dev/shm/${name}`), 'removed by the close of its last user');
  } finally {
    await reap(owner);
  }
});
