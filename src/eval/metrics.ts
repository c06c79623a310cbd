/**
 * Evaluation as the SegmentMeIfYouCan benchmark does it (DESIGN.md §2), streaming: each image's score
 * map (float32, at label resolution) and label mask (uint8: 0 in-distribution, 1 OoD, 255 void) is
 * added once, and the figures are pooled over the whole data set, never averaged per image.
 *
 * - PixelMetrics: AUROC, AuPRC (average precision), FPR at 95 % TPR and the best-F1 threshold. Exact by
 *   default (every distinct score a threshold, ties as scikit-learn; holds 4 bytes per non-void pixel,
 *   natively); `mode: 'binned'` reproduces the benchmark's own 768 percentile bins per image.
 * - InstanceMetrics: sIoU, PPV and component F1 at τ = 0.25 … 0.75, given the threshold (usually the
 *   pixel pass's `bestF1Threshold`).
 *
 * All figures are fractions in [0, 1]; formatPercent / metricsTable turn them into percent for tables.
 */
import { native, NativeInstanceMetrics, NativePixelMetrics } from '../addon';
import type { ImageComponents, InstanceMetricsResult, MetricCurves, PixelMetricsMode, PixelMetricsResult } from '../addon/metric-results';

export type { ImageComponents, InstanceMetricsResult, MetricCurves, PixelMetricsMode, PixelMetricsResult };

export interface PixelMetricsOptions {
  /** 'exact' (default) or 'binned'; giving `bins` alone selects 'binned'. */
  mode?: PixelMetricsMode;
  /** binned: the benchmark's num_bins (default 768): min(bins/2, count) quantiles per class and image. */
  bins?: number;
  /**
   * binned: round scores to float16 first, as the benchmark stores score maps (default true); then
   * |score| must stay ≤ 65504.
   */
  float16?: boolean;
  /** Threads for finish(); 0 or undefined = all cores. */
  threads?: number;
  /** Return the curves for plotting (≤ 1000 points each). Default true. */
  curves?: boolean;
}

type Settled = Promise<unknown>;

/** Shared bookkeeping: adds in flight are awaited by finish(); nothing is accepted after finish(). */
abstract class Accumulator<R> {
  readonly #pending = new Set<Settled>();
  #finish: Promise<R> | undefined;

  protected abstract readonly kind: string;
  protected abstract finishNative(): Promise<R>;

  protected track<T>(start: () => Promise<T>): Promise<T> {
    if (this.#finish) return Promise.reject(new Error(`this ${this.kind} accumulator is finished: add() is no longer possible; create a new one`));
    let promise: Promise<T>;
    try {
      promise = start();
    } catch (err) {
      return Promise.reject(err);
    }
    const settled = promise.then(
      () => undefined,
      () => undefined,
    );
    this.#pending.add(settled);
    void settled.then(() => this.#pending.delete(settled));
    return promise;
  }

  /** Adds still running. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Waits for the adds in flight (their own promises report their errors), then computes the figures
   * and frees the accumulated data. Calling it again returns the same promise.
   */
  finish(): Promise<R> {
    if (!this.#finish) {
      this.#finish = (async () => {
        while (this.#pending.size > 0) await Promise.all([...this.#pending]);
        return this.finishNative();
      })();
    }
    return this.#finish;
  }
}

/** Streaming dataset-wide pixel metrics. */
export class PixelMetrics extends Accumulator<PixelMetricsResult> {
  protected readonly kind = 'PixelMetrics';
  readonly #native: NativePixelMetrics;
  readonly #threads: number | undefined;
  readonly #curves: boolean | undefined;

