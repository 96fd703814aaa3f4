/**
 * Runs an idle ShmRing receiver in a child of its own (so that the CPU time
 * measured is the receiver's alone) and asserts that, while it waits, its
 * event loop keeps ticking, it uses little CPU and its wait times out.
 */
import assert from 'node:assert/strict';
import { Child } from './child.js';
import { uniqueName } from './names.js';

/**
 * `ringOptions`: the receiver's ShmRing.create options (as source text);
 * `prelude`: statements run first, with `ring` (the receiver) and `tx` (a
 * live sender, so the receiver also runs its liveness checks) in scope.
 */
export async function assertIdleReceiverSleeps(ringOptions: string, prelude = ''): Promise<void> {
  const r = await new Child(`
    import { ShmRing } from 'multiproc';
    const ring = ShmRing.create(process.argv[1], ${ringOptions});
    const tx = ShmRing.open(process.argv[1], { role: 'sender' });
    ${prelude}
    const pending = ring.receive({ timeout: 2500 }).catch((e) => e.code);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 1500));
    const cpu = process.cpuUsage(cpu0);
    const wall = performance.now() - t0;
    clearInterval(timer);
    console.log(JSON.stringify({ ticks, cpuMs: (cpu.user + cpu.system) / 1000, wall, pending: await pending }));
    tx.close();
    ring.close();
  `, { args: [uniqueName('ring-idle')] }).exited;
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout) as { ticks: number; cpuMs: number; wall: number; pending: string };
  assert.ok(m.ticks >= 30, `the event loop ticked ${m.ticks} times in ${m.wall} ms`);
  assert.ok(m.cpuMs < m.wall * 0.3, `CPU ${m.cpuMs} ms over ${m.wall} ms of waiting`);
  assert.equal(m.pending, 'ERR_MULTIPROC_TIMEOUT');
}
