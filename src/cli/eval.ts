/** `pgn eval`: the benchmark's figures for every requested score on a data set. */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { evaluate, Evaluation } from '../eval/evaluate';
import { ensureDir, openAtomic } from '../common/files';
import { formatPercent, PixelMetricsMode, PixelMetricsResult, Track } from '../eval/metrics';
import { componentThresholds, mergeStates, saveShardState } from '../eval/shard-state';
import { parseShard } from '../batch/shards';
import { normalizeScore, scoreLabel } from '../scoring/scores';
import { writeReport } from '../eval/report';
import { Backend, DEFAULT_P } from '../scoring/scores';
import { ExecutionProvider } from '../model/session';
import { collect, LIMIT_PIXELS_HELP, parseCount, parsePixelLimit } from './options';
import { progress } from './progress';

interface EvalOptions {
  model?: string;
  tensors?: string | boolean;
  score?: string[];
  track: Track;
  binned?: boolean;
  instance: boolean;
  json?: string;
  report?: string;
  threads?: number;
  backend?: Backend;
  ep?: ExecutionProvider;
  shard?: string;
  shards?: number;
  saveState?: string;
  thresholds?: string;
  limitInputPixels?: number;
}

export const DEFAULT_EVAL_SCORES = [`pgn-oh:p=${DEFAULT_P}`, 'pgn-oh:p=1', 'pgn-oh:p=2', 'entropy', 'msp', 'maxlogit', 'energy'];

export function evalCommand(): Command {
  return new Command('eval')
    .description('SegmentMeIfYouCan metrics (AUROC, AuPRC, FPR95, sIoU, PPV, mean F1) of each score on a data set (images/, labels_masks/)')
    .argument('<dataset>', 'data set folder')
    .option('--model <path>', 'model directory, card or .onnx (default: the embedded demo model)')
    .option('--tensors [dir]', 'read <stem>.logits.npy / <stem>.features.npy instead of running a model (default dir: DATASET/tensors)')
    .option('--score <spec>', `score to evaluate, repeatable (default: ${DEFAULT_EVAL_SCORES.join(', ')})`, collect)
    .option('--track <track>', 'size filters of the component metrics: anomaly (500/100 px) or obstacle (50/10 px)', 'anomaly')
    .option('--binned', "the benchmark's binned curves (768 percentile bins) instead of exact ones")
    .option('--no-instance', 'skip the component-level metrics')
    .option('--json <file>', 'also write the figures as JSON')
    .option('--report <dir>', 'also write a self-contained HTML report (figures, ROC and PR curves, heatmaps of the first 4 images) to DIR/index.html')
    .option('--threads <n>', 'native threads (0 = all cores)', parseCount)
    .option('--backend <name>', 'native scores backend: cpu or cuda', 'cpu')
    .option('--ep <name>', 'ONNX Runtime execution provider: cpu or cuda')
    .option('--shard <I/N|auto>', 'evaluate shard I of N of the images (with --save-state; docs/batch.md)')
    .option('--shards <n>', 'the number of shards, for --shard auto where the engine does not give it', parseCount)
    .option('--save-state <file>', "write this shard's metric state instead of figures; `pgn eval merge` combines the states")
    .option('--thresholds <json>', 'step 2: save component states at the thresholds of this `pgn eval merge --json` of the pixel states')
    .option('--limit-input-pixels <n>', LIMIT_PIXELS_HELP, parsePixelLimit)
    .addCommand(evalMergeCommand())
    .action(async (dataset: string, opts: EvalOptions) => {
      if (opts.track !== 'anomaly' && opts.track !== 'obstacle') throw new RangeError(`--track must be anomaly or obstacle, got ${opts.track}`);
      if (opts.shard || opts.saveState || opts.thresholds) return saveState(dataset, opts);
      // Output paths are checked before the evaluation (which can take hours), not after it.
      const json = opts.json ? await openAtomic(opts.json) : undefined;
      if (opts.report) await ensureDir(opts.report).catch(async (err) => { await json?.abort(); throw err; });
      const bar = progress('pgn eval');
      let result: Evaluation;
      try {
        result = await evaluate({
          ...scoreSourceOptions(dataset, opts),
          instance: opts.instance,
          samples: opts.report ? 4 : 0,
          onProgress: (done, total, stage) => bar.update(done, total, stage),
        });
      } catch (err) {
        await json?.abort();
        throw err;
      } finally {
        bar.stop();
      }
      process.stdout.write(`${evaluationTable(result)}\n`);
      if (json) {
        json.write(`${JSON.stringify(evaluationJson(result), null, 2)}\n`);
        await json.commit();
      }
      if (opts.report) process.stdout.write(`report: ${await writeReport(opts.report, result, { classColours: result.classColours })}\n`);
    });
}

