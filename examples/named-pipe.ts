// NamedPipe: a FIFO in the file system, so unrelated processes find it by path.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NamedPipe } from 'multiproc';

const [role, path] = process.argv.slice(2);

if (role === 'child') {
  const out = await NamedPipe.open(path!).writer({ codec: 'json', timeout: 10_000 });
  await out.send({ greeting: `hello from process ${process.pid}` });
  await out.close();
} else {
  const dir = mkdtempSync(join(tmpdir(), 'example-fifo-'));
  await using fifo = NamedPipe.create(join(dir, 'greetings')); // removed on close
  const input = fifo.reader<{ greeting: string }>({ codec: 'json' });
  spawn(process.execPath, [fileURLToPath(import.meta.url), 'child', fifo.path], { stdio: 'inherit' });
  const { greeting } = await input.receive({ timeout: 10_000 });
  console.log(`got "${greeting.replace(/\d+/, 'N')}"`); // got "hello from process N"
  await input.close();
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
}
