/**
 * Streaming batch scoring: inputs are decoded ahead (a bounded number at a time, on sharp's
 * threads) while earlier batches are scored, two at a time (one in ONNX Runtime while the other is
 * in the native passes), and results come out in input order. Nothing is pulled from the inputs beyond that bound until the consumer
 * takes results, so memory stays flat however many images come (back-pressure).
 */
import { performance } from 'node:perf_hooks';
import { releaseArrays } from '../addon';
import { ImageError, PgnError } from '../common/errors';
import { DecodedImage } from '../image/preprocess';
import { ImageInput, ImageResult, Scorer, ScorerOptions, sourceName } from './scorer';

export interface StreamOptions {
  /** Images per inference call. Default 1. */
  batchSize?: number;
  /** Images decoded ahead of the two batches being scored. Default 2 × batchSize. */
  prefetch?: number;
  /** Stops the stream: the iterator then throws the signal's reason (an AbortError). */
  signal?: AbortSignal;
}

/** One input's outcome, in input order: a result, or the PgnError that stopped this input alone. */
export type StreamItem =
  | { index: number; source: string; result: ImageResult; error?: undefined }
  | { index: number; source: string; result?: undefined; error: PgnError };

interface Pending {
  index: number;
  source: string;
  decoded: Promise<{ image: DecodedImage; ms: number } | PgnError>;
}

/** An error of one image as a PgnError (inference, memory, labels): that image fails, the stream goes on. */
function imageFailure(err: unknown): PgnError {
  if (err instanceof PgnError) return err;
  const e = err as Error;
  return new ImageError(`scoring failed: ${e?.message ?? String(err)}`, { cause: err });
}

/**
 * Scores a batch; if the batch fails (mixed sizes, inference error, memory), its images are scored
 * one by one, so that only the images that fail alone get an error.
 */
async function scoreEach(scorer: Scorer, images: DecodedImage[]): Promise<(ImageResult | PgnError)[]> {
  if (images.length === 0) return [];
  try {
    return await scorer.scoreDecoded(images);
  } catch (err) {
    if (images.length === 1) return [imageFailure(err)];
    const one: (ImageResult | PgnError)[] = [];
    for (const image of images) one.push(...(await scoreEach(scorer, [image])));
    return one;
  }
}

/** Scores every input with the scorer, yielding in input order; an image that fails yields its error. */
export async function* scoreStream(scorer: Scorer, inputs: Iterable<ImageInput> | AsyncIterable<ImageInput>, options: StreamOptions = {}): AsyncGenerator<StreamItem> {
  const batchSize = options.batchSize ?? 1;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const prefetch = options.prefetch ?? 2 * batchSize;
  if (!Number.isInteger(prefetch) || prefetch < batchSize) throw new RangeError(`prefetch must be an integer >= batchSize (${batchSize}), got ${prefetch}`);
  const signal = options.signal;
  const iterator = (Symbol.asyncIterator in inputs ? inputs[Symbol.asyncIterator]() : inputs[Symbol.iterator]()) as AsyncIterator<ImageInput> | Iterator<ImageInput>;
  const queue: Pending[] = [];
  let next = 0;
  let exhausted = false;

  const decode = (input: ImageInput): Pending['decoded'] => {
    const t0 = performance.now();
    const decoded = scorer.decode(input).then(
      (image) => ({ image, ms: performance.now() - t0 }),
      (err: unknown) => {
        if (err instanceof PgnError) return err;
        throw err;
      },
    );
    // A caller's mistake (e.g. a number among the images) is thrown by the iterator when its turn
    // comes; until then it waits in the queue, and must not end the process as an unhandled rejection.
    decoded.catch(() => undefined);
    return decoded;
  };
  const fill = async () => {
    while (!exhausted && queue.length < prefetch) {
      const step = await iterator.next();
      if (step.done) exhausted = true;
      else queue.push({ index: next++, source: sourceName(step.value), decoded: decode(step.value) });
    }
  };

  // One batch's inputs, decoded, and the promise of its results (started as soon as it was decoded).
  interface Scoring {
    batch: Pending[];
    decoded: Awaited<Pending['decoded']>[];
    results: Promise<(ImageResult | PgnError)[]>;
    /** The first input whose decoding threw something other than a PgnError (a bug): rethrown. */
    mistake?: unknown;
  }
  const start = async (): Promise<Scoring | null> => {
    await fill();
    if (queue.length === 0) return null;
    const taken = queue.splice(0, batchSize);
    await fill(); // the next batch decodes while this one is scored
    const settled = await Promise.allSettled(taken.map((p) => p.decoded));
    signal?.throwIfAborted();
    const failed = settled.findIndex((s) => s.status === 'rejected');
    const batch = failed < 0 ? taken : taken.slice(0, failed);
    const decoded = batch.map((_, k) => (settled[k] as PromiseFulfilledResult<Awaited<Pending['decoded']>>).value);
    const images = decoded.flatMap((d) => (d instanceof PgnError ? [] : [d.image]));
    // The decoded pixels are the stream's own: freed once scored, not left to the collector.
    const results = scoreEach(scorer, images).finally(() => releaseArrays(images.map((i) => i.data)));
    results.catch(() => undefined); // awaited in emit, or in the clean-up
    return { batch, decoded, results, ...(failed >= 0 ? { mistake: (settled[failed] as PromiseRejectedResult).reason } : {}) };
  };
  async function* emit(s: Scoring): AsyncGenerator<StreamItem> {
    const results = await s.results;
    let g = 0;
    for (const [k, p] of s.batch.entries()) {
      const d = s.decoded[k]!;
      if (d instanceof PgnError) {
        yield { index: p.index, source: p.source, error: d };
        continue;
      }
      const r = results[g++]!;
      if (r instanceof PgnError) yield { index: p.index, source: p.source, error: r };
      else yield { index: p.index, source: p.source, result: { ...r, source: p.source, timings: { ...r.timings, decode: d.ms } } };
    }
    if ('mistake' in s) throw s.mistake;
  }

  // Two batches in the scorer at once: while one is in its native passes (scores, upsampling,
  // segments), the next one's inference runs, so that ONNX Runtime does not wait for them.
  let current: Scoring | null = null;
  let ahead: Scoring | null = null;
  try {
    signal?.throwIfAborted();
    current = await start();
    while (current) {
      signal?.throwIfAborted();
      ahead = 'mistake' in current ? null : await start();
      yield* emit(current);
      [current, ahead] = [ahead, null];
    }
  } finally {
    // Abandoned, aborted or thrown: let the batches and decodes in flight finish before the scorer may go.
    for (const s of [current, ahead]) if (s) await s.results.catch(() => undefined);
    await Promise.allSettled(queue.map((p) => p.decoded));
    if (!exhausted) await iterator.return?.();
  }
}

/** Creates a scorer over the model, streams the inputs through it, releases the session at the end. */
export async function* scoreImages(inputs: Iterable<ImageInput> | AsyncIterable<ImageInput>, options: ScorerOptions & StreamOptions = {}): AsyncGenerator<StreamItem> {
  const scorer = await Scorer.create(options);
  try {
    yield* scoreStream(scorer, inputs, options);
  } finally {
    await scorer.dispose();
  }
}
