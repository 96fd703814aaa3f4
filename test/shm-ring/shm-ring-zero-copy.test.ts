// Zero-copy use of ShmRing: reserve/commit on the sending side and
// receiveView/release on the receiving side, within a process and across processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShmRing } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { Child } from '../helpers/child.js';

leakGuard();

for (const mode of ['spsc', 'mpmc'] as const) {
  test(`${mode}: reserve/commit in another process, receiveView/release here, contents intact`, { timeout: 60000 }, async () => {
    const name = uniqueName('ring-zc');
    const ring = ShmRing.create(name, { mode, capacity: 1 << 16, role: 'receiver' });
    try {
      const child = new Child(`
        import { ShmRing } from 'multiproc';
        const ring = ShmRing.open(process.argv[1], { role: 'sender' });
        for (let i = 0; i < 200; i++) {
          const n = 1 + ((i * 97) % 3000);
          const view = ring.tryReserve(n) ?? (await ring.reserve(n, { timeout: 20000 }));
          for (let k = 0; k < n; k++) view[k] = (i + k) & 0xff;
          // Commit fewer bytes than reserved for odd messages.
          ring.commit({ length: i % 2 ? n - 1 : n, type: 1 + (i % 5), priority: 0 });
        }
        await ring.close();
      `, { args: [name] });
      for (let i = 0; i < 200; i++) {
        const m = await ring.receiveView({ timeout: 20000 });
        const n = 1 + ((i * 97) % 3000);
        assert.equal(m.size, i % 2 ? n - 1 : n);
        assert.equal(m.data.length, m.size);
        assert.equal(m.type, 1 + (i % 5));
        assert.equal(m.data.buffer instanceof SharedArrayBuffer, true, 'a view of the ring, not a copy');
        for (let k = 0; k < m.size; k++) if (m.data[k] !== ((i + k) & 0xff)) assert.fail(`message ${i} byte ${k}`);
        ring.release();
      }
      await assert.rejects(ring.receiveView({ timeout: 10000 }), (e: { code?: string }) => e.code === 'ERR_MULTIPROC_CLOSED');
      assert.equal((await child.exited).code, 0);
    } finally {
      await ring.close();
    }
  });

  test(`${mode}: receiveView in another process, from reservations made here`, { timeout: 60000 }, async () => {
    const name = uniqueName('ring-zc2');
    const ring = ShmRing.create(name, { mode, capacity: 1 << 16, role: 'sender' });
    try {
      const child = new Child(`
        import { ShmRing } from 'multiproc';
        const ring = ShmRing.open(process.argv[1], { role: 'receiver' });
        let sum = 0, count = 0;
        for (;;) {
          let m;
          try { m = ring.tryReceiveView() ?? (await ring.receiveView({ timeout: 20000 })); } catch (e) { if (e.code === 'ERR_MULTIPROC_CLOSED') break; throw e; }
          for (const b of m.data) sum += b;
          count++;
          ring.release();
        }
        console.log(JSON.stringify({ sum, count }));
      `, { args: [name] });
      let sum = 0;
      for (let i = 0; i < 500; i++) {
        const n = 100 + (i % 700);
        const view = ring.tryReserve(n) ?? (await ring.reserve(n, { timeout: 20000 }));
        view.fill(i & 0xff);
        sum += (i & 0xff) * n;
        ring.commit();
      }
      await ring.close();
      const r = await child.exited;
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { sum, count: 500 });
    } finally {
      await ring.close();
    }
  });

  test(`${mode}: a view holds its space until release; a reservation is invisible until commit; discard sends nothing`, async () => {
    const name = uniqueName('ring-zc3');
    const tx = ShmRing.create<Uint8Array>(name, { mode, capacity: 4096, codec: 'raw', role: 'sender' });
    const rx = ShmRing.open<Uint8Array>(name, { codec: 'raw', role: 'receiver' });
    try {
      const v = tx.tryReserve(100)!;
      v.fill(9);
      assert.equal(rx.tryReceiveView(), undefined, 'nothing before commit');
      assert.throws(() => tx.trySend(new Uint8Array(1)), (e: { code?: string }) => e.code === 'ERR_INVALID_STATE');
      assert.throws(() => tx.tryReserve(1), (e: { code?: string }) => e.code === 'ERR_INVALID_STATE');
      tx.commit();
      assert.throws(() => tx.commit(), (e: { code?: string }) => e.code === 'ERR_INVALID_STATE');
      const m = rx.tryReceiveView()!;
      assert.deepEqual([...m.data.subarray(0, 3)], [9, 9, 9]);
      assert.throws(() => rx.tryReceive(), (e: { code?: string }) => e.code === 'ERR_INVALID_STATE', 'one view at a time');
      // Fill the rest of the ring; the held view's bytes stay intact.
      let n = 0;
      while (tx.trySend(new Uint8Array(200).fill(1))) n++;
      assert.ok(n > 0 && n < 20);
      assert.deepEqual([...m.data.subarray(0, 3)], [9, 9, 9]);
      rx.release();
      rx.release();
      let got = 0;
      while (rx.tryReceive() !== undefined) got++;
      assert.equal(got, n);
      tx.tryReserve(50);
      tx.discard();
      tx.discard();
      await tx.send(new Uint8Array([7]));
      assert.deepEqual([...(await rx.receive({ timeout: 1000 }))], [7], 'the discarded reservation sent nothing');
      assert.throws(() => tx.tryReserve(tx.maxMessageSize + 1), (e: { code?: string }) => e.code === 'ERR_OUT_OF_RANGE');
      assert.throws(() => tx.commit({ length: 5 }), (e: { code?: string }) => e.code === 'ERR_INVALID_STATE');
    } finally {
      rx.destroy();
      tx.destroy();
    }
  });
}

