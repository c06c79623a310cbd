/** `pgn score`: images (files, folders, globs) through a model, streamed; one NDJSON line per image. */
import { Command } from 'commander';
import { ensureDir, removeStaleTemporaries } from '../common/files';
import { commandLineInputs } from '../run/inputs';
import { scoreStream } from '../run/pipeline';
import { Backend, DEFAULT_P, scoreName } from '../scoring/scores';
import { Scorer } from '../run/scorer';
import { JournalWriter, planJournal } from '../batch/journal';
import { outputStems } from '../batch/output-names';
import { errorRecord, inputIdentity, OutputOptions, outputFiles, resultRecord, ScoreRecord } from '../batch/record';
import { parseShard, selectShard } from '../batch/shards';
import { ExecutionProvider } from '../model/session';
import { collect, LIMIT_PIXELS_HELP, parseCount, parseIntraOpThreads, parseNumber, parsePixelLimit, scorerOptions } from './options';
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
  resume?: boolean;
  shard?: string;
  shards?: number;
  batch: number;
  prefetch?: number;
  threads?: number;
  intraOpThreads?: number;
  limitInputPixels?: number;
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
    .option('--ndjson <file>', 'journal: append each image\'s NDJSON line to this file when it is done (instead of stdout)')
    .option('--resume', 'continue the run of the --ndjson journal: skip the inputs it holds whose file and outputs are unchanged')
    .option('--shard <I/N|auto>', 'score shard I (0-based) of N of the sorted inputs; auto: from the array-job index (Kubernetes, Slurm, AWS Batch)')
    .option('--shards <n>', 'the number of shards, for --shard auto where the engine does not give it', parseCount)
    .option('--batch <n>', 'images per inference call', parseCount, 1)
    .option('--prefetch <n>', 'images decoded ahead (default 2 × batch)', parseCount)
    .option('--threads <n>', 'native threads (0 = all cores)', parseCount)
    .option('--intra-op-threads <n>', 'ONNX Runtime intra-op threads (1 to 4 per core, at least 64 allowed)', parseIntraOpThreads)
    .option('--limit-input-pixels <n>', LIMIT_PIXELS_HELP, parsePixelLimit)
    .option('--backend <name>', 'native backend: cpu or cuda', 'cpu')
    .option('--ep <name>', 'ONNX Runtime execution provider: cpu or cuda (default: cuda if available)')
    .action(async (inputs: string[], opts: ScoreCommandOptions) => {
      const failed = await runScore(inputs, opts);
      if (failed > 0) process.exitCode = 1;
    });
}

/** The inputs of this run: the expanded list, or this shard's part of it; and every input's output stem. */
async function plannedInputs(patterns: string[], opts: ScoreCommandOptions): Promise<{ files: string[]; stems: Map<string, string> }> {
  const all = await commandLineInputs(patterns, opts.filesFrom);
  const stems = outputStems(all); // of the whole list, so that shards name outputs alike
  const files = opts.shard ? selectShard(all, parseShard(opts.shard, opts.shards)) : all;
  return { files, stems };
}

async function runScore(patterns: string[], opts: ScoreCommandOptions): Promise<number> {
  if (opts.resume && !opts.ndjson) throw new RangeError('--resume needs the journal of the run: --ndjson FILE');
  const { files, stems } = await plannedInputs(patterns, opts);
  if (opts.out) await ensureDir(opts.out);
  const plan = opts.ndjson ? await planJournal(opts.ndjson, files, !!opts.resume) : { done: [], todo: files, dropped: 0, foreign: 0 };
  const output = { dir: opts.out, npy: opts.npy, png: opts.png, overlay: opts.overlay, labelsPng: opts.labelsPng };
  const failedBefore = plan.done.filter((r) => r.error).length;
  const failed = plan.todo.length > 0 ? await scoreAll(plan.todo, stems, output, opts) : 0;
  if (opts.ndjson) {
    const resumed = opts.resume ? `, ${plan.done.length} from the journal${plan.dropped ? `, ${plan.dropped} journal line(s) dropped (torn, or input/outputs changed)` : ''}` : '';
    process.stderr.write(`pgn score: ${files.length} inputs: ${files.length - failed - failedBefore} scored, ${failed + failedBefore} failed${resumed}\n`);
  }
  return failed + failedBefore;
}

async function scoreAll(files: string[], stems: Map<string, string>, output: OutputOptions, opts: ScoreCommandOptions): Promise<number> {
  const options = await scorerOptions(opts, 'pgn score');
  // The label image is drawn by the overlay and the label PNG only: not built when neither is written.
  if (options.segments) options.segments.labels = !!output.dir && (output.overlay || !!output.labelsPng);
  // Each result is released once its outputs are written: its arrays serve the next images.
  const scorer = await Scorer.create({ ...options, reuseArrays: true });
  const colors = scorer.session.card.classes.map((c) => c.color);
  // Outputs half-written by a killed run of these inputs (shards writing beside us are left alone).
  const names = scorer.specs.map(scoreName);
  await removeStaleTemporaries(files.flatMap((f) => outputFiles(stems.get(f)!, names, output, true)));
  const journal = opts.ndjson ? await JournalWriter.open(opts.ndjson, opts.batch) : undefined;
  const bar = process.stdout.isTTY && !opts.ndjson ? undefined : progress('pgn score');
  let failed = 0;
  let done = 0;
  try {
    for await (const item of scoreStream(scorer, files, { batchSize: opts.batch, prefetch: opts.prefetch })) {
      let record: ScoreRecord;
      try {
        if (item.error) throw item.error;
        record = await resultRecord(item.result, stems.get(item.source)!, output, colors);
        scorer.release(item.result); // its outputs are written: the maps go back now
      } catch (err) {
        failed++;
        record = errorRecord(item.source, err);
      }
      const { file, ...rest } = record; // the input's identity next to its name, for --resume
      const input = await inputIdentity(file);
      if (input) record = { file, input, ...rest };
      if (journal) await journal.append(record);
      else process.stdout.write(`${JSON.stringify(record)}\n`);
      bar?.update(++done, files.length, 'images');
    }
  } finally {
    bar?.stop();
    await journal?.close();
    await scorer.dispose();
  }
  return failed;
}
