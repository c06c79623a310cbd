/**
 * Evaluation of scores on a data set in the benchmark's layout (DESIGN.md §2): every requested score
 * from one forward pass (or one read of precomputed tensors) per image, pixel metrics pooled over the
 * data set, then component metrics at each score's best-F1 threshold.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatasetItem, LabelMask, readDataset, readItemMask } from './dataset';
import { TensorFileError } from '../common/errors';
import { InstanceMetrics, InstanceMetricsResult, PixelMetrics, PixelMetricsMode, PixelMetricsResult, Track } from './metrics';
import { readFloatNpy } from '../common/npy';
import { Backend, computeScores, normalizeScore, scoreLabel, scoreName, ScoreSpec, upsample, upsampleArgmax } from '../scoring/scores';
import { Scorer } from '../run/scorer';
import { ExecutionProvider } from '../model/session';

export interface EvaluateOptions {
  /** The data set folder (images/, labels_masks/). */
  dataset: string;
  scores: (ScoreSpec | string)[];
  /** Model mode: a model directory, card or .onnx (default: the demo model when no tensors). */
  model?: string;
  /** Tensors mode: folder of <stem>.logits.npy and <stem>.features.npy (float16/32, [1,C,h,w] / [1,F,h,w]). */
  tensors?: string;
  /** Size filters of the component metrics: 'anomaly' (default) or 'obstacle'. */
  track?: Track;
  /** Pixel metrics: 'exact' (default) or the benchmark's 'binned' curves. */
  mode?: PixelMetricsMode;
  /** Component metrics too (default true). */
  instance?: boolean;
  alignCorners?: boolean;
  threads?: number;
  backend?: Backend;
  executionProviders?: ExecutionProvider[];
  intraOpThreads?: number;
  /** The Scorer's pixel limit for the data set's images (default SCORER_PIXEL_LIMIT). */
  limitInputPixels?: number;
  /** Keep the first `samples` images' maps and predictions (for reports). Default 0. */
  samples?: number;
  /** Score maps kept in memory between the pixel and the component pass, at most (default 1 GiB); beyond, recomputed. */
  cacheBytes?: number;
  onProgress?: (done: number, total: number, stage: 'pixels' | 'components') => void;
}

export interface EvaluationRow {
  spec: ScoreSpec;
  name: string;
  label: string;
  pixel: PixelMetricsResult;
  instance?: InstanceMetricsResult;
}

export interface EvaluationSample {
  item: DatasetItem;
  label: LabelMask;
  prediction?: Int32Array;
  maps: Float32Array[];
}

export interface Evaluation {
  dataset: string;
  images: number;
  source: 'model' | 'tensors';
  rows: EvaluationRow[];
  /** Mean ms per image: inference (or tensor loading), scoring (scores + upsampling). */
  timings: { inference: number; scoring: number; total: number };
  samples: EvaluationSample[];
  /** Model mode: the model card's class colours (for colourising predictions). */
  classColours?: [number, number, number][];
}

/** Per image: every requested map at the label's size, plus the stage times. */
export interface ScoreSource {
  kind: 'model' | 'tensors';
  classColours?: [number, number, number][];
  maps(item: DatasetItem, size: { width: number; height: number }, prediction: boolean): Promise<{ maps: Float32Array[]; prediction?: Int32Array; inference: number; scoring: number }>;
  dispose(): Promise<void>;
}

async function modelSource(options: EvaluateOptions, specs: ScoreSpec[]): Promise<ScoreSource> {
  const scorer = await Scorer.create({
    model: options.model,
    scores: specs,
    threads: options.threads,
    backend: options.backend,
    alignCorners: options.alignCorners,
    executionProviders: options.executionProviders,
    intraOpThreads: options.intraOpThreads,
    limitInputPixels: options.limitInputPixels,
  });
  return {
    kind: 'model',
    classColours: scorer.session.card.classes.map((c) => [c.color[0], c.color[1], c.color[2]]),
    async maps(item, size, prediction) {
      const [r] = await scorer.scoreDecoded([await scorer.decode(item.image)], [size]);
      return { maps: r.maps.map((m) => m.data), prediction: prediction ? r.prediction : undefined, inference: r.timings.inference, scoring: r.timings.scores + r.timings.upsample };
    },
    dispose: () => scorer.dispose(),
  };
}

