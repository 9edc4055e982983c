#!/usr/bin/env node
// The `resnet` command line. Commands parse and print; the work is in the library.

import { Command } from 'commander';
import { infoCommand } from './info.js';
import { listCommand, summaryCommand, type SummaryFlags } from './models.js';
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

program
  .command('list')
  .description('list every network of the registry (ImageNet and CIFAR families, pre-activation and plain twins)')
  .option('--json', 'print one JSON array')
  .action((opts: { json?: boolean }) => listCommand(opts));

program
  .command('summary')
  .description("parameters, multiply-adds and each stage's output shape of a network, as the paper's Table 1")
  .argument('<arch>', 'a registered arch (see `resnet list`)')
  .option('--classes <n>', 'classes of the classifier')
  .option('--in-channels <c>', 'input channels')
  .option('--input <HxW>', 'input size (default 224x224, or 32x32 for CIFAR nets)')
  .option('--shortcut <A|B|C>', 'shortcut option')
  .option('--json', 'print one JSON object {"arch","params","macs","stages":[{"name","shape"}]}')
  .action((arch: string, opts: SummaryFlags) => summaryCommand(arch, opts));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof ResnetError) {
    process.stderr.write(`resnet: ${e.message}\n`);
    process.exit(1);
  }
  throw e;
}
