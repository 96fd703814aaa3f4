// `multiproc bench --quick --json` on a few mechanisms: real trials between
// real processes, a well-formed result file, the table on stdout, nothing left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChannelBenchResult } from '../../src/bench/channels/core.js';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 120_000, env: { ...process.env, MULTIPROC_TEST_CHILD: '1' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const benchNames = (): string[] => ['/dev/shm', '/dev/mqueue'].flatMap((d) => (existsSync(d) ? readdirSync(d).filter((n) => n.includes('mpbch-')) : []));

test('bench --quick --json on a subset writes every figure', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mpt-cli-'));
  try {
    const file = join(dir, 'out', 'bench.json');
    const mechanisms = ['fork-json', 'pipe', 'shmring', 'shm-mutex', 'c-pipe', 'c-ring'];
    const r = await run(['bench', '--quick', '--no-progress', '--mechanisms', mechanisms.join(','), '--sizes', '100,4k', '--json', file]);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(readFileSync(file, 'utf8')) as ChannelBenchResult;
    assert.equal(result.benchmark, 'channels');
    assert.deepEqual(result.options.sizes, [100, 4096]);
    assert.deepEqual(result.rows.map((x) => x.id), mechanisms);
    assert.equal(result.cells.length, mechanisms.length * 2);
    for (const c of result.cells) {
      assert.equal(c.status, 'ok', `${c.row} ${c.size}: ${c.errors.join('; ')}`);
      assert.equal(c.trials.length, 1);
      for (const v of [c.rttP50, c.rttP99, c.msgsPerSec, c.mbPerSec]) assert.ok(typeof v === 'number' && v > 0, `${c.row} ${c.size}: ${v}`);
      assert.ok(c.rttP99 >= c.rttP50);
      assert.ok(Math.abs(c.mbPerSec - (c.msgsPerSec * c.size) / 1e6) < 1e-6 * c.mbPerSec + 1e-9);
      if (c.row === 'fork-json') assert.equal(c.ratios.vsForkJson.oneway, 1);
      else assert.ok(c.ratios.vsForkJson.oneway > 0 && c.ratios.vsForkJson.rtt > 0);
      // Parked round trips (the peer idle before each) at the smallest size only, C rows included.
      const parked = c.trials[0]!.parked;
      if (c.size === 100) {
        for (const v of [c.parkedP50, c.parkedP99]) assert.ok(typeof v === 'number' && v > 0, `${c.row} parked: ${v}`);
        assert.ok(c.parkedP99 >= c.parkedP50);
        assert.equal(parked?.n, result.parked?.roundTrips, c.row);
        assert.ok(c.ratios.vsForkJson.parkedSlowdown > 0, c.row);
      } else {
        assert.equal(parked, undefined);
        // NaN is written as null.
        assert.equal(c.parkedP50, null);
        assert.equal(c.parkedP99, null);
      }
    }
    assert.equal(result.parked?.size, 100);
    assert.equal(result.parked?.gapUs, 2000);
    assert.ok(result.parked.roundTrips > 0 && result.parked.jitter > 0 && result.parked.jitter < 1);
    const ringVsC = result.cells.find((c) => c.row === 'shmring' && c.size === 100)!.ratios.vsC;
    assert.equal(ringVsC.ref, 'c-ring');
    assert.ok(ringVsC.parkedSlowdown > 0);
    const target = result.targets.find((t) => t.id === 'shmring-parked-vs-c');
    assert.ok(target && typeof target.pass === 'boolean' && target.value === ringVsC.parkedSlowdown, JSON.stringify(result.targets));
    assert.equal(target.goal, '<= 2x');
    // The traits: from the live channel for channels, declared for the rest.
    assert.equal(result.traits['pipe']?.mechanism, 'pipe');
    assert.equal(result.traits['pipe']?.direction, 'two-way');
    assert.equal(result.traits['shmring']?.medium, 'memory');
    assert.equal(result.traits['shm-mutex']?.unit, 'page');
    for (const id of mechanisms) for (const k of ['medium', 'unit', 'direction', 'scope', 'use'] as const) assert.ok(result.traits[id]?.[k], `${id}.${k}`);
    // The table on stdout: one block per size, with the traits and the ratio columns.
    assert.match(r.stdout, /^100 B messages$/m);
    assert.match(r.stdout, /^4 KiB messages$/m);
    assert.match(r.stdout, /mechanism\s+medium\s+unit\s+direction\s+scope\s+RTT p50 µs\s+RTT p99 µs\s+msg\/s\s+MB\/s\s+p50 x IPC/);
    assert.match(r.stdout, /^child_process IPC \(json\)\s+socket\s+message\s+two-way\s+parent-child\s.*\s1\.0x\s+1\.0x\s+1\.0x\s/m);
    assert.match(r.stdout, /^SharedMemory \+ Mutex\s+memory\s+page\s/m);
    assert.match(r.stdout, /^100 B round trips to a parked peer$/m);
    assert.match(r.stdout, /mechanism\s+busy RTT p50 µs\s+parked RTT p50 µs\s+parked RTT p99 µs\s+parked p50 x IPC\s+parked p50 \/ C/);
    assert.match(r.stdout, /^ShmRing\s+[\d,.]+\s+[\d,.]+\s+[\d,.]+\s+[\d.]+x\s+[\d.]+x c-ring$/m);
    assert.deepEqual(benchNames(), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench refuses bad arguments before running anything', async () => {
  const sizes = await run(['bench', '--sizes', '100,lots']);
  assert.notEqual(sizes.code, 0);
  assert.match(sizes.stderr, /--sizes.*comma-separated list of sizes/);
  const mech = await run(['bench', '--mechanisms', 'pipe,carrier-pigeon']);
  assert.notEqual(mech.code, 0);
  assert.match(mech.stderr, /unknown mechanism carrier-pigeon/);
  const gap = await run(['bench', '--parked-gap', '-1']);
  assert.notEqual(gap.code, 0);
  assert.match(gap.stderr, /--parked-gap.*milliseconds from 0 to 1000/);
});

test('bench --list names every mechanism', async () => {
  const r = await run(['bench', '--list']);
  assert.equal(r.code, 0, r.stderr);
  for (const id of ['fork-json', 'fork-advanced', 'worker', 'mq-posix', 'mq-sysv', 'mq-shm', 'pipe', 'fifo', 'unix', 'tcp', 'udp', 'shmring', 'file', 'shm-mutex', 'mmap-mutex', 'c-ring']) {
    assert.match(r.stdout, new RegExp(`^${id} `, 'm'));
  }
});
