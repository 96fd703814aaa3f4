#!/usr/bin/env node
/**
 * The `multiproc` command. This file only wires the subcommands; each lives in
 * its own module under src/cli/ and returns a commander Command.
 */
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { benchCommand } from './bench.js';

const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string };

const program = new Command('multiproc')
  .description('Multiprocessing and IPC for Node.js: benchmarks and tools')
  .version(version)
  .showHelpAfterError();

program.addCommand(benchCommand());

await program.parseAsync(process.argv);