test('closing with an open reservation discards it; closing with an open view releases it', async () => {
  const name = uniqueName('ring-zc4');
  const owner = ShmRing.create<Uint8Array>(name, { capacity: 4096, codec: 'raw' });
  const rx = ShmRing.open<Uint8Array>(name, { codec: 'raw', role: 'receiver' });
  const tx = ShmRing.open<Uint8Array>(name, { codec: 'raw', role: 'sender' });
  try {
    tx.tryReserve(10)!.fill(1);
    await tx.close();
    await assert.rejects(rx.receive({ timeout: 5000 }), (e: { code?: string }) => e.code === 'ERR_MULTIPROC_CLOSED');
    const tx2 = ShmRing.open<Uint8Array>(name, { codec: 'raw', role: 'sender' });
    await tx2.send(new Uint8Array([1]));
    await tx2.send(new Uint8Array([2]));
    assert.deepEqual([...rx.tryReceiveView()!.data], [1]);
    await rx.close();
    const rx2 = ShmRing.open<Uint8Array>(name, { codec: 'raw', role: 'receiver' });
    assert.deepEqual([...(await rx2.receive({ timeout: 1000 }))], [2], 'the view was released (consumed) by close');
    await rx2.close();
    await tx2.close();
  } finally {
    await owner.close();
  }
});

