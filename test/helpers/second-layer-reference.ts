/**
 * Float64 reference of the second-layer scores, written the long way: a forward pass of the head
 * u = conv(x; W) + b → [BatchNorm] → act → z = Kφ + β, and for each pixel the full gradient
 * ∂L/∂W[o,i,a,b] (every entry formed explicitly, zero padding included), then its p-norm.
 */
export type RefActivation =
  | { kind: 'relu' }
  | { kind: 'leakyrelu'; alpha: number }
  | { kind: 'clip'; min: number; max: number }
  | { kind: 'prelu'; slopes: number[] };

export interface RefHead {
  N: number; Cin: number; H: number; W: number; F: number; C: number;
  kernelShape: [number, number];
  strides: [number, number];
  dilations: [number, number];
  pads: [number, number, number, number];
  /** conv weight [F, Cin, kh, kw] and bias [F] */
  weight: Float64Array;
  bias: Float64Array;
  bn: { gamma: Float64Array; beta: Float64Array; mean: Float64Array; variance: Float64Array; epsilon: number } | null;
  act: RefActivation;
  /** final 1x1 conv K [C, F] and bias [C] */
  K: Float64Array;
  beta: Float64Array;
}

export interface Forward {
  h: number; w: number;
  /** pre-activation v (after BN) [N,F,h,w], φ [N,F,h,w], z [N,C,h,w] */
  v: Float64Array; phi: Float64Array; z: Float64Array;
}

export function outSize(size: number, p0: number, p1: number, d: number, k: number, s: number): number {
  return Math.floor((size + p0 + p1 - d * (k - 1) - 1) / s) + 1;
}

function act(a: RefActivation, v: number, f: number): number {
  switch (a.kind) {
    case 'relu': return Math.max(0, v);
    case 'leakyrelu': return v > 0 ? v : a.alpha * v;
    case 'clip': return Math.min(a.max, Math.max(a.min, v));
    case 'prelu': return v > 0 ? v : (a.slopes.length === 1 ? a.slopes[0] : a.slopes[f]) * v;
  }
}

/** d act / d v (PyTorch's conventions at the kinks: relu'(0) = 0, leaky'(0) = α, hardtanh' = 1 strictly inside). */
export function actDerivative(a: RefActivation, v: number, f: number): number {
  switch (a.kind) {
    case 'relu': return v > 0 ? 1 : 0;
    case 'leakyrelu': return v > 0 ? 1 : a.alpha;
    case 'clip': return v > a.min && v < a.max ? 1 : 0;
    case 'prelu': return v > 0 ? 1 : a.slopes.length === 1 ? a.slopes[0] : a.slopes[f];
  }
}

function bnScale(head: RefHead, f: number): number {
  return head.bn ? head.bn.gamma[f] / Math.sqrt(head.bn.variance[f] + head.bn.epsilon) : 1;
}

/** x value with zero padding. */
function xAt(head: RefHead, x: ArrayLike<number>, n: number, i: number, y: number, xx: number): number {
  if (y < 0 || y >= head.H || xx < 0 || xx >= head.W) return 0;
  return x[((n * head.Cin + i) * head.H + y) * head.W + xx];
}

/** u = conv(x; weight) + bias at one output position of one channel. */
function convAt(head: RefHead, x: ArrayLike<number>, weight: ArrayLike<number>, n: number, o: number, a: number, b: number): number {
  const [kh, kw] = head.kernelShape, [sh, sw] = head.strides, [dh, dw] = head.dilations, [pt, pl] = head.pads;
  let u = head.bias[o];
  for (let i = 0; i < head.Cin; i++)
    for (let ka = 0; ka < kh; ka++)
      for (let kb = 0; kb < kw; kb++)
        u += weight[((o * head.Cin + i) * kh + ka) * kw + kb] * xAt(head, x, n, i, a * sh - pt + ka * dh, b * sw - pl + kb * dw);
  return u;
}

