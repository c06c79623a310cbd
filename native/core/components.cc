// The entry points of components.h: argument checks, the choice between one image per thread and
// strips of one image, and the second pass for the CUDA backend's root labels.
#include "components.h"

#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "components_internal.h"
#include "parallel.h"

namespace pgn {

namespace {

Image image_of(const ComponentInput& in, int64_t n) {
  const int64_t plane = in.height * in.width;
  return Image{in.scores + n * plane, in.roi ? in.roi + (in.roi_shared ? 0 : n * plane) : nullptr,
               in.prediction ? in.prediction + n * plane : nullptr, in.height, in.width, in.threshold};
}

}  // namespace

float threshold_from_double(double t) {
  if (std::isnan(t)) return std::numeric_limits<float>::quiet_NaN();
  float f = static_cast<float>(t);
  if (static_cast<double>(f) > t) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

void check_component_input(const ComponentInput& in) {
  if (!in.scores) throw std::invalid_argument("components: no score maps");
  if (in.batch < 1 || in.height < 1 || in.width < 1)
    throw std::invalid_argument("components: the maps must be non-empty");
  if (in.height * in.width >= (int64_t{1} << 31) - 1)
    throw std::invalid_argument("components: a map must have fewer than 2^31 - 1 pixels");
  if (in.connectivity != 4 && in.connectivity != 8)
    throw std::invalid_argument("connectivity must be 4 or 8, got " + std::to_string(in.connectivity));
  if (in.min_area < 0) throw std::invalid_argument("minArea must be >= 0");
  if (std::isnan(in.threshold)) throw std::invalid_argument("threshold must not be NaN");
}

void label_components(const ComponentInput& in, ComponentOutput& out, int threads) {
  check_component_input(in);
  const int T = threads <= 0 ? default_threads() : threads;
  const int64_t plane = in.height * in.width;
  out.segments.assign(static_cast<size_t>(in.batch), {});
  auto one = [&](int64_t n, int strips) {
    uint32_t* labels = out.labels ? out.labels + n * plane : nullptr;
    SegmentList& segments = out.segments[static_cast<size_t>(n)];
    if (in.connectivity == 8) label_image8(image_of(in, n), in.min_area, labels, strips, segments);
    else label_image4(image_of(in, n), in.min_area, labels, strips, segments);
  };
  // Many or small images: one image per thread. Few large ones: each split into strips.
  constexpr int64_t kStripMinPixels = int64_t{1} << 17;
  if (in.batch >= T || plane < kStripMinPixels || T == 1) {
    parallel_for(in.batch, T, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) one(n, 1);
    });
  } else {
    for (int64_t n = 0; n < in.batch; ++n) one(n, T);
  }
}

void finish_root_labels(const ComponentInput& in, int64_t n, uint32_t* labels, SegmentList& segments) {
  const Image img = image_of(in, n);
  const int64_t plane = img.h * img.w;
  // Roots are the components' first pixels: numbering them in raster order gives the CPU labels.
  auto map = raw_array<uint32_t>(plane + 1);
  map[0] = 0;
  uint32_t K = 0;
  for (int64_t i = 0; i < plane; ++i)
    if (labels[i] == static_cast<uint32_t>(i + 1)) map[i + 1] = ++K;
  std::vector<Band> bands{Band{0, img.h, 1, {}}};
  finish_image(img, PixelLabels{labels, img.w}, in.min_area, labels, map.get(), K, bands, segments);
}

}  // namespace pgn
