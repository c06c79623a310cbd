/**
 * OoD segments (DESIGN.md §1): threshold score maps, label the connected components natively, and
 * report per segment its area, bounding box, centroid, mean and max score and majority predicted
 * class; plus the calibration of a threshold at a target false-positive rate.
 *
 * Foreground = score > threshold (the float32 score compared exactly with the threshold as a
 * double) and, with a region of interest, roi != 0. A NaN score is never foreground. Segments are
 * numbered 1..K per image in raster order of their first pixel (top to bottom, left to right), after
 * the ones under minArea are dropped; label 0 is background. Pixel (x, y) has its centre at (x, y).
 */
import { types } from 'node:util';
import { native, type NativeSegmentColumns } from '../addon';
import { checkBackend, type Backend, type MapStack } from './scores';

/** Component labels [N, h, w]: 0 = background, 1..K the segments of each image. */
export interface LabelStack {
  data: Uint32Array;
  dims: [number, number, number];
}

/** A uint8 mask, one per map [N, h, w] or one for all maps [h, w]; nonzero = set. */
export interface MaskStack {
  data: Uint8Array;
  dims: [number, number, number] | [number, number];
}

export interface Segment {
  /** 1..K, the segment's value in the label image. */
  id: number;
  /** Pixels. */
  area: number;
  /** [x, y, width, height] of the bounding box, in pixels. */
  bbox: [number, number, number, number];
  /** Mean [x, y] of the segment's pixels. */
  centroid: [number, number];
  meanScore: number;
  maxScore: number;
  /** Most frequent predicted class over the segment (ties: the smallest class id); null without prediction. */
  majorityClass: number | null;
}

/**
 * The segments of one image as columns (what the native code returns; cheaper than objects when a
 * noisy map has 10^5 segments): segment id = index + 1; bbox and centroid hold 4 and 2 values per segment.
 */
export interface SegmentTable {
  count: number;
  area: Uint32Array;
  bbox: Int32Array;
  centroid: Float64Array;
  meanScore: Float64Array;
  maxScore: Float32Array;
  majorityClass: Int32Array | null;
}

export interface SegmentOptions {
  /** Foreground = score > threshold. Any number but NaN. */
  threshold: number;
  /** Region of interest: only pixels with roi != 0 can be foreground (e.g. void cleared). */
  roi?: MaskStack;
  /** Predicted classes [N, h, w] (ScoreResult.prediction): gives each segment's majorityClass. */
  prediction?: MapStack<Int32Array>;
  /** 8 (default) or 4. */
  connectivity?: 4 | 8;
  /** Segments with fewer pixels are dropped. Default 0 (keep all). */
  minArea?: number;
  /** Return the label images. Default true. */
  labels?: boolean;
  backend?: Backend;
  /** Worker threads; 0 or undefined = all cores. */
  threads?: number;
}

export interface SegmentResult {
  labels: LabelStack | null;
  /** One list per image, ordered by id. */
  segments: Segment[][];
}

export interface SegmentTableResult {
  labels: LabelStack | null;
  /** One table per image. */
  tables: SegmentTable[];
}

