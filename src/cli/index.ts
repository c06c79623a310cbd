#!/usr/bin/env node
/**
 * src/cli/ owns the `pgn` command line: this file builds the program, each subcommand lives in
 * src/cli/<name>.ts, and the option parsers and progress output they share beside them.
 */
// First: it notes Node.js's own threads before anything starts more (pgn serve keeps them at its priority).
import '../serve/thread-priority';
import { Command } from 'commander';
import { loadAddon } from '../addon';
import { PgnError } from '../common/errors';
import { stopInferenceThreads } from '../model/inference-thread';
import { removeLiveTemporaries } from '../common/files';
import { benchCommand } from './bench';
import { calibrateCommand } from './calibrate';
import { cardCommand } from './card';
import { evalCommand } from './eval';
import { inspectCommand } from './inspect';
import { mergeCommand } from './merge';
import { scoreCommand } from './score';
import { serveCommand } from './serve';
import { tensorsCommand } from './tensors';
import { workerCommand } from './worker';

const pkg = require('../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('pgn')
    .description('Pixel-wise gradient uncertainty: where a segmentation network should not be trusted')
    .version(pkg.version)
    .showHelpAfterError()
    // The addon is loaded before any command runs, so a missing or broken build is one clear line.
    .hook('preAction', () => void loadAddon());
  program.addCommand(inspectCommand());
  program.addCommand(cardCommand());
  program.addCommand(calibrateCommand());
  program.addCommand(scoreCommand());
  program.addCommand(mergeCommand());
  program.addCommand(evalCommand());
  program.addCommand(serveCommand());
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
  // A closed pipe (`pgn score … | head`) ends the run quietly, as Unix tools do; any other failure
  // to write the results (a full disk, an I/O error) ends it as an error, without a stack trace.
  // The inference threads are stopped before the exit (exiting under a running ONNX Runtime can abort).
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') process.stderr.write(`pgn: ${err.code ?? err.name}: cannot write to stdout (${err.message})\n`);
    const code = err.code === 'EPIPE' ? (process.exitCode ?? 0) : 2;
    void stopInferenceThreads().finally(() => process.exit(code));
  });
  // Progress and messages that cannot be written (stderr on a full disk) are dropped: the results
  // and the exit code still tell how the run went.
  process.stderr.on('error', () => undefined);
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
