// Supervisor: a privileged "store" role and two sandboxed "worker" processes
// that reach it by role. worker#0 crashes the first time; the supervisor
// restarts it, and the store (another process) never notices.
import { fileURLToPath } from 'node:url';
import { connectRole, parent, ready, serveRole, Supervisor } from 'multiproc';

interface Store {
  add(key: string, n: number): number;
}

const role = process.argv[2];
if (role === 'store') {
  const totals = new Map<string, number>();
  await serveRole({ add: (key: string, n: number) => totals.set(key, (totals.get(key) ?? 0) + n).get(key)! });
  ready();
} else if (role === 'worker') {
  const store = await connectRole<Store>('store', { timeout: 5000 });
  ready();
  const starts = await store.add(`starts of ${parent!.name}`, 1);
  if (parent!.name === 'worker#0' && starts === 1) process.kill(process.pid, 'SIGSEGV'); // a bug, the first time
  await store.add('jobs', 1);
  process.exit(0); // done: a transient child that exits cleanly is not restarted
} else {
  const self = fileURLToPath(import.meta.url);
  await using sup = new Supervisor({
    strategy: 'one_for_one',
    children: [
      { name: 'store', module: self, args: ['store'] },
      { name: 'worker', module: self, args: ['worker'], count: 2, connects: ['store'], restart: 'transient', permissions: {}, execArgv: ['--no-warnings'] },
    ],
  });
  let done = 0;
  const finished = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out')), 30_000);
    sup.on('exited', (e) => {
      if (e.exit.reason !== 'clean-exit') console.log(`${e.name}#${e.index} exited: ${e.exit.reason}${e.restart ? ', restarting it' : ''}`);
      else if (++done === 2) resolve(clearTimeout(timer));
    });
  });
  await sup.start();
  await finished;
  const w0 = sup.children().find((c) => c.name === 'worker' && c.index === 0)!;
  console.log(`both workers finished; worker#0 restarts: ${w0.restarts}, last exit: ${w0.lastExit}`);
}
