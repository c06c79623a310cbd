#!/usr/bin/env node
/** The `pgn` command line: each subcommand lives in src/commands/<name>.ts. */
import { Command } from 'commander';
import { PgnError } from './errors';
import { tensorsCommand } from './commands/tensors';

const pkg = require('../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('pgn')
    .description('Pixel-wise gradient uncertainty: where a segmentation network should not be trusted')
    .version(pkg.version)
    .showHelpAfterError();
  program.addCommand(tensorsCommand());
  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    const e = err as Error;
    const kind = err instanceof PgnError ? err.code : e.name;
    process.stderr.write(`pgn: ${kind}: ${e.message}\n`);
    process.exitCode = 2;
  }
}

if (require.main === module) void main();
