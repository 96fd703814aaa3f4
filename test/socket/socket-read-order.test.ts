// Large frames are read straight from the descriptor once they start; bytes
// the stream already holds must come first, whatever the peer's write sizes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { Socket } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { rawHandshake, header } from './raw-peer.js';

leakGuard();
const dir = tempDir('sockorder');

for (const kind of ['unix', 'tcp'] as const) {
  test(`${kind}: a large frame written in small pieces while the receiver is paused arrives in order`, { timeout: 60000 }, async () => {
    const server = await Socket.listen(kind === 'unix' ? { path: dir.file('s'), codec: 'raw' } : { port: 0, codec: 'raw' });
    const accepted = server[Symbol.asyncIterator]().next();
    const s = await rawHandshake(server);
    s.on('error', () => {});
    try {
      const conn = (await accepted).value!;
      // 5 MiB unread: past its inbox's high-water mark the connection pauses its stream.
      const MiB = 1 << 20;
      for (let i = 0; i < 5; i++) s.write(Buffer.concat([header(MiB), Buffer.alloc(MiB, i + 1)]));
      const stream = (conn as unknown as { stream: Readable }).stream;
      for (const until = Date.now() + 20000; !stream.isPaused() && Date.now() < until; ) await delay(10);
      assert.ok(stream.isPaused(), 'the connection paused its stream');
      // Every 4 bytes of this payload hold their own offset. Written in
      // pieces a few ms apart, so that the paused stream holds several reads.
      const big = Buffer.alloc(200 * 1024);
      for (let j = 0; j < big.length; j += 4) big.writeUInt32LE(j, j);
      const whole = Buffer.concat([header(big.length), big]);
      for (let off = 0; off < whole.length; off += 4096) {
        s.write(whole.subarray(off, off + 4096));
        await delay(2);
      }
      for (let i = 0; i < 5; i++) {
        const m = await conn.receive({ timeout: 20000 });
        assert.equal(m.length, MiB);
        assert.ok(m.every((b: number) => b === i + 1), `message ${i} intact`);
      }
      const m = await conn.receive({ timeout: 20000 });
      assert.equal(m.length, big.length);
      const got = Buffer.from(m.buffer, m.byteOffset, m.length);
      let first = -1;
      for (let j = 0; j < got.length && first < 0; j += 4) if (got.readUInt32LE(j) !== j) first = j;
      assert.equal(first, -1, `bytes out of order from offset ${first}`);
    } finally {
      s.destroy();
      await server.close();
    }
  });
}
