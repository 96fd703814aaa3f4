import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { MemoryMap } from '../../src/index.js';
import { runChild } from '../helpers/child.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const tmp = tempDir('mmap-truncation');

// The documented hazard: no JavaScript error is possible, the process dies.
test('touching a mapped page after the file was truncated below it kills the process with SIGBUS', async () => {
  for (const access of ['read', 'readWrite'] as const) {
    const file = tmp.file(access);
    writeFileSync(file, Buffer.alloc(2 * MemoryMap.pageSize, 1));
    const result = await runChild(
      `
      import { MemoryMap } from 'multiproc';
      import { truncateSync } from 'node:fs';
      const map = MemoryMap.open(process.env.MAP_FILE, { access: process.env.MAP_ACCESS });
      const bytes = new Uint8Array(map.buffer);
      console.log('before ' + bytes[${MemoryMap.pageSize} + 1]);
      truncateSync(process.env.MAP_FILE, 0);
      console.log('after ' + bytes[${MemoryMap.pageSize} + 1]);
      `,
      { env: { MAP_FILE: file, MAP_ACCESS: access } },
    );
    assert.equal(result.signal, 'SIGBUS', `${access}: ${result.stdout} ${result.stderr}`);
    assert.match(result.stdout, /^before 1$/m);
    assert.doesNotMatch(result.stdout, /after/);
  }
});