function dimsText(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

function checkMapStack(scores: MapStack): [number, number, number] {
  if (scores === null || typeof scores !== 'object' || !types.isFloat32Array(scores.data) || !Array.isArray(scores.dims) || scores.dims.length !== 3)
    throw new TypeError('scores must be { data: Float32Array, dims: [N, h, w] }');
  return scores.dims;
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function splitTables(columns: NativeSegmentColumns): SegmentTable[] {
  const tables: SegmentTable[] = [];
  let first = 0;
  for (const count of columns.counts) {
    const end = first + count;
    tables.push({
      count,
      area: columns.area.subarray(first, end),
      bbox: columns.bbox.subarray(4 * first, 4 * end),
      centroid: columns.centroid.subarray(2 * first, 2 * end),
      meanScore: columns.meanScore.subarray(first, end),
      maxScore: columns.maxScore.subarray(first, end),
      majorityClass: columns.majorityClass ? columns.majorityClass.subarray(first, end) : null,
    });
    first = end;
  }
  return tables;
}

/** The segments of one table as objects. */
export function segmentsFromTable(table: SegmentTable): Segment[] {
  const out: Segment[] = new Array(table.count);
  const { area, bbox, centroid, meanScore, maxScore, majorityClass } = table;
  for (let i = 0; i < table.count; i++) {
    out[i] = {
      id: i + 1,
      area: area[i],
      bbox: [bbox[4 * i], bbox[4 * i + 1], bbox[4 * i + 2], bbox[4 * i + 3]],
      centroid: [centroid[2 * i], centroid[2 * i + 1]],
      meanScore: meanScore[i],
      maxScore: maxScore[i],
      majorityClass: majorityClass ? majorityClass[i] : null,
    };
  }
  return out;
}

/** findSegments with the statistics as typed-array columns (one table per image). */
export async function findSegmentTables(scores: MapStack, options: SegmentOptions): Promise<SegmentTableResult> {
  const dims = checkMapStack(scores);
  if (options === null || typeof options !== 'object') throw new TypeError('options must be { threshold, ... }');
  const { roi, prediction } = options;
  if (roi !== undefined) {
    if (roi === null || typeof roi !== 'object' || !types.isUint8Array(roi.data) || !Array.isArray(roi.dims))
      throw new TypeError('roi must be { data: Uint8Array, dims: [N, h, w] or [h, w] }');
    if (!sameDims(roi.dims, dims) && !sameDims(roi.dims, dims.slice(1)))
      throw new RangeError(`roi dims ${dimsText(roi.dims)} must be those of the score maps ${dimsText(dims)} or [h, w] = ${dimsText(dims.slice(1))}`);
  }
  if (prediction !== undefined) {
    if (prediction === null || typeof prediction !== 'object' || !types.isInt32Array(prediction.data) || !Array.isArray(prediction.dims))
      throw new TypeError('prediction must be { data: Int32Array, dims: [N, h, w] }');
    if (!sameDims(prediction.dims, dims))
      throw new RangeError(`prediction dims ${dimsText(prediction.dims)} must be those of the score maps ${dimsText(dims)}`);
  }
  checkBackend(options.backend);
  const out = await native.components({
    scores: scores.data,
    dims,
    threshold: options.threshold,
    ...(roi ? { roi: roi.data } : {}),
    ...(prediction ? { prediction: prediction.data } : {}),
    connectivity: options.connectivity,
    minArea: options.minArea,
    labels: options.labels,
    backend: options.backend,
    threads: options.threads,
  });
  return { labels: out.labels ? { data: out.labels, dims: [dims[0], dims[1], dims[2]] } : null, tables: splitTables(out.segments) };
}

/**
 * Thresholds the score maps [N, h, w] and returns the connected components of each map with their
 * statistics (and the label images unless labels: false). Runs on the libuv pool; the arrays must
 * not be transferred or detached until the promise settles. The result's `segments` are built on
 * their first read (findSegmentTables gives the same values as columns, without objects).
 */
export async function findSegments(scores: MapStack, options: SegmentOptions): Promise<SegmentResult> {
  const { labels, tables } = await findSegmentTables(scores, options);
  return withLazySegments(labels, tables);
}

/**
 * The result with `segments` built from the tables on its first read (then kept). A noisy 2 MP map
 * has 10^5 segments: their objects take ~35 MB of fresh heap, 100-250 ms (mostly page faults and
 * garbage collection), 5-10× the labeling; callers that only want the labels, or read the segments
 * later, do not pay it with the call. `segments` is an own enumerable property (a getter and a
 * setter), so spreading, JSON, structuredClone, equality checks and assignment see a plain value.
 */
function withLazySegments(labels: LabelStack | null, tables: SegmentTable[]): SegmentResult {
  let segments: Segment[][] | undefined;
  return {
    labels,
    get segments(): Segment[][] {
      return (segments ??= tables.map(segmentsFromTable));
    },
    set segments(value: Segment[][]) {
      segments = value;
    },
  };
}

/**
 * Calibration: the threshold t at which at most the fraction `fpr` of the in-distribution pixels
 * has a score above t (score > t flags a pixel), and the smallest such t among the scores: with the
 * n in-distribution scores sorted in decreasing order v_1 >= v_2 >= ..., t = v_{k+1} for
 * k = floor(fpr·n) (exact, no binning); k = n (fpr = 1) gives −Infinity. Ties at t make the
 * achieved rate lower than fpr; findSegments with this threshold flags exactly the pixels counted. NaN scores count as in-distribution pixels that
 * are never flagged. inDistributionMasks: nonzero = in-distribution pixel (others — OoD or void —
 * are ignored), same dims as the maps or one [h, w] mask for all.
 */
export function thresholdAtFpr(scoreMaps: MapStack, inDistributionMasks: MaskStack, fpr: number): number {
  const dims = checkMapStack(scoreMaps);
  const masks = inDistributionMasks;
  if (masks === null || typeof masks !== 'object' || !types.isUint8Array(masks.data) || !Array.isArray(masks.dims))
    throw new TypeError('inDistributionMasks must be { data: Uint8Array, dims: [N, h, w] or [h, w] }');
  const plane = dims[1] * dims[2];
  const shared = sameDims(masks.dims, dims.slice(1)) && !sameDims(masks.dims, dims);
  if (!sameDims(masks.dims, dims) && !shared)
    throw new RangeError(`inDistributionMasks dims ${dimsText(masks.dims)} must be those of the score maps ${dimsText(dims)} or [h, w]`);
  const total = dims[0] * plane;
  if (scoreMaps.data.length !== total) throw new RangeError(`scores has ${scoreMaps.data.length} elements but dims ${dimsText(dims)} call for ${total}`);
  if (masks.data.length !== (shared ? plane : total))
    throw new RangeError(`inDistributionMasks has ${masks.data.length} elements but its dims call for ${shared ? plane : total}`);
  if (typeof fpr !== 'number' || !(fpr >= 0 && fpr <= 1)) throw new RangeError(`fpr must be a number in [0, 1], got ${String(fpr)}`);

  const s = scoreMaps.data;
  const m = masks.data;
  let n = 0;
  for (let i = 0; i < total; i++) if (m[shared ? i % plane : i] !== 0) n++;
  if (n === 0) throw new RangeError('inDistributionMasks mark no in-distribution pixel: nothing to calibrate on');
  const values = new Float32Array(n);
  let j = 0;
  for (let i = 0; i < total; i++) {
    if (m[shared ? i % plane : i] === 0) continue;
    const v = s[i];
    values[j++] = Number.isNaN(v) ? -Infinity : v;
  }
  values.sort(); // numeric, ascending
  const k = flaggedAtFpr(n, fpr);
  return k >= n ? -Infinity : values[n - 1 - k];
}

/**
 * thresholdAtFpr's k: how many of n in-distribution pixels may be flagged at `fpr` (the threshold is
 * the (k+1)-th largest score, −Infinity when k = n). Shared with the streaming calibration.
 */
export function flaggedAtFpr(n: number, fpr: number): number {
  // fpr·n carries the rounding of fpr and of the product: 0.29·100 = 28.999999999999996 must give 29.
  return Math.min(n, Math.floor(fpr * n * (1 + 4 * Number.EPSILON)));
}
