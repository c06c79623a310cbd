/**
 * Per-pixel OoD scores (DESIGN.md §1) from logits and penultimate features, computed natively.
 * Higher = more likely out-of-distribution, for every score.
 */
// util.types checks work across realms (vm contexts, Jest), where instanceof does not.
import { types } from 'node:util';
import { BackendError } from '../common/errors';
import { loadAddon, native, type AddonOrigin, type CpuIsa } from '../addon';
import { checkSecondLayerInputs, SecondLayerInputs, secondLayerNative } from './second-layer';
import type { MapStack, Tensor } from './tensor';

export type { MapStack, Tensor };

export const SCORE_KINDS = ['pgn-oh', 'pgn-uni', 'entropy', 'msp', 'maxlogit', 'energy', 'pgn2-oh', 'pgn2-uni'] as const;
export type ScoreKind = (typeof SCORE_KINDS)[number];

/**
 * One score. For the PGN kinds, p is the norm's exponent (default 0.5) and variant chooses the
 * exact gradient ‖s − y‖_p·‖φ‖_p ('exact', default) or the authors'-code label factor ('code':
 * softmax·(1 − onehot) for pgn-oh, (C−1)/C·softmax for pgn-uni).
 * pgn2-oh / pgn2-uni: the same labels, gradient w.r.t. the second-to-last conv (src/scoring/second-layer.ts);
 * their 'code' variant also takes the authors' channel norm at p = 0.5 and BatchNorm γ alone.
 */
export interface ScoreSpec {
  kind: ScoreKind;
  p?: number;
  variant?: 'exact' | 'code';
}

export type Backend = 'cpu' | 'cuda';

export const DEFAULT_P = 0.5;

export function isPgn(kind: ScoreKind): boolean {
  return kind === 'pgn-oh' || kind === 'pgn-uni';
}

/** The second-layer kinds: they need options.secondLayer (the conv's input x, K, the layer). */
export function isPgn2(kind: ScoreKind): boolean {
  return kind === 'pgn2-oh' || kind === 'pgn2-uni';
}

/** Kinds that take p and variant. */
function takesOptions(kind: ScoreKind): boolean {
  return isPgn(kind) || isPgn2(kind);
}

/** Parses "pgn-oh:p=0.5", "pgn-uni:p=2:variant=code", "entropy". */
export function parseScore(text: string): ScoreSpec {
  const [kind, ...options] = text.trim().split(':');
  if (!(SCORE_KINDS as readonly string[]).includes(kind))
    throw new RangeError(`unknown score "${text}": the kinds are ${SCORE_KINDS.join(', ')}`);
  const spec: ScoreSpec = { kind: kind as ScoreKind };
  for (const option of options) {
    const [key, value, extra] = option.split('=');
    if (!takesOptions(spec.kind)) throw new RangeError(`score "${text}": ${kind} takes no options`);
    if ((key === 'p' || key === 'variant') && spec[key] !== undefined) throw new RangeError(`score "${text}": ${key} is given twice`);
    // Decimal only: Number() would also take 0x10, 0b11 and ' 2 '.
    if (key === 'p' && extra === undefined && /^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(value ?? '') && Number.isFinite(Number(value)) && Number(value) > 0)
      spec.p = Number(value);
    else if (key === 'variant' && extra === undefined && (value === 'exact' || value === 'code')) spec.variant = value;
    else throw new RangeError(`score "${text}": bad option "${option}" (expected p=<number > 0> or variant=exact|code)`);
  }
  return normalizeScore(spec);
}

/** Fills defaults and checks a spec given as an object. */
export function normalizeScore(spec: ScoreSpec | string): ScoreSpec {
  if (typeof spec === 'string') return parseScore(spec);
  if (spec === null || typeof spec !== 'object' || !(SCORE_KINDS as readonly string[]).includes(spec.kind))
    throw new TypeError(`score must be a string like "pgn-oh:p=0.5" or { kind, p?, variant? } with kind one of ${SCORE_KINDS.join(', ')}`);
  if (!takesOptions(spec.kind)) return { kind: spec.kind };
  const p = spec.p ?? DEFAULT_P;
  if (typeof p !== 'number' || !(p > 0) || !Number.isFinite(p)) throw new RangeError(`score ${spec.kind}: p must be a finite number > 0, got ${String(p)}`);
  const variant = spec.variant ?? 'exact';
  if (variant !== 'exact' && variant !== 'code') throw new RangeError(`score ${spec.kind}: variant must be "exact" or "code"`);
  return { kind: spec.kind, p, variant };
}

/** File-friendly name: pgn-oh_p0.5, pgn-uni_p2_code, entropy. */
export function scoreName(spec: ScoreSpec | string): string {
  const s = normalizeScore(spec);
  if (!takesOptions(s.kind)) return s.kind;
  return `${s.kind}_p${s.p}${s.variant === 'code' ? '_code' : ''}`;
}

