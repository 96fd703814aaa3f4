// ShmRing parties that die: a sender killed between reserve and commit never
// hangs its receivers (they get the messages before it, then an error or the
// end, never a torn message); a receiver killed while holding a message does
// not block the senders of an MPMC ring forever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedMemory, ShmRing } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child } from '../helpers/child.js';

leakGuard();

// Sends `before` numbered messages, reserves room for one more, writes half
// of it, says so, and waits to be killed.
const dyingSender = `
  import { ShmRing } from 'multiproc';
  const [name, before] = process.argv.slice(1);
  const ring = ShmRing.open(name, { codec: 'json', role: 'sender' });
  for (let i = 0; i < Number(before); i++) await ring.send(i);
  const view = await ring.reserve(1000);
  view.fill(0x7b, 0, 500);
  console.log('reserved');
  setInterval(() => {}, 1000);
`;

for (const mode of ['spsc', 'mpmc'] as const) {
  test(`${mode}: a sender killed after reserve, before commit: earlier messages, then an error or the end, never a hang`, { timeout: 60000 }, async () => {
    const name = uniqueName('ring-kill');
    const ring = ShmRing.create<number>(name, { mode, capacity: 1 << 16, codec: 'json', role: 'receiver' });
    try {
      const child = new Child(dyingSender, { args: [name, '10'] });
      await child.waitFor('reserved');
      child.kill('SIGKILL');
      assert.equal((await child.exited).signal, 'SIGKILL');
      const got: number[] = [];
      let error: { code?: string } | undefined;
      for (;;) {
        try {
          got.push(await ring.receive({ timeout: 20000 }));
        } catch (err) {
          error = err as { code?: string };
          if (error.code === 'ERR_MULTIPROC_PEER_CLOSED') continue;
          break;
        }
      }
      assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      // The last sender died: after reporting the lost message, the ring is closed.
      assert.equal(error?.code, 'ERR_MULTIPROC_CLOSED');
    } finally {
      await ring.close();
    }
  });
}

test('spsc: the lost message is reported once as ERR_MULTIPROC_PEER_CLOSED with the pid, and a new sender can take over', { timeout: 60000 }, async () => {
  const name = uniqueName('ring-takeover');
  const ring = ShmRing.create<number>(name, { capacity: 1 << 16, codec: 'json', role: 'receiver' });
  try {
    const child = new Child(dyingSender, { args: [name, '3'] });
    await child.waitFor('reserved');
    child.kill('SIGKILL');
    await child.exited;
    // A new sender in this process replaces the dead one (SPSC admits one live sender).
    const tx = ShmRing.open<number>(name, { codec: 'json', role: 'sender' });
    await tx.send(100);
    const got: Array<number | string> = [];
    for (let i = 0; i < 5; i++) {
      try {
        got.push(await ring.receive({ timeout: 20000 }));
      } catch (err) {
        const e = err as { code: string; pid?: number };
        got.push(e.code);
        if (e.code === 'ERR_MULTIPROC_PEER_CLOSED') assert.ok(e.pid === undefined || e.pid === child.pid);
      }
    }
    assert.deepEqual(got.slice(0, 3), [0, 1, 2]);
    assert.deepEqual(got.slice(3).sort(), [100, 'ERR_MULTIPROC_PEER_CLOSED'].sort());
    await tx.close();
  } finally {
    await ring.close();
  }
});

test('mpmc: a dead sender\'s unfinished message does not hold up the messages other senders wrote after it', { timeout: 60000 }, async () => {
  const name = uniqueName('ring-kill-mpmc');
  const ring = ShmRing.create<number>(name, { mode: 'mpmc', capacity: 1 << 16, codec: 'json', role: 'receiver' });
  try {
    const child = new Child(dyingSender, { args: [name, '2'] });
    await child.waitFor('reserved');
    const tx = ShmRing.open<number>(name, { codec: 'json', role: 'sender' });
    for (let i = 100; i < 105; i++) await tx.send(i);
    child.kill('SIGKILL');
    await child.exited;
    const got: Array<number | string> = [];
    for (let i = 0; i < 8; i++) {
      try {
        got.push(await ring.receive({ timeout: 20000 }));
      } catch (err) {
        got.push((err as { code: string }).code);
      }
    }
    assert.deepEqual(got, [0, 1, 'ERR_MULTIPROC_PEER_CLOSED', 100, 101, 102, 103, 104]);
    // The live sender keeps the ring open.
    await assert.rejects(ring.receive({ timeout: 50 }), (e: { code?: string }) => e.code === 'ERR_MULTIPROC_TIMEOUT');
    await tx.close();
    await assert.rejects(ring.receive({ timeout: 5000 }), (e: { code?: string }) => e.code === 'ERR_MULTIPROC_CLOSED');
  } finally {
    await ring.close();
  }
});

