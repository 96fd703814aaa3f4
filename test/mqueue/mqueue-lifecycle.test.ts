// Creation modes, ownership (the creator removes the queue; openers do not),
// disown/unlink, what other handles see after the creator closes, close and
// destroy of waiting operations, and the statistics other processes leave.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageQueue, type MessageQueueBackend } from '../../src/index.js';
import { runChild } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { devMqueueSkip } from '../helpers/mqueue.js';

leakGuard();
devMqueueSkip();

const T = { timeout: 10000 };
const backends: MessageQueueBackend[] = ['shm', 'sysv', 'posix'];

for (const backend of backends) {
  test(`${backend}: creation modes create, open, openOrCreate, purgeAndCreate`, async () => {
    const name = uniqueName(`cm${backend}`);
    assert.throws(() => MessageQueue.open(name, { backend }), (e: any) => e.code === 'ENOENT');
    const a = MessageQueue.create<string>(name, { backend, codec: 'json' });
    try {
      assert.equal(a.owner, true);
      assert.equal(a.name, name);
      assert.equal(a.backend, backend);
      assert.throws(() => MessageQueue.create(name, { backend }), (e: any) => e.code === 'EEXIST');
      const b = MessageQueue.create<string>(`/${name}`, { backend, codec: 'json', creation: 'openOrCreate' });
      assert.equal(b.owner, false);
      await b.send('shared', T);
      assert.equal(await a.receive(T), 'shared');
      await b.close();
      await a.send('old', T);
      const c = MessageQueue.create<string>(name, { backend, codec: 'json', creation: 'purgeAndCreate' });
      try {
        assert.equal(c.owner, true);
        await assert.rejects(c.receive({ timeout: 30 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
      } finally {
        await c.close();
      }
    } finally {
      a.disown(); // purgeAndCreate replaced its queue; the name is gone already
      await a.close();
    }
    assert.throws(() => MessageQueue.open(name, { backend }), (e: any) => e.code === 'ENOENT');
  });

  test(`${backend}: an opener's close leaves the queue; the creator's close removes it`, async () => {
    const name = uniqueName(`own${backend}`);
    const a = MessageQueue.create<string>(name, { backend, codec: 'json' });
    const b = MessageQueue.open<string>(name, { backend, codec: 'json' });
    await b.send('kept', T);
    await b.close();
    const c = MessageQueue.open<string>(name, { backend, codec: 'json' });
    assert.equal(await c.receive(T), 'kept');
    await c.close();
    await a.close();
    assert.throws(() => MessageQueue.open(name, { backend }), (e: any) => e.code === 'ENOENT');
  });

  test(`${backend}: disown keeps the queue past the creator's close; unlink removes it`, async () => {
    const name = uniqueName(`dis${backend}`);
    const a = MessageQueue.create<string>(name, { backend, codec: 'json' });
    a.disown();
    assert.equal(a.owner, false);
    await a.send('survives', T);
    await a.close();
    const b = MessageQueue.open<string>(name, { backend, codec: 'json' });
    try {
      assert.equal(await b.receive(T), 'survives');
      b.unlink();
      assert.throws(() => MessageQueue.open(name, { backend }), (e: any) => e.code === 'ENOENT');
    } finally {
      await b.close();
    }
  });

  test(`${backend}: close rejects waiting sends and receives with ERR_MULTIPROC_CLOSED; destroy with its error`, async () => {
    const name = uniqueName(`cl${backend}`);
    const a = MessageQueue.create<Uint8Array>(name, { backend, codec: 'raw', ...(backend === 'shm' ? { capacity: 2 } : {}) });
    const b = MessageQueue.open<Uint8Array>(name, { backend, codec: 'raw' });
    try {
      while (a.trySend(new Uint8Array(1000)));
      const sending = a.send(new Uint8Array(1000));
      const receiving = b.receive({ type: 99 });
      const loop = (async () => {
        let n = 0;
        for await (const _ of b) n++;
        return n;
      })();
      const boom = new Error('boom');
      a.destroy(boom);
      await assert.rejects(sending, (e) => e === boom);
      await b.close();
      await assert.rejects(receiving, (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
      assert.equal(typeof (await loop), 'number', 'for await ends at close');
      await assert.rejects(b.receive(), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
      assert.throws(() => b.stat(), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
    } finally {
      await b.close();
      await a.close();
    }
  });
}

test('posix and shm: handles that have the queue open keep using it after the creator closes', async () => {
  for (const backend of ['posix', 'shm'] as const) {
    const name = uniqueName(`after${backend}`);
    const a = MessageQueue.create<string>(name, { backend, codec: 'json' });
    const b = MessageQueue.open<string>(name, { backend, codec: 'json' });
    await a.close();
    try {
      await b.send('still here', T);
      assert.equal(await b.receive(T), 'still here');
    } finally {
      await b.close();
    }
  }
});

test('sysv: removal by the creator is immediate; other handles, waiting or not, fail with ERR_MULTIPROC_CLOSED', async () => {
  const name = uniqueName('rmsv');
  const a = MessageQueue.create<string>(name, { backend: 'sysv', codec: 'json' });
  const b = MessageQueue.open<string>(name, { backend: 'sysv', codec: 'json' });
  try {
    const waiting = b.receive(T);
    await a.close();
    await assert.rejects(waiting, (e: any) => e.code === 'ERR_MULTIPROC_CLOSED' && /was removed/.test(e.message));
    await assert.rejects(b.send('x'), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
  } finally {
    await b.close();
  }
});

test('sysv: a queue left by a dead creator blocks create (EEXIST) until purgeAndCreate', async () => {
  const name = uniqueName('leftsv');
  const r = await runChild(`
    import { MessageQueue } from 'multiproc';
    const q = MessageQueue.create(process.argv[1], { backend: 'sysv' });
    process.exit(0); // no close: the queue and its control segment stay
  `, { args: [name] });
  assert.equal(r.code, 0, r.stderr);
  assert.throws(() => MessageQueue.create(name, { backend: 'sysv' }), (e: any) => e.code === 'EEXIST');
  const q = MessageQueue.create(name, { backend: 'sysv', creation: 'purgeAndCreate' });
  await q.close();
});

test('posix: messages a handle set aside for type selection go back to the queue when it closes', async () => {
  const name = uniqueName('stash');
  const a = MessageQueue.create<string>(name, { backend: 'posix', codec: 'json' });
  const b = MessageQueue.open<string>(name, { backend: 'posix', codec: 'json' });
  try {
    for (const m of ['one', 'two', 'three']) await a.send(m, T);
    await a.send('typed', { type: 2, ...T });
    assert.equal(await b.receive({ type: 2, ...T }), 'typed');
    // The kernel queue is empty now: b holds the three aside.
    assert.equal(b.stat().messages, 3);
    await b.close();
    assert.deepEqual([await a.receive(T), await a.receive(T), await a.receive(T)], ['one', 'two', 'three']);
  } finally {
    await b.close();
    await a.close();
  }
});

test('shm and sysv: stat() shows the pids and times another process left, msqid_ds style', async () => {
  for (const backend of ['shm', 'sysv'] as const) {
    const name = uniqueName(`st${backend}`);
    const q = MessageQueue.create<string>(name, { backend, codec: 'json' });
    try {
      const before = Date.now();
      const r = await runChild(`
        import { MessageQueue } from 'multiproc';
        const q = MessageQueue.open(process.argv[1], { backend: process.argv[2], codec: 'json' });
        await q.send('a'); await q.send('bb');
        console.log(process.pid);
        await q.close();
      `, { args: [name, backend] });
      assert.equal(r.code, 0, r.stderr);
      const child = Number(r.stdout.trim());
      let s = q.stat();
      assert.equal(s.messages, 2);
      assert.equal(s.bytes, 7); // '"a"' and '"bb"'
      assert.equal(s.lastSendPid, child);
      assert.equal(s.lastReceivePid, null);
      assert.ok(s.lastSendTime !== null && s.lastSendTime.getTime() >= before - 1000);
      assert.ok(s.changeTime !== null && s.changeTime.getTime() <= s.lastSendTime.getTime() + 1000);
      await q.receive(T);
      s = q.stat();
      assert.equal(s.lastReceivePid, process.pid);
      const c = q.stats();
      assert.equal(c.messagesQueued, 1);
      assert.equal(c.lastSendPid, child);
      assert.equal(c.messagesReceived, 1);
      assert.equal(c.capacityBytes, s.capacityBytes);
    } finally {
      await q.close();
    }
  }
});
