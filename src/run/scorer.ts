/**
 * The scorer: images in, per-pixel OoD scores out. One ONNX Runtime session (reused), one native
 * pass computing every requested score from the same forward pass, maps upsampled bilinearly back
 * to each image's own size, and the predicted class map at that size.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { releaseArrays } from '../addon';
import { decodeImage, DecodedImage, imageSize, toTensor } from '../image/preprocess';
import { Backend, checkBackend, computeScores, DEFAULT_P, isPgn2, normalizeScore, scoreLabel, scoreName, ScoreSpec, upsample, upsampleArgmax } from '../scoring/scores';
import { ExecutionProvider, ModelSession } from '../model/session';
import { findSegments, Segment } from '../scoring/segments';
import { ArrayPool } from './array-pool';
import { AdmissionOptions, CallOptions, Scheduler, SchedulerLoad } from './scheduler';

/** The embedded demo model (models/demo): used when no model is given. */
export const DEMO_MODEL = path.join(__dirname, '..', '..', 'models', 'demo');

export type ImageInput = string | Buffer | Uint8Array;

/**
 * The admission and batching options (AdmissionOptions: maxInFlight, maxQueue, maxBatch,
 * maxDelayMs) bound and batch the calls of `score()`; `scoreBatch` and `scoreDecoded` run as called.
 */
export interface ScorerOptions extends AdmissionOptions {
  /** A model directory (with model.json), a model card, or an .onnx file. Default: the demo model. */
  model?: string;
  /** Scores to compute. Default: the card's recommended score, else pgn-oh:p=0.5. */
  scores?: (ScoreSpec | string)[];
  /** Also return the predicted class map at image size. Default true. */
  prediction?: boolean;
  /** align_corners of the upsampling to image size; default false. */
  alignCorners?: boolean;
  /** Threads of the native work (0 = all cores). */
  threads?: number;
  /** Backend of the native scores. */
  backend?: Backend;
  /** ONNX Runtime execution providers (default: CUDA if available, else CPU) and intra-op threads. */
  executionProviders?: ExecutionProvider[];
  intraOpThreads?: number;
  /**
   * Refuse images with more pixels than this, from their header, before decoding them. Default
   * SCORER_PIXEL_LIMIT (8192 × 8192), which bounds the working memory of one image; up to sharp's
   * 268402689 (0x3FFF²) when asked for.
   */
  limitInputPixels?: number;
  /** OoD segments of one score map: thresholded, connected components with statistics. */
  segments?: SegmentsOption;
  /**
   * What `release(result)` does with the result's score maps and prediction: false (default) frees
   * them at once (they read as empty after); true keeps them (up to REUSE_BYTES) for later images of
   * the same size to be written into, so that V8 counts no new ArrayBuffer for them: fewer full
   * garbage collections, each a pause of the event loop (docs/api.md, "Reusing arrays"). Then an
   * array taken from a released result is overwritten by a later image: read nothing of it after.
   */
  reuseArrays?: boolean;
}

/** How many bytes of released arrays a scorer with reuseArrays keeps: a few 2 MP images' worth. */
export const REUSE_BYTES = 128 * 2 ** 20;

export interface SegmentsOption {
  /** Which requested score to segment (its label, e.g. "pgn-oh:p=0.5"). Default: the first one. */
  score?: string;
  /** score > threshold is OoD. Default: the model card's recommended threshold, for its recommended score. */
  threshold?: number;
  /** Segments with fewer pixels are dropped. Default 0. */
  minArea?: number;
  connectivity?: 4 | 8;
  /**
   * Also return the segments' label image (ImageResult.segmentLabels), which overlays and label PNGs
   * draw. Default true; false spares an image-sized array and its writing per image.
   */
  labels?: boolean;
}

/**
 * The default pixel limit of a Scorer: one image costs about 26 bytes per pixel with one score
 * (decoded RGB, maps and prediction at image size, segment labels, overlay), 4 more per further
 * score: 1.7 GB at this limit. sharp's own limit (16383²) would let a 121-byte SVG ask for 7 GB.
 */
export const SCORER_PIXEL_LIMIT = 8192 * 8192;

/** Milliseconds per stage. Batch stages are the batch's time divided by its size. */
export interface StageTimings {
  decode: number;
  preprocess: number;
  /** ONNX Runtime's run on its thread, without any wait behind runs posted before. */
  inference: number;
  scores: number;
  /** Bilinear upsampling of the score maps to the image size. */
  upsample: number;
  /** The predicted class map at image size (argmax of the upsampled logits). */
  prediction: number;
  /** Thresholding and connected components (0 without segments). */
  segments: number;
}