/** The options of a scoring run shared by a whole evaluation and a shard's. */
function scoreSourceOptions(dataset: string, opts: EvalOptions) {
  return {
    dataset,
    tensors: opts.tensors === true ? path.join(dataset, 'tensors') : opts.tensors || undefined,
    model: opts.model,
    scores: opts.score ?? DEFAULT_EVAL_SCORES,
    track: opts.track,
    mode: (opts.binned ? 'binned' : 'exact') as PixelMetricsMode,
    threads: opts.threads,
    backend: opts.backend,
    executionProviders: opts.ep ? [opts.ep] : undefined,
    limitInputPixels: opts.limitInputPixels,
  };
}

/** `pgn eval DATASET --shard I/N --save-state FILE [--thresholds merged.json]`. */
async function saveState(dataset: string, opts: EvalOptions): Promise<void> {
  if (!opts.shard || !opts.saveState) throw new RangeError('a shard of an evaluation needs both --shard I/N and --save-state FILE');
  const base = scoreSourceOptions(dataset, opts);
  let thresholds: number[] | undefined;
  if (opts.thresholds) {
    const merged = JSON.parse(await fs.promises.readFile(opts.thresholds, 'utf8')) as { scores?: { score: string; pixel: PixelMetricsResult }[] };
    const byLabel = new Map((merged.scores ?? []).map((r) => [r.score, r.pixel]));
    const labels = base.scores.map((s) => scoreLabel(normalizeScore(s)));
    const missing = labels.filter((l) => !byLabel.has(l));
    if (missing.length) throw new RangeError(`--thresholds ${opts.thresholds}: no pixel figures for ${missing.join(', ')}`);
    thresholds = componentThresholds(labels.map((l) => byLabel.get(l)!));
  }
  const bar = progress('pgn eval');
  try {
    const header = await saveShardState({ ...base, shard: parseShard(opts.shard, opts.shards), thresholds, onProgress: (done, total, stage) => bar.update(done, total, stage) }, opts.saveState);
    process.stderr.write(`pgn eval: ${header.kind} state of shard ${header.shard.index}/${header.shard.count} (${header.images.length} of ${header.total} images) in ${opts.saveState}\n`);
  } finally {
    bar.stop();
  }
}

function evalMergeCommand(): Command {
  return new Command('merge')
    .description('combine the states of `pgn eval --shard I/N --save-state` into the figures of the whole data set')
    .argument('<states...>', 'state files: pixel states (step 1), and component states (step 2)')
    .option('--json <file>', 'also write the figures as JSON (the shape of a single run\'s --json)')
    .option('--report <dir>', 'also write the HTML report (figures and curves; no sample images) to DIR/index.html')
    .action(async (files: string[], _opts: unknown, cmd: Command) => {
      // `eval` has --json and --report too, which commander gives the parent: read both levels.
      const opts = cmd.optsWithGlobals<{ json?: string; report?: string }>();
      const json = opts.json ? await openAtomic(opts.json) : undefined;
      try {
        if (opts.report) await ensureDir(opts.report);
        const result = await mergeStates(files);
        process.stdout.write(`${evaluationTable(result)}\n`);
        json?.write(`${JSON.stringify(evaluationJson(result), null, 2)}\n`);
        await json?.commit();
        if (opts.report) process.stdout.write(`report: ${await writeReport(opts.report, result)}\n`);
      } finally {
        await json?.abort();
      }
    });
}

/** One row per score: pixel and component figures in percent, then ms per image. */
export function evaluationTable(e: Evaluation): string {
  const header = ['score', 'AUROC', 'AuPRC', 'FPR95', 'sIoU', 'PPV', 'mean F1', e.source === 'model' ? 'inference ms/img' : 'load ms/img', 'scoring ms/img'];
  const rows = e.rows.map((r) => [
    r.label,
    formatPercent(r.pixel.auroc),
    formatPercent(r.pixel.auprc),
    formatPercent(r.pixel.fpr95),
    r.instance ? formatPercent(r.instance.sIoU) : '-',
    r.instance ? formatPercent(r.instance.ppv) : '-',
    r.instance ? formatPercent(r.instance.meanF1) : '-',
    e.timings.inference.toFixed(1),
    (e.timings.scoring / e.rows.length).toFixed(1),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  const fmt = (cells: string[]) => `| ${cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ')} |`;
  const title = `${e.dataset}: ${e.images} images, ${e.source === 'model' ? 'model' : 'precomputed tensors'}; figures in %, pooled over the data set; scoring ms is per score (all scores share one pass)`;
  return [title, '', fmt(header), `|${widths.map((w, c) => (c === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(fmt)].join('\n');
}

/** The figures without curves or sample maps, for --json. */
export function evaluationJson(e: Evaluation): object {
  return {
    dataset: e.dataset,
    images: e.images,
    source: e.source,
    timingsMsPerImage: e.timings,
    scores: e.rows.map((r) => {
      const { curves: _curves, ...pixel } = r.pixel;
      return { score: r.label, name: r.name, pixel, instance: r.instance };
    }),
  };
}
