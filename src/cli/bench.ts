/**
 * `pgn bench`: per-stage latency of the whole pipeline on one model (decode, preprocess, inference,
 * scores, upsampling, segments) as p50/p95/p99/mean, end-to-end throughput, and the cost of the
 * gradient scores relative to inference — the paper's "negligible overhead" claim, measured.
 */
import { Command } from 'commander';
import fs from 'node:fs';
import sharp from 'sharp';
import { performance } from 'node:perf_hooks';
import { ImageError } from '../common/errors';
import { Scorer, StageTimings } from '../run/scorer';
import { scoreStream } from '../run/pipeline';
import { Backend, DEFAULT_P } from '../scoring/scores';
import { ExecutionProvider } from '../model/session';
import { collect, parseCount, parseIntraOpThreads, parseSize } from './options';

interface BenchOptions {
  model?: string;
  size: [number, number];
  /** How the synthetic images are encoded. */
  format?: 'png' | 'jpeg';
  /** Image files to use instead of synthetic images (read into memory first, used in turn). */
  images?: string[];
  batch: number;
  /** Stream the images through scoreStream with this many decoded ahead (decode overlaps the rest). */
  prefetch?: number;
  iterations: number;
  warmup: number;
  score?: string[];
  segments: boolean;
  /** Also build the segments' label image (pgn score does for overlays and label PNGs). */
  labels?: boolean;
  threads?: number;
  intraOpThreads?: number;
  backend?: Backend;
  ep?: ExecutionProvider;
  json?: boolean;
}

export interface StageStats {
  p50: number;
  p95: number;
  p99: number;
  mean: number;
}

export interface BenchReport {
  model: string;
  /** The synthetic images' size, or the first image file's. */
  size: [number, number];
  /** How many image files were used in turn (absent: synthetic images). */
  images?: number;
  batch: number;
  /** Images decoded ahead through scoreStream; absent: batches scored one after the other. */
  prefetch?: number;
  iterations: number;
  scores: string[];
  /** What the segments stage built: nothing (--no-segments), the segments, or also their label image. */
  segments: 'off' | 'segments' | 'segments and label image';
  /** ms per image, per stage (total: wall clock per image; streamed, between batches' results). */
  stages: Record<keyof StageTimings | 'total', StageStats>;
  imagesPerSecond: number;
  /** The gradient scores' own cost, (scores + their upsampling) / inference, in percent, from the means. */
  scoringOverheadPercent: number;
}

function stats(values: number[]): StageStats {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

/** A deterministic street-ish test image (smooth gradients and noise), encoded like a real input. */
async function syntheticImage(height: number, width: number, seed: number, format: 'png' | 'jpeg'): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  let x = seed;
  for (let i = 0; i < width * height; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const row = Math.floor(i / width);
    raw[3 * i] = (row * 255) / height;
    raw[3 * i + 1] = ((i % width) * 255) / width;
    raw[3 * i + 2] = x >>> 24;
  }
  const image = sharp(raw, { raw: { width, height, channels: 3 } });
  return (format === 'jpeg' ? image.jpeg({ quality: 90 }) : image.png({ compressionLevel: 1 })).toBuffer();
}

/** The files' bytes, so that the bench times decoding, not reading the disk. */
function readImages(files: string[]): Promise<Buffer[]> {
  if (files.length === 0) throw new RangeError('--images needs at least one file');
  return Promise.all(files.map((f) => fs.promises.readFile(f).catch((err: NodeJS.ErrnoException) => {
    throw new ImageError(`${f}: cannot read (${err.code ?? err.message})`);
  })));
}

async function imageSize(image: Buffer): Promise<[number, number]> {
  const { height, width } = await sharp(image).metadata().catch((err: Error) => {
    throw new ImageError(`the first --images file cannot be decoded (${err.message})`);
  });
  return [height ?? 0, width ?? 0];
}

interface Measured {
  samples: StageTimings[];
  /** ms per image of each measured batch. */
  totals: number[];
  /** ms from the start of the first measured batch (or the last warm-up result) to the last result. */
  elapsed: number;
}

/** scoreBatch over the same images, batch after batch: each stage's latency alone. */
async function oneAfterAnother(scorer: Scorer, images: Buffer[], opts: BenchOptions): Promise<Measured> {
  const samples: StageTimings[] = [];
  const totals: number[] = [];
  let measured = 0;
  for (let it = 0; it < opts.warmup + opts.iterations; it++) {
    const batch = Array.from({ length: opts.batch }, (_, j) => images[(it * opts.batch + j) % images.length]!);
    const start = performance.now();
    const results = await scorer.scoreBatch(batch);
    if (it < opts.warmup) continue;
    if (measured === 0) measured = start;
    totals.push((performance.now() - start) / batch.length);
    samples.push(results[0].timings);
    for (const r of results) scorer.release(r); // as a server or pgn score does with a result it is done with
  }
  return { samples, totals, elapsed: performance.now() - measured };
}

/** The images through scoreStream, the next ones decoded while a batch is scored: throughput. */
async function streamed(scorer: Scorer, images: Buffer[], opts: BenchOptions, prefetch: number): Promise<Measured> {
  const count = (opts.warmup + opts.iterations) * opts.batch;
  const inputs = Array.from({ length: count }, (_, i) => images[i % images.length]);
  const samples: StageTimings[] = [];
  const totals: number[] = [];
  let last = performance.now();
  let measured = 0;
  for await (const item of scoreStream(scorer, inputs, { batchSize: opts.batch, prefetch })) {
    if (item.error) throw item.error;
    scorer.release(item.result); // its timings are all that is read
    if (item.index % opts.batch !== opts.batch - 1) continue; // one sample per batch, at its last result
    const now = performance.now();
    if (item.index >= opts.warmup * opts.batch) {
      if (measured === 0) measured = last;
      samples.push(item.result.timings);
      totals.push((now - last) / opts.batch);
    }
    last = now;
  }
  return { samples, totals, elapsed: last - measured };
}

