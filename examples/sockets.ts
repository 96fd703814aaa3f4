// Socket: a Unix socket server and a client in another process; each
// connection is a two-way channel with message boundaries (TCP: { port } instead of { path }).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Socket } from 'multiproc';

const [role, path] = process.argv.slice(2);

if (role === 'client') {
  await using conn = await Socket.connect<string>({ path: path!, codec: 'json', retry: true, timeout: 10_000 });
  await conn.send('ping');
  console.log(`client got: ${await conn.receive({ timeout: 10_000 })}`);
} else {
  const dir = mkdtempSync(join(tmpdir(), 'example-sock-'));
  await using server = await Socket.listen<string>({ path: join(dir, 'echo.sock'), codec: 'json' });
  spawn(process.execPath, [fileURLToPath(import.meta.url), 'client', join(dir, 'echo.sock')], { stdio: 'inherit' });
  for await (const conn of server) {
    const text = await conn.receive({ timeout: 10_000 });
    await conn.send(`pong (you said ${text})`);
    await conn.receive().catch(() => {}); // until the client hangs up
    break;
  }
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
}
