/**
 * `multiproc bench`: every IPC mechanism between real processes, beside
 * child_process IPC, worker_threads and a C reference, in one run. Prints the
 * comparison table; writes JSON and a self-contained HTML report on request.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { benchRows, PARKED_GAP_MS, parseSize, resultToJson, runChannelBenchmark, sizeName, type ChannelBenchResult } from '../bench/channels/core.js';
import { renderHtml } from '../bench/channels/html.js';
import { displayName, renderTable } from '../bench/channels/table.js';

interface BenchOptions {
  quick?: boolean;
  trials?: number;
  sizes?: number[];
  mechanisms?: string[];
  all?: boolean;
  json?: string;
  html?: string;
  list?: boolean;
  parkedGap?: number;
  progress: boolean;
}

const QUICK_SIZES = [100, 64 << 10];
const FULL_SIZES = [100, 4 << 10, 64 << 10, 1 << 20];

function sizeList(text: string): number[] {
  const sizes = text.split(',').map(parseSize);
  if (sizes.length === 0 || sizes.some((s) => !Number.isInteger(s) || s < 1)) throw new InvalidArgumentError('a comma-separated list of sizes such as 100,64k,1m');
  return sizes;
}

function positive(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
}

function gapMs(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1000) throw new InvalidArgumentError('a number of milliseconds from 0 to 1000');
  return n;
}

function mechanismList(text: string): string[] {
  const ids = text.split(',').map((s) => s.trim()).filter(Boolean);
  const known = new Set(benchRows().map((r) => r.id));
  const unknown = ids.filter((id) => !known.has(id));
  if (ids.length === 0 || unknown.length > 0) throw new InvalidArgumentError(`unknown mechanism ${unknown.join(', ') || '(none)'}; see --list`);
  return ids;
}

function writeOut(file: string, text: string): string {
  const full = path.resolve(file);
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, text);
  return full;
}

async function run(o: BenchOptions): Promise<void> {
  if (o.list) {
    for (const r of benchRows()) console.log(`${r.id.padEnd(18)} ${displayName(r).padEnd(30)} ${r.label}${r.diagnostic ? ' (diagnostic: with --all)' : ''}`);
    return;
  }
  const quick = o.quick ?? false;
  const options = { quick, trials: o.trials ?? (quick ? 1 : 3), sizes: o.sizes ?? (quick ? QUICK_SIZES : FULL_SIZES), mechanisms: o.mechanisms, skipDiagnostic: !o.all, ...(o.parkedGap !== undefined ? { parkedGapMs: o.parkedGap } : {}) };
  // The bar goes to stderr so that stdout holds only the table.
  const tty = process.stderr.isTTY === true && o.progress;
  const bar = new SingleBar({
    format: ' {bar} {value}/{total} trials | {eta_formatted} left | {what}',
    barsize: 30,
    hideCursor: true,
    clearOnComplete: true,
    noTTYOutput: false,
    stream: process.stderr,
  });
  // Ctrl-C ends the run from the benchmark's signal handler: give the cursor back first.
  const restore = (): void => {
    if (tty) bar.stop();
  };
  process.once('exit', restore);
  let failures = 0;
  const result: ChannelBenchResult = await runChannelBenchmark(options, {
    onStart: ({ rows, sizes, total, machine }) => {
      process.stderr.write(`multiproc bench: ${rows.length} mechanisms x ${sizes.length} size${sizes.length === 1 ? '' : 's'} (${sizes.map(sizeName).join(', ')}) x ${options.trials} trial(s)${quick ? ', quick' : ''} on ${machine.cores} cores\n`);
      if (tty) bar.start(total, 0, { what: 'starting' });
    },
    onNote: (text) => process.stderr.write(`${text}\n`),
    onTrial: ({ done, total, row, size, error }) => {
      if (error) failures++;
      if (tty) bar.update(done, { what: `${displayName(row)}, ${sizeName(size)}` });
      else if (o.progress && (error || done === total || done % 10 === 0)) process.stderr.write(`  [${done}/${total}] ${row.id} ${sizeName(size)}${error ? ` FAILED: ${error}` : ''}\n`);
    },
  }).finally(() => {
    restore();
    process.off('exit', restore);
  });
  console.log(renderTable(result));
  if (failures > 0) console.log(`\n${failures} trial(s) failed; see the table (and --json for the messages).`);
  if (o.json) console.log(`\nJSON: ${writeOut(o.json, resultToJson(result))}`);
  if (o.html) console.log(`${o.json ? '' : '\n'}HTML report: ${writeOut(o.html, renderHtml(result))}`);
}

/** The `bench` subcommand. */
export function benchCommand(): Command {
  return new Command('bench')
    .description('measure every IPC mechanism between real processes, beside child_process IPC, worker_threads and C')
    .option('-q, --quick', `one trial, small budgets, sizes ${QUICK_SIZES.map(sizeName).join(', ')} (under a minute on 2 cores)`)
    .addOption(new Option('-t, --trials <n>', 'trials per mechanism and size; the table shows the median (default: 3, 1 with --quick)').argParser(positive))
    .addOption(new Option('-s, --sizes <list>', `message sizes, e.g. 100,64k,1m (default: ${FULL_SIZES.map(sizeName).join(', ')})`).argParser(sizeList))
    .addOption(new Option('-m, --mechanisms <ids>', 'only these rows, comma-separated (see --list)').argParser(mechanismList))
    .option('--all', 'include the diagnostic rows')
    .addOption(new Option('--parked-gap <ms>', `pause before each round trip to an idle (parked) peer, at the smallest size; 0: none (default: ${PARKED_GAP_MS})`).argParser(gapMs))
    .option('--json <file>', 'write every figure as JSON')
    .option('--html <file>', 'write a self-contained HTML report with charts')
    .option('--no-progress', 'no progress bar')
    .option('--list', 'list the mechanisms and exit')
    .action(async (o: BenchOptions) => {
      await run(o);
      // A stray handle must not keep the command alive.
      setImmediate(() => process.exit(process.exitCode ?? 0)).unref();
    });
}
