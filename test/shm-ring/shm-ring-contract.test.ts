// ShmRing against the channel contract (docs/api/channels.md) where a ring
// has its own paths: an aborted signal, timeouts while records this call
// cannot take keep arriving, concurrent waits on one handle, names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShmRing } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

for (const mode of ['spsc', 'mpmc'] as const) {
  test(`${mode}: a signal aborted already fails every wait with ABORT_ERR and nothing is sent or taken`, { timeout: 30000 }, async () => {
    const name = uniqueName('ring-abort');
    const rx = ShmRing.create<number>(name, { mode, codec: 'json', capacity: 4096 });
    const tx = ShmRing.open<number>(name, { codec: 'json' });
    try {
      const reason = new Error('stop');
      const ctl = new AbortController();
      ctl.abort(reason);
      const signal = ctl.signal;
      const aborted = (e: { code?: string; cause?: unknown }) => e.code === 'ABORT_ERR' && e.cause === reason;
      // Room for all of these: each call could complete at once.
      await assert.rejects(tx.send(1, { signal }), aborted, 'send');
      await assert.rejects(tx.reserve(8, { signal }), aborted, 'reserve');
      assert.equal(tx.stats().messagesSent, 0);
      assert.ok(tx.trySend(2));
      // The same options object twice: the second call takes the parsed-options shortcut.
      const opts = { signal };
      await assert.rejects(rx.receive(opts), aborted, 'receive');
      await assert.rejects(rx.receive(opts), aborted, 'receive, same options');
      await assert.rejects(rx.receiveMessage({ signal }), aborted, 'receiveMessage');
      await assert.rejects(rx.receiveView({ signal }), aborted, 'receiveView');
      await assert.rejects(rx.receiveInto(new Uint8Array(16), { signal }), aborted, 'receiveInto');
      assert.equal(rx.stats().messagesReceived, 0);
      // A signal that aborts later, passed in the same cached options object, is honoured too.
      const later = new AbortController();
      const reused = { signal: later.signal };
      assert.equal(await rx.receive(reused), 2);
      later.abort(reason);
      assert.ok(tx.trySend(3));
      await assert.rejects(rx.receive(reused), aborted, 'receive, cached options, aborted since');
      assert.equal(rx.tryReceive(), 3);
    } finally {
      await tx.close();
      await rx.close();
    }
  });
}
