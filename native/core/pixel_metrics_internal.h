// What the two pixel-metric accumulators (pixel_metrics_exact.cc, pixel_metrics_binned.cc) share:
// order-preserving float keys, the compensated sum, the reduced curve points and the error texts.
// The functions not inline here are defined in pixel_metrics.cc.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "pixel_metrics.h"

namespace pgn {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------------------------------
// Float keys: an order-preserving map float → uint32 (−0 folded into +0, NaN never occurs here).

inline uint32_t ascending_key(float f) {
  if (f == 0.0f) f = 0.0f;  // −0 and +0 are one threshold, as numpy's comparisons treat them
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

inline float from_ascending_key(uint32_t k) {
  const uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Exact mode stores descending keys: sorting them ascending walks scores from high to low.
inline uint32_t descending_key(float f) { return ~ascending_key(f); }
inline float from_descending_key(uint32_t k) { return from_ascending_key(~k); }

// Neumaier-compensated sum.
struct Sum {
  double sum = 0, comp = 0;
  void add(double x) {
    const double t = sum + x;
    comp += std::fabs(sum) >= std::fabs(x) ? (sum - t) + x : (x - t) + sum;
    sum = t;
  }
  double value() const { return sum + comp; }
};

[[noreturn]] void throw_degenerate(int64_t images, int64_t positives, int64_t negatives);

// "pixel (row r, column c)" of a row-major index; a score as the error messages print it.
std::string pixel_text(int64_t index, int64_t width);
std::string number_text(double v);

// Curve points for plotting: a point is kept when the TPR cell or the FPR cell (kCells per axis)
// changes, so at most 2·kCells + 1 points follow the initial one.
constexpr int64_t kCells = (kMaxCurvePoints - 2) / 2;
static_assert(2 * kCells + 2 <= kMaxCurvePoints, "curve budget");

inline bool new_cell(int64_t tp0, int64_t fp0, int64_t tp1, int64_t fp1, int64_t positives, int64_t negatives) {
  return tp0 * kCells / positives != tp1 * kCells / positives || fp0 * kCells / negatives != fp1 * kCells / negatives;
}

struct Point {
  double threshold, tpr, fpr, precision;
};

void push_point(PixelCurves& c, const Point& p);

}  // namespace pgn
