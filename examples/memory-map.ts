// MemoryMap: a file mapped into memory; every process that maps it shares its pages.
// The child writes into the mapped file, the parent reads it back, without read() or write().
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryMap } from 'multiproc';

const [role, file] = process.argv.slice(2);

if (role === 'child') {
  using map = MemoryMap.open(file!, { access: 'readWrite' });
  new Float64Array(map.buffer)[0] = Math.PI;
  map.flush(); // on disk now (the parent sees the value without it)
} else {
  const dir = mkdtempSync(join(tmpdir(), 'example-mmap-'));
  const path = join(dir, 'table.bin');
  {
    using map = MemoryMap.create(path, 4096); // a 4 KiB file, zero-filled
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'child', path], { stdio: 'inherit' });
    await once(child, 'exit');
    console.log(`the child wrote ${new Float64Array(map.buffer)[0]!.toFixed(5)}`); // 3.14159
  }
  rmSync(dir, { recursive: true }); // closing a map never removes its file
}
