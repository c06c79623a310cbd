/**
 * The compiled addon and its raw interface. Only src/ modules call it; they validate nothing the
 * binding validates again, but they translate backend availability into BackendError.
 */
import path from 'node:path';

export interface NativeScoreSpec {
  kind: string;
  p?: number;
  variant?: 'exact' | 'code';
}

export interface NativeAddon {
  readonly cudaCompiled: boolean;
  readonly defaultThreads: number;
  cudaDeviceCount(): number;
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
}

/** PGN_OOD_ADDON selects another build (e.g. build-cuda/Release/pgn_ood.node); default: node-gyp's. */
export function addonPath(): string {
  return process.env.PGN_OOD_ADDON ?? path.join(__dirname, '..', 'build', 'Release', 'pgn_ood.node');
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: NativeAddon = require(addonPath());
