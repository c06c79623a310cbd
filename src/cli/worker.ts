/** `pgn worker`: scores the images of jobs from a BullMQ queue on Redis; each job returns a `pgn score` record. */
import { Command } from 'commander';
import { startWorker } from '../worker/worker';
import { collect, parseCount, parseNumber } from './options';

interface WorkerCommandOptions {
  redis: string;
  queue: string;
  concurrency: number;
  lockDuration: number;
  model?: string;
  score?: string[];
  threshold?: number;
  minArea: number;
  segments: boolean;
}

export function workerCommand(): Command {
  return new Command('worker')
    .description('consume scoring jobs from a BullMQ queue on Redis: job data { image: path | file: URL | { base64 }, outputs? }, result = a pgn score line')
    .option('--redis <url>', 'Redis to connect to', 'redis://127.0.0.1:6379')
    .option('--queue <name>', 'the queue\'s name', 'pgn')
    .option('--concurrency <n>', 'jobs at once', parseCount, 1)
    .option('--lock-duration <ms>', 'a job of a worker that died goes to another worker after about this long', parseCount, 30000)
    .option('--model <path>', 'model directory, model card or .onnx file (default: the embedded demo model)')
    .option('--score <spec>', 'score to compute, repeatable (default: the card\'s recommended score)', collect)
    .option('--threshold <t>', 'segments: score > t is OoD (default: the card\'s recommended threshold)', parseNumber)
    .option('--min-area <px>', 'segments: drop those smaller than this', parseCount, 100)
    .option('--no-segments', 'no OoD segments')
    .action(async (opts: WorkerCommandOptions) => {
      if (opts.concurrency < 1) throw new RangeError('--concurrency must be at least 1');
      const { worker, close } = await startWorker({
        redis: opts.redis,
        queue: opts.queue,
        concurrency: opts.concurrency,
        lockDuration: opts.lockDuration,
        model: opts.model,
        scores: opts.score,
        segments: opts.segments ? { threshold: opts.threshold, minArea: opts.minArea } : undefined,
      });
      worker.on('failed', (job, err) => process.stderr.write(`pgn worker: job ${job?.id} failed: ${err.message}\n`));
      worker.on('error', (err) => process.stderr.write(`pgn worker: ${err.message}\n`));
      await worker.waitUntilReady();
      process.stderr.write(`pgn worker: consuming queue "${opts.queue}" (concurrency ${opts.concurrency})\n`);
      // SIGTERM/SIGINT: finish the jobs in hand, then exit (a SIGKILL loses nothing either: see --lock-duration).
      await new Promise<void>((resolve) => {
        for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => resolve());
      });
      await close();
    });
}
