// MessageQueue: a queue by name with message types and priorities. A child
// posts jobs of two types; the parent takes the urgent type first, by priority.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { MessageQueue } from 'multiproc';

const [role, name] = process.argv.slice(2);
const URGENT = 1;
const LATER = 2;

if (role === 'child') {
  await using q = MessageQueue.open<string>(name!, { backend: 'shm', codec: 'json' });
  await q.send('tidy up', { type: LATER });
  await q.send('fix the build', { type: URGENT, priority: 1 });
  await q.send('page the on-call', { type: URGENT, priority: 9 });
} else {
  // backend 'posix' or 'sysv' use the kernel's queues instead; the API is the same.
  await using q = MessageQueue.create<string>(`example-mq-${process.pid}`, { backend: 'shm', codec: 'json' });
  await once(spawn(process.execPath, [fileURLToPath(import.meta.url), 'child', q.name], { stdio: 'inherit' }), 'exit');
  const order = [];
  for (let i = 0; i < 2; i++) order.push(await q.receive({ type: URGENT, timeout: 5000 }));
  order.push(await q.receive({ timeout: 5000 }));
  console.log(`taken in order: ${order.join(', ')}`); // page the on-call, fix the build, tidy up
}
