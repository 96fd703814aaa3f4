// FIFOs between unrelated processes that find each other by path: volume,
// four concurrent writers, and a writer killed in the middle of a message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { NamedPipe } from '../../src/channel/transports/named-pipe.js';
import { Child } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const tmp = tempDir('fifo');
const T = { timeout: 30000 };

test('two processes spawned separately, one writing and one reading by path: 100000 sequenced, checksummed messages, none lost or duplicated', { timeout: 120000 }, async () => {
  const fifo = NamedPipe.create(tmp.file('fifo'));
  const n = 100_000;
  try {
    const reader = new Child(
      `
      import { NamedPipe } from 'multiproc';
      import { createHash } from 'node:crypto';
      const [path, n] = process.argv.slice(1);
      const r = NamedPipe.open(path).reader({ codec: 'raw' });
      console.log('listening');
      let next = 0;
      for await (const m of r) {
        const b = Buffer.from(m);
        if (b.readUInt32LE(0) !== next) throw new Error('expected ' + next + ', got ' + b.readUInt32LE(0));
        if (!createHash('md5').update(b.subarray(0, 48)).digest().equals(b.subarray(48))) throw new Error('checksum ' + next);
        next++;
      }
      console.log('received ' + next);
      `,
      { args: [fifo.path, String(n)], timeout: 110000 },
    );
    await reader.waitFor('listening');
    const writer = new Child(
      `
      import { NamedPipe } from 'multiproc';
      import { createHash } from 'node:crypto';
      const [path, n] = process.argv.slice(1);
      const w = await NamedPipe.open(path).writer({ codec: 'raw', timeout: 10000 });
      const b = Buffer.alloc(64);
      for (let i = 0; i < Number(n); i++) {
        b.writeUInt32LE(i, 0);
        b.fill(i & 0xff, 4, 48);
        createHash('md5').update(b.subarray(0, 48)).digest().copy(b, 48);
        if (!w.trySend(b)) await w.send(b);
      }
      await w.close();
      `,
      { args: [fifo.path, String(n)], timeout: 110000 },
    );
    const [rw, rr] = await Promise.all([writer.exited, reader.exited]);
    assert.equal(rw.code, 0, `signal ${rw.signal}; stderr: ${rw.stderr}`);
    assert.equal(rr.code, 0, `signal ${rr.signal}; stderr: ${rr.stderr}`);
    assert.match(rr.stdout, new RegExp(`received ${n}\\b`));
  } finally {
    await fifo.close();
  }
});

test('four writer processes on one FIFO (shared, messages up to 4080 bytes): every writer\'s sequence is intact, no frame is torn', { timeout: 120000 }, async () => {
  const fifo = NamedPipe.create(tmp.file('fifo'));
  const writers = 4;
  const perWriter = 4000;
  try {
    const reader = fifo.reader({ codec: 'raw', persistent: true });
    const children = Array.from({ length: writers }, (_, id) =>
      new Child(
        `
        import { NamedPipe } from 'multiproc';
        import { createHash } from 'node:crypto';
        const [path, id, count] = process.argv.slice(1).map((v, i) => (i === 0 ? v : Number(v)));
        const w = await NamedPipe.open(path).writer({ codec: 'raw', shared: true, timeout: 10000 });
        if (w.maxMessageSize !== NamedPipe.maxSharedMessageSize) throw new Error('limit ' + w.maxMessageSize);
        for (let seq = 0; seq < count; seq++) {
          // Sizes sweep up to the limit, so that whole writes often fill PIPE_BUF.
          const size = 24 + ((seq * 997 + id * 131) % (NamedPipe.maxSharedMessageSize - 24 + 1));
          const b = Buffer.alloc(size, (id * 61 + seq) & 0xff);
          b.writeUInt32LE(id, 0);
          b.writeUInt32LE(seq, 4);
          createHash('md5').update(b.subarray(24)).digest().copy(b, 8);
          if (!w.trySend(b)) await w.send(b);
        }
        await w.close();
        `,
        { args: [fifo.path, String(id), String(perWriter)], timeout: 110000 },
      ),
    );
    const next = new Array<number>(writers).fill(0);
    for (let i = 0; i < writers * perWriter; i++) {
      const b = Buffer.from((await reader.receive(T)) as Uint8Array);
      const id = b.readUInt32LE(0);
      const seq = b.readUInt32LE(4);
      if (id >= writers) assert.fail(`torn frame: writer id ${id}`);
      if (seq !== next[id]) assert.fail(`writer ${id}: expected message ${next[id]}, got ${seq}`);
      if (!createHash('md5').update(b.subarray(24)).digest().equals(b.subarray(8, 24))) assert.fail(`torn frame: writer ${id} message ${seq}`);
      next[id]++;
    }
    assert.deepEqual(next, new Array(writers).fill(perWriter));
    for (const c of children) {
      const r = await c.exited;
      assert.equal(r.code, 0, `signal ${r.signal}; stderr: ${r.stderr}`);
    }
    await assert.rejects(reader.receive({ timeout: 100 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT', 'nothing more, and the persistent reader is still open');
    await reader.close();
  } finally {
    await fifo.close();
  }
});

test('a writer killed by SIGKILL in the middle of a large message: the whole messages before it, then ERR_MULTIPROC_PROTOCOL, never a torn message or a hang', async () => {
  const fifo = NamedPipe.create(tmp.file('fifo'));
  try {
    const reader = fifo.reader({ codec: 'raw' });
    const writer = new Child(
      `
      import { NamedPipe } from 'multiproc';
      const w = await NamedPipe.open(process.argv[1]).writer({ codec: 'raw', timeout: 10000 });
      for (let i = 0; i < 10; i++) await w.send(Buffer.alloc(100, i));
      await new Promise((r) => setTimeout(r, 50));
      w.trySend(Buffer.alloc(8 << 20, 0xee)); // the FIFO takes the first 64 KiB at most
      process.kill(process.pid, 'SIGKILL');
      `,
      { args: [fifo.path] },
    );
    for (let i = 0; i < 10; i++) assert.deepEqual(Buffer.from((await reader.receive(T)) as Uint8Array), Buffer.alloc(100, i));
    await assert.rejects(reader.receive(T), (e: any) => e.code === 'ERR_MULTIPROC_PROTOCOL' && /middle of a message/.test(e.message));
    assert.equal((await writer.exited).signal, 'SIGKILL');
    await reader.close();
  } finally {
    await fifo.close();
  }
});