export interface ScoredMap {
  spec: ScoreSpec;
  /** File-friendly name, e.g. pgn-oh_p0.5. */
  name: string;
  /** [height, width], row-major. Higher = more likely out-of-distribution. */
  data: Float32Array;
}

export interface ImageResult {
  /** The file path, or "<buffer>". */
  source: string;
  width: number;
  height: number;
  maps: ScoredMap[];
  /** Predicted class per pixel [height, width]. */
  prediction?: Int32Array;
  /** From `score()`: how many images its inference batch held (dynamic batching). */
  batchSize?: number;
  /** With options.segments: the segments (ids 1..K) and their label image [height, width] (unless segments.labels is false). */
  segments?: Segment[];
  segmentLabels?: Uint32Array;
  timings: StageTimings;
}

export class Scorer {
  readonly specs: ScoreSpec[];
  private readonly scheduler: Scheduler<ImageInput, ImageResult>;
  /** Released results' arrays, with reuseArrays. */
  private readonly pool?: ArrayPool;
  /** Results given to release(): segmentsOf refuses them (with reuseArrays their arrays stay readable). */
  private readonly released = new WeakSet<ImageResult>();

  private constructor(
    readonly session: ModelSession,
    specs: ScoreSpec[],
    private readonly options: ScorerOptions,
    /** Index into specs of the segmented score, and its threshold. */
    private readonly segmentation?: { index: number; threshold: number },
  ) {
    this.specs = specs;
    this.scheduler = new Scheduler(this, options, session.fixedBatch, session.card.input.resize === 'none');
    if (options.reuseArrays) this.pool = new ArrayPool(REUSE_BYTES);
  }