test('mpmc: a receiver killed while holding a message view does not block the senders forever', { timeout: 60000 }, async () => {
  const name = uniqueName('ring-kill-rx');
  const ring = ShmRing.create<Uint8Array>(name, { mode: 'mpmc', capacity: 4096, slotSize: 64, codec: 'raw', role: 'sender' });
  try {
    await ring.send(new Uint8Array(1000).fill(1));
    const child = new Child(`
      import { ShmRing } from 'multiproc';
      const ring = ShmRing.open(process.argv[1], { codec: 'raw', role: 'receiver' });
      const m = await ring.receiveView({ timeout: 10000 });
      console.log('holding ' + m.size);
      setInterval(() => {}, 1000);
    `, { args: [name] });
    await child.waitFor('holding 1000');
    child.kill('SIGKILL');
    await child.exited;
    const rx = ShmRing.open<Uint8Array>(name, { codec: 'raw', role: 'receiver' });
    const receiving = rx.receive({ timeout: 20000 });
    // 4096 bytes of ring: the dead receiver's 1000-byte message must be freed for this to fit.
    await ring.send(new Uint8Array(3500).fill(2), { timeout: 20000 });
    const m = await receiving;
    assert.equal(m.length, 3500);
    assert.ok(m.every((b) => b === 2));
    await rx.close();
  } finally {
    await ring.close();
  }
});

test('spsc: a receiver killed while holding a message view: the next receiver gets that message again', { timeout: 60000 }, async () => {
  const name = uniqueName('ring-redeliver');
  const ring = ShmRing.create<Uint8Array>(name, { capacity: 4096, codec: 'raw', role: 'sender' });
  try {
    await ring.send(new Uint8Array([1, 2, 3]));
    await ring.send(new Uint8Array([4, 5]));
    const child = new Child(`
      import { ShmRing } from 'multiproc';
      const ring = ShmRing.open(process.argv[1], { codec: 'raw', role: 'receiver' });
      const m = await ring.receiveView({ timeout: 10000 });
      console.log('holding ' + [...m.data].join(','));
      setInterval(() => {}, 1000);
    `, { args: [name] });
    await child.waitFor('holding 1,2,3');
    child.kill('SIGKILL');
    await child.exited;
    const rx = ShmRing.open<Uint8Array>(name, { codec: 'raw', role: 'receiver' });
    assert.deepEqual([...(await rx.receive({ timeout: 5000 }))], [1, 2, 3]);
    assert.deepEqual([...(await rx.receive({ timeout: 5000 }))], [4, 5]);
    await rx.close();
  } finally {
    await ring.close();
  }
});

test('spsc: after a receiver killed with messages it took but had not passed, the queue depth stays right', { timeout: 60000 }, async () => {
  const name = uniqueName('ring-depth');
  const tx = ShmRing.create<number>(name, { codec: 'json', role: 'sender' });
  try {
    for (let i = 0; i < 20; i++) assert.ok(tx.trySend(i));
    const child = new Child(`
      import { ShmRing } from 'multiproc';
      const rx = ShmRing.open(process.argv[1], { codec: 'json', role: 'receiver' });
      for (let i = 0; i < 10; i++) rx.tryReceive();
      console.log('took 10');
      setInterval(() => {}, 1000);
    `, { args: [name] });
    await child.waitFor('took 10');
    child.kill('SIGKILL');
    await child.exited;
    // The head had not passed them: the next receiver gets all 20 again.
    const rx = ShmRing.open<number>(name, { codec: 'json', role: 'receiver' });
    const got: number[] = [];
    for (let m; (m = rx.tryReceive()) !== undefined; ) got.push(m);
    assert.equal(got.length, 20);
    for (let i = 20; i < 25; i++) assert.ok(tx.trySend(i));
    assert.equal(rx.stats().messagesQueued, 5);
    assert.equal(tx.stats().messagesQueued, 5);
    await rx.close();
  } finally {
    await tx.close();
  }
});

for (const mode of ['spsc', 'mpmc'] as const) {
  test(`${mode}: an entry a process died claiming (registering or cleaning up) is taken back`, { timeout: 60000 }, async () => {
    const name = uniqueName('ring-claim');
    const rx = ShmRing.create<number>(name, { mode, codec: 'json', role: 'receiver', ...(mode === 'mpmc' ? { maxSenders: 1 } : {}) });
    try {
      // A thread id that is gone: a child process that has exited.
      const child = new Child('process.exit(0)');
      const deadTid = child.pid;
      assert.equal((await child.exited).code, 0);
      // What a sender killed between claiming the (only) sender entry and
      // finishing its registration leaves: the entry's token is its claim.
      // Entries start at byte 512, senders first; the token is their first word.
      using seg = SharedMemory.open(`mp.ring.${name}`);
      Atomics.store(new Int32Array(seg.buffer), 512 / 4, -deadTid);
      const tx = ShmRing.open<number>(name, { codec: 'json', role: 'sender' });
      await tx.send(7, { timeout: 10000 });
      assert.equal(await rx.receive({ timeout: 10000 }), 7);
      await tx.close();
      // No sender left: the ring ends for the receiver.
      const rest: number[] = [];
      for await (const m of rx) rest.push(m);
      assert.deepEqual(rest, []);
    } finally {
      await rx.close();
    }
  });
}
