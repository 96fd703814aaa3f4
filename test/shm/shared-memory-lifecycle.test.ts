import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { SharedMemory, ClosedError, SizeMismatchError } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { runChild } from '../helpers/child.js';

leakGuard();

test('create makes an owner-only, zero-filled segment visible in /dev/shm', () => {
  const name = uniqueName('shm');
  const shm = SharedMemory.create(name, 8192);
  try {
    assert.equal(shm.name, `/${name}`);
    assert.equal(shm.size, 8192);
    assert.equal(shm.owner, true);
    const st = statSync(`/dev/shm/${name}`);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.size, 8192);
    assert.ok(new Uint8Array(shm.buffer).every((b) => b === 0));
  } finally {
    shm.close();
  }
  assert.equal(existsSync(`/dev/shm/${name}`), false, 'the creator removes the name on close');
});

test('a given mode is applied exactly, whatever the umask', () => {
  const name = uniqueName('mode');
  using shm = SharedMemory.create(name, 4096, { mode: 0o640 });
  assert.equal(statSync(`/dev/shm/${name}`).mode & 0o777, 0o640);
  assert.equal(shm.owner, true);
});

test('the buffer aliases the segment: a write in another process is seen here, without copy', async () => {
  const name = uniqueName('alias');
  using shm = SharedMemory.create(name, 4096);
  const view = new Int32Array(shm.buffer);
  view[0] = 7;
  const r = await runChild(`
    import { SharedMemory } from 'multiproc';
    const shm = SharedMemory.open(process.argv[1]);
    const v = new Int32Array(shm.buffer);
    if (v[0] !== 7) process.exit(3);
    Atomics.store(v, 1, 1234);
    shm.close();
  `, { args: [name] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(Atomics.load(view, 1), 1234);
  assert.equal(existsSync(`/dev/shm/${name}`), true, "an opener's close does not remove the name");
});

test('creation modes: create, open, openOrCreate, purgeAndCreate', () => {
  const name = uniqueName('modes');
  const a = SharedMemory.create(name, 4096);
  try {
    new Uint8Array(a.buffer)[0] = 9;
    assert.throws(() => SharedMemory.create(name, 4096), (e: any) => e.code === 'EEXIST' && e.syscall === 'shm_open' && e.message.includes(name) && /openOrCreate/.test(e.message));
    const b = SharedMemory.create(name, 4096, { creation: 'openOrCreate' });
    assert.equal(b.owner, false);
    assert.equal(new Uint8Array(b.buffer)[0], 9);
    b.close();
    const c = SharedMemory.create(name, 4096, { creation: 'open' });
    assert.equal(new Uint8Array(c.buffer)[0], 9);
    c.close();
    assert.throws(() => SharedMemory.create(name, 100, { creation: 'openOrCreate' }), SizeMismatchError);
    const d = SharedMemory.create(name, 4096, { creation: 'purgeAndCreate' });
    assert.equal(d.owner, true);
    assert.equal(new Uint8Array(d.buffer)[0], 0, 'purgeAndCreate starts from a fresh segment');
    d.close();
  } finally {
    a.close();
  }
  const e = SharedMemory.create(name, 4096, { creation: 'openOrCreate' });
  assert.equal(e.owner, true, 'openOrCreate creates when missing, and then owns');
  e.close();
  assert.equal(existsSync(`/dev/shm/${name}`), false);
});

test('an open that finds a segment its creator has not sized yet waits for the size', async () => {
  const name = uniqueName('unsized');
  const path = `/dev/shm/${name}`;
  // The state between a creator's shm_open and its ftruncate: an empty segment.
  writeFileSync(path, '', { mode: 0o600 });
  const go = new Int32Array(new SharedArrayBuffer(4));
  // The "creator": another thread, which sizes it 20 ms after this one starts opening.
  const creator = new Worker(
    `const { workerData: { go, path } } = require('node:worker_threads');
     require('node:worker_threads').parentPort.postMessage('ready');
     Atomics.wait(go, 0, 0, 20000);
     Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
     require('node:fs').truncateSync(path, 8192);`,
    { eval: true, workerData: { go, path } },
  );
  try {
    await once(creator, 'message');
    Atomics.store(go, 0, 1);
    Atomics.notify(go, 0);
    const shm = SharedMemory.open(name);
    assert.equal(shm.size, 8192);
    shm.close();
  } finally {
    await once(creator, 'exit');
    rmSync(path, { force: true });
  }
});

test('openOrCreate from two processes at once: each round creates or opens, never fails', { timeout: 60000 }, async () => {
  const name = uniqueName('race');
  const round = `
    import { SharedMemory } from 'multiproc';
    const errors = {};
    for (let i = 0; i < 500; i++) {
      try {
        SharedMemory.create(process.argv[1], 4096, { creation: 'openOrCreate' }).close();
      } catch (e) {
        errors[e.code] = (errors[e.code] ?? 0) + 1;
      }
    }
    console.log(JSON.stringify(errors));
  `;
  const [a, b] = await Promise.all([runChild(round, { args: [name] }), runChild(round, { args: [name] })]);
  for (const r of [a, b]) {
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {});
  }
  assert.equal(existsSync(`/dev/shm/${name}`), false);
});

test('open: missing segment, size check, read-only mapping', () => {
  const name = uniqueName('open');
  assert.throws(() => SharedMemory.open(name), (e: any) => e.code === 'ENOENT' && e.errno === -2 && e.objectName === `/${name}` && /create it first/.test(e.message));
  using shm = SharedMemory.create(name, 4096);
  new Uint8Array(shm.buffer)[10] = 42;
  assert.throws(() => SharedMemory.open(name, { size: 8192 }), (e: any) => e instanceof SizeMismatchError && e.code === 'ERR_MULTIPROC_SIZE_MISMATCH');
  using ro = SharedMemory.open(name, { readOnly: true, size: 4096 });
  assert.equal(ro.readOnly, true);
  const v = new Uint8Array(ro.buffer);
  assert.equal(v[10], 42);
  v[10] = 1; // copy-on-write: no crash, and the segment keeps its byte
  assert.equal(new Uint8Array(shm.buffer)[10], 42);
});

test('close is idempotent; use after close fails with ERR_MULTIPROC_CLOSED; old buffers stay safe', () => {
  const name = uniqueName('close');
  const shm = SharedMemory.create(name, 4096);
  const old = new Uint8Array(shm.buffer);
  old[0] = 5;
  shm.close();
  shm.close();
  assert.equal(shm.closed, true);
  assert.throws(() => shm.buffer, (e: any) => e instanceof ClosedError && e.code === 'ERR_MULTIPROC_CLOSED');
  assert.throws(() => shm.view(0, 1), ClosedError);
  // The stale view no longer aliases the segment but never faults.
  assert.equal(old[0], 0);
  old[1] = 3;
  assert.equal(old[1], 3);
});

test('unlink removes the name once; a second unlink is ENOENT; disown keeps the name after close', () => {
  const name = uniqueName('unlink');
  const shm = SharedMemory.create(name, 4096);
  shm.unlink();
  assert.equal(existsSync(`/dev/shm/${name}`), false);
  assert.throws(() => shm.unlink(), (e: any) => e.code === 'ENOENT' && e.syscall === 'shm_unlink');
  new Uint8Array(shm.buffer)[0] = 1; // still mapped after unlink
  shm.close();

  const kept = SharedMemory.create(name, 4096);
  kept.disown();
  kept.close();
  assert.equal(existsSync(`/dev/shm/${name}`), true);
  const again = SharedMemory.open(name);
  again.unlink();
  again.close();
  assert.equal(existsSync(`/dev/shm/${name}`), false);
});

test('bad arguments throw TypeError/RangeError with Node codes before any system call', () => {
  const bad: Array<[() => unknown, string]> = [
    [() => SharedMemory.create(42 as any, 10), 'ERR_INVALID_ARG_TYPE'],
    [() => SharedMemory.create('', 10), 'ERR_INVALID_ARG_VALUE'],
    [() => SharedMemory.create('a/b', 10), 'ERR_INVALID_ARG_VALUE'],
    [() => SharedMemory.create('x'.repeat(300), 10), 'ERR_INVALID_ARG_VALUE'],
    [() => SharedMemory.create('ok', -1), 'ERR_OUT_OF_RANGE'],
    [() => SharedMemory.create('ok', 0), 'ERR_OUT_OF_RANGE'],
    [() => SharedMemory.create('ok', 1.5), 'ERR_OUT_OF_RANGE'],
    [() => SharedMemory.create('ok', '10' as any), 'ERR_INVALID_ARG_TYPE'],
    [() => SharedMemory.create('ok', 10, { mod: 0o600 } as any), 'ERR_INVALID_ARG_VALUE'],
    [() => SharedMemory.create('ok', 10, { mode: 0o7777 }), 'ERR_OUT_OF_RANGE'],
    [() => SharedMemory.create('ok', 10, { creation: 'always' as any }), 'ERR_INVALID_ARG_VALUE'],
    [() => SharedMemory.open('ok', null as any), 'ERR_INVALID_ARG_TYPE'],
  ];
  for (const [fn, code] of bad) {
    assert.throws(fn, (e: any) => (e instanceof TypeError || e instanceof RangeError) && (e as any).code === code, `expected ${code} from ${fn}`);
  }
  assert.equal(existsSync('/dev/shm/ok'), false);
});

test('permission denied on a segment of another user is a clear EACCES', { skip: process.getuid?.() !== 0 ? 'needs root to create a file as another user' : false }, async () => {
  const name = uniqueName('perm');
  using shm = SharedMemory.create(name, 4096, { mode: 0o600 });
  const r = await runChild(`
    import { SharedMemory } from 'multiproc';
    process.setuid(65534);
    try { SharedMemory.open(process.argv[1]); process.exit(1); }
    catch (e) { console.log(e.code + ' ' + e.message); process.exit(e.code === 'EACCES' ? 0 : 2); }
  `, { args: [name] });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /permission denied/);
  assert.equal(shm.owner, true);
});
