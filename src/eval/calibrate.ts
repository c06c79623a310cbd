/**
 * Calibration of the segment threshold of one score: on unlabeled in-distribution images (the
 * threshold flagging a fraction `fpr` of their pixels: thresholdAtFpr's definition, streamed by
 * FprThreshold), or on a labeled data set (the same on its in-distribution pixels, or the threshold
 * maximizing pixel F1 or the benchmark's component F1).
 */
import { readDataset, readLabelMask } from './dataset';
import { evaluate } from './evaluate';
import { InstanceMetrics, Track } from './metrics';
import { FprThreshold } from '../scoring/fpr-threshold';
import { DEFAULT_P, scoreLabel } from '../scoring/scores';
import { scoreStream } from '../run/pipeline';
import { DEMO_MODEL, ImageInput, Scorer, ScorerOptions } from '../run/scorer';
import { CalibrationRecord, loadModelCard } from '../model/model-card';

export type CalibrationObjective = 'fpr' | 'pixel-f1' | 'component-f1';

export interface CalibrateOptions {
  /** Model directory, card or .onnx; default the demo model. */
  model?: string;
  /** The score to calibrate; default the card's recommended score, else pgn-oh:p=0.5. */
  score?: string;
  /** objective 'fpr': the fraction of in-distribution pixels flagged. Default 0.05. */
  fpr?: number;
  /** Unlabeled in-distribution images (objective 'fpr' only)... */
  images?: ImageInput[];
  /** ...or a labeled data set folder (images/, labels_masks/). */
  dataset?: string;
  /** Default 'fpr'. The F1 objectives need a data set. */
  objective?: CalibrationObjective;
  /** Size filters of component F1 (default 'anomaly'). */
  track?: Track;
  batchSize?: number;
  threads?: number;
  scorer?: Pick<ScorerOptions, 'executionProviders' | 'intraOpThreads' | 'backend'>;
  /** Folder of FprThreshold's temporary file. */
  tmpDir?: string;
  onProgress?: (done: number, total: number, stage: string) => void;
  /** pgn-ood's version, recorded. */
  version: string;
}

/** Candidate thresholds of component F1: those reaching these pixel recalls, and the best pixel-F1 one. */
const RECALLS = Array.from({ length: 19 }, (_, i) => (i + 1) / 20);

export async function calibrate(options: CalibrateOptions): Promise<CalibrationRecord> {
  const objective = options.objective ?? 'fpr';
  if (!['fpr', 'pixel-f1', 'component-f1'].includes(objective)) throw new RangeError(`objective must be fpr, pixel-f1 or component-f1, got ${String(objective)}`);
  if ((options.images === undefined) === (options.dataset === undefined)) throw new RangeError('calibrate needs either images or a dataset');
  if (objective !== 'fpr' && options.dataset === undefined) throw new RangeError(`objective ${objective} needs a labeled data set (dataset)`);
  const fpr = options.fpr ?? 0.05;
  const { card } = await loadModelCard(options.model ?? DEMO_MODEL);
  const score = scoreLabel(options.score ?? card.recommended?.score ?? `pgn-oh:p=${DEFAULT_P}`);
  const base = { score, date: new Date().toISOString(), version: options.version };
  if (objective === 'pixel-f1') {
    const { curves: _curves, ...best } = await bestPixelF1(score, options);
    return { ...base, ...best };
  }
  // one session at a time: the pixel pass (evaluate) has closed its own before this one opens
  const pixel = objective === 'component-f1' ? await bestPixelF1(score, options) : null;
  const scorer = await Scorer.create({ model: options.model, scores: [score], prediction: false, threads: options.threads, ...options.scorer });
  try {
    if (pixel) return { ...base, ...(await bestComponentF1(scorer, pixel, options)) };
    const { threshold, images, pixels } = options.images ? await onImages(scorer, options.images, fpr, options) : await onDataset(scorer, options.dataset!, fpr, options);
    return { ...base, threshold, fpr, ...(options.dataset ? { dataset: options.dataset } : {}), images, pixels };
  } finally {
    await scorer.dispose();
  }
}