/** The label used in tables and the CLI: pgn-oh:p=0.5, pgn-uni:p=2:variant=code. */
export function scoreLabel(spec: ScoreSpec | string): string {
  const s = normalizeScore(spec);
  if (!takesOptions(s.kind)) return s.kind;
  return `${s.kind}:p=${s.p}${s.variant === 'code' ? ':variant=code' : ''}`;
}

export interface ScoreOptions {
  scores: (ScoreSpec | string)[];
  /** Also return the predicted class (argmax) map. Default true. */
  prediction?: boolean;
  /** Worker threads for the native pass; 0 or undefined = all cores. */
  threads?: number;
  backend?: Backend;
  /** The pgn2-* scores' extra inputs: the second-to-last conv's input x, the final conv's K, the layer. */
  secondLayer?: SecondLayerInputs;
}

export interface ScoreResult {
  /** One entry per requested score, in request order. */
  maps: { spec: ScoreSpec; name: string; map: MapStack }[];
  prediction?: MapStack<Int32Array>;
}

export function checkBackend(backend: Backend | undefined): void {
  if (backend === undefined || backend === 'cpu') return;
  if (backend !== 'cuda') throw new RangeError(`backend must be "cpu" or "cuda", got ${JSON.stringify(backend)}`);
  if (!native.cudaCompiled)
    throw new BackendError(`backend "cuda" is not compiled into this build (${loadAddon().choice.reason}): the prebuilt CUDA variant loads where a CUDA driver is installed; from source, \`npm run build:cuda\` and set PGN_OOD_ADDON`);
  if (native.cudaDeviceCount() === 0) throw new BackendError('backend "cuda" is compiled in but no CUDA device is available');
}

function checkTensor(t: Tensor | undefined, name: string): void {
  if (t === null || typeof t !== 'object' || !(types.isFloat32Array(t.data)) || !Array.isArray(t.dims))
    throw new TypeError(`${name} must be { data: Float32Array, dims: [N, ${name === 'logits' ? 'C' : 'F'}, h, w] }`);
}

/**
 * All requested scores in one native pass over logits [N,C,h,w] and features [N,F,h,w] (features
 * only needed for the PGN scores). Runs on the libuv pool; the arrays must not be transferred or
 * detached until the promise settles.
 */
export async function computeScores(logits: Tensor, features: Tensor | undefined, options: ScoreOptions): Promise<ScoreResult> {
  checkTensor(logits, 'logits');
  if (!options || !Array.isArray(options.scores)) throw new TypeError('options.scores must be an array of scores');
  const specs = options.scores.map(normalizeScore);
  const needsFeatures = specs.some((s) => isPgn(s.kind) || isPgn2(s.kind));
  if (needsFeatures) checkTensor(features, 'features');
  checkBackend(options.backend);
  if (specs.some((s) => isPgn2(s.kind))) return computeWithSecondLayer(logits, features!, specs, options);
  const out = await native.scores({
    logits: logits.data,
    logitsDims: logits.dims,
    ...(needsFeatures && features ? { features: features.data, featuresDims: features.dims } : {}),
    scores: specs,
    prediction: options.prediction ?? true,
    threads: options.threads,
    backend: options.backend,
  });
  const dims: [number, number, number] = [logits.dims[0], logits.dims[2], logits.dims[3]];
  return {
    maps: specs.map((spec, i) => ({ spec, name: scoreName(spec), map: { data: out.maps[i], dims } })),
    ...(out.prediction ? { prediction: { data: out.prediction, dims } } : {}),
  };
}

/**
 * Scores some of which are pgn2-*: those go to the second-layer pass, the others to the usual one
 * (both on the libuv pool at once); maps come back in request order.
 */
async function computeWithSecondLayer(logits: Tensor, features: Tensor, specs: ScoreSpec[], options: ScoreOptions): Promise<ScoreResult> {
  checkSecondLayerInputs(options.secondLayer);
  const second = specs.filter((s) => isPgn2(s.kind));
  const first = specs.filter((s) => !isPgn2(s.kind));
  const prediction = options.prediction ?? true;
  const [a, b] = await Promise.all([
    first.length === 0 ? null : native.scores({
      logits: logits.data,
      logitsDims: logits.dims,
      ...(first.some((s) => isPgn(s.kind)) ? { features: features.data, featuresDims: features.dims } : {}),
      scores: first,
      prediction: false,
      threads: options.threads,
      backend: options.backend,
    }),
    secondLayerNative(logits, features, options.secondLayer, second, { prediction, threads: options.threads, backend: options.backend }),
  ]);
  const dims: [number, number, number] = [logits.dims[0], logits.dims[2], logits.dims[3]];
  let i = 0, j = 0;
  return {
    maps: specs.map((spec) => ({ spec, name: scoreName(spec), map: { data: isPgn2(spec.kind) ? b.maps[j++] : a!.maps[i++], dims } })),
    ...(b.prediction ? { prediction: { data: b.prediction, dims } } : {}),
  };
}