  static async create(options: ScorerOptions = {}): Promise<Scorer> {
    checkBackend(options.backend);
    const limit = options.limitInputPixels;
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1))
      throw new RangeError(`limitInputPixels must be a positive integer, got ${String(limit)}`);
    // pgn2-* scores need the second-to-last conv's input from the session as well
    const second = (list: unknown) => Array.isArray(list) && list.some((s) => {
      try {
        return isPgn2(normalizeScore(s).kind);
      } catch {
        return false; // reported below, as before
      }
    });
    const open = (secondLayer: boolean) => ModelSession.create(options.model ?? DEMO_MODEL, {
      executionProviders: options.executionProviders,
      intraOpThreads: options.intraOpThreads,
      secondLayer,
    });
    let session = await open(second(options.scores));
    const requested = options.scores ?? [session.card.recommended?.score ?? `pgn-oh:p=${DEFAULT_P}`];
    if (!Array.isArray(requested) || requested.length === 0) throw new RangeError('scores must be a non-empty array');
    if (!session.analysis.secondLayer && second(requested)) { // the card recommends a pgn2 score
      await session.dispose();
      session = await open(true);
    }
    try {
      const specs = requested.map(normalizeScore);
      return new Scorer(session, specs, options, options.segments ? segmentation(options.segments, specs, session) : undefined);
    } catch (err) {
      await session.dispose();
      throw err;
    }
  }

  /**
   * Decodes one image (file path or encoded bytes), with the scorer's pixel limit; for a model that
   * stretches its input, straight to the input size where that gives the same bytes (`original`
   * then holds the image's own size).
   */
  decode(input: ImageInput): Promise<DecodedImage> {
    const { input: card } = this.session.card;
    // With resize "stretch" only the model-size pixels are needed (overlays read the file again).
    const size = card.resize === 'stretch' && card.width && card.height ? { width: card.width, height: card.height } : undefined;
    return decodeImage(input, { limitInputPixels: this.options.limitInputPixels ?? SCORER_PIXEL_LIMIT, size });
  }

  /**
   * Scores one image, through admission control and dynamic batching: OverloadedError at once when
   * the queue is full; with `timeoutMs` or `signal`, the call fails when either fires.
   */
  async score(input: ImageInput, options: CallOptions = {}): Promise<ImageResult> {
    const { result, decodeMs, batchSize } = await this.scheduler.submit(input, options);
    return { ...result, source: sourceName(input), batchSize, timings: { ...result.timings, decode: decodeMs } };
  }

  /**
   * Frees a result's arrays (score maps, prediction, segment labels) now instead of at the garbage
   * collection that would find them: for a server that is done with a result once it has replied.
   * ~40 MB per 2 MP image left to the collector force a full collection every image or two, each a
   * pause of the event loop. The arrays read as empty afterwards; the segments stay usable. With
   * reuseArrays the maps and prediction are kept instead, to be written again by a later image.
   */
  release(result: ImageResult): void {
    if (this.released.has(result)) return; // twice would hand the same arrays to two later results
    this.released.add(result);
    const reusable = [...result.maps.map((m) => m.data), result.prediction];
    if (this.pool) this.pool.give(reusable);
    else releaseArrays(reusable);
    releaseArrays([result.segmentLabels]);
  }

  /** Calls of `score()` waiting for admission, and images in flight. */
  get load(): SchedulerLoad {
    return this.scheduler.load;
  }

  /** The admission and batching limits in force (defaults filled in, maxBatch capped by a fixed batch size). */
  get admission(): Required<AdmissionOptions> {
    const { maxInFlight, maxQueue, maxBatch, maxDelayMs } = this.scheduler;
    return { maxInFlight, maxQueue, maxBatch, maxDelayMs };
  }

  /** Scores several images with one inference call. */
  async scoreBatch(inputs: ImageInput[]): Promise<ImageResult[]> {
    const t0 = performance.now();
    const images = await Promise.all(inputs.map((input) => this.decode(input)));
    const decode = (performance.now() - t0) / inputs.length;
    let results: ImageResult[];
    try {
      results = await this.scoreDecoded(images);
    } finally {
      releaseArrays(images.map((i) => i.data)); // decoded here, read by nothing after
    }
    return results.map((r, i) => ({ ...r, source: sourceName(inputs[i]!), timings: { ...r.timings, decode } }));
  }

  /**
   * Scores already decoded images (one batch); `source` is left "<decoded>". The maps come at each
   * image's size, or at `sizes[i]` when given (e.g. a label mask's size).
   */
  async scoreDecoded(images: DecodedImage[], sizes?: { width: number; height: number }[]): Promise<ImageResult[]> {
    const n = images.length;
    const t0 = performance.now();
    const batch = await toTensor(images, this.session.card);
    const t1 = performance.now();
    const out = await this.session.run(batch.data, batch.dims, { transfer: true }); // toTensor's array is ours to give away
    const t2 = performance.now();
    const logits = { data: out.logits, dims: out.logitsDims };
    const scored = await computeScores(logits, { data: out.features, dims: out.featuresDims }, {
      scores: this.specs,
      prediction: false,
      threads: this.options.threads,
      backend: this.options.backend,
      ...(out.convInput ? {
        secondLayer: { input: { data: out.convInput, dims: out.convInputDims! }, kernel: this.session.kernel, layer: this.session.analysis.secondLayer!.layer },
      } : {}),
    });
    const t3 = performance.now();
    const [, classes, h, w] = out.logitsDims;
    const plane = h * w;
    const up = { alignCorners: this.options.alignCorners, threads: this.options.threads };
    const outputSizes = images.map((image, i) => sizes?.[i] ?? imageSize(image));
    const targets = outputSizes.map(({ height, width }): [number, number] => [height, width]);
    const mapsPerImage = await Promise.all(images.map((_, i) => Promise.all(this.specs.map(async (spec, k) => {
      const map = scored.maps[k].map.data.subarray(i * plane, (i + 1) * plane);
      const output = this.pool?.take(Float32Array, targets[i][0] * targets[i][1]);
      return { spec, name: scoreName(spec), data: (await upsample({ data: map, dims: [1, h, w] }, targets[i], { ...up, output })).data };
    }))));
    const t4 = performance.now();
    const wantPrediction = this.options.prediction !== false || this.segmentation !== undefined;
    const predictions = await Promise.all(images.map(async (_, i) => wantPrediction
      ? (await upsampleArgmax({ data: out.logits.subarray(i * classes * plane, (i + 1) * classes * plane), dims: [1, classes, h, w] }, targets[i],
        { ...up, output: this.pool?.take(Int32Array, targets[i][0] * targets[i][1]) })).data
      : undefined));
    const t5 = performance.now();
    // The model's outputs and the maps at its resolution are read by nothing from here on.
    releaseArrays([out.logits, out.features, out.convInput, ...scored.maps.map((m) => m.map.data)]);
    const results = images.map((_, i) => ({ maps: mapsPerImage[i], prediction: predictions[i] }));
    const segments = await Promise.all(results.map((r, i) => this.segment(r.maps, r.prediction, outputSizes[i])));
    const t6 = performance.now();
    if (this.options.prediction === false) { // computed for the segments' classes only
      if (this.pool) this.pool.give(predictions);
      else releaseArrays(predictions);
    }
    const timings: StageTimings = {
      decode: 0,
      preprocess: (t1 - t0) / n,
      inference: out.inferenceMs / n, // ONNX Runtime's own time: a batch queued behind another does not count its wait
      scores: (t3 - t2) / n,
      upsample: (t4 - t3) / n,
      prediction: (t5 - t4) / n,
      segments: (t6 - t5) / n,
    };
    return results.map(({ maps, prediction }, i) => ({
      ...segments[i],
      source: '<decoded>',
      width: outputSizes[i].width,
      height: outputSizes[i].height,
      maps,
      ...(prediction && this.options.prediction !== false ? { prediction } : {}),
      timings: { ...timings },
    }));
  }

  /**
   * The OoD segments of a result, with their label image, under other settings than the scorer's
   * own (another score among the requested ones, threshold, minArea, connectivity), e.g. per HTTP
   * request. Settings not given are the scorer's own; its threshold only for its own score.
   */
  async segmentsOf(result: ImageResult, option: SegmentsOption): Promise<{ segments: Segment[]; segmentLabels: Uint32Array }> {
    if (this.released.has(result) || result.maps.some((m) => m.data.length === 0))
      throw new TypeError("the result's arrays were released (Scorer.release): segment it before releasing it");
    const own = this.options.segments ?? {};
    const given = Object.fromEntries(Object.entries(option).filter(([, v]) => v !== undefined)) as SegmentsOption;
    const ownScore = scoreLabel(own.score ?? this.specs[0]);
    const merged: SegmentsOption = { ...own, ...(given.score !== undefined && scoreLabel(given.score) !== ownScore ? { threshold: undefined } : {}), ...given, labels: true };
    const found = await this.segment(result.maps, result.prediction, result, segmentation(merged, this.specs, this.session), merged);
    return found as { segments: Segment[]; segmentLabels: Uint32Array };
  }

  private async segment(
    maps: ScoredMap[],
    prediction: Int32Array | undefined,
    image: { width: number; height: number },
    how = this.segmentation,
    option = this.options.segments,
  ): Promise<{ segments?: Segment[]; segmentLabels?: Uint32Array }> {
    if (!how) return {};
    const map = maps[how.index].data;
    const height = map.length / image.width;
    const dims: [number, number, number] = [1, height, image.width];
    const found = await findSegments({ data: map, dims }, {
      threshold: how.threshold,
      prediction: prediction ? { data: prediction, dims } : undefined,
      minArea: option?.minArea,
      connectivity: option?.connectivity,
      labels: option?.labels !== false,
      threads: this.options.threads,
      backend: this.options.backend,
    });
    return { segments: found.segments[0], ...(found.labels ? { segmentLabels: found.labels.data } : {}) };
  }

  async dispose(): Promise<void> {
    this.pool?.clear();
    await this.session.dispose();
  }
}