export function forward(head: RefHead, x: ArrayLike<number>, weight: ArrayLike<number> = head.weight): Forward {
  const { N, F, C } = head;
  const h = outSize(head.H, head.pads[0], head.pads[2], head.dilations[0], head.kernelShape[0], head.strides[0]);
  const w = outSize(head.W, head.pads[1], head.pads[3], head.dilations[1], head.kernelShape[1], head.strides[1]);
  const plane = h * w;
  const v = new Float64Array(N * F * plane), phi = new Float64Array(N * F * plane), z = new Float64Array(N * C * plane);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < F; o++)
      for (let a = 0; a < h; a++)
        for (let b = 0; b < w; b++) {
          const u = convAt(head, x, weight, n, o, a, b);
          const bn = head.bn;
          const vv = bn ? ((u - bn.mean[o]) / Math.sqrt(bn.variance[o] + bn.epsilon)) * bn.gamma[o] + bn.beta[o] : u;
          v[(n * F + o) * plane + a * w + b] = vv;
          phi[(n * F + o) * plane + a * w + b] = act(head.act, vv, o);
        }
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let q = 0; q < plane; q++) {
        let s = head.beta[c];
        for (let f = 0; f < F; f++) s += head.K[c * F + f] * phi[(n * F + f) * plane + q];
        z[(n * C + c) * plane + q] = s;
      }
  return { h, w, v, phi, z };
}

function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((t) => Math.exp(t - m));
  const S = e.reduce((a, b) => a + b, 0);
  return e.map((t) => t / S);
}

/**
 * The label-side vector of one pixel: s − y (exact) or the authors' form (code). For one-hot, the
 * predicted entry s_ĉ − 1 is written −Σ_{c≠ĉ} s_c (same number, no cancellation).
 */
export function labelVector(z: number[], oneHot: boolean, code: boolean): number[] {
  const C = z.length;
  const s = softmax(z);
  const argmax = z.indexOf(Math.max(...z));
  const others = s.reduce((a, t, c) => (c === argmax ? a : a + t), 0);
  if (oneHot) return s.map((t, c) => (c === argmax ? (code ? 0 : -others) : t));
  return code ? s.map((t) => ((C - 1) / C) * t) : s.map((t) => t - 1 / C);
}

/**
 * ∂L/∂W for one pixel, every entry [F, Cin, kh, kw], given the pixel's label vector r = s − y:
 * δ_o = (Kᵀr)_o · act'(v_o) · scale_o, G[o,i,a,b] = δ_o · x[i, y0 + a·dh, x0 + b·dw].
 */
export function pixelGradient(head: RefHead, x: ArrayLike<number>, fw: Forward, n: number, a: number, b: number, r: number[], scales: (f: number) => number): Float64Array {
  const { F, Cin, C } = head;
  const [kh, kw] = head.kernelShape, [sh, sw] = head.strides, [dh, dw] = head.dilations, [pt, pl] = head.pads;
  const plane = fw.h * fw.w;
  const G = new Float64Array(F * Cin * kh * kw);
  for (let o = 0; o < F; o++) {
    let kr = 0;
    for (let c = 0; c < C; c++) kr += head.K[c * F + o] * r[c];
    const delta = kr * actDerivative(head.act, fw.v[(n * F + o) * plane + a * fw.w + b], o) * scales(o);
    for (let i = 0; i < Cin; i++)
      for (let ka = 0; ka < kh; ka++)
        for (let kb = 0; kb < kw; kb++)
          G[((o * Cin + i) * kh + ka) * kw + kb] = delta * xAt(head, x, n, i, a * sh - pt + ka * dh, b * sw - pl + kb * dw);
  }
  return G;
}

export function pnorm(v: ArrayLike<number>, p: number): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += Math.pow(Math.abs(v[i]), p);
  return Math.pow(s, 1 / p);
}

export interface RefSpec { kind: 'pgn2-oh' | 'pgn2-uni'; p: number; variant?: 'exact' | 'code' }

/**
 * Reference maps [N,h,w]. `logits` are the logits as given to the native code (float32); the
 * activation mask comes from the forward pass's pre-activation v.
 * exact: ‖∂L/∂W‖_p of the full gradient. code (the authors' deepv3.py): label factor s·(1−onehot) or
 * (C−1)/C·s, BatchNorm γ alone, channel norm at p = 0.5: ‖δ‖_{0.5} · ‖patch‖_p.
 */
export function referenceSecondLayer(head: RefHead, x: ArrayLike<number>, fw: Forward, logits: ArrayLike<number>, spec: RefSpec): Float64Array {
  const { N, C } = head;
  const plane = fw.h * fw.w;
  const out = new Float64Array(N * plane);
  const code = spec.variant === 'code';
  for (let n = 0; n < N; n++)
    for (let a = 0; a < fw.h; a++)
      for (let b = 0; b < fw.w; b++) {
        const q = a * fw.w + b;
        const z = Array.from({ length: C }, (_, c) => logits[(n * C + c) * plane + q]);
        const r = labelVector(z, spec.kind === 'pgn2-oh', code);
        if (!code) {
          out[n * plane + q] = pnorm(pixelGradient(head, x, fw, n, a, b, r, (f) => bnScale(head, f)), spec.p);
        } else {
          // the authors' factors: ‖δ‖_0.5 with δ_o = (Kᵀr)_o · act'_o · γ_o, times ‖patch‖_p
          const patch = patchValues(head, x, n, a, b);
          const delta = Array.from({ length: head.F }, (_, o) => {
            let kr = 0;
            for (let c = 0; c < C; c++) kr += head.K[c * head.F + o] * r[c];
            return kr * actDerivative(head.act, fw.v[(n * head.F + o) * plane + q], o) * (head.bn ? head.bn.gamma[o] : 1);
          });
          out[n * plane + q] = pnorm(delta, 0.5) * pnorm(patch, spec.p);
        }
      }
  return out;
}

