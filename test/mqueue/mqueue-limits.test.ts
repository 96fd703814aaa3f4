// Kernel limits are reported by name, with how to raise them; options,
// priorities and messages outside what a backend supports are refused before
// any system call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { MessageQueue, SharedMemory } from '../../src/index.js';
import { ShmStore } from '../../src/mqueue/shm-store.js';
import { libraryUrl } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { devMqueueSkip } from '../helpers/mqueue.js';

leakGuard();
devMqueueSkip();

const T = { timeout: 10000 };
const limits = MessageQueue.limits();

test('limits() reads the kernel limits', () => {
  assert.equal(limits.posix.priorities, 32768);
  for (const v of [limits.posix.msgMax, limits.posix.msgsizeMax, limits.sysv.msgmax, limits.sysv.msgmnb]) assert.ok(v === null || (Number.isInteger(v) && v > 0));
});

test('posix: a capacity above fs.mqueue.msg_max fails with EINVAL naming the limit and how to raise it', async (t) => {
  const max = limits.posix.msgMax;
  if (max === null) return t.skip('/proc/sys/fs/mqueue/msg_max is not readable');
  const name = uniqueName('limmsg');
  let q: MessageQueue | undefined;
  try {
    q = MessageQueue.create(name, { backend: 'posix', capacity: max + 1 });
  } catch (e: any) {
    assert.equal(e.code, 'EINVAL');
    assert.equal(e.syscall, 'mq_open');
    assert.equal(e.limit, 'fs.mqueue.msg_max');
    assert.match(e.message, new RegExp(`fs\\.mqueue\\.msg_max = ${max}`));
    assert.match(e.message, new RegExp(`sysctl -w fs\\.mqueue\\.msg_max=${max + 1}`));
    return;
  }
  await q.close();
  t.skip('this process may exceed msg_max (CAP_SYS_RESOURCE)');
});

test('posix: messages above fs.mqueue.msgsize_max fail with EINVAL naming the limit', async (t) => {
  const max = limits.posix.msgsizeMax;
  if (max === null) return t.skip('/proc/sys/fs/mqueue/msgsize_max is not readable');
  const name = uniqueName('limsize');
  let q: MessageQueue | undefined;
  try {
    q = MessageQueue.create(name, { backend: 'posix', maxMessageSize: max - 8 + 1 });
  } catch (e: any) {
    assert.equal(e.code, 'EINVAL');
    assert.equal(e.limit, 'fs.mqueue.msgsize_max');
    assert.match(e.message, /maxMessageSize \+ an 8-byte header/);
    return;
  }
  await q.close();
  t.skip('this process may exceed msgsize_max (CAP_SYS_RESOURCE)');
});

test('posix: running out of RLIMIT_MSGQUEUE fails with EMFILE naming the limit', { skip: spawnSync('bash', ['-c', 'ulimit -q 4096'], { stdio: 'ignore' }).status === 0 ? false : 'bash cannot lower ulimit -q here' }, async () => {
  const name = uniqueName('limrl');
  const source = `
    import { MessageQueue } from '${libraryUrl}';
    try {
      const q = MessageQueue.create(process.argv[1], { backend: 'posix' });
      await q.close();
      console.log(JSON.stringify({ created: true }));
    } catch (e) {
      console.log(JSON.stringify({ code: e.code, limit: e.limit, message: e.message }));
    }`;
  // A child whose RLIMIT_MSGQUEUE (per user, checked against the caller's limit) is too small for one default queue.
  const { stdout } = await promisify(execFile)('bash', ['-c', 'ulimit -q 4096 && exec "$0" --input-type=module -e "$1" -- "$2"', process.execPath, source, name]);
  const r = JSON.parse(stdout);
  assert.equal(r.code, 'EMFILE');
  assert.equal(r.limit, 'RLIMIT_MSGQUEUE');
  assert.match(r.message, /RLIMIT_MSGQUEUE \(4096 bytes\)/);
  assert.match(r.message, /ulimit -q/);
});

