import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedMemory } from '../../src/index.js';
import { uniqueName } from '../helpers/names.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

test('open: options.readOnly must be a boolean (a truthy non-boolean must not map read-write)', () => {
  const name = uniqueName('ro');
  using shm = SharedMemory.create(name, 4096);
  for (const bad of ['yes', 1, 0, null, {}]) {
    assert.throws(() => SharedMemory.open(name, { readOnly: bad as never }), (e: TypeError & { code?: string }) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE' && /options\.readOnly/.test(e.message));
  }
  using ro = SharedMemory.open(name, { readOnly: true });
  assert.equal(ro.readOnly, true);
  using rw = SharedMemory.open(name, { readOnly: false });
  assert.equal(rw.readOnly, false);
  assert.equal(shm.readOnly, false);
});
