// The pixel metrics' shared parts that are not inline (pixel_metrics_internal.h), and the helpers of
// pixel_metrics.h: float16 rounding, the radix sort, the image check. The accumulators themselves are
// pixel_metrics_exact.cc and pixel_metrics_binned.cc.
#include "pixel_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pixel_metrics_internal.h"

namespace pgn {

[[noreturn]] void throw_degenerate(int64_t images, int64_t positives, int64_t negatives) {
  throw std::invalid_argument(
      "pixel metrics need both OoD (label 1) and in-distribution (label 0) pixels, but the " + std::to_string(images) +
      " image(s) added hold " + std::to_string(positives) + " OoD and " + std::to_string(negatives) +
      " in-distribution pixel(s): AUROC, AP and FPR95 are undefined");
}

std::string pixel_text(int64_t index, int64_t width) {
  return "pixel (row " + std::to_string(index / width) + ", column " + std::to_string(index % width) + ")";
}

std::string number_text(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void push_point(PixelCurves& c, const Point& p) {
  c.threshold.push_back(p.threshold);
  c.tpr.push_back(p.tpr);
  c.fpr.push_back(p.fpr);
  c.precision.push_back(p.precision);
}

// ---------------------------------------------------------------------------------------------------

float round_to_half(float value) {
  uint32_t x;
  std::memcpy(&x, &value, sizeof x);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t absx = x & 0x7fffffffu;
  uint32_t h;
  if (absx >= 0x7f800000u) {
    h = sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u);  // inf stays inf, NaN stays NaN
  } else if (absx >= 0x477ff000u) {
    h = sign | 0x7c00u;  // ≥ 65520 rounds to infinity
  } else if (absx >= 0x38800000u) {  // normal half
    const uint32_t exp = (absx >> 23) - 127 + 15;
    const uint32_t mant = absx & 0x7fffffu;
    h = (exp << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // carries into the exponent correctly
    h |= sign;
  } else if (absx <= 0x33000000u) {  // ≤ 2^-25 rounds to zero (ties to even)
    h = sign;
  } else {  // subnormal half: units of 2^-24
    const uint32_t e = absx >> 23;
    const uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;
    h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    h |= sign;
  }
  // half bits → float
  const uint32_t hs = (h & 0x8000u) << 16;
  const uint32_t he = (h >> 10) & 0x1fu;
  const uint32_t hm = h & 0x3ffu;
  uint32_t f;
  if (he == 0x1fu) {
    f = hs | 0x7f800000u | (hm << 13);
  } else if (he != 0) {
    f = hs | ((he - 15 + 127) << 23) | (hm << 13);
  } else if (hm == 0) {
    f = hs;
  } else {  // subnormal half → normal float
    uint32_t m = hm;
    int e = -14;
    while (!(m & 0x400u)) {
      m <<= 1;
      --e;
    }
    f = hs | (static_cast<uint32_t>(e + 127) << 23) | ((m & 0x3ffu) << 13);
  }
  float out;
  std::memcpy(&out, &f, sizeof out);
  return out;
}

void radix_sort_u32(uint32_t* data, int64_t n, uint32_t* tmp) {
  if (n < 512) {
    std::sort(data, data + n);
    return;
  }
  constexpr int kBits = 11;
  constexpr uint32_t kMask = (1u << kBits) - 1;
  std::vector<int64_t> counts(3 * (size_t{1} << kBits), 0);
  int64_t* c0 = counts.data();
  int64_t* c1 = c0 + (1 << kBits);
  int64_t* c2 = c1 + (1 << kBits);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t v = data[i];
    ++c0[v & kMask];
    ++c1[(v >> kBits) & kMask];
    ++c2[v >> (2 * kBits)];
  }
  int64_t* tables[3] = {c0, c1, c2};
  uint32_t* src = data;
  uint32_t* dst = tmp;
  for (int pass = 0; pass < 3; ++pass) {
    int64_t* c = tables[pass];
    const int shift = pass * kBits;
    // a digit every key shares orders nothing: skip the pass
    bool trivial = false;
    for (uint32_t d = 0; d <= kMask; ++d) {
      if (c[d] == n) trivial = true;
      if (c[d] != 0) break;
    }
    if (trivial) continue;
    int64_t offset = 0;
    for (uint32_t d = 0; d <= kMask; ++d) {
      const int64_t k = c[d];
      c[d] = offset;
      offset += k;
    }
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t v = src[i];
      dst[c[(v >> shift) & kMask]++] = v;
    }
    std::swap(src, dst);
  }
  if (src != data) std::memcpy(data, src, static_cast<size_t>(n) * sizeof(uint32_t));
}

ClassCounts check_pixel_image(const float* scores, const uint8_t* labels, int64_t height, int64_t width, int64_t image) {
  const int64_t count = height * width;
  ClassCounts c;
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t l = labels[i];
    if (l == kLabelVoid) continue;
    if (l > kLabelOod)
      throw std::invalid_argument("image " + std::to_string(image) + ": label " + std::to_string(l) + " at " +
                                  pixel_text(i, width) +
                                  "; labels must be 0 (in-distribution), 1 (OoD) or 255 (void)");
    if (!std::isfinite(scores[i]))
      throw std::invalid_argument("image " + std::to_string(image) + ": score " + number_text(scores[i]) + " at " +
                                  pixel_text(i, width) + "; scores of non-void pixels must be finite");
    if (l == kLabelOod) ++c.positives;
  }
  // second pass only for the count: keeps the loop above branch-light
  int64_t non_void = 0;
  for (int64_t i = 0; i < count; ++i) non_void += labels[i] != kLabelVoid;
  c.negatives = non_void - c.positives;
  return c;
}

}  // namespace pgn