test('the native receives never allocate the size they are asked for up front: 4 GiB is refused or capped, in a process limited to 3 GiB', async () => {
  const native = libraryUrl.replace(/index\.js$/, 'binding/native.js');
  const source = `
    import { native } from '${native}';
    const out = {};
    try { native.mqReceive(0, 0xffffffff, new Int32Array(3)); out.mq = 'returned'; } catch (e) { out.mq = e.name; }
    try { native.msgReceive(-1, 0, 0xffffffff, new SharedArrayBuffer(native.MSG_BITMAP_BYTES), 0, new Float64Array(3)); out.msg = 'returned'; } catch (e) { out.msg = e.code ?? e.name; }
    console.log(JSON.stringify(out));`;
  // Without the caps the addon zero-fills 4 GiB: the allocation fails and the process aborts.
  const { stdout } = await promisify(execFile)('bash', ['-c', 'ulimit -v 3000000 && exec "$0" --input-type=module -e "$1"', process.execPath, source]);
  assert.deepEqual(JSON.parse(stdout), { mq: 'RangeError', msg: 'EINVAL' });
});

test('sysv: maxMessageSize above kernel.msgmax is refused up front, naming the limit', (t) => {
  const max = limits.sysv.msgmax;
  if (max === null) return t.skip('/proc/sys/kernel/msgmax is not readable');
  assert.throws(
    () => MessageQueue.create(uniqueName('limsv'), { backend: 'sysv', maxMessageSize: max + 1 }),
    (e: any) => e instanceof RangeError && (e as any).code === 'ERR_OUT_OF_RANGE' && /kernel\.msgmax = \d+/.test(e.message) && /sysctl -w kernel\.msgmax=/.test(e.message),
  );
});

test('sysv: a byte capacity above kernel.msgmnb fails with EPERM naming the limit, and leaves nothing behind', async (t) => {
  const max = limits.sysv.msgmnb;
  if (max === null) return t.skip('/proc/sys/kernel/msgmnb is not readable');
  const name = uniqueName('limmnb');
  let q: MessageQueue | undefined;
  try {
    q = MessageQueue.create(name, { backend: 'sysv', capacityBytes: max * 2 });
  } catch (e: any) {
    assert.equal(e.code, 'EPERM');
    assert.equal(e.limit, 'kernel.msgmnb');
    assert.match(e.message, new RegExp(`kernel\\.msgmnb = ${max}`));
    return; // the leak guard checks that neither the queue nor its control segment remain
  }
  assert.equal(q.stat().capacityBytes, max * 2);
  await q.close();
  t.skip('this process may exceed msgmnb (CAP_SYS_RESOURCE)');
});

