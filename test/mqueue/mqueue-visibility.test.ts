// Kernel queues are where the system's tools look: /dev/mqueue for POSIX
// queues (with the requested mode), `ipcs -q` for System V queues, /dev/shm
// for the shm backend; and they are gone once the creator closes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { MessageQueue } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { devMqueueSkip } from '../helpers/mqueue.js';

leakGuard();

const T = { timeout: 10000 };
const ipcs = spawnSync('ipcs', ['-q'], { stdio: 'ignore' }).status === 0;

test('posix: the queue is in /dev/mqueue with mode 0600 and a byte count, and gone after the creator closes', { skip: devMqueueSkip() }, async () => {
  const name = uniqueName('vispx');
  const q = MessageQueue.create<Uint8Array>(name, { backend: 'posix', codec: 'raw' });
  const path = `/dev/mqueue/${name}`;
  try {
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(q.stat().mode, 0o600);
    await q.send(new Uint8Array(100), T);
    // The kernel counts our 8-byte header; stat() reports payload bytes.
    assert.match(readFileSync(path, 'utf8'), /QSIZE:108\b/);
    assert.equal(q.stat().bytes, 100);
    assert.equal(q.stat().messages, 1);
  } finally {
    await q.close();
  }
  assert.equal(existsSync(path), false);
});

test('posix: the mode is applied exactly, whatever the umask', { skip: devMqueueSkip() }, async () => {
  const name = uniqueName('vismode');
  const q = MessageQueue.create(name, { backend: 'posix', mode: 0o666 });
  try {
    assert.equal(statSync(`/dev/mqueue/${name}`).mode & 0o777, 0o666);
  } finally {
    await q.close();
  }
});

test('sysv: `ipcs -q` lists the queue by key and id, with mode, bytes and count; it is gone after the creator closes', { skip: ipcs ? false : 'ipcs is not installed' }, async () => {
  const name = uniqueName('vissv');
  const q = MessageQueue.create<Uint8Array>(name, { backend: 'sysv', codec: 'raw' });
  let key = '';
  try {
    const s = q.stat();
    assert.equal(s.key, MessageQueue.sysvKey(name));
    key = `0x${(s.key! >>> 0).toString(16).padStart(8, '0')}`;
    await q.send(new Uint8Array(10), T);
    await q.send(new Uint8Array(15), T);
    const line = execFileSync('ipcs', ['-q'], { encoding: 'utf8' })
      .split('\n')
      .find((l) => l.startsWith(key));
    assert.ok(line, `ipcs -q lists ${key}`);
    // key msqid owner perms used-bytes messages
    const [, msqid, , perms, used, messages] = line.trim().split(/\s+/);
    assert.deepEqual([Number(msqid), perms, Number(used), Number(messages)], [s.id, '600', 25, 2]);
    assert.equal(q.stat().mode, 0o600);
  } finally {
    await q.close();
  }
  assert.equal(execFileSync('ipcs', ['-q'], { encoding: 'utf8' }).includes(key), false);
});

test('shm: the segment /dev/shm/mp.shmq.<name> has mode 0600 and is gone after the creator closes', async () => {
  const name = uniqueName('visshm');
  const q = MessageQueue.create(name, { backend: 'shm' });
  const path = `/dev/shm/mp.shmq.${name}`;
  try {
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(q.stat().mode, 0o600);
  } finally {
    await q.close();
  }
  assert.equal(existsSync(path), false);
});