async function onImages(scorer: Scorer, images: ImageInput[], fpr: number, options: CalibrateOptions) {
  const t = new FprThreshold(fpr, { tmpDir: options.tmpDir });
  let done = 0;
  try {
    for await (const item of scoreStream(scorer, images, { batchSize: options.batchSize })) {
      if (item.error) throw item.error; // a calibration silently missing images would be wrong
      await t.add(item.result.maps[0]!.data);
      options.onProgress?.(++done, images.length, 'images');
    }
    return { threshold: await t.finish(), images: done, pixels: t.pixels };
  } finally {
    await t.dispose();
  }
}

/** Every item's map at its label mask's size, in order. */
async function* labeledMaps(scorer: Scorer, dataset: string, options: CalibrateOptions, stage: string) {
  const items = readDataset(dataset);
  for (const [i, item] of items.entries()) {
    const label = await readLabelMask(item.label);
    const [r] = await scorer.scoreDecoded([await scorer.decode(item.image)], [label]);
    yield { map: r!.maps[0]!.data, label };
    options.onProgress?.(i + 1, items.length, stage);
  }
}

async function onDataset(scorer: Scorer, dataset: string, fpr: number, options: CalibrateOptions) {
  const t = new FprThreshold(fpr, { tmpDir: options.tmpDir });
  let images = 0;
  try {
    for await (const { map, label } of labeledMaps(scorer, dataset, options, 'images')) {
      await t.add(map, Uint8Array.from(label.data, (v) => (v === 0 ? 1 : 0)));
      images++;
    }
    return { threshold: await t.finish(), images, pixels: t.pixels };
  } finally {
    await t.dispose();
  }
}

/** Pixel F1: the exact best over all operating points (evaluate's pixel pass). */
async function bestPixelF1(score: string, options: CalibrateOptions) {
  const dataset = options.dataset!;
  const e = await evaluate({
    dataset, model: options.model, scores: [score], instance: false, threads: options.threads, ...options.scorer,
    onProgress: (done, total) => options.onProgress?.(done, total, 'pixels'),
  });
  const pixel = e.rows[0]!.pixel;
  return { threshold: pixel.bestF1Threshold, objective: 'pixel-f1' as const, value: pixel.bestF1, dataset, images: e.images, pixels: pixel.positives + pixel.negatives, curves: pixel.curves! };
}

/**
 * Component F1: the benchmark's mean F1 at candidate thresholds (those reaching pixel recall 5 %,
 * 10 %, … 95 % on the pixel pass's curve, and its best pixel-F1 one), the best of them; the model
 * runs a second time for the components.
 */
async function bestComponentF1(scorer: Scorer, pixel: Awaited<ReturnType<typeof bestPixelF1>>, options: CalibrateOptions) {
  const { threshold: thresholds, tpr } = pixel.curves;
  const candidates = [...new Set([pixel.threshold, ...RECALLS.map((r) => thresholds[tpr.findIndex((v) => v >= r)]!)])].filter(Number.isFinite);
  const metrics = candidates.map((threshold) => new InstanceMetrics({ threshold, track: options.track }));
  for await (const { map, label } of labeledMaps(scorer, pixel.dataset, options, 'components')) {
    await Promise.all(metrics.map((m) => m.add(map, label.data, [label.height, label.width])));
  }
  const results = await Promise.all(metrics.map((m) => m.finish()));
  let best = 0;
  results.forEach((r, i) => { if (r.meanF1 > results[best]!.meanF1 || Number.isNaN(results[best]!.meanF1)) best = i; });
  return { threshold: candidates[best]!, objective: 'component-f1' as const, value: results[best]!.meanF1, dataset: pixel.dataset, images: pixel.images, pixels: pixel.pixels };
}
