#!/usr/bin/env node
/**
 * src/cli/ owns the `pgn` command line: this file builds the program, each subcommand lives in
 * src/cli/<name>.ts, and the option parsers and progress output they share beside them.
 */
import { Command } from 'commander';
import { PgnError } from '../common/errors';
import { removeLiveTemporaries } from '../common/files';
import { benchCommand } from './bench';
import { evalCommand } from './eval';
import { inspectCommand } from './inspect';
import { mergeCommand } from './merge';
import { scoreCommand } from './score';
import { tensorsCommand } from './tensors';
import { workerCommand } from './worker';

const pkg = require('../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('pgn')
    .description('Pixel-wise gradient uncertainty: where a segmentation network should not be trusted')
    .version(pkg.version)
    .showHelpAfterError();
  program.addCommand(inspectCommand());
  program.addCommand(scoreCommand());
  program.addCommand(mergeCommand());
  program.addCommand(evalCommand());
  program.addCommand(benchCommand());
  program.addCommand(tensorsCommand());
  program.addCommand(workerCommand());
  return program;
}

/**
 * SIGINT / SIGTERM remove the temporaries of the writes in flight, then end the process by the
 * same signal (exit status 128 + n, as without a handler), unless a subcommand handles it. Journal lines are written whole as they
 * come, so there is nothing else to save.
 */
function cleanUpOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      removeLiveTemporaries();
      // A subcommand with its own handler (pgn worker: finish the jobs in hand) ends the process itself.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
}

async function main(): Promise<void> {
  cleanUpOnSignals();
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
