// Sequential CPU emulation of the CUDA labeling: the very steps of components_uf.h, called block
// by block and thread by thread, each barrier of the kernels being the end of a loop over threads.
#include <algorithm>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

#include "components.h"
#include "components_uf.h"

namespace pgn {

namespace {

// Plain memory for the atomics: only one emulated thread runs at a time.
struct HostAtomics {
  uint32_t load(const uint32_t* p) const { return *p; }
  uint32_t min(uint32_t* p, uint32_t v) {
    const uint32_t old = *p;
    if (v < old) *p = v;
    return old;
  }
};

// 0 .. count − 1 in natural order, or shuffled when an engine is given.
std::vector<int64_t> schedule(int64_t count, std::mt19937_64* engine) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (engine) std::shuffle(order.begin(), order.end(), *engine);
  return order;
}

}  // namespace

void label_components_grid_emulation(const ComponentInput& in, ComponentOutput& out, int block_w, int block_h,
                                     uint64_t shuffle_seed) {
  check_component_input(in);
  if (block_w < 1 || block_h < 1 || block_w * block_h > 1024)
    throw std::invalid_argument("grid emulation: a block must have 1 to 1024 threads");
  const int64_t plane = in.height * in.width;
  out.segments.assign(static_cast<size_t>(in.batch), {});
  std::unique_ptr<uint32_t[]> scratch;
  if (!out.labels) scratch.reset(new uint32_t[static_cast<size_t>(plane)]);

  GridShape g{};
  g.height = static_cast<int32_t>(in.height);
  g.width = static_cast<int32_t>(in.width);
  g.block_w = block_w;
  g.block_h = block_h;
  g.blocks_x = static_cast<int32_t>((in.width + block_w - 1) / block_w);
  g.blocks_y = static_cast<int32_t>((in.height + block_h - 1) / block_h);
  g.connectivity = in.connectivity;
  const int64_t blocks = static_cast<int64_t>(g.blocks_x) * g.blocks_y;
  const int64_t threads = static_cast<int64_t>(block_w) * block_h;

  std::mt19937_64 engine(shuffle_seed);
  std::mt19937_64* shuffle = shuffle_seed ? &engine : nullptr;
  HostAtomics at;
  std::vector<uint32_t> shared(static_cast<size_t>(threads));

  for (int64_t n = 0; n < in.batch; ++n) {
    uint32_t* L = out.labels ? out.labels + n * plane : scratch.get();
    const PixelSource src{in.scores + n * plane, in.roi ? in.roi + (in.roi_shared ? 0 : n * plane) : nullptr,
                          in.threshold};
    // Runs one step for every thread of block b, in the schedule's order.
    auto each_thread = [&](int64_t b, auto&& step) {
      const int32_t bx = static_cast<int32_t>(b % g.blocks_x), by = static_cast<int32_t>(b / g.blocks_x);
      for (int64_t t : schedule(threads, shuffle))
        step(bx, by, static_cast<int32_t>(t % block_w), static_cast<int32_t>(t / block_w));
    };

    // Kernel 1: the tile-local union-find, with its two block barriers.
    for (int64_t b : schedule(blocks, shuffle)) {
      each_thread(b, [&](int32_t bx, int32_t by, int32_t tx, int32_t ty) {
        local_init(at, g, bx, by, tx, ty, src, shared.data());
      });
      each_thread(b, [&](int32_t bx, int32_t by, int32_t tx, int32_t ty) {
        local_merge(at, g, bx, by, tx, ty, shared.data());
      });
      each_thread(b, [&](int32_t bx, int32_t by, int32_t tx, int32_t ty) {
        local_write(at, g, bx, by, tx, ty, shared.data(), L);
      });
    }
    // Kernel 2: merges across tile borders.
    for (int64_t b : schedule(blocks, shuffle))
      each_thread(b, [&](int32_t bx, int32_t by, int32_t tx, int32_t ty) { border_merge(at, g, bx, by, tx, ty, L); });
    // Kernel 3: path compression.
    for (int64_t b : schedule(blocks, shuffle))
      each_thread(b, [&](int32_t bx, int32_t by, int32_t tx, int32_t ty) { compress(at, g, bx, by, tx, ty, L); });

    finish_root_labels(in, n, L, out.segments[static_cast<size_t>(n)]);
  }
}

}  // namespace pgn
