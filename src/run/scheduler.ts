/**
 * Admission control and dynamic batching for `Scorer.score()`. A bounded number of images are in
 * flight (decoding, waiting for a batch, in inference, post-processing): memory follows that bound,
 * not the number of callers. The others wait, still encoded, in a bounded first-in first-out queue;
 * a call that finds the queue full fails at once with an OverloadedError. Decoded images are
 * coalesced into one inference batch of up to `maxBatch`, waiting at most `maxDelayMs` for it to
 * fill (Triton's dynamic batcher, TorchServe's batchSize / maxBatchDelay). One batch runs at a time.
 */
import { performance } from 'node:perf_hooks';
import { releaseArrays } from '../addon';
import { OverloadedError } from '../common/errors';
import type { DecodedImage } from '../image/preprocess';

export interface AdmissionOptions {
  /** Images admitted at once. Default 2 × maxBatch (one batch scored while the next decodes). */
  maxInFlight?: number;
  /** Calls waiting for admission; one more fails with OverloadedError. Default 1024. */
  maxQueue?: number;
  /** Images per inference batch. Default 1 (capped by a model's fixed batch size). */
  maxBatch?: number;
  /** How long a decoded image waits for its batch to fill, in ms. Default 0: what is ready goes. */
  maxDelayMs?: number;
}

export interface CallOptions {
  /** Fails the call with a TimeoutError (a DOMException) after this many ms, queued or not. */
  timeoutMs?: number;
  /** Fails the call with the signal's reason when it aborts. */
  signal?: AbortSignal;
}

/** What the scheduler needs of a scorer: decode one input, score one batch of decoded images. */
export interface BatchScorer<I, R> {
  decode(input: I): Promise<DecodedImage>;
  scoreDecoded(images: DecodedImage[]): Promise<R[]>;
}

/** The scheduler's state, for metrics. */
export interface SchedulerLoad {
  queued: number;
  inFlight: number;
}

interface Job<I, R> {
  input: I;
  resolve: (r: { result: R; decodeMs: number; batchSize: number }) => void;
  reject: (err: unknown) => void;
  /** Set once the caller has its answer (a result, an error, or an abort). */
  settled: boolean;
}

interface Ready<I, R> {
  job: Job<I, R>;
  image: DecodedImage;
  decodeMs: number;
  since: number;
}

function positiveInteger(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}

export class Scheduler<I, R> {
  readonly maxInFlight: number;
  readonly maxQueue: number;
  readonly maxBatch: number;
  readonly maxDelayMs: number;
  private readonly queue: Job<I, R>[] = [];
  private readonly ready: Ready<I, R>[] = [];
  private inFlight = 0;
  private running = false;
  private timer: NodeJS.Timeout | null = null;

  /** `fixedBatch`: the model's fixed batch size, which caps maxBatch; `sameSize`: images of a batch must share a size. */
  constructor(private readonly scorer: BatchScorer<I, R>, options: AdmissionOptions, fixedBatch: number | null, private readonly sameSize: boolean) {
    this.maxBatch = Math.min(positiveInteger('maxBatch', options.maxBatch, 1), fixedBatch ?? Infinity);
    this.maxInFlight = positiveInteger('maxInFlight', options.maxInFlight, 2 * this.maxBatch);
    this.maxQueue = options.maxQueue === Infinity ? Infinity : positiveInteger('maxQueue', options.maxQueue, 1024);
    const delay = options.maxDelayMs ?? 0;
    if (typeof delay !== 'number' || !(delay >= 0) || delay === Infinity) throw new RangeError(`maxDelayMs must be a finite number >= 0, got ${delay}`);
    this.maxDelayMs = delay;
  }

  get load(): SchedulerLoad {
    return { queued: this.queue.length, inFlight: this.inFlight };
  }

  submit(input: I, options: CallOptions = {}): Promise<{ result: R; decodeMs: number; batchSize: number }> {
    const signal = callSignal(options);
    if (signal?.aborted) return Promise.reject(signal.reason);
    const canStart = this.inFlight < this.maxInFlight && this.queue.length === 0;
    if (!canStart && this.queue.length >= this.maxQueue)
      return Promise.reject(new OverloadedError(`the scorer is overloaded: ${this.inFlight} images in flight (maxInFlight ${this.maxInFlight}) and ${this.queue.length} calls queued (maxQueue ${this.maxQueue})`));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const queued = this.queue.indexOf(job);
        if (queued >= 0) this.queue.splice(queued, 1); // an admitted image finishes; its result is dropped
        job.reject(signal!.reason);
      };
      const job: Job<I, R> = {
        input,
        settled: false,
        resolve: (r) => settle(job, () => resolve(r)),
        reject: (err) => settle(job, () => reject(err)),
      };
      const settle = (j: Job<I, R>, answer: () => void) => {
        if (j.settled) return;
        j.settled = true;
        signal?.removeEventListener('abort', onAbort);
        answer();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (canStart) this.start(job);
      else this.queue.push(job);
    });
  }

  private start(job: Job<I, R>): void {
    this.inFlight++;
    const t0 = performance.now();
    this.scorer.decode(job.input).then(
      (image) => {
        this.ready.push({ job, image, decodeMs: performance.now() - t0, since: performance.now() });
        this.pump();
      },
      (err: unknown) => {
        job.reject(err);
        this.release(1);
      },
    );
  }

  /** Frees slots and admits queued calls, first in first out. */
  private release(slots: number): void {
    this.inFlight -= slots;
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) this.start(this.queue.shift()!);
  }

  /** Sends the next batch to inference when it is full or its oldest image has waited maxDelayMs. */
  private pump(): void {
    // Calls aborted while their image waited for a batch: not scored at all.
    const dropped = this.ready.filter((r) => r.job.settled);
    if (dropped.length > 0) {
      for (const d of dropped) this.ready.splice(this.ready.indexOf(d), 1);
      this.release(dropped.length);
    }
    if (this.running || this.ready.length === 0) return;
    const first = this.ready[0]!;
    const fits = (r: Ready<I, R>) => !this.sameSize || (r.image.width === first.image.width && r.image.height === first.image.height);
    const candidates = this.ready.filter(fits).slice(0, this.maxBatch);
    const waited = performance.now() - first.since;
    if (candidates.length < this.maxBatch && waited < this.maxDelayMs) {
      this.timer ??= setTimeout(() => {
        this.timer = null;
        this.pump();
      }, this.maxDelayMs - waited);
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const c of candidates) this.ready.splice(this.ready.indexOf(c), 1);
    this.running = true;
    void this.runBatch(candidates);
  }

  private async runBatch(batch: Ready<I, R>[]): Promise<void> {
    try {
      const results = await this.scorer.scoreDecoded(batch.map((b) => b.image));
      batch.forEach((b, k) => b.job.resolve({ result: results[k]!, decodeMs: b.decodeMs, batchSize: batch.length }));
    } catch (err) {
      for (const b of batch) b.job.reject(err);
    }
    releaseArrays(batch.map((b) => b.image.data)); // decoded pixels are the scheduler's own: nothing reads them after
    this.running = false;
    this.release(batch.length);
    this.pump();
  }
}

/** The call's signal and its timeout as one signal, or undefined. */
function callSignal(options: CallOptions): AbortSignal | undefined {
  const { timeoutMs, signal } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  if (timeoutMs === undefined) return signal;
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw new RangeError(`timeoutMs must be a positive finite number, got ${timeoutMs}`);
  const timeout = AbortSignal.timeout(timeoutMs);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}