for (const mode of ['spsc', 'mpmc'] as const) {
  test(`${mode}: receiveInto copies each message from another process into one reused buffer`, { timeout: 60000 }, async () => {
    const name = uniqueName('ring-into');
    const ring = ShmRing.create<Uint8Array>(name, { mode, capacity: 1 << 20, codec: 'raw', role: 'receiver' });
    try {
      const child = new Child(`
        import { ShmRing } from 'multiproc';
        const ring = ShmRing.open(process.argv[1], { codec: 'raw', role: 'sender' });
        for (let i = 0; i < 60; i++) {
          // 1 byte to about 100 KiB, across the memcpy threshold.
          const n = 1 + ((i * 7919) % 100_000);
          const b = new Uint8Array(n);
          for (let k = 0; k < n; k++) b[k] = (i * 3 + k) & 0xff;
          if (!ring.trySend(b)) await ring.send(b, { timeout: 20000 });
        }
        await ring.close();
      `, { args: [name] });
      const into = new Uint8Array(100_000 + 16);
      for (let i = 0; i < 60; i++) {
        const n = 1 + ((i * 7919) % 100_000);
        into.fill(0);
        // Alternate the three forms and offsets.
        const at = i % 3 === 0 ? 0 : 16;
        const got = i % 3 === 2 ? ring.tryReceiveInto(into, at) ?? (await ring.receiveInto(into, { offset: at, timeout: 20000 })) : await ring.receiveInto(into, { offset: at, timeout: 20000 });
        assert.equal(got, n, `message ${i} length`);
        for (let k = 0; k < n; k++) if (into[at + k] !== ((i * 3 + k) & 0xff)) assert.fail(`message ${i} byte ${k}`);
        if (at > 0) assert.equal(into[at - 1], 0, 'nothing before the offset');
      }
      await assert.rejects(ring.receiveInto(into, { timeout: 10000 }), (e: { code?: string }) => e.code === 'ERR_MULTIPROC_CLOSED');
      assert.equal((await child.exited).code, 0);
      assert.equal(ring.stats().messagesReceived, 60);
    } finally {
      await ring.close();
    }
  });
}

test('receiveInto: a message too large for the target stays queued, and bad arguments throw before anything is taken', { timeout: 30000 }, async () => {
  const name = uniqueName('ring-into2');
  const ring = ShmRing.create<Uint8Array>(name, { capacity: 1 << 16, codec: 'raw' });
  try {
    ring.trySend(new Uint8Array(100).fill(1));
    ring.trySend(new Uint8Array(10).fill(2));
    const small = new Uint8Array(50);
    assert.throws(() => ring.tryReceiveInto(small), (e: { code?: string; size?: number; limit?: number }) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE' && e.size === 100 && e.limit === 50);
    assert.throws(() => ring.tryReceiveInto(new Uint8Array(120), 30), (e: { code?: string; limit?: number }) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE' && e.limit === 90);
    assert.throws(() => ring.tryReceiveInto('x' as unknown as Uint8Array), (e: { code?: string }) => e.code === 'ERR_INVALID_ARG_TYPE');
    assert.throws(() => ring.tryReceiveInto(small, 51), (e: { code?: string }) => e.code === 'ERR_OUT_OF_RANGE');
    assert.throws(() => ring.tryReceiveInto(small, -1), RangeError);
    await assert.rejects(ring.receiveInto(small, { offset: 1.5 }), RangeError);
    await assert.rejects(ring.receiveInto(small, { bogus: 1 } as never), TypeError);
    assert.throws(() => ring.receiveIntoSync(small, null as never), TypeError);
    // Nothing was lost or reordered: the large one first, then the small one.
    const big = new Float64Array(16); // any ArrayBufferView: 128 bytes
    assert.equal(ring.tryReceiveInto(big), 100);
    assert.deepEqual(new Uint8Array(big.buffer, 0, 100), new Uint8Array(100).fill(1));
    assert.equal(ring.receiveIntoSync(small, { timeout: 1000 }), 10);
    assert.deepEqual(small.subarray(0, 10), new Uint8Array(10).fill(2));
    assert.equal(ring.tryReceiveInto(small), undefined);
    // A message left by a too-small target is also what receive() gets next.
    ring.trySend(new Uint8Array(60).fill(3));
    assert.throws(() => ring.tryReceiveInto(small), (e: { code?: string }) => e.code === 'ERR_MULTIPROC_MESSAGE_TOO_LARGE');
    assert.deepEqual(ring.tryReceive(), new Uint8Array(60).fill(3));
    assert.equal(ring.stats().messagesReceived, 3);
  } finally {
    await ring.close();
  }
});
