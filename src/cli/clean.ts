/** `multiproc clean`: removes what dead processes left behind. */
import { createInterface } from 'node:readline/promises';
import { Command } from 'commander';
import { cleanResources, listResources } from '../resources/inspect.js';
import { toJson } from './format.js';

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

/** The `clean` command. */
export function cleanCommand(): Command {
  return new Command('clean')
    .description('remove objects whose owner is dead and that no live process has open')
    .option('--all', 'also remove disowned objects and those of live owners, when no process has them open (asks first)')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--dry-run', 'only show what would be removed')
    .option('--json', 'print JSON')
    .action(async (opts: { all?: boolean; yes?: boolean; dryRun?: boolean; json?: boolean }) => {
      const all = opts.all === true;
      const dryRun = opts.dryRun === true;
      if (all && !dryRun && opts.yes !== true) {
        if (!process.stdin.isTTY) {
          process.stderr.write('multiproc clean --all: confirm with --yes (objects a live process has open are never removed)\n');
          process.exitCode = 2;
          return;
        }
        const candidates = cleanResources({ all: true, dryRun: true }).removed;
        if (candidates.length === 0) {
          process.stdout.write('nothing to remove\n');
          return;
        }
        for (const c of candidates) process.stderr.write(`  ${c.kind} ${c.name}\n`);
        if (!(await confirm(`remove these ${candidates.length} objects? [y/N] `))) {
          process.stderr.write('nothing removed\n');
          return;
        }
      }
      const r = cleanResources({ all, dryRun });
      if (opts.json === true) {
        process.stdout.write(`${toJson(r)}\n`);
        return;
      }
      const verb = dryRun ? 'would remove' : 'removed';
      for (const e of r.removed) {
        process.stdout.write(`${verb} ${e.kind} ${e.name} (owner pid ${e.ownerPid}${e.existed ? '' : ', object already gone: stale record'})\n`);
      }
      const left = listResources().length - (dryRun ? r.removed.length : 0);
      process.stdout.write(`${verb} ${r.removed.length} object${r.removed.length === 1 ? '' : 's'}; ${left} left (in use, owned by live processes, or disowned)\n`);
    });
}
