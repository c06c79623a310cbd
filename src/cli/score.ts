/** `pgn score`: images (files, folders, globs) through a model, streamed; one NDJSON line per image. */
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ensureDir, openAtomic } from '../common/files';
import { expandInputs } from '../run/inputs';
import { writeNpy } from '../common/npy';
import { scoreStream } from '../run/pipeline';
import { writePredictionPng } from '../image/render';
import { loadModelCard } from '../model/model-card';
import { Backend, DEFAULT_P, scoreLabel } from '../scoring/scores';
import { DEMO_MODEL, ImageResult, Scorer } from '../run/scorer';
import { writeLabelPng, writeOverlayPng } from '../image/segment-images';
import { ExecutionProvider } from '../model/session';
import { collect, LIMIT_PIXELS_HELP, parseCount, parsePixelLimit } from './options';
import { progress } from './progress';

interface ScoreCommandOptions {
  model?: string;
  score?: string[];
  out?: string;
  npy: boolean;
  png: boolean;
  overlay: boolean;
  labelsPng?: boolean;
  segments: boolean;
  threshold?: number;
  minArea: number;
  ndjson?: string;
  batch: number;
  prefetch?: number;
  threads?: number;
  intraOpThreads?: number;
  limitInputPixels?: number;
  backend?: Backend;
  ep?: ExecutionProvider;
}

function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || Number.isNaN(n)) throw new InvalidArgumentError('expected a number');
  return n;
}

export function scoreCommand(): Command {
  return new Command('score')
    .description('score images with a segmentation model: OoD maps, prediction, segments; one NDJSON line per image')
    .argument('<inputs...>', 'image files, folders or globs')
    .option('--model <path>', 'model directory, model card or .onnx file (default: the embedded demo model)')
    .option('--score <spec>', `score to compute, repeatable (default: the card's recommended score, else pgn-oh:p=${DEFAULT_P})`, collect)
    .option('--out <dir>', 'write per image <stem>.<score>.npy, <stem>.prediction.png, <stem>.overlay.png here')
    .option('--no-npy', 'do not write the score maps')
    .option('--no-png', 'do not write the prediction PNG')
    .option('--no-overlay', 'do not write the heatmap overlay PNG')
    .option('--labels-png', 'also write <stem>.segments.png, the segment labels as 16-bit PNG')
    .option('--no-segments', 'no OoD segments (thresholding and connected components)')
    .option('--threshold <t>', "segments: score > t is OoD (default: the model card's recommended threshold)", parseNumber)
    .option('--min-area <px>', 'segments: drop those smaller than this', parseCount, 100)
    .option('--ndjson <file>', 'write the NDJSON lines to a file instead of stdout')
    .option('--batch <n>', 'images per inference call', parseCount, 1)
    .option('--prefetch <n>', 'images decoded ahead (default 2 × batch)', parseCount)
    .option('--threads <n>', 'native threads (0 = all cores)', parseCount)
    .option('--intra-op-threads <n>', 'ONNX Runtime intra-op threads', parseCount)
    .option('--limit-input-pixels <n>', LIMIT_PIXELS_HELP, parsePixelLimit)
    .option('--backend <name>', 'native backend: cpu or cuda', 'cpu')
    .option('--ep <name>', 'ONNX Runtime execution provider: cpu or cuda (default: cuda if available)')
    .action(async (inputs: string[], opts: ScoreCommandOptions) => {
      const failed = await runScore(inputs, opts);
      if (failed > 0) process.exitCode = 1;
    });
}

