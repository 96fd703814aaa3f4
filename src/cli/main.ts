#!/usr/bin/env node
/**
 * The `multiproc` command. This file only wires the subcommands; each lives in
 * its own module under src/cli/ and returns a commander Command.
 */
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { benchCommand } from './bench.js';
import { cleanCommand } from './clean.js';
import { demoCommand } from './demo.js';
import { lsCommand } from './ls.js';
import { statCommand } from './stat.js';
import { topCommand } from './top.js';

const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string };

const program = new Command('multiproc')
  .description('Multiprocessing and IPC for Node.js: benchmarks, inspection and clean-up of named objects, demos')
  .version(version)
  .showHelpAfterError();

program.addCommand(benchCommand());
program.addCommand(lsCommand());
program.addCommand(statCommand());
program.addCommand(cleanCommand());
program.addCommand(topCommand());
program.addCommand(demoCommand());

await program.parseAsync(process.argv);
