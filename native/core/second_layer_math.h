// Per-pixel math of the second-layer scores (gradient norms w.r.t. the second-to-last convolution),
// shared by the CPU path (second_layer.cc) and the CUDA kernels (cuda/second_layer.cu).
//
// The head is u = W ⋆ x + b, [v = BN(u)], φ = act(v), z = Kφ + β. For one output pixel and a label y,
// ∂L/∂W[o,i,·,·] = g_o · patch(x_i), g = (Kᵀ(s − y)) ⊙ act'(v) ⊙ scale (scale = γ/√(var+ε) of an
// unfolded BatchNorm, else 1). The gradient is an outer product of g and the pixel's receptive-field
// patch of x, so ‖∇_W L‖_p = ‖g‖_p · ‖patch(x)‖_p.
//
// Kᵀ(s − y) is formed from ONE matrix-vector product per pixel, t = K̃ᵀq, with K̃ = K − k̄ the
// kernel with each column's class mean k̄_f removed, and q the softmax mass of the non-predicted
// classes relative to r = 1 − s_ĉ (q_c = e^{z_c−m}/S_other for c ≠ ĉ, q_ĉ = 0, Σq = 1; the same
// underflow-free q as pixel_math.h's one-hot label factor): s = r·q + e_ĉ/S, so
//   one-hot exact    Kᵀ(s − e_ĉ)        = r·(t − K̃[ĉ])
//   one-hot code     Kᵀ(s·(1 − e_ĉ))    = r·(t + k̄)               (authors' label factor)
//   uniform exact    Kᵀ(s − 1/C)        = r·t + K̃[ĉ]/S
//   uniform code     Kᵀ((C−1)/C · s)    = (C−1)/C · (r·t + K̃[ĉ]/S + k̄)
// A label y with Σy = 1 sees only K̃ (Kᵀ(s − y) = K̃ᵀ(s − y)): working with K̃ keeps a large
// common component of a column (a feature that raises every logit alike) out of the cancellation.
// The code forms put back k̄ as k̄·Σq with the Σq of the q actually formed (1 up to rounding), so that
// they equal Kᵀ(label) for those q, as a direct product with K would.
// The one-hot forms keep r outside: ‖g‖_p = r·‖t − K̃[ĉ]‖_p (·mask·scale), exact when r is ~1e-30.
#pragma once

#include <cstdint>

#include "pixel_math.h"

namespace pgn {

// act'(v) read from φ = act(v), per channel: φ > lo ? (φ < hi ? 1 : 0) : slope.
//   Relu: lo 0, hi +inf, slope 0;   LeakyRelu(α) / PRelu(α_f ≥ 0): lo 0, hi +inf, slope α;
//   Clip(lo, hi) (ReLU6 = Clip(0, 6)): slope 0.
// Valid because these maps are monotone with slope ≥ 0 below lo: φ > lo ⇔ v > lo, φ < hi ⇔ v < hi.
// At v = lo exactly the derivative is the slope (PyTorch's convention for relu and leaky_relu).
PGN_HD float act_derivative(float phi, float lo, float hi, float slope) {
  return phi > lo ? (phi < hi ? 1.0f : 0.0f) : slope;
}

// Which of the four label forms (indices into per-form arrays).
enum SecondForm : int { kOhExact = 0, kOhCode = 1, kUniExact = 2, kUniCode = 3, kSecondForms = 4 };

PGN_HD bool second_form_one_hot(int form) { return form == kOhExact || form == kOhCode; }

// The per-channel value (Kᵀ(s − y))_f of a form, before the activation mask and the scale, given
// t_f = (K̃ᵀq)_f, K̃[ĉ,f], k̄_f, r = S_other/S, 1/S and Σq. One-hot forms return it divided by r.
PGN_HD float second_form_value(int form, float t, float k_pred, float k_mean, float r, float inv_s, float q_sum,
                               float code_uni) {
  switch (form) {
    case kOhExact: return t - k_pred;
    case kOhCode: return t + k_mean * q_sum;
    case kUniExact: return r * t + k_pred * inv_s;
    default: return code_uni * (r * t + k_pred * inv_s + k_mean * (r * q_sum + inv_s));
  }
}

// The factor the form's channel norm is multiplied by at the end: r for one-hot forms, else 1.
PGN_HD float second_form_outer(int form, const SoftmaxStats& st) {
  return second_form_one_hot(form) ? st.sum_other / st.sum : 1.0f;
}

// Range of input rows (or columns) y = o·stride − pad + k·dil, k = 0..kernel−1, that lie inside
// [0, size): lo and hi are the first and last valid ones (same residue modulo dil), or lo > hi when
// none is. Zero padding: the positions outside contribute nothing to a patch sum.
PGN_HD void window_range(int64_t o, int64_t stride, int64_t pad, int64_t dil, int64_t kernel, int64_t size, int64_t* lo,
                         int64_t* hi) {
  const int64_t first = o * stride - pad;
  const int64_t last = first + (kernel - 1) * dil;
  // first k with first + k·dil >= 0, and last k with first + k·dil <= size − 1
  const int64_t k_lo = first >= 0 ? 0 : (-first + dil - 1) / dil;
  const int64_t k_hi = last <= size - 1 ? kernel - 1 : (size - 1 - first < 0 ? -1 : (size - 1 - first) / dil);
  *lo = first + k_lo * dil;
  *hi = first + k_hi * dil;
}

// Σ over the window [lo, hi] (step dil) of values whose strided prefix sums P[y] = a[y] + P[y − dil]
// are stored at stride `step` (elements between consecutive y).
PGN_HD double window_sum(const double* prefix, int64_t step, int64_t lo, int64_t hi, int64_t dil) {
  if (lo > hi) return 0.0;
  const double before = lo >= dil ? prefix[(lo - dil) * step] : 0.0;
  return prefix[hi * step] - before;
}

}  // namespace pgn
