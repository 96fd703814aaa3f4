// A Pool across hosts: the caller's Pool with a `nats` option, and worker
// hosts that are separate process trees (started here as independent
// processes running servePool, each with its own local worker processes),
// on a real nats-server. Fast mode (queue group) and durable mode
// (JetStream, one host SIGKILLed mid-run).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cleanResources } from '../../src/resources/inspect.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { Child } from '../helpers/child.js';
import { NatsServer, natsSkip } from '../helpers/nats-server.js';
import { Pool } from '../../src/pool/pool.js';
import { NatsPool } from '../../src/pool/nats-pool.js';
import { servePool, type PoolHost } from '../../src/pool/nats-host.js';
import { JetStreamQueue } from '../../src/mqueue/jetstream.js';

let server: NatsServer | undefined;
leakGuard({ allowChildren: () => (server?.running ? [server.pid] : []) });
before(async () => {
  if (!natsSkip) server = await NatsServer.start();
});
after(async () => {
  await server?.stop();
});

const tasks = fileURLToPath(new URL('./fixtures/pool-tasks.js', import.meta.url));
const subjectName = (): string => uniqueName('pool').replace(/[^A-Za-z0-9_-]/g, '_');

/** A worker host: an independent process serving the pool with 2 local workers; its workers report `tag`. */
function startHost(subject: string, durable: boolean, tag: string): Child {
  const source = `
    import { servePool } from 'multiproc';
    const [url, subject, durable, tag, module] = process.argv.slice(1);
    const host = await servePool({
      module, size: 2, env: { ...process.env, POOL_HOST: tag },
      nats: { servers: url, subject, durable: durable === '1', ackWait: 2000 },
    });
    process.on('SIGTERM', async () => { await host.close(); console.log('stats ' + JSON.stringify(host.stats().accepted)); process.exit(0); });
    console.log('ready');
  `;
  return new Child(source, { args: [server!.url, subject, durable ? '1' : '0', tag, tasks], timeout: 55_000 });
}

/** A worker host in this process, with 2 local workers that report `tag`. */
function serveHere(nats: Record<string, unknown>, tag: string): Promise<PoolHost> {
  return servePool({ module: tasks, size: 2, env: { ...process.env, POOL_HOST: tag }, nats: nats as any });
}

async function until(done: () => boolean, what: string, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !done(); await new Promise((r) => setTimeout(r, 20))) {
    assert.ok(Date.now() < end, `${what} within ${ms} ms`);
  }
}