/** The pixel's receptive field in x, [Cin, kh, kw], zero padding included. */
export function patchValues(head: RefHead, x: ArrayLike<number>, n: number, a: number, b: number): Float64Array {
  const [kh, kw] = head.kernelShape, [sh, sw] = head.strides, [dh, dw] = head.dilations, [pt, pl] = head.pads;
  const out = new Float64Array(head.Cin * kh * kw);
  for (let i = 0; i < head.Cin; i++)
    for (let ka = 0; ka < kh; ka++)
      for (let kb = 0; kb < kw; kb++) out[(i * kh + ka) * kw + kb] = xAt(head, x, n, i, a * sh - pt + ka * dh, b * sw - pl + kb * dw);
  return out;
}

/** Cross-entropy of one pixel with label y, as a function of the conv weight (finite differences). */
export function pixelLoss(head: RefHead, x: ArrayLike<number>, weight: ArrayLike<number>, n: number, a: number, b: number, y: number[]): number {
  const { F, C } = head;
  const phi = new Float64Array(F);
  for (let o = 0; o < F; o++) {
    const u = convAt(head, x, weight, n, o, a, b);
    const bn = head.bn;
    const v = bn ? ((u - bn.mean[o]) / Math.sqrt(bn.variance[o] + bn.epsilon)) * bn.gamma[o] + bn.beta[o] : u;
    phi[o] = act(head.act, v, o);
  }
  const z = Array.from({ length: C }, (_, c) => {
    let s = head.beta[c];
    for (let f = 0; f < F; f++) s += head.K[c * F + f] * phi[f];
    return s;
  });
  const m = Math.max(...z);
  const logS = m + Math.log(z.reduce((acc, t) => acc + Math.exp(t - m), 0));
  return -y.reduce((acc, yc, c) => acc + yc * (z[c] - logS), 0);
}

/**
 * Condition number of a pixel's score with respect to rounding in the channel factor: the channel
 * vector g_f = Σ_c K_cf r_c (·mask·scale) is a sum that can cancel, so float32 arithmetic gets
 * each g_f to about ε·ĝ_f with ĝ_f = Σ_c (|K̃_cf| + |k̄_f|)(s_c + |r_c|) (the scale of the terms the
 * native code adds, K̃ = K − k̄). The p-norm's relative error is then the |g_f|^p-weighted mean of
 * ĝ_f/|g_f|: that mean is κ (1 when nothing cancels).
 */
export function conditionSecondLayer(head: RefHead, fw: Forward, logits: ArrayLike<number>, spec: RefSpec): Float64Array {
  const { N, C, F } = head;
  const plane = fw.h * fw.w;
  const code = spec.variant === 'code';
  const cp = code ? 0.5 : spec.p;
  const kMean = Array.from({ length: F }, (_, f) => {
    let m = 0;
    for (let c = 0; c < C; c++) m += head.K[c * F + f];
    return m / C;
  });
  const out = new Float64Array(N * plane);
  for (let n = 0; n < N; n++)
    for (let q = 0; q < plane; q++) {
      const z = Array.from({ length: C }, (_, c) => logits[(n * C + c) * plane + q]);
      const r = labelVector(z, spec.kind === 'pgn2-oh', code);
      const s = softmax(z);
      let num = 0, den = 0;
      for (let f = 0; f < F; f++) {
        if (actDerivative(head.act, fw.v[(n * F + f) * plane + q], f) === 0) continue;
        let g = 0, scale = 0;
        for (let c = 0; c < C; c++) {
          g += head.K[c * F + f] * r[c];
          scale += (Math.abs(head.K[c * F + f] - kMean[f]) + Math.abs(kMean[f])) * (s[c] + Math.abs(r[c]));
        }
        if (g === 0) continue;
        const w = Math.pow(Math.abs(g), cp);
        num += (w * scale) / Math.abs(g);
        den += w;
      }
      out[n * plane + q] = den > 0 ? num / den : 1;
    }
  return out;
}
