/**
 * `pgn serve`: the scorer behind HTTP (src/serve/). Prints `listening on http://HOST:PORT` once the
 * model is loaded and the port bound; on SIGTERM or SIGINT it stops accepting, finishes the
 * requests in flight, releases the model and exits 0 (a second signal exits at once, 1).
 */
import { Command, InvalidArgumentError } from 'commander';
import { Scorer } from '../run/scorer';
import { DEFAULT_P } from '../scoring/scores';
import { buildServer, DEFAULT_MAX_BODY } from '../serve/server';
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
    .action((opts: ServeCommandOptions) => serve(opts));
}

async function serve(opts: ServeCommandOptions): Promise<void> {
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
  });
  const app = buildServer(scorer, { maxBody: opts.maxBody, timeoutMs: opts.timeout });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) process.exit(1); // a second signal: no more waiting
    stopping = true;
    process.stderr.write(`pgn serve: ${signal}: finishing the requests in flight\n`);
    app.draining = true;
    await app.close(); // stops accepting, waits for the requests in flight
    await scorer.dispose();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  const address = await app.listen({ host: opts.host, port: opts.port });
  process.stdout.write(`listening on ${address}\n`);
}