function tensorSource(options: EvaluateOptions, specs: ScoreSpec[]): ScoreSource {
  const dir = options.tensors!;
  return {
    kind: 'tensors',
    async maps(item, size, withPrediction) {
      const t0 = performance.now();
      const logits = await readFloatNpy(path.join(dir, `${item.stem}.logits.npy`));
      const needsFeatures = specs.some((s) => s.kind.startsWith('pgn'));
      const features = needsFeatures ? await readFloatNpy(path.join(dir, `${item.stem}.features.npy`)) : undefined;
      for (const [t, what] of [[logits, 'logits'], [features, 'features']] as const)
        if (t && (t.dims.length !== 4 || t.dims[0] !== 1))
          throw new TensorFileError(`${path.join(dir, `${item.stem}.${what}.npy`)}: expected [1, channels, h, w], got [${t.dims.join(', ')}]`);
      const t1 = performance.now();
      const scored = await computeScores(logits, features, { scores: specs, prediction: false, threads: options.threads, backend: options.backend });
      const up = { alignCorners: options.alignCorners, threads: options.threads };
      const target: [number, number] = [size.height, size.width];
      const maps = await Promise.all(scored.maps.map(async (m) => (await upsample(m.map, target, up)).data));
      const prediction = withPrediction ? (await upsampleArgmax(logits, target, up)).data : undefined;
      return { maps, prediction, inference: t1 - t0, scoring: performance.now() - t1 };
    },
    dispose: async () => undefined,
  };
}

/** The maps of the requested scores: from the model, or from the precomputed tensors. */
export async function openScoreSource(options: EvaluateOptions, specs: ScoreSpec[]): Promise<ScoreSource> {
  return options.tensors ? tensorSource(options, specs) : modelSource(options, specs);
}

/** Evaluates every requested score on the data set; figures are pooled over all its pixels. */
export async function evaluate(options: EvaluateOptions): Promise<Evaluation> {
  const items = readDataset(options.dataset);
  const specs = options.scores.map(normalizeScore);
  if (specs.length === 0) throw new RangeError('evaluate needs at least one score');
  const source = await openScoreSource(options, specs);
  const sampleCount = options.samples ?? 0;
  const budget = options.cacheBytes ?? 2 ** 30;
  try {
    const pixel = specs.map(() => new PixelMetrics({ mode: options.mode, threads: options.threads }));
    const cache = new Map<string, Float32Array[]>();
    const samples: EvaluationSample[] = [];
    let cached = 0;
    let inference = 0;
    let scoring = 0;
    const t0 = performance.now();
    const labels = new Map<string, LabelMask>();
    for (const [i, item] of items.entries()) {
      const label = await readItemMask(item);
      const r = await source.maps(item, label, i < sampleCount);
      inference += r.inference;
      scoring += r.scoring;
      await Promise.all(r.maps.map((m, k) => pixel[k].add(m, label.data, [label.height, label.width])));
      if (i < sampleCount) samples.push({ item, label, prediction: r.prediction, maps: r.maps });
      const bytes = r.maps.reduce((a, m) => a + m.byteLength, 0) + label.data.byteLength;
      if (options.instance !== false && cached + bytes <= budget) {
        cache.set(item.stem, r.maps);
        labels.set(item.stem, label);
        cached += bytes;
      }
      options.onProgress?.(i + 1, items.length, 'pixels');
    }
    const pixelResults = await Promise.all(pixel.map((p) => p.finish()));
    const total = performance.now() - t0;
    let instanceResults: (InstanceMetricsResult | undefined)[] = specs.map(() => undefined);
    if (options.instance !== false) {
      // In binned mode the benchmark's own threshold, so that its component figures are reproduced.
      const instance = pixelResults.map((p) => new InstanceMetrics({ threshold: p.official?.bestF1Threshold ?? p.bestF1Threshold, track: options.track }));
      for (const [i, item] of items.entries()) {
        const label = labels.get(item.stem) ?? (await readItemMask(item));
        const maps = cache.get(item.stem) ?? (await source.maps(item, label, false)).maps;
        await Promise.all(maps.map((m, k) => instance[k].add(m, label.data, [label.height, label.width])));
        options.onProgress?.(i + 1, items.length, 'components');
      }
      instanceResults = await Promise.all(instance.map((m) => m.finish()));
    }
    return {
      dataset: options.dataset,
      images: items.length,
      source: source.kind,
      rows: specs.map((spec, k) => ({ spec, name: scoreName(spec), label: scoreLabel(spec), pixel: pixelResults[k], instance: instanceResults[k] })),
      timings: { inference: inference / items.length, scoring: scoring / items.length, total: total / items.length },
      samples,
      classColours: source.classColours,
    };
  } finally {
    await source.dispose();
  }
}
