// A receive timeout longer than a Node timer holds (2^31 - 1 ms) is a real
// timeout, not one that fires after 1 ms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Socket } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const dir = tempDir('socklong');

test('receive({ timeout: 2^35 }) waits for the message', async () => {
  const path = dir.file('s');
  const server = await Socket.listen({ path, codec: 'json' });
  try {
    const c = await Socket.connect({ path, codec: 'json', timeout: 20000 });
    const conn = (await server[Symbol.asyncIterator]().next()).value!;
    const t = setTimeout(() => void c.send(42), 300);
    try {
      assert.equal(await conn.receive({ timeout: 2 ** 35 }), 42);
    } finally {
      clearTimeout(t);
      c.destroy();
    }
  } finally {
    await server.close();
  }
});
