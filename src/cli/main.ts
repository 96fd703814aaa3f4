#!/usr/bin/env node
/**
 * The `multiproc` command. Each subcommand lives in its own file and returns
 * a commander Command; this file only wires them together.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { cleanCommand } from './clean.js';
import { lsCommand } from './ls.js';
import { statCommand } from './stat.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('multiproc')
  .description('Inspect and clean up the named objects multiproc creates (shared memory, queues, FIFOs, sockets)')
  .version(pkg.version);
program.addCommand(lsCommand());
program.addCommand(statCommand());
program.addCommand(cleanCommand());

await program.parseAsync(process.argv);
