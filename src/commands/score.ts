/** `pgn score`: images (files, folders, globs) through a model; outputs per image, NDJSON lines. */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command } from 'commander';
import { ensureDir } from '../files';
import { expandInputs } from '../inputs';
import { writeNpy } from '../npy';
import { writePredictionPng } from '../render';
import { Backend, DEFAULT_P } from '../scores';
import { ImageResult, Scorer } from '../scorer';
import { ExecutionProvider } from '../session';
import { DecodedImage } from '../preprocess';
import { PgnError } from '../errors';
import { collect, parseCount } from './options';

interface ScoreCommandOptions {
  model?: string;
  score?: string[];
  out?: string;
  npy: boolean;
  png: boolean;
  batch: number;
  threads?: number;
  backend?: Backend;
  ep?: ExecutionProvider;
}

export function scoreCommand(): Command {
  return new Command('score')
    .description('score images with a segmentation model: per-pixel OoD maps, prediction and one NDJSON line per image')
    .argument('<inputs...>', 'image files, folders or globs')
    .option('--model <path>', 'model directory, model card or .onnx file (default: the embedded demo model)')
    .option('--score <spec>', `score to compute, repeatable (default: the card's recommended score, else pgn-oh:p=${DEFAULT_P})`, collect)
    .option('--out <dir>', 'write <stem>.<score>.npy (float32 [H,W]) and <stem>.prediction.png here')
    .option('--no-npy', 'do not write the score maps')
    .option('--no-png', 'do not write the prediction PNG')
    .option('--batch <n>', 'images per inference call', parseCount, 1)
    .option('--threads <n>', 'native threads (0 = all cores)', parseCount)
    .option('--backend <name>', 'native scores backend: cpu or cuda', 'cpu')
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

async function writeOutputs(result: ImageResult, scorer: Scorer, opts: ScoreCommandOptions): Promise<string[]> {
  if (!opts.out) return [];
  const stem = path.join(opts.out, path.parse(result.source).name);
  const written: string[] = [];
  if (opts.npy)
    for (const map of result.maps) {
      await writeNpy(`${stem}.${map.name}.npy`, map.data, [result.height, result.width]);
      written.push(`${stem}.${map.name}.npy`);
    }
  if (opts.png && result.prediction) {
    const colours = scorer.session.card.classes.map((c) => c.color);
    await writePredictionPng(`${stem}.prediction.png`, result.prediction, result.width, result.height, colours);
    written.push(`${stem}.prediction.png`);
  }
  return written;
}

function line(record: object): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

async function runScore(patterns: string[], opts: ScoreCommandOptions): Promise<number> {
  const files = await expandInputs(patterns);
  if (opts.out) await ensureDir(opts.out);
  const scorer = await Scorer.create({
    model: opts.model,
    scores: opts.score,
    threads: opts.threads,
    backend: opts.backend,
    executionProviders: opts.ep ? [opts.ep] : undefined,
  });
  let failed = 0;
  const fail = (file: string, err: unknown) => {
    if (!(err instanceof PgnError)) throw err;
    failed++;
    line({ file, error: { code: err.code, message: err.message } });
  };
  try {
    const batchSize = Math.max(1, opts.batch);
    for (let i = 0; i < files.length; i += batchSize) {
      // Decode one by one so that a bad file fails alone, then run the good ones as one batch.
      const decoded: { file: string; image: DecodedImage; decode: number }[] = [];
      for (const file of files.slice(i, i + batchSize)) {
        const t0 = performance.now();
        try {
          decoded.push({ file, image: await scorer.decode(file), decode: performance.now() - t0 });
        } catch (err) {
          fail(file, err);
        }
      }
      if (decoded.length === 0) continue;
      const results = await scorer.scoreDecoded(decoded.map((d) => d.image));
      for (const [k, result] of results.entries()) {
        const { file, decode } = decoded[k];
        try {
          const outputs = await writeOutputs({ ...result, source: file }, scorer, opts);
          const scores = Object.fromEntries(result.maps.map((m) => [m.name, summary(m.data)]));
          line({ file, width: result.width, height: result.height, scores, outputs, timings: { ...result.timings, decode } });
        } catch (err) {
          fail(file, err);
        }
      }
    }
  } finally {
    await scorer.dispose();
  }
  return failed;
}
