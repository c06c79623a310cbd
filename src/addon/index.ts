/**
 * src/addon/ owns the compiled addon (native/): which build is loaded, and its raw typed interface.
 * Only src/ modules call it; they validate nothing the binding validates again, but they translate
 * backend availability into BackendError. Nothing here is public API.
 */
import path from 'node:path';
import type { ImageComponents, InstanceMetricsResult, PixelMetricsResult } from './metric-results';

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
  }): Promise<Float32Array>;
  upsampleArgmax(options: {
    logits: Float32Array;
    dims: number[];
    size: number[];
    alignCorners?: boolean;
    threads?: number;
  }): Promise<Int32Array>;
  /** Interleaved 8-bit RGB images → the model input [N, 3, plane] through per-channel tables (native/binding/normalize_binding.cc). */
  normalizeImages(options: {
    images: Uint8Array[];
    plane: number;
    tables: Float32Array;
    source: number[];
    threads?: number;
  }): Promise<Float32Array>;
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

/** PGN_OOD_ADDON selects another build (e.g. build-cuda/Release/pgn_ood.node); default: node-gyp's. */
export function addonPath(): string {
  return process.env.PGN_OOD_ADDON ?? path.join(__dirname, '..', '..', 'build', 'Release', 'pgn_ood.node');
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: NativeAddon = require(addonPath());