async function stopHosts(hosts: Child[]): Promise<void> {
  for (const h of hosts) if (h.process.exitCode === null && h.process.signalCode === null) h.process.kill('SIGTERM');
  await Promise.all(hosts.map((h) => h.exited));
  // A SIGKILLed host could not close its pool: sweep what it left (the suite runs without
  // trackers) once its workers, which die with it, have let go.
  for (const h of hosts.filter((x) => x.process.signalCode === 'SIGKILL')) {
    const left = (): string[] => readdirSync('/dev/shm').filter((n) => n.includes(`mpool-${h.process.pid}-`));
    // Once in any case: its pool's status file goes too.
    cleanResources();
    for (const end = Date.now() + 20_000; left().length > 0 && Date.now() < end; ) {
      cleanResources();
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(left(), [], 'the sweep removed what the SIGKILLed host left');
  }
}

describe('Pool across hosts: arguments', () => {
  test('bad options are refused before anything connects', async () => {
    assert.throws(() => new Pool({ module: tasks, nats: 'x' as any }), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
    assert.throws(() => new Pool({ module: tasks, nats: { subject: 'a.b' } }), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
    assert.throws(() => new Pool({ module: tasks, nats: { bogus: 1 } as any }), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
    assert.throws(() => new NatsPool({ nats: { durable: 'yes' as any } }), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
    assert.throws(() => new NatsPool({ nats: { hostTimeout: 10 } }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
    assert.throws(() => new NatsPool({ nats: {}, size: 0 }), (e: any) => e.code === 'ERR_OUT_OF_RANGE');
    assert.throws(() => new Pool({ nats: {} } as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE', 'Pool still wants its module');
    await assert.rejects(servePool({ module: tasks } as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
    await assert.rejects(servePool({ module: tasks, nats: { subject: '' } }), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');
    const pool = new NatsPool({ nats: { subject: 'x' } });
    await assert.rejects(pool.run(42 as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
    assert.throws(() => pool.imap('f', 5 as any), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
    await pool.close();
  });

  test('no server: tasks reject with ERR_MULTIPROC_NATS_UNAVAILABLE', async () => {
    const pool = new Pool({ module: tasks, nats: { servers: 'nats://127.0.0.1:1', timeout: 3000 } });
    await assert.rejects(pool.run('add', [1, 2]), (e: any) => e.code === 'ERR_MULTIPROC_NATS_UNAVAILABLE');
    await assert.rejects(pool.map('add', [1]), (e: any) => e.code === 'ERR_MULTIPROC_NATS_UNAVAILABLE');
    await pool.destroy();
  });
});

describe('Pool across hosts (NATS)', { skip: natsSkip }, () => {
  test('fast mode: two host processes share 200 tasks; run, map, imap, errors, cancel, timeout', { timeout: 60_000 }, async () => {
    const subject = subjectName();
    const hosts = [startHost(subject, false, 'A'), startHost(subject, false, 'B')];
    try {
      await Promise.all(hosts.map((h) => h.waitFor('ready')));
      // The user's program: a local Pool plus the transport option.
      const pool = new Pool({ module: tasks, nats: { servers: server!.url, subject } });
      try {
        assert.ok(pool instanceof NatsPool);
        assert.equal(pool.namePrefix, `mppool.${subject}`);
        assert.equal(await pool.run('add', [1, 2]), 3);
        const items = Array.from({ length: 200 }, (_, i) => [i, 5]);
        const out = await pool.starmap<{ y: number; host: string }>('square', items);
        assert.equal(out.length, 200);
        out.forEach((r, i) => assert.equal(r.y, i * i));
        const by = new Map<string, number>();
        for (const r of out) by.set(r.host, (by.get(r.host) ?? 0) + 1);
        assert.deepEqual([...by.keys()].sort(), ['A', 'B'], `both hosts worked: ${JSON.stringify([...by])}`);

        const seen: number[] = [];
        for await (const r of pool.imap<{ y: number }>('square', [1, 2, 3, 4])) seen.push(r.y);
        assert.deepEqual(seen, [1, 4, 9, 16]);

        await assert.rejects(pool.run('fail', ['boom']), (e: any) => e instanceof RangeError && (e as any).code === 'E_TASK' && e.message === 'boom');
        await assert.rejects(pool.run('nope'), (e: any) => e.code === 'ERR_MULTIPROC_NO_SUCH_METHOD');
        await assert.rejects(pool.run('cooperative', [], { timeout: 300 }), (e: any) => e.code === 'ERR_MULTIPROC_TIMEOUT');
        const ac = new AbortController();
        const job = pool.run('cooperative', [], { signal: ac.signal });
        setTimeout(() => ac.abort(), 200);
        await assert.rejects(job, (e: any) => e.code === 'ABORT_ERR');
        await assert.rejects(pool.run('add', [() => 1]), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE');

        const st = pool.stats();
        assert.equal(st.workers, 4, 'two hosts of two workers each, from their heartbeats');
        assert.ok(st.completed >= 3);
        assert.equal(st.cancelled, 1);
      } finally {
        await pool.close();
      }
      assert.equal(pool.closed, true);
      await assert.rejects(pool.run('add', [1, 2]), (e: any) => e.code === 'ERR_MULTIPROC_CLOSED');
    } finally {
      await stopHosts(hosts);
    }
    for (const h of hosts) assert.equal((await h.exited).code, 0, h.stderr);
  });

  test('fast mode: tasks wait for a host; a SIGKILLed host fails its tasks (host-lost) or, with retries, they run elsewhere', { timeout: 60_000 }, async () => {
    const subject = subjectName();
    const nats = { servers: server!.url, subject, hostTimeout: 2000 };
    const pool = new NatsPool({ nats, retries: 1 });
    const strict = new NatsPool({ nats });
    const hosts: Child[] = [];
    try {
      // No host yet: the task waits, as a local task waits for a worker.
      const early = pool.run<{ y: number }>('square', [3]);
      hosts.push(startHost(subject, false, 'A'));
      await hosts[0]!.waitFor('ready');
      assert.equal((await early).y, 9);
      // Only A serves: these two are on A when it dies.
      const retried = pool.run<{ y: number; host: string }>('squareSlowOn', [5, 'A']);
      const failed = strict.run('squareSlowOn', [6, 'A']);
      const failedCheck = assert.rejects(failed, (e: any) => e.code === 'ERR_MULTIPROC_WORKER_EXITED' && e.reason === 'host-lost' && e.pid === hosts[0]!.pid);
      const deadline = Date.now() + 20_000;
      while (pool.stats().waitTime.count < 2 || strict.stats().waitTime.count < 1) {
        assert.ok(Date.now() < deadline, 'host A accepted both tasks');
        await new Promise((r) => setTimeout(r, 20));
      }
      hosts.push(startHost(subject, false, 'B'));
      await hosts[1]!.waitFor('ready');
      hosts[0]!.process.kill('SIGKILL');
      await failedCheck;
      // The retry runs the task again, on B.
      const r = await retried;
      assert.deepEqual(r, { y: 25, host: 'B' });
      assert.equal(pool.stats().retried, 1);
      assert.equal(pool.stats().workerExits, 1);
    } finally {
      await pool.destroy();
      await strict.destroy();
      await stopHosts(hosts);
    }
  });

  test('durable mode: one host SIGKILLed mid-run with tasks in hand; another host answers them after ackWait', { timeout: 60_000 }, async () => {
    const subject = subjectName();
    const hosts = [startHost(subject, true, 'A'), startHost(subject, true, 'B')];
    const pool = new Pool({ module: tasks, nats: { servers: server!.url, subject, durable: true, ackWait: 2000 } });
    try {
      await Promise.all(hosts.map((h) => h.waitFor('ready')));
      const victim = hosts[0]!;
      // Host A answers items below 100 and stalls on the first ones above, which it then holds.
      const results = new Map<number, { y: number; host: string }>();
      const all = Array.from({ length: 200 }, (_, i) => pool.run<{ y: number; host: string }>('squareStallOn', [i, 'A', 100]).then((r) => void results.set(i, r)));
      // Until everything but what A holds is answered (no answer for 1.5 s).
      let size = -1;
      const deadline = Date.now() + 40_000;
      while (results.size !== size || results.size < 100) {
        assert.ok(Date.now() < deadline, `answers stopped at ${results.size}`);
        size = results.size;
        await new Promise((r) => setTimeout(r, 1500));
      }
      const before = results.size;
      assert.ok(200 - before >= 2, `host A holds a task in each of its 2 slots (holds ${200 - before})`);
      victim.process.kill('SIGKILL');
      await Promise.all(all);
      assert.equal((await victim.exited).signal, 'SIGKILL');
      assert.equal(results.size, 200);
      for (let i = 0; i < 200; i++) assert.equal(results.get(i)!.y, i * i, `task ${i}`);
      const by = new Map<string, number>();
      for (const r of results.values()) by.set(r.host, (by.get(r.host) ?? 0) + 1);
      assert.ok((by.get('A') ?? 0) > 0 && (by.get('B') ?? 0) > 0, `both hosts worked: ${JSON.stringify([...by])}`);
      console.error(`# durable: ${JSON.stringify([...by])}; host A SIGKILLed holding ${200 - before} tasks, which B answered after ackWait`);
    } finally {
      await pool.close();
      await stopHosts(hosts);
      const q = await JetStreamQueue.open(`pool-${subject}`, { servers: server!.url });
      await q.unlink();
      await q.close();
    }
  });

  test("fast mode: a destroyed host answers nothing; callers see it gone, and its tasks run on another host (retries) or fail host-lost", { timeout: 60_000 }, async () => {
    const subject = subjectName();
    const nats = { servers: server!.url, subject, hostTimeout: 2000 };
    const pool = new NatsPool({ nats, retries: 1 });
    const strict = new NatsPool({ nats });
    const hostA = await serveHere(nats, 'A');
    let hostB: PoolHost | undefined;
    try {
      const retried = pool.run<{ y: number; host: string }>('squareSlowOn', [5, 'A']);
      const failed = strict.run('squareSlowOn', [6, 'A']);
      const failedCheck = assert.rejects(failed, (e: any) => {
        assert.equal(e.code, 'ERR_MULTIPROC_WORKER_EXITED', `${e.code}: ${e.message}`);
        assert.equal(e.reason, 'host-lost');
        return true;
      });
      await until(() => hostA.stats().running === 2, 'host A runs both tasks');
      hostB = await serveHere(nats, 'B');
      await hostA.destroy();
      // Not the local pool's "the pool was destroyed": the host is gone, as if it had died.
      await failedCheck;
      assert.deepEqual(await retried, { y: 25, host: 'B' });
      assert.equal(pool.stats().retried, 1);
      const a = hostA.stats();
      assert.deepEqual([a.accepted, a.completed, a.failed], [2, 0, 0]);
    } finally {
      await pool.destroy();
      await strict.destroy();
      await hostA.destroy();
      await hostB?.close();
    }
  });

  test('durable mode: a destroyed host answers and acknowledges nothing; another host runs its task', { timeout: 60_000 }, async () => {
    const subject = subjectName();
    const nats = { servers: server!.url, subject, durable: true, ackWait: 2000 };
    const pool = new NatsPool({ nats });
    const hostA = await serveHere(nats, 'A');
    let hostB: PoolHost | undefined;
    try {
      const task = pool.run<{ y: number; host: string }>('squareSlowOn', [7, 'A']);
      await until(() => hostA.stats().running === 1, 'host A runs the task');
      hostB = await serveHere(nats, 'B');
      await hostA.destroy();
      assert.deepEqual(await task, { y: 49, host: 'B' });
      const a = hostA.stats();
      assert.deepEqual([a.accepted, a.completed, a.failed], [1, 0, 0]);
    } finally {
      await pool.close();
      await hostA.destroy();
      await hostB?.close();
      const q = await JetStreamQueue.open(`pool-${subject}`, { servers: server!.url });
      await q.unlink();
      await q.close();
    }
  });
});
