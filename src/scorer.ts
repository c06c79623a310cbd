/**
 * The scorer: images in, per-pixel OoD scores out. One ONNX Runtime session (reused), one native
 * pass computing every requested score from the same forward pass, maps upsampled bilinearly back
 * to each image's own size, and the predicted class map at that size.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { decodeImage, DecodedImage, toTensor } from './preprocess';
import { Backend, checkBackend, computeScores, DEFAULT_P, normalizeScore, scoreName, ScoreSpec, upsample, upsampleArgmax } from './scores';
import { ExecutionProvider, ModelSession } from './session';

/** The embedded demo model (models/demo): used when no model is given. */
export const DEMO_MODEL = path.join(__dirname, '..', 'models', 'demo');

export type ImageInput = string | Buffer | Uint8Array;

export interface ScorerOptions {
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
  /** Refuse images with more pixels than this before decoding. */
  limitInputPixels?: number;
}

/** Milliseconds per stage. Batch stages are the batch's time divided by its size. */
export interface StageTimings {
  decode: number;
  preprocess: number;
  inference: number;
  scores: number;
  upsample: number;
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
  timings: StageTimings;
}

export class Scorer {
  readonly specs: ScoreSpec[];

  private constructor(
    readonly session: ModelSession,
    specs: ScoreSpec[],
    private readonly options: ScorerOptions,
  ) {
    this.specs = specs;
  }

  static async create(options: ScorerOptions = {}): Promise<Scorer> {
    checkBackend(options.backend);
    const session = await ModelSession.create(options.model ?? DEMO_MODEL, {
      executionProviders: options.executionProviders,
      intraOpThreads: options.intraOpThreads,
    });
    const requested = options.scores ?? [session.card.recommended?.score ?? `pgn-oh:p=${DEFAULT_P}`];
    if (!Array.isArray(requested) || requested.length === 0) throw new RangeError('scores must be a non-empty array');
    return new Scorer(session, requested.map(normalizeScore), options);
  }

  /** Decodes one image (file path or encoded bytes), with the scorer's pixel limit. */
  decode(input: ImageInput): Promise<DecodedImage> {
    return decodeImage(input, { limitInputPixels: this.options.limitInputPixels });
  }

  async score(input: ImageInput): Promise<ImageResult> {
    return (await this.scoreBatch([input]))[0];
  }

  /** Scores several images with one inference call. */
  async scoreBatch(inputs: ImageInput[]): Promise<ImageResult[]> {
    const t0 = performance.now();
    const images = await Promise.all(inputs.map((input) => this.decode(input)));
    const decode = (performance.now() - t0) / inputs.length;
    const results = await this.scoreDecoded(images);
    return results.map((r, i) => ({ ...r, source: typeof inputs[i] === 'string' ? (inputs[i] as string) : '<buffer>', timings: { ...r.timings, decode } }));
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
    const out = await this.session.run(batch.data, batch.dims);
    const t2 = performance.now();
    const logits = { data: out.logits, dims: out.logitsDims };
    const scored = await computeScores(logits, { data: out.features, dims: out.featuresDims }, {
      scores: this.specs,
      prediction: false,
      threads: this.options.threads,
      backend: this.options.backend,
    });
    const t3 = performance.now();
    const [, classes, h, w] = out.logitsDims;
    const plane = h * w;
    const results = await Promise.all(images.map(async (image, i) => {
      const target = sizes?.[i] ?? image;
      const size: [number, number] = [target.height, target.width];
      const up = { alignCorners: this.options.alignCorners, threads: this.options.threads };
      const maps = await Promise.all(this.specs.map(async (spec, k) => {
        const map = scored.maps[k].map.data.subarray(i * plane, (i + 1) * plane);
        return { spec, name: scoreName(spec), data: (await upsample({ data: map, dims: [1, h, w] }, size, up)).data };
      }));
      const prediction = this.options.prediction === false ? undefined
        : (await upsampleArgmax({ data: out.logits.subarray(i * classes * plane, (i + 1) * classes * plane), dims: [1, classes, h, w] }, size, up)).data;
      return { image, maps, prediction };
    }));
    const t4 = performance.now();
    const timings: StageTimings = { decode: 0, preprocess: (t1 - t0) / n, inference: (t2 - t1) / n, scores: (t3 - t2) / n, upsample: (t4 - t3) / n };
    return results.map(({ image, maps, prediction }, i) => ({
      source: '<decoded>',
      width: sizes?.[i]?.width ?? image.width,
      height: sizes?.[i]?.height ?? image.height,
      maps,
      ...(prediction ? { prediction } : {}),
      timings: { ...timings },
    }));
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
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
