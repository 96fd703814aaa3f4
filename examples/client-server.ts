// Client/server: one server process, three client processes started with
// spawn(); each client connects over TCP on loopback, asks, and gets its answer.
import { fileURLToPath } from 'node:url';
import { Socket, spawn } from 'multiproc';

const [role, port] = process.argv.slice(2);

if (role === 'client') {
  await using conn = await Socket.connect<string>({ port: Number(port), codec: 'json', timeout: 10_000 });
  await conn.send(`client ${process.pid}`);
  const answer = await conn.receive({ timeout: 10_000 });
  if (!answer.startsWith('hello')) process.exit(1);
} else {
  await using server = await Socket.listen<string>({ port: 0, codec: 'json' }); // port 0: any free port
  const { port: free } = server.address as { port: number };
  let served = 0;
  server.on('connection', async (conn) => {
    const who = await conn.receive({ timeout: 10_000 });
    await conn.send(`hello, ${who}`);
    served++;
  });
  const clients = [1, 2, 3].map(() => spawn(fileURLToPath(import.meta.url), { args: ['client', String(free)] }));
  const exits = await Promise.all(clients.map((c) => c.exited));
  console.log(`served ${served} clients; exit codes ${exits.map((e) => e.code).join(', ')}`);
}
