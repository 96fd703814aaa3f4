// Every program in examples/ runs as a real process, exits 0, prints its
// expected line, and leaves no named object, temporary file or process behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples');

/** What each example must print (its compiled name, without .js). */
const expected: Record<string, RegExp[]> = {
  'shared-memory': [/^counter = 2000$/m],
  'memory-map': [/^the child wrote 3\.14159$/m],
  mutex: [/^total = 60 /m],
  // Two permits: never more than two inside (fewer when the children start slowly).
  semaphore: [/^at most [12] of 4 processes held a permit at once$/m],
  pipe: [/^squares from the child: 1 4 9$/m],
  'named-pipe': [/^got "hello from process N"$/m],
  'message-queue': [/^taken in order: page the on-call, fix the build, tidy up$/m],
  sockets: [/^client got: pong \(you said ping\)$/m],
  'file-channel': [/^read jobs 1, 2, 3, 4, 5 after the writer had exited$/m],
  'shm-ring': [/^received 100000 messages in \d+ ms$/m],
  'spawn-channels': [/^results: \[\{"id":0,"length":5\},\{"id":1,"length":9\}\]$/m, /^worker exited: clean-exit, code 0$/m],
  rpc: [/^add\(2, 3\) = 5$/m, /^divide\(1, 0\) threw RangeError: division by zero/m],
  'client-server': [/^served 3 clients; exit codes 0, 0, 0$/m],
  pool: [/^squares: 1 4 9 16$/m, /^norm of 131072 ones: 362\.04$/m, /^a worker died: ERR_MULTIPROC_WORKER_EXITED \(killed\)$/m, /^the next task still runs: 144$/m],
  supervisor: [/^worker#0 exited: crashed, restarting it$/m, /^both workers finished; worker#0 restarts: 1, last exit: clean-exit$/m],
};

const leftovers = (): string[] =>
  [
    ...['/dev/shm', '/dev/mqueue'].flatMap((d) => (existsSync(d) ? readdirSync(d).map((n) => `${d}/${n}`) : [])),
    ...readdirSync(tmpdir()).map((n) => join(tmpdir(), n)),
  ].filter((p) => p.slice(p.lastIndexOf('/') + 1).includes('example-'));

/** Live processes whose environment carries `marker` (the example and everything it started). */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(marker)) found.push(Number(pid));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

test('every example has an expected output', () => {
  const programs = readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3));
  assert.deepEqual(programs.sort(), Object.keys(expected).sort());
});

for (const [name, patterns] of Object.entries(expected)) {
  test(`examples/${name}`, async () => {
    const before = new Set(leftovers());
    const marker = `MULTIPROC_EXAMPLE=${name}-${process.pid}`;
    const child = spawn(process.execPath, [join(dir, `${name}.js`)], {
      env: { ...process.env, MULTIPROC_EXAMPLE: marker.slice(marker.indexOf('=') + 1), MULTIPROC_TEST_CHILD: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    clearTimeout(timer);
    assert.equal(code, 0, `exit ${code ?? signal}; stdout: ${out}; stderr: ${err}`);
    for (const p of patterns) assert.match(out, p);
    // Whatever the example started must be gone soon after it exits.
    let alive = processesWith(marker);
    for (let i = 0; i < 50 && alive.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      alive = processesWith(marker);
    }
    for (const pid of alive) process.kill(pid, 'SIGKILL');
    assert.deepEqual(alive, [], 'processes still alive after the example exited');
    assert.deepEqual(leftovers().filter((p) => !before.has(p)), [], 'left behind');
  });
}
