/**
 * `pgn serve`: the scorer behind HTTP (src/serve/). Prints `listening on http://HOST:PORT` once the
 * model is loaded and the port bound; on SIGTERM or SIGINT it stops accepting, finishes the
 * requests in flight, releases the model and exits 0 (a second signal exits at once, 1).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { Scorer } from '../run/scorer';
import { DEFAULT_P } from '../scoring/scores';
import { buildServer, DEFAULT_MAX_BODY } from '../serve/server';
import { DEFAULT_WORKER_NICE, lowerWorkerThreads } from '../serve/thread-priority';
import { collect, parseCount, parseNumber, ScorerFlags, scorerOptions } from './options';

interface ServeCommandOptions extends ScorerFlags {
  host: string;
  port: number;
  maxBody: number;
  maxInFlight?: number;
  maxQueue: number;
  maxBatch: number;
  maxDelayMs: number;
  timeout?: number;
  workerNice: number;
}

/** Bytes, with an optional k / m suffix (binary: 1k = 1024). */
function parseBytes(value: string): number {
  const m = /^(\d+)([km]?)b?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError('expected a size in bytes, e.g. 33554432, 512k or 32m');
  const n = Number(m[1]) * { '': 1, k: 1024, m: 1024 * 1024 }[m[2]!.toLowerCase() as '' | 'k' | 'm'];
  if (n < 1) throw new InvalidArgumentError('expected a positive size');
  return n;
}

function parsePositive(value: string): number {
  const n = parseCount(value);
  if (n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function parseNice(value: string): number {
  const n = parseCount(value);
  if (n > 19) throw new InvalidArgumentError('expected a nice level from 0 to 19');
  return n;
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('serve the scorer over HTTP: POST /v1/score, /healthz, /readyz, /metrics, /openapi.json')
    .option('--model <path>', 'model directory, model card or .onnx file (default: the embedded demo model)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port (0 = any free port)', parseCount, 8080)
    .option('--max-body <bytes>', 'largest request body (413 beyond), e.g. 32m', parseBytes, DEFAULT_MAX_BODY)
    .option('--max-in-flight <n>', 'images admitted at once (default 2 × --max-batch)', parsePositive)
    .option('--max-queue <n>', 'requests waiting for admission; more get 503 with Retry-After', parsePositive, 64)
    .option('--max-batch <n>', 'images per inference batch (dynamic batching)', parsePositive, 1)
    .option('--max-delay-ms <ms>', 'how long an image waits for its batch to fill', parseNumber, 0)
    .option('--timeout <ms>', 'time limit of a scoring request, queue included (408 beyond)', parsePositive)
    .option('--score <spec>', `score to compute, repeatable (default: the card's recommended score, else pgn-oh:p=${DEFAULT_P})`, collect)
    .option('--no-segments', 'no OoD segments unless a request gives a threshold')
    .option('--threshold <t>', "segments: score > t is OoD (default: the model card's recommended threshold)", parseNumber)
    .option('--min-area <px>', 'segments: drop those smaller than this', parseCount, 100)
    .option('--threads <n>', 'native threads (0 = all cores)', parseCount)
    .option('--intra-op-threads <n>', 'ONNX Runtime intra-op threads', parseCount)
    .option('--backend <name>', 'native backend: cpu or cuda', 'cpu')
    .option('--ep <name>', 'ONNX Runtime execution provider: cpu or cuda (default: cuda if available)')
    .option('--worker-nice <n>', "nice levels below the event loop at which the server's other threads run (Linux; 0 = the same)", parseNice, DEFAULT_WORKER_NICE)
    .action((opts: ServeCommandOptions) => serve(opts));
}

/**
 * V8 takes the old generation's first allocation limit from --initial-old-space-size, and only at
 * startup: NODE_OPTIONS refuses the flag and v8.setFlagsFromString comes too late. Under the
 * default, a server scoring 2 MP images ran a full collection for nearly every image (each image in
 * flight holds 30-40 MB of ArrayBuffers), every one a pause of the event loop; under 128 MB, ESPNetv2
 * at concurrency 8 ran 19 instead of 71 for 65 images, /healthz p99 went from 20-22 to 14-15 ms and
 * the demo model's from 30 to 17 (docs/serving.md). So `pgn serve` starts itself again under that
 * flag, unless it was given. This process then only relays SIGTERM and SIGINT and the exit status;
 * the server is in a process group of its own (a terminal's Ctrl-C reaches it once, through here)
 * and stops as on SIGTERM when this process is gone (its IPC channel closes).
 */
const HEAP_FLAG = '--initial-old-space-size';
const HEAP_MB = 128;

function relaunchUnderHeapFlag(): boolean {
  // Given the flag, or under a debugger (--inspect*: the server itself is what is being debugged,
  // and a second process would want the same inspector port): run here.
  if (process.execArgv.some((a) => a.startsWith(HEAP_FLAG) || a.startsWith('--inspect'))) return false;
  const child = spawn(process.execPath, [`${HEAP_FLAG}=${HEAP_MB}`, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: process.platform !== 'win32',
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => child.kill(signal));
  child.on('error', (err) => {
    process.stderr.write(`pgn serve: cannot start the server process: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  return true;
}

async function serve(opts: ServeCommandOptions): Promise<void> {
  if (relaunchUnderHeapFlag()) return;
  lowerWorkerThreads(opts.workerNice);
  let stop: ((why: string) => Promise<void>) | undefined; // once listening
  if (process.send) {
    process.channel?.unref(); // the channel alone must not keep the server alive
    process.once('disconnect', () => void (stop ? stop('the launching process exited') : process.exit(1)));
  }
  const options = await scorerOptions(opts, 'pgn serve');
  // Only an overlay draws the segments' label image, and it asks for one (the prediction stays: a
  // request's own threshold segments again, and the segments' classes come from it).
  const scorer = await Scorer.create({
    ...options,
    segments: options.segments && { ...options.segments, labels: false },
    maxInFlight: opts.maxInFlight,
    maxQueue: opts.maxQueue,
    maxBatch: opts.maxBatch,
    maxDelayMs: opts.maxDelayMs,
    reuseArrays: true, // each result is released after its reply
  });
  const app = buildServer(scorer, { maxBody: opts.maxBody, timeoutMs: opts.timeout });
  let stopping = false;
  const stopServer = async (signal: string) => {
    if (stopping) process.exit(1); // a second signal: no more waiting
    stopping = true;
    process.stderr.write(`pgn serve: ${signal}: finishing the requests in flight\n`);
    app.draining = true;
    await app.close(); // stops accepting, waits for the requests in flight
    await scorer.dispose();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stopServer('SIGTERM'));
  process.on('SIGINT', () => void stopServer('SIGINT'));
  const address = await app.listen({ host: opts.host, port: opts.port });
  stop = stopServer;
  process.stdout.write(`listening on ${address}\n`);
}