  constructor(options: PixelMetricsOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError('PixelMetrics options must be an object');
    const { mode, bins, float16, threads, curves } = options;
    if (threads !== undefined && !(Number.isInteger(threads) && threads >= 0 && threads <= 1024))
      throw new RangeError(`threads must be an integer in [0, 1024], got ${String(threads)}`);
    if (curves !== undefined && typeof curves !== 'boolean') throw new TypeError('curves must be a boolean');
    this.#native = new native.PixelMetricsAccumulator({
      ...(mode !== undefined ? { mode } : {}),
      ...(bins !== undefined ? { bins } : {}),
      ...(float16 !== undefined ? { float16 } : {}),
    });
    this.#threads = threads;
    this.#curves = curves;
  }

  /**
   * Adds one image: scores [h, w] (float32, any real values; finite where not void) and labels [h, w]
   * (0, 1, 255). Runs on the thread pool; the arrays must stay attached until the promise settles. A
   * rejected image (RangeError naming its index in add order, from 0) leaves the accumulator unchanged.
   */
  add(scores: Float32Array, labels: Uint8Array, dims: [number, number]): Promise<void> {
    return this.track(() => this.#native.add(scores, labels, dims));
  }

  /** Images added so far. */
  get images(): number {
    return this.#native.images;
  }

  /** Bytes of native memory holding the accumulated data (exact: allocated chunk capacity). */
  get bytes(): number {
    return this.#native.bytes;
  }

  /**
   * The figures. Rejects with a RangeError when the added images hold no OoD or no in-distribution
   * pixel (AUROC and AP are undefined then); the accumulator is finished either way.
   */
  protected finishNative(): Promise<PixelMetricsResult> {
    return this.#native.finish({
      ...(this.#threads !== undefined ? { threads: this.#threads } : {}),
      ...(this.#curves !== undefined ? { curves: this.#curves } : {}),
    });
  }
}

export type Track = 'anomaly' | 'obstacle';

/** The benchmark's size filters per track. */
export const TRACK_SIZES: Readonly<Record<Track, { minPredictedSize: number; minGtSize: number }>> = Object.freeze({
  anomaly: Object.freeze({ minPredictedSize: 500, minGtSize: 100 }),
  obstacle: Object.freeze({ minPredictedSize: 50, minGtSize: 10 }),
});

export interface InstanceMetricsOptions {
  /** Predicted OoD where score > threshold: the pixel pass's bestF1Threshold, as the benchmark does. */
  threshold: number;
  /** Size-filter defaults: 'anomaly' (500 / 100 px, default) or 'obstacle' (50 / 10 px). */
  track?: Track;
  /** Predicted components with fewer pixels are removed. */
  minPredictedSize?: number;
  /** Ground-truth components with fewer pixels become void. */
  minGtSize?: number;
}

/** Streaming dataset-wide component metrics. */
export class InstanceMetrics extends Accumulator<InstanceMetricsResult> {
  protected readonly kind = 'InstanceMetrics';
  readonly #native: NativeInstanceMetrics;

  constructor(options: InstanceMetricsOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError('InstanceMetrics options must be an object { threshold, track?, minPredictedSize?, minGtSize? }');
    const track = options.track ?? 'anomaly';
    if (track !== 'anomaly' && track !== 'obstacle') throw new RangeError(`track must be "anomaly" or "obstacle", got ${JSON.stringify(track)}`);
    this.#native = new native.InstanceMetricsAccumulator({
      threshold: options.threshold,
      minPredictedSize: options.minPredictedSize ?? TRACK_SIZES[track].minPredictedSize,
      minGtSize: options.minGtSize ?? TRACK_SIZES[track].minGtSize,
    });
  }

  /** Adds one image (as PixelMetrics.add) and resolves to its components' figures. */
  add(scores: Float32Array, labels: Uint8Array, dims: [number, number]): Promise<ImageComponents> {
    return this.track(() => this.#native.add(scores, labels, dims));
  }

  get images(): number {
    return this.#native.images;
  }

  protected finishNative(): Promise<InstanceMetricsResult> {
    return this.#native.finish();
  }
}

/** 0.9123 → "91.23" (digits after the point); NaN → "-". */
export function formatPercent(fraction: number, digits = 2): string {
  return Number.isFinite(fraction) ? (100 * fraction).toFixed(digits) : '-';
}

/** A text table of figures in percent, one row per method. */
export function metricsTable(rows: { name: string; pixel?: PixelMetricsResult; instance?: InstanceMetricsResult }[], digits = 2): string {
  const header = ['method', 'AuPRC', 'FPR95', 'AUROC', 'sIoU', 'PPV', 'mean F1'];
  const body = rows.map((r) => [
    r.name,
    ...[r.pixel?.auprc, r.pixel?.fpr95, r.pixel?.auroc, r.instance?.sIoU, r.instance?.ppv, r.instance?.meanF1].map((v) =>
      v === undefined ? '-' : formatPercent(v, digits),
    ),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c].length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
