/**
 * The queue worker's processor: one BullMQ job → one image scored → the same record as a line of
 * `pgn score`. A backend can run it in its own worker process:
 * `new Worker(queue, createProcessor({ model }).process, { connection })`.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UnrecoverableError, type Job } from 'bullmq';
import { PgnError } from '../common/errors';
import { errorRecord, OutputOptions, resultRecord, ScoreRecord } from '../batch/record';
import { ImageInput, Scorer, ScorerOptions } from '../run/scorer';

/** A job's data: the image, and where to write its files (none by default). */
export interface ScoreJobData {
  /** A path or a file: URL the worker can read, or the encoded bytes in base64. */
  image: string | { base64: string };
  /** Output files as `pgn score --out` writes them, named `<dir>/<stem>.*` (stem: default the job id). */
  outputs?: OutputOptions & { stem?: string };
}

export interface ScoreProcessor {
  /** The BullMQ processor: resolves to the image's record; rejects to fail the job. */
  process(job: Job<ScoreJobData>): Promise<ScoreRecord>;
  /** Releases the model session (after the worker has closed). */
  close(): Promise<void>;
}

/**
 * Bad input (a PgnError other than an output that cannot be written: an image that does not decode,
 * a file that is not there) fails for good, without retries; anything else (a full disk, a lost
 * session) is thrown as is, for BullMQ's retries with backoff.
 */
const RETRIABLE = new Set(['PGN_OUTPUT', 'PGN_BACKEND']);

function jobInput(data: ScoreJobData): { input: ImageInput; source: string } {
  const image = data?.image;
  if (typeof image === 'string') {
    const file = image.startsWith('file:') ? fileURLToPath(image) : image;
    return { input: file, source: file };
  }
  if (image && typeof image === 'object' && typeof image.base64 === 'string') return { input: Buffer.from(image.base64, 'base64'), source: '<buffer>' };
  throw new TypeError('job data: image must be a path, a file: URL or { base64 }');
}

function fail(err: unknown): never {
  if (err instanceof TypeError || (err instanceof PgnError && !RETRIABLE.has(err.code))) {
    const record = errorRecord('', err).error!;
    throw new UnrecoverableError(`${record.code}: ${record.message}`);
  }
  throw err;
}

/** A processor over one Scorer (created once, shared by the worker's concurrent jobs). */
export async function createProcessor(options: ScorerOptions = {}): Promise<ScoreProcessor> {
  const scorer = await Scorer.create({ reuseArrays: true, ...options }); // each result is released once written
  const colors = scorer.session.card.classes.map((c) => c.color);
  return {
    async process(job) {
      try {
        const { input, source } = jobInput(job.data);
        const result = { ...(await scorer.score(input)), source };
        const outputs = job.data.outputs ?? {};
        const stem = outputs.stem ?? String(job.id);
        if (path.isAbsolute(stem) || stem.split(/[\\/]/).includes('..')) throw new RangeError(`job data: outputs.stem must stay inside outputs.dir, got "${stem}"`);
        const record = await resultRecord(result, stem, outputs, colors);
        scorer.release(result); // written and summarized: the maps go back now
        return record;
      } catch (err) {
        fail(err);
      }
    },
    close: () => scorer.dispose(),
  };
}
