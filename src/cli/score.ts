/** `pgn score`: images (files, folders, globs) through a model, streamed; one NDJSON line per image. */
import path from 'node:path';
import { Command } from 'commander';
import { ensureDir, openAtomic } from '../common/files';
import { commandLineInputs } from '../run/inputs';
import { writeNpy } from '../common/npy';
import { scoreStream } from '../run/pipeline';
import { writePredictionPng } from '../image/render';
import { Backend, DEFAULT_P } from '../scoring/scores';
import { ImageResult, Scorer } from '../run/scorer';
import { mapSummary } from '../run/summary';
import { robustRange, writeLabelPng, writeOverlayPng } from '../image/segment-images';
import { ExecutionProvider } from '../model/session';
import { collect, parseCount, parseIntraOpThreads, parseNumber, scorerOptions } from './options';
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
  filesFrom?: string;
  batch: number;
  prefetch?: number;
  threads?: number;
  intraOpThreads?: number;
  backend?: Backend;
  ep?: ExecutionProvider;
}

export function scoreCommand(): Command {
  return new Command('score')
    .description('score images with a segmentation model: OoD maps, prediction, segments; one NDJSON line per image')
    .argument('[inputs...]', 'image files, folders or globs')
    .option('--files-from <file>', 'also read inputs from this file, one per line (- for stdin): for lists too long for a command line')
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
    .option('--intra-op-threads <n>', 'ONNX Runtime intra-op threads (1 to 4 per core, at least 64 allowed)', parseIntraOpThreads)
    .option('--backend <name>', 'native backend: cpu or cuda', 'cpu')
    .option('--ep <name>', 'ONNX Runtime execution provider: cpu or cuda (default: cuda if available)')
    .action(async (inputs: string[], opts: ScoreCommandOptions) => {
      const failed = await runScore(inputs, opts);
      if (failed > 0) process.exitCode = 1;
    });
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

async function runScore(patterns: string[], opts: ScoreCommandOptions): Promise<number> {
  const files = await commandLineInputs(patterns, opts.filesFrom);
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
  const scorer = await Scorer.create(await scorerOptions(opts, 'pgn score'));
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
        const scores = Object.fromEntries(r.maps.map((m) => [m.name, mapSummary(m.data)]));
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
