// FileChannel: messages in an append-only file. The writer process is gone
// before the reader starts: the file kept the messages.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileChannel } from 'multiproc';

const [role, path] = process.argv.slice(2);

if (role === 'writer') {
  await using log = FileChannel.openWriter<{ job: number }>(path!, { codec: 'json' });
  for (let job = 1; job <= 5; job++) await log.send({ job });
} else {
  const dir = mkdtempSync(join(tmpdir(), 'example-file-'));
  const file = join(dir, 'jobs.mpc');
  await once(spawn(process.execPath, [fileURLToPath(import.meta.url), 'writer', file], { stdio: 'inherit' }), 'exit');
  // offsetStore: false, so every run reads from the start (by default a reader resumes where it stopped).
  await using jobs = FileChannel.openReader<{ job: number }>(file, { codec: 'json', offsetStore: false });
  const seen = [];
  for (let i = 0; i < 5; i++) seen.push((await jobs.receive({ timeout: 5000 })).job);
  console.log(`read jobs ${seen.join(', ')} after the writer had exited`);
  rmSync(dir, { recursive: true });
}