/** The file path, or "<buffer>" for bytes. */
export function sourceName(input: ImageInput): string {
  return typeof input === 'string' ? input : '<buffer>';
}

/** Which map to segment and at what threshold; the card's recommendation when not given. */
function segmentation(option: SegmentsOption, specs: ScoreSpec[], session: ModelSession): { index: number; threshold: number } {
  const wanted = option.score ? scoreLabel(option.score) : scoreLabel(specs[0]);
  const index = specs.findIndex((s) => scoreLabel(s) === wanted);
  if (index < 0) throw new RangeError(`segments.score "${option.score}" is not among the requested scores (${specs.map(scoreLabel).join(', ')})`);
  if (option.threshold !== undefined) {
    if (typeof option.threshold !== 'number' || Number.isNaN(option.threshold)) throw new RangeError('segments.threshold must be a number');
    return { index, threshold: option.threshold };
  }
  const rec = session.card.recommended;
  if (!rec || scoreLabel(rec.score) !== wanted)
    throw new RangeError(`segments of ${wanted} need a threshold: the model card recommends ${rec ? `one for ${rec.score} only` : 'none'}`);
  return { index, threshold: rec.threshold };
}

/** One-shot convenience: creates a scorer, scores one image, releases the session. */
export async function score(input: ImageInput, options: ScorerOptions = {}): Promise<ImageResult> {
  const scorer = await Scorer.create(options);
  try {
    return await scorer.score(input);
  } finally {
    await scorer.dispose();
  }
}