export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  const scorer = await Scorer.create({
    model: opts.model,
    scores: opts.score,
    threads: opts.threads,
    intraOpThreads: opts.intraOpThreads,
    backend: opts.backend,
    executionProviders: opts.ep ? [opts.ep] : undefined,
    segments: opts.segments ? { minArea: 50, labels: !!opts.labels } : undefined,
    reuseArrays: true, // as pgn score and pgn serve, which release each result when done with it
  });
  try {
    const images = opts.images ? await readImages(opts.images) : await Promise.all(Array.from({ length: opts.batch }, (_, i) => syntheticImage(opts.size[0], opts.size[1], i + 1, opts.format ?? 'png')));
    const size: [number, number] = opts.images ? await imageSize(images[0]!) : opts.size;
    const { samples, totals, elapsed } = opts.prefetch === undefined ? await oneAfterAnother(scorer, images, opts) : await streamed(scorer, images, opts, opts.prefetch);
    const keys: (keyof StageTimings)[] = ['decode', 'preprocess', 'inference', 'scores', 'upsample', 'prediction', 'segments'];
    const stages = Object.fromEntries(keys.map((k) => [k, stats(samples.map((s) => s[k]))])) as BenchReport['stages'];
    stages.total = stats(totals);
    return {
      model: scorer.session.modelPath,
      size,
      ...(opts.images ? { images: opts.images.length } : {}),
      batch: opts.batch,
      ...(opts.prefetch !== undefined ? { prefetch: opts.prefetch } : {}),
      iterations: opts.iterations,
      scores: scorer.specs.map((s) => `${s.kind}${s.p !== undefined ? `:p=${s.p}` : ''}`),
      segments: !opts.segments ? 'off' : opts.labels ? 'segments and label image' : 'segments',
      stages,
      imagesPerSecond: (opts.iterations * opts.batch) / (elapsed / 1000),
      scoringOverheadPercent: (100 * (stages.scores.mean + stages.upsample.mean)) / stages.inference.mean,
    };
  } finally {
    await scorer.dispose();
  }
}

export function benchTable(r: BenchReport): string {
  const lines = [
    `model ${r.model}, ${r.images ? `${r.images} image files (the first ${r.size[0]}×${r.size[1]})` : `image ${r.size[0]}×${r.size[1]}`}, batch ${r.batch}${r.prefetch !== undefined ? `, streamed with prefetch ${r.prefetch}` : ''}, ${r.iterations} iterations, scores ${r.scores.join(' ')}, segments: ${r.segments}`,
    '',
    '| stage (ms per image) | p50 | p95 | p99 | mean |',
    '|---|---:|---:|---:|---:|',
    ...Object.entries(r.stages).map(([k, s]) => `| ${k} | ${s.p50.toFixed(2)} | ${s.p95.toFixed(2)} | ${s.p99.toFixed(2)} | ${s.mean.toFixed(2)} |`),
    '',
    `throughput: ${r.imagesPerSecond.toFixed(2)} images/s end to end`,
    `gradient scoring overhead (scores + their upsampling) / inference: ${r.scoringOverheadPercent.toFixed(1)} %`,
  ];
  return lines.join('\n');
}

export function benchCommand(): Command {
  return new Command('bench')
    .description('per-stage latency (p50/p95/p99/mean), throughput and the scoring overhead relative to inference')
    .option('--model <path>', 'model directory, card or .onnx (default: the embedded demo model)')
    .option('--size <HxW>', 'input image size', parseSize, [1024, 2048] as [number, number])
    .option('--format <png|jpeg>', 'encoding of the synthetic images (JPEG at quality 90)', 'png')
    .option('--images <files...>', 'image files to use in turn instead of synthetic images (read into memory first)')
    .option('--batch <n>', 'images per inference call', parseCount, 1)
    .option('--prefetch <n>', 'stream the images (pgn score\'s pipeline), decoding n ahead while a batch is scored', parseCount)
    .option('--iterations <k>', 'measured iterations', parseCount, 20)
    .option('--warmup <k>', 'iterations run first and not measured', parseCount, 2)
    .option('--score <spec>', `score to compute, repeatable (default: the card's recommended score, else pgn-oh:p=${DEFAULT_P})`, collect)
    .option('--no-segments', 'skip thresholding and connected components')
    .option('--labels', 'also build the segments\' label image, as pgn score does when it writes overlays or label PNGs')
    .option('--threads <n>', 'native threads (0 = all cores)', parseCount)
    .option('--intra-op-threads <n>', 'ONNX Runtime intra-op threads (1 to 4 per core, at least 64 allowed)', parseIntraOpThreads)
    .option('--backend <name>', 'native backend: cpu or cuda', 'cpu')
    .option('--ep <name>', 'ONNX Runtime execution provider: cpu or cuda')
    .option('--json', 'print the report as JSON')
    .action(async (opts: BenchOptions) => {
      if (opts.iterations < 1 || opts.batch < 1) throw new RangeError('--iterations and --batch must be >= 1');
      if (opts.format !== 'png' && opts.format !== 'jpeg') throw new RangeError(`--format must be png or jpeg, got ${String(opts.format)}`);
      if (opts.prefetch !== undefined && opts.prefetch < opts.batch) throw new RangeError(`--prefetch must be >= --batch (${opts.batch})`);
      const report = await runBench(opts);
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${benchTable(report)}\n`);
    });
}
