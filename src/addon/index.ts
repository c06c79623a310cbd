/**
 * src/addon/ owns the compiled addon (native/): which build is loaded, and its raw typed interface.
 * Only src/ modules call it; they validate nothing the binding validates again, but they translate
 * backend availability into BackendError. Nothing here is public API.
 */
import path from 'node:path';
import { BackendError } from '../common/errors';
import type { ImageComponents, InstanceMetricsResult, PixelMetricsResult } from './metric-results';
import { addonFacts, chooseAddon, type AddonChoice } from './select';

export type { AddonChoice, AddonOrigin } from './select';

/** x86 instruction-set levels of the CPU passes (native/core/cpu_isa.h); 'baseline' elsewhere. */
export type CpuIsa = 'baseline' | 'avx2' | 'avx512';

export interface NativeScoreSpec {
  kind: string;
  p?: number;
  variant?: 'exact' | 'code';
}

export interface NativeComponentsOptions {
  scores: Float32Array;
  dims: number[];
  threshold: number;
  roi?: Uint8Array;
  prediction?: Int32Array;
  connectivity?: number;
  minArea?: number;
  labels?: boolean;
  backend?: string;
  threads?: number;
}

/** Segments of all images as columns: image n has counts[n] segments (ids 1..counts[n]), stored in order. */
export interface NativeSegmentColumns {
  counts: Uint32Array;
  area: Uint32Array;
  bbox: Int32Array;
  centroid: Float64Array;
  meanScore: Float64Array;
  maxScore: Float32Array;
  majorityClass: Int32Array | null;
}

export interface NativeComponentsResult {
  labels: Uint32Array | null;
  segments: NativeSegmentColumns;
}

export interface NativeSecondLayerOptions {
  logits: Float32Array;
  logitsDims: number[];
  features: Float32Array;
  featuresDims: number[];
  input: Float32Array;
  inputDims: number[];
  kernel: Float32Array;
  kernelShape: number[];
  strides?: number[];
  dilations?: number[];
  pads?: number[];
  activation?: { kind: string; alpha?: number; min?: number; max?: number; slopes?: Float32Array };
  bnScale?: Float32Array;
  codeScale?: Float32Array;
  scores: NativeScoreSpec[];
  prediction?: boolean;
  threads?: number;
  backend?: string;
}

export interface NativeAddon {
  readonly cudaCompiled: boolean;
  readonly defaultThreads: number;
  cudaDeviceCount(): number;
  cpuIsa(): { active: CpuIsa; detected: CpuIsa };
  limitCpuIsa(isa: string): void;
  spinWait(): number;
  setSpinWait(microseconds: number): void;
  components(options: NativeComponentsOptions): Promise<NativeComponentsResult>;
  /** The CUDA labeling's steps run sequentially on the CPU (tests): same results as components(). */
  componentsGridEmulation(options: NativeComponentsOptions & { blockDims?: number[]; shuffleSeed?: number }): Promise<NativeComponentsResult>;
  scores(options: {
    logits: Float32Array;
    logitsDims: number[];
    features?: Float32Array;
    featuresDims?: number[];
    scores: NativeScoreSpec[];
    prediction?: boolean;
    threads?: number;
    backend?: string;
  }): Promise<{ maps: Float32Array[]; prediction: Int32Array | null }>;
  /** pgn2-oh / pgn2-uni: gradient norms w.r.t. the second-to-last conv (native/binding/second_layer_binding.cc). */
  secondLayerScores(options: NativeSecondLayerOptions): Promise<{ maps: Float32Array[]; prediction: Int32Array | null }>;
  upsample(options: {
    input: Float32Array;
    dims: number[];
    size: number[];
    alignCorners?: boolean;
    threads?: number;
    output?: Float32Array;
  }): Promise<Float32Array>;
  upsampleArgmax(options: {
    logits: Float32Array;
    dims: number[];
    size: number[];
    alignCorners?: boolean;
    threads?: number;
    output?: Int32Array;
  }): Promise<Int32Array>;
  /** Interleaved 8-bit RGB images → the model input [N, 3, plane] through per-channel tables (native/binding/normalize_binding.cc). */
  normalizeImages(options: {
    images: Uint8Array[];
    plane: number;
    tables: Float32Array;
    source: number[];
    threads?: number;
  }): Promise<Float32Array>;
  /** min, max and mean (float64, in index order) of each map (native/binding/summary_binding.cc). */
  summarizeMaps(options: { maps: Float32Array[]; threads?: number }): Promise<{ min: number; max: number; mean: number }[]>;
  /** Detaches each array's buffer, freeing its memory now (native/binding/release_binding.cc); each must be its buffer's only view. */
  release(arrays: ArrayBufferView[]): void;
  PixelMetricsAccumulator: new (options?: {
    mode?: 'exact' | 'binned';
    bins?: number;
    float16?: boolean;
    chunkValues?: number;
  }) => NativePixelMetrics;
  InstanceMetricsAccumulator: new (options: {
    threshold: number;
    minPredictedSize?: number;
    minGtSize?: number;
  }) => NativeInstanceMetrics;
}

/** Streaming pixel-metrics accumulator (native/binding/metrics_binding.cc). */
export interface NativePixelMetrics {
  add(scores: Float32Array, labels: Uint8Array, dims: number[]): Promise<void>;
  finish(options?: { threads?: number; curves?: boolean }): Promise<PixelMetricsResult>;
  readonly images: number;
  readonly pending: number;
  readonly bytes: number;
  readonly finished: boolean;
}

/** Streaming component-metrics accumulator (native/binding/metrics_binding.cc). */
export interface NativeInstanceMetrics {
  add(scores: Float32Array, labels: Uint8Array, dims: number[]): Promise<ImageComponents>;
  finish(): Promise<InstanceMetricsResult>;
  readonly images: number;
  readonly pending: number;
  readonly finished: boolean;
}

let loaded: { addon: NativeAddon; choice: AddonChoice } | undefined;

function requireAddon(choice: AddonChoice): { addon: NativeAddon; choice: AddonChoice } {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return { addon: require(choice.path) as NativeAddon, choice };
  } catch (err) {
    if (choice.fallback) return requireAddon({ ...choice.fallback, reason: `${choice.fallback.reason}: ${(err as Error).message}` });
    throw new BackendError(`cannot load the pgn-ood addon ${choice.path} (${choice.origin}): ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The addon, loaded on first use (select.ts says which build), so that a missing or broken build
 * is a BackendError where it is used rather than an exception while importing the package.
 */
export function loadAddon(): { addon: NativeAddon; choice: AddonChoice } {
  loaded ??= requireAddon(chooseAddon(addonFacts(path.join(__dirname, '..', '..'))));
  return loaded;
}

/**
 * Frees the memory of arrays that nothing reads any more now, not at the garbage collection that
 * would find them (native/binding/release_binding.cc says why that matters under load). Arrays that
 * share their buffer (views of part of it) are left to the collector; the others read as empty after.
 */
export function releaseArrays(arrays: readonly (ArrayBufferView | null | undefined)[]): void {
  const whole = (a: ArrayBufferView | null | undefined): a is ArrayBufferView =>
    !!a && a.buffer instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
  native.release(arrays.filter(whole));
}

export const native: NativeAddon = new Proxy({} as NativeAddon, {
  get: (_target, key) => Reflect.get(loadAddon().addon, key),
});