function summary(data: Float32Array): { min: number; max: number; mean: number } {
  let min = Infinity, max = -Infinity, sum = 0;
  for (const v of data) {
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  return { min, max, mean: sum / data.length };
}

/**
 * The 1st–99th percentile of a map (on a strided sample): PGN maps have rare, very high values at
 * class boundaries that would leave the rest of a min–max heatmap dark.
 */
function robustRange(data: Float32Array): [number, number] {
  const step = Math.max(1, Math.floor(data.length / 20000));
  const sample = Float32Array.from({ length: Math.floor(data.length / step) }, (_, i) => data[i * step]).sort();
  const lo = sample[Math.floor(0.01 * (sample.length - 1))];
  const hi = sample[Math.floor(0.99 * (sample.length - 1))];
  return hi > lo ? [lo, hi] : [lo, lo + 1];
}

async function writeOutputs(result: ImageResult, scorer: Scorer, opts: ScoreCommandOptions): Promise<string[]> {
  if (!opts.out) return [];
  const stem = path.join(opts.out, path.parse(result.source).name);
  const written: string[] = [];
  const dims: [number, number, number] = [1, result.height, result.width];
  if (opts.npy)
    for (const map of result.maps) {
      await writeNpy(`${stem}.${map.name}.npy`, map.data, [result.height, result.width]);
      written.push(`${stem}.${map.name}.npy`);
    }
  if (opts.png && result.prediction) {
    await writePredictionPng(`${stem}.prediction.png`, result.prediction, result.width, result.height, scorer.session.card.classes.map((c) => c.color));
    written.push(`${stem}.prediction.png`);
  }
  const labels = result.segmentLabels ? { data: result.segmentLabels, dims } : null;
  if (opts.overlay) {
    await writeOverlayPng(`${stem}.overlay.png`, result.source, { data: result.maps[0].data, dims }, labels, { range: robustRange(result.maps[0].data) });
    written.push(`${stem}.overlay.png`);
  }
  if (opts.labelsPng && labels) {
    await writeLabelPng(`${stem}.segments.png`, labels);
    written.push(`${stem}.segments.png`);
  }
  return written;
}

/**
 * Segments need a threshold: --threshold, or the card's recommendation for the first score. A model
 * without either is still scored (maps, prediction), with a note that segments were skipped.
 */
async function segmentsWanted(opts: ScoreCommandOptions): Promise<boolean> {
  if (!opts.segments) return false;
  if (opts.threshold !== undefined) return true;
  const { card } = await loadModelCard(opts.model ?? DEMO_MODEL);
  const first = opts.score?.[0] ?? card.recommended?.score ?? `pgn-oh:p=${DEFAULT_P}`;
  if (card.recommended && scoreLabel(card.recommended.score) === scoreLabel(first)) return true;
  process.stderr.write(`pgn score: no segments: the model card recommends no threshold for ${scoreLabel(first)}; give --threshold to get them\n`);
  return false;
}

async function runScore(patterns: string[], opts: ScoreCommandOptions): Promise<number> {
  const files = await expandInputs(patterns);
  if (opts.out) await ensureDir(opts.out);
  // --ndjson goes to a temporary sibling, renamed when the run ends: never a half-written file.
  const ndjson = opts.ndjson ? await openAtomic(opts.ndjson) : undefined;
  try {
    const failed = await scoreAll(files, opts, ndjson ?? process.stdout);
    await ndjson?.commit();
    return failed;
  } finally {
    await ndjson?.abort(); // a no-op once committed
  }
}

async function scoreAll(files: string[], opts: ScoreCommandOptions, out: { write(line: string): unknown }): Promise<number> {
  const scorer = await Scorer.create({
    model: opts.model,
    scores: opts.score,
    threads: opts.threads,
    backend: opts.backend,
    intraOpThreads: opts.intraOpThreads,
    limitInputPixels: opts.limitInputPixels,
    executionProviders: opts.ep ? [opts.ep] : undefined,
    segments: (await segmentsWanted(opts)) ? { threshold: opts.threshold, minArea: opts.minArea } : undefined,
  });
  const bar = process.stdout.isTTY && !opts.ndjson ? undefined : progress('pgn score');
  let failed = 0;
  let done = 0;
  try {
    for await (const item of scoreStream(scorer, files, { batchSize: opts.batch, prefetch: opts.prefetch })) {
      let record: object;
      try {
        if (item.error) throw item.error;
        const r = item.result;
        const outputs = await writeOutputs(r, scorer, opts);
        const scores = Object.fromEntries(r.maps.map((m) => [m.name, summary(m.data)]));
        record = { file: r.source, width: r.width, height: r.height, scores, segments: r.segments, outputs, timings: r.timings };
      } catch (err) {
        const e = err as Error & { code?: string };
        if (!e.code) throw err;
        failed++;
        record = { file: item.source, error: { code: e.code, message: e.message } };
      }
      out.write(`${JSON.stringify(record)}\n`);
      bar?.update(++done, files.length, 'images');
    }
  } finally {
    bar?.stop();
    await scorer.dispose();
  }
  return failed;
}
