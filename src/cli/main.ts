#!/usr/bin/env node
// The `resnet` command line. Commands parse and print; the work is in the library.

import { Command } from 'commander';
import { infoCommand } from './info.js';
import { VERSION } from '../version.js';
import { ResnetError } from '../errors.js';

const program = new Command();
program
  .name('resnet')
  .description('Deep residual networks from TypeScript: build, train, evaluate and study ResNets')
  .version(VERSION);

program
  .command('info')
  .description('print the version, the backend in use, oneDNN version, threads and the ISA oneDNN dispatches to')
  .option('--json', 'print one JSON object')
  .action((opts: { json?: boolean }) => infoCommand(opts));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof ResnetError) {
    process.stderr.write(`resnet: ${e.message}\n`);
    process.exit(1);
  }
  throw e;
}
