/** `pgn eval`: the benchmark's figures for every requested score on a data set. */
import path from 'node:path';
import { Command } from 'commander';
import { evaluate, Evaluation } from '../eval/evaluate';
import { ensureDir, openAtomic } from '../common/files';
import { formatPercent, PixelMetricsMode, Track } from '../eval/metrics';
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
    .option('--limit-input-pixels <n>', LIMIT_PIXELS_HELP, parsePixelLimit)
    .action(async (dataset: string, opts: EvalOptions) => {
      if (opts.track !== 'anomaly' && opts.track !== 'obstacle') throw new RangeError(`--track must be anomaly or obstacle, got ${opts.track}`);
      // Output paths are checked before the evaluation (which can take hours), not after it.
      const json = opts.json ? await openAtomic(opts.json) : undefined;
      if (opts.report) await ensureDir(opts.report).catch(async (err) => { await json?.abort(); throw err; });
      const bar = progress('pgn eval');
      const tensors = opts.tensors === true ? path.join(dataset, 'tensors') : opts.tensors || undefined;
      let result: Evaluation;
      try {
        result = await evaluate({
          dataset,
          tensors,
          model: opts.model,
          scores: opts.score ?? DEFAULT_EVAL_SCORES,
          track: opts.track,
          mode: (opts.binned ? 'binned' : 'exact') as PixelMetricsMode,
          instance: opts.instance,
          threads: opts.threads,
          backend: opts.backend,
          executionProviders: opts.ep ? [opts.ep] : undefined,
          limitInputPixels: opts.limitInputPixels,
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
