// FileChannel reader offsets: every way of receiving a message lets the
// stored offset pass it (a reader restarted after close or after being killed
// resumes after it), and a received record is no longer held by the reader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { FileChannel, type OffsetStore } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { Child, runChild } from '../helpers/child.js';

leakGuard();
const tmp = tempDir('file-offset');

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) until the reader has read `n` messages from the file into its inbox. */
async function inInbox(rx: FileChannel<Uint8Array>, n: number): Promise<void> {
  for (let i = 0; i < 1000 && rx.stats().messagesQueued !== n; i++) await pause(10);
  assert.equal(rx.stats().messagesQueued, n, 'messages read from the file');
}

/** Appends the messages [i] for each i, returning the end of each record. */
function append(w: FileChannel<Uint8Array>, values: number[]): number[] {
  return values.map((i) => {
    w.sendSync(Uint8Array.of(i));
    return w.offset;
  });
}

interface Way {
  name: string;
  /** Receives messages 0, 1, 2 from `rx`, appending each with `send` when `waits` (the receive is already waiting for it). */
  take(rx: FileChannel<Uint8Array>, send: (i: number) => void): Promise<number[]>;
}

const into = new Uint8Array(16);
const ways: Way[] = [
  {
    name: 'receive() of messages already read',
    async take(rx) {
      await inInbox(rx, 6);
      return [(await rx.receive())[0]!, (await rx.receive())[0]!, (await rx.receive())[0]!];
    },
  },
  {
    name: 'for await of messages already read',
    async take(rx) {
      await inInbox(rx, 6);
      const got: number[] = [];
      for await (const m of rx) {
        got.push(m[0]!);
        if (got.length === 3) break;
      }
      return got;
    },
  },
  {
    name: 'tryReceive()',
    async take(rx) {
      await inInbox(rx, 6);
      return [rx.tryReceive()![0]!, rx.tryReceive()![0]!, rx.tryReceive()![0]!];
    },
  },
  {
    name: 'tryReceiveInto()',
    async take(rx) {
      await inInbox(rx, 6);
      const got: number[] = [];
      for (let k = 0; k < 3; k++) {
        assert.equal(rx.tryReceiveInto(into), 1);
        got.push(into[0]!);
      }
      return got;
    },
  },
  {
    name: 'receiveInto() of messages already read',
    async take(rx) {
      await inInbox(rx, 6);
      const got: number[] = [];
      for (let k = 0; k < 3; k++) {
        assert.equal(await rx.receiveInto(into, { timeout: 5000 }), 1);
        got.push(into[0]!);
      }
      return got;
    },
  },
  {
    name: 'receiveInto() waiting for each message',
    async take(rx, send) {
      const got: number[] = [];
      for (let k = 0; k < 3; k++) {
        const n = rx.receiveInto(into, { timeout: 10000 });
        send(k);
        assert.equal(await n, 1);
        got.push(into[0]!);
      }
      return got;
    },
  },
  {
    name: 'receive() waiting for each message',
    async take(rx, send) {
      const got: number[] = [];
      for (let k = 0; k < 3; k++) {
        const m = rx.receive({ timeout: 10000 });
        send(k);
        got.push((await m)[0]!);
      }
      return got;
    },
  },
];

for (const way of ways) {
  test(`${way.name} advances the offset; a reader opened after close resumes after the last message received`, { timeout: 60000 }, async () => {
    const path = tmp.file('way');
    const w = FileChannel.openWriter<Uint8Array>(path, { codec: 'raw' });
    const waits = way.name.includes('waiting');
    const ends = waits ? [] : append(w, [0, 1, 2, 3, 4, 5]);
    const rx = FileChannel.openReader<Uint8Array>(path, { codec: 'raw', pollInterval: 50 });
    try {
      assert.deepEqual(await way.take(rx, (i) => ends.push(...append(w, [i]))), [0, 1, 2]);
      if (waits) ends.push(...append(w, [3, 4, 5]));
      assert.equal(rx.offset, ends[2], 'offset past the third message');
      await rx.close();
      const again = FileChannel.openReader<Uint8Array>(path, { codec: 'raw' });
      try {
        assert.deepEqual([...(await again.receive({ timeout: 5000 }))], [3], 'resumed after the messages received');
      } finally {
        again.destroy();
      }
    } finally {
      rx.destroy();
      await w.close();
    }
  });
}

test('for await in a reader process killed while it waits: the restarted reader gets only the messages after those it handled', { timeout: 60000 }, async () => {
  const path = tmp.file('killed');
  const stored = tmp.file('stored');
  const w = FileChannel.openWriter<number>(path, { codec: 'json' });
  const ends: number[] = [];
  for (let i = 0; i < 10; i++) {
    w.sendSync(i);
    ends.push(w.offset);
  }
  // The documented loop, with a store that reports what it stores.
  const child = new Child(
    `
    import { FileChannel } from 'multiproc';
    import { readFileSync, writeFileSync } from 'node:fs';
    const [path, stored] = process.argv.slice(1);
    const store = {
      load: () => undefined,
      save: (o) => { writeFileSync(stored, String(o)); console.log('stored ' + o); },
    };
    const jobs = FileChannel.openReader(path, { codec: 'json', offsetStore: store });
    for await (const job of jobs) console.log('handled ' + job);
  `,
    { args: [path, stored] },
  );
  try {
    await child.waitFor('handled 9', 20000);
    // The loop's next receive acknowledges job 9: the offset past it is stored while the loop waits.
    await child.waitFor(`stored ${ends[9]}`, 20000);
  } finally {
    child.kill('SIGKILL');
    await child.exited;
  }
  w.sendSync(10);
  const store: OffsetStore = { load: () => Number(readFileSync(stored, 'utf8')), save: (o) => writeFileSync(stored, String(o)) };
  const again = FileChannel.openReader<number>(path, { codec: 'json', offsetStore: store });
  try {
    assert.equal(await again.receive({ timeout: 5000 }), 10);
  } finally {
    again.destroy();
    await w.close();
  }
});

test('messages received without options are not held by the reader: memory stays flat over a file much larger than the inbox', { timeout: 120000 }, async () => {
  const path = tmp.file('memory');
  const w = FileChannel.openWriter<Uint8Array>(path, { codec: 'raw' });
  const count = 10000;
  const size = 2048;
  for (let i = 0; i < count; i++) w.sendSync(new Uint8Array(size).fill(i & 0xff));
  await w.close();
  // gc() is needed to tell memory held from garbage not yet collected.
  const r = await runChild(
    `
    import { FileChannel } from 'multiproc';
    const [path, count] = process.argv.slice(1);
    const rx = FileChannel.openReader(path, { codec: 'raw', offsetStore: false });
    for (let i = 0; i < Number(count); i++) {
      // Both ways that take an already read message without a wait of their own.
      const m = i % 2 === 0 ? await rx.receive() : rx.tryReceive() ?? (await rx.receive());
      if (m[0] !== (i & 0xff)) throw new Error('message ' + i + ' out of order');
    }
    for (let k = 0; k < 3; k++) { gc(); await new Promise((r) => setTimeout(r, 20)); }
    console.log('held ' + process.memoryUsage().arrayBuffers);
    await rx.close();
  `,
    { args: [path, String(count)], env: { NODE_OPTIONS: '--expose-gc' } },
  );
  assert.equal(r.code, 0, r.stderr);
  const held = Number(/held (\d+)/.exec(r.stdout)![1]);
  // The file is 20 MiB; a reader holding received records holds all of it.
  assert.ok(held < 4 * 2 ** 20, `the reader still holds ${held} bytes of buffers after receiving every message`);
});
