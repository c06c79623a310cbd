#!/usr/bin/env node
/**
 * src/cli/ owns the `pgn` command line: this file builds the program, each subcommand lives in
 * src/cli/<name>.ts, and the option parsers and progress output they share beside them.
 */
import { Command } from 'commander';
import { PgnError } from '../common/errors';
import { benchCommand } from './bench';
import { evalCommand } from './eval';
import { inspectCommand } from './inspect';
import { scoreCommand } from './score';
import { serveCommand } from './serve';
import { tensorsCommand } from './tensors';

const pkg = require('../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('pgn')
    .description('Pixel-wise gradient uncertainty: where a segmentation network should not be trusted')
    .version(pkg.version)
    .showHelpAfterError();
  program.addCommand(inspectCommand());
  program.addCommand(scoreCommand());
  program.addCommand(evalCommand());
  program.addCommand(serveCommand());
  program.addCommand(benchCommand());
  program.addCommand(tensorsCommand());
  return program;
}

async function main(): Promise<void> {
  // A closed pipe (`pgn score … | head`) ends the run quietly, as Unix tools do.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
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