/** pgn2-oh / pgn2-uni only (computeScores takes them too, mixed with the others). */
export function computeSecondLayerScores(logits: Tensor, features: Tensor, secondLayer: SecondLayerInputs, options: Omit<ScoreOptions, 'secondLayer'>): Promise<ScoreResult> {
  if (!options || !Array.isArray(options.scores)) throw new TypeError('options.scores must be an array of scores');
  const bad = options.scores.map(normalizeScore).find((s) => !isPgn2(s.kind));
  if (bad) throw new RangeError(`computeSecondLayerScores computes pgn2-oh and pgn2-uni only, not ${scoreLabel(bad)}: use computeScores`);
  return computeScores(logits, features, { ...options, secondLayer });
}

export interface UpsampleOptions<T extends Float32Array | Int32Array = Float32Array> {
  /** PyTorch's align_corners; default false (what segmentation networks use). */
  alignCorners?: boolean;
  threads?: number;
  /**
   * An array of the result's type and size to write the result into (e.g. one of a result no longer
   * needed) instead of a new one: no new ArrayBuffer for V8 to count (docs/api.md, "Reusing arrays").
   * It must share no memory with the input.
   */
  output?: T;
}

/** Bilinear resize of every map of a stack to [height, width], F.interpolate semantics. */
export async function upsample(maps: MapStack, size: [number, number], options: UpsampleOptions = {}): Promise<MapStack> {
  if (maps === null || typeof maps !== 'object' || !(types.isFloat32Array(maps.data)) || !Array.isArray(maps.dims))
    throw new TypeError('maps must be { data: Float32Array, dims: [N, h, w] }');
  if (!Array.isArray(size)) throw new TypeError('size must be [height, width]');
  const data = await native.upsample({ input: maps.data, dims: maps.dims, size, alignCorners: options.alignCorners, threads: options.threads, output: options.output });
  return { data, dims: [maps.dims[0], size[0], size[1]] };
}

/**
 * The predicted class at [height, width]: argmax of the bilinearly upsampled logits [N, C, h, w],
 * as the network's own upsampled output would give, without materializing the upsampled logits.
 */
export async function upsampleArgmax(logits: Tensor, size: [number, number], options: UpsampleOptions<Int32Array> = {}): Promise<MapStack<Int32Array>> {
  checkTensor(logits, 'logits');
  if (!Array.isArray(size)) throw new TypeError('size must be [height, width]');
  const data = await native.upsampleArgmax({ logits: logits.data, dims: logits.dims, size, alignCorners: options.alignCorners, threads: options.threads, output: options.output });
  return { data, dims: [logits.dims[0], size[0], size[1]] };
}

/**
 * The instruction-set level the CPU scores run with (`active`) and the best this CPU supports
 * (`detected`): 'avx512', 'avx2' or 'baseline'.
 */
export function cpuIsa(): { active: CpuIsa; detected: CpuIsa } {
  return native.cpuIsa();
}

/**
 * Caps the CPU level for every later call in this process, to compare the paths (npm run bench) or
 * test them. A cap above the detected level leaves the detected one; 'avx512' lifts the cap.
 */
export function limitCpuIsa(max: CpuIsa): void {
  native.limitCpuIsa(max);
}

/**
 * How long, in microseconds, the native helper threads kept between calls spin (yielding to other
 * runnable threads) waiting for the next call before they sleep (default 1000). Back-to-back calls
 * then find them awake, which saves the wake-up of a sleeping core: on a VM that can be a
 * millisecond (docs/api.md). 0 makes them sleep at once, for processes that would rather not spend
 * the CPU.
 */
export function spinWait(): number {
  return native.spinWait();
}

/** Sets spinWait() for every later call in this process: a whole number in [0, 1000000]. */
export function setSpinWait(microseconds: number): void {
  native.setSpinWait(microseconds);
}

/** The build of the addon this process loaded: its variant, its path, where it came from and why. */
export interface AddonInfo {
  variant: 'cpu' | 'cuda';
  path: string;
  origin: AddonOrigin;
  reason: string;
}

/** Which backends this build and machine can run, and which build of the addon is loaded (and why). */
export function backends(): { cpu: true; cuda: { compiled: boolean; devices: number }; addon: AddonInfo } {
  const { choice } = loadAddon();
  const addon: AddonInfo = { variant: native.cudaCompiled ? 'cuda' : 'cpu', path: choice.path, origin: choice.origin, reason: choice.reason };
  return { cpu: true, cuda: { compiled: native.cudaCompiled, devices: native.cudaDeviceCount() }, addon };
}
