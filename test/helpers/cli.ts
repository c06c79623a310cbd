/** Runs the built `pgn` command line in a child process and reports how it ended. */
import { execFile } from 'node:child_process';
import path from 'node:path';

export const cli = path.join(__dirname, '..', '..', 'dist', 'cli', 'index.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * `input` is written to the child's stdin (closed either way, so nothing waits on it); `redirect`
 * is a shell redirection of the child's own, e.g. `>/dev/full`.
 */
export function runCli(args: string[], options: { input?: string; timeout?: number; redirect?: string } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const [file, argv] = options.redirect ? ['bash', ['-c', `exec node "$@" ${options.redirect}`, 'bash', cli, ...args]] : ['node', [cli, ...args]];
    const child = execFile(file, argv, { timeout: options.timeout ?? 60000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number; signal?: NodeJS.Signals }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
    child.stdin?.end(options.input ?? '');
  });
}
