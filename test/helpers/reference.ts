/**
 * Independent float64 reference of the scores (DESIGN.md §1), written as plainly as possible:
 * softmax, the label vector y, ‖s − y‖_p and ‖φ‖_p with Math.pow, for one pixel at a time.
 */
export type RefKind = 'pgn-oh' | 'pgn-uni' | 'entropy' | 'msp' | 'maxlogit' | 'energy';

export interface RefSpec {
  kind: RefKind;
  p?: number;
  variant?: 'exact' | 'code';
}

/** ‖v‖_p as M·(Σ (|v|/M)^p)^(1/p), M = max |v|: the sum stays in [1, n] for every p and magnitude. */
function pnorm(v: number[], p: number): number {
  const M = v.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
  if (M === 0) return 0;
  let s = 0;
  for (const x of v) s += Math.pow(Math.abs(x) / M, p);
  return M * Math.pow(s, 1 / p);
}

export function referencePixel(z: number[], phi: number[], spec: RefSpec): number {
  const C = z.length;
  const m = z.reduce((a, v) => Math.max(a, v), -Infinity); // no spread: C may exceed the call stack's arguments
  const argmax = z.indexOf(m);
  const e = z.map((v) => Math.exp(v - m));
  // log S as log1p of the non-argmax mass: Math.log(S) itself loses all digits once S − 1 < 1e-13.
  const logDenominator = Math.log1p(e.reduce((a, v, c) => (c === argmax ? a : a + v), 0));
  const S = e.reduce((a, b) => a + b, 0);
  const s = e.map((v) => v / S);
  const logS = z.map((v) => v - m - logDenominator);
  switch (spec.kind) {
    case 'entropy':
      return -s.reduce((a, v, c) => a + (v > 0 ? v * logS[c] : 0), 0);
    case 'msp':
      return s.reduce((a, v, c) => (c === argmax ? a : a + v), 0); // 1 − s_ĉ without cancellation
    case 'maxlogit':
      return -m;
    case 'energy':
      return -(m + logDenominator);
  }
  const p = spec.p!;
  let label: number[];
  // s_ĉ − 1 is written −Σ_{c≠ĉ} s_c: the same number, but 1/S − 1 loses all digits in float64 too
  // once S − 1 < 1e-13, and the reference must stay exact where one class dominates.
  const others = s.reduce((a, v, c) => (c === argmax ? a : a + v), 0);
  if (spec.kind === 'pgn-oh') label = spec.variant === 'code' ? s.map((v, c) => (c === argmax ? 0 : v)) : s.map((v, c) => (c === argmax ? -others : v));
  else label = spec.variant === 'code' ? s.map((v) => ((C - 1) / C) * v) : s.map((v) => v - 1 / C);
  const factor = pnorm(label, p);
  const norm = pnorm(phi, p);
  return factor === 0 || norm === 0 ? 0 : factor * norm; // a zero factor wins over an overflowing one
}

/** Reference maps [N, h, w] from NCHW logits and features. */
export function referenceScores(logits: Float32Array, ldims: number[], features: Float32Array | undefined, F: number, spec: RefSpec): Float64Array {
  const [N, C, h, w] = ldims;
  const plane = h * w;
  const out = new Float64Array(N * plane);
  for (let n = 0; n < N; n++)
    for (let i = 0; i < plane; i++) {
      const z = Array.from({ length: C }, (_, c) => logits[(n * C + c) * plane + i]);
      const phi = features ? Array.from({ length: F }, (_, f) => features[(n * F + f) * plane + i]) : [];
      out[n * plane + i] = referencePixel(z, phi, spec);
    }
  return out;
}

/** Seeded PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomArray(n: number, rand: () => number, lo: number, hi: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}