test('priorities outside a backend range are refused with ERR_OUT_OF_RANGE; shm takes negative ones', async () => {
  for (const backend of ['posix', 'sysv'] as const) {
    const q = MessageQueue.create<string>(uniqueName(`pri${backend}`), { backend, codec: 'json' });
    try {
      assert.equal(q.minPriority, 0);
      assert.equal(q.maxPriority, 32767);
      await assert.rejects(q.send('x', { priority: 32768 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE' && /<= 32767/.test(e.message));
      assert.throws(() => q.trySend('x', { priority: -1 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
      await q.send('top', { priority: 32767, ...T });
      assert.equal((await q.receiveMessage(T)).priority, 32767);
    } finally {
      await q.close();
    }
  }
  const q = MessageQueue.create<string>(uniqueName('prishm'), { backend: 'shm', codec: 'json' });
  try {
    assert.equal(q.minPriority, -(2 ** 31));
    await q.send('low', { priority: -5, ...T });
    await q.send('default', T);
    await q.send('lowest', { priority: -(2 ** 31), ...T });
    assert.deepEqual([await q.receive(T), await q.receive(T), await q.receive(T)], ['default', 'low', 'lowest']);
  } finally {
    await q.close();
  }
});

test('options a backend does not support, and bad names, are refused before anything is created', () => {
  const name = uniqueName('opts');
  const value = (code: string, re: RegExp) => (e: any) => e.code === code && re.test(e.message);
  assert.throws(() => MessageQueue.create(name, { backend: 'sysv', capacity: 5 }), value('ERR_INVALID_ARG_VALUE', /bounded in bytes/));
  assert.throws(() => MessageQueue.create(name, { backend: 'posix', capacityBytes: 5000 }), value('ERR_INVALID_ARG_VALUE', /capacityBytes/));
  assert.throws(() => MessageQueue.create(name, { backend: 'shm', pollInterval: 10 }), value('ERR_INVALID_ARG_VALUE', /'sysv' backend only/));
  assert.throws(() => MessageQueue.create(name, { backend: 'nope' as any }), value('ERR_INVALID_ARG_VALUE', /'posix', 'sysv', 'shm'/));
  assert.throws(() => MessageQueue.create(name, { capcity: 3 } as any), value('ERR_INVALID_ARG_VALUE', /capcity/));
  assert.throws(() => MessageQueue.open(name, { capacity: 3 } as any), value('ERR_INVALID_ARG_VALUE', /capacity/));
  assert.throws(() => MessageQueue.create(name, { backend: 'shm', capacityBytes: 1000, maxMessageSize: 2000 }), value('ERR_OUT_OF_RANGE', /could never be queued/));
  assert.throws(() => MessageQueue.create(name, { backend: 'sysv', capacityBytes: 100, maxMessageSize: 200 }), value('ERR_OUT_OF_RANGE', /could never be queued/));
  assert.throws(() => MessageQueue.create(name, { capacity: 0 }), value('ERR_OUT_OF_RANGE', /capacity/));
  assert.throws(() => MessageQueue.create(name, { mode: 0o1000 }), value('ERR_OUT_OF_RANGE', /mode/));
  assert.throws(() => MessageQueue.create(name, { creation: 'always' as any }), value('ERR_INVALID_ARG_VALUE', /creation/));
  assert.throws(() => MessageQueue.create('a/b'), value('ERR_INVALID_ARG_VALUE', /not a valid message-queue name/));
  assert.throws(() => MessageQueue.create(''), value('ERR_INVALID_ARG_VALUE', /not a valid message-queue name/));
  assert.throws(() => MessageQueue.create(42 as any), value('ERR_INVALID_ARG_TYPE', /name/));
});

/** A Uint8Array whose ArrayBuffer was transferred away: it reads as empty. */
function detached(): Uint8Array {
  const u = new Uint8Array(64);
  structuredClone(u.buffer, { transfer: [u.buffer] });
  return u;
}

test('a message in a detached buffer is refused with ERR_INVALID_ARG_VALUE on every backend, and nothing is queued', async () => {
  for (const backend of ['shm', 'posix', 'sysv'] as const) {
    const q = MessageQueue.create<Uint8Array>(uniqueName(`det${backend}`), { backend, codec: 'raw' });
    try {
      const invalid = (e: any) => e.code === 'ERR_INVALID_ARG_VALUE' && /detached/.test(e.message) && e instanceof TypeError;
      await assert.rejects(q.send(detached(), T), invalid, backend);
      assert.throws(() => q.trySend(detached()), invalid, backend);
      assert.equal(q.stat().messages, 0, backend);
      // An empty message of its own is fine.
      await q.send(new Uint8Array(0), T);
      assert.equal((await q.receive(T)).length, 0);
    } finally {
      await q.close();
    }
  }
});

test('shm: a message whose bytes cannot be copied leaves the queue its space', async () => {
  const name = uniqueName('detstore');
  const q = MessageQueue.create<Uint8Array>(name, { backend: 'shm', codec: 'raw', capacity: 64, capacityBytes: 4096 });
  const segment = SharedMemory.open(`/mp.shmq.${name}`);
  try {
    const fits = (): number => {
      let n = 0;
      while (q.trySend(new Uint8Array(100))) n++;
      while (q.tryReceive() !== undefined);
      return n;
    };
    const before = fits();
    assert.ok(before > 30);
    // Straight to the store (nothing else uses the queue now): the copy throws after space was found.
    const store = new ShmStore(segment.buffer);
    for (let i = 0; i < 300; i++) assert.throws(() => store.put(1, 0, detached()), TypeError);
    assert.deepEqual([q.stat().messages, q.stat().bytes], [0, 0]);
    assert.equal(fits(), before);
  } finally {
    segment.close();
    await q.close();
  }
});
