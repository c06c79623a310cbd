// CUDA kernels of the connected-component labeling: the steps of core/components_uf.h, one thread
// per pixel, 32 × 8 pixels per block. Kernel 1 runs the tile-local union-find in shared memory,
// kernel 2 merges across tile borders in global memory, kernel 3 compresses every path to its root.
// The provisional labels (1 + raster index of each component's first pixel) come back to the host,
// which numbers them and gathers the statistics with the CPU's second pass (finish_root_labels).
#include <memory>
#include <vector>

#include "../core/components.h"
#include "../core/components_uf.h"
#include "components_cuda.h"
#include "device_buffer.h"

namespace pgn {

namespace {

constexpr int kBlockW = 32, kBlockH = 8;

struct DeviceAtomics {
  __device__ __forceinline__ uint32_t load(const uint32_t* p) const { return *static_cast<const volatile uint32_t*>(p); }
  __device__ __forceinline__ uint32_t min(uint32_t* p, uint32_t v) { return atomicMin(p, v); }
};

__device__ __forceinline__ void block_coords(const GridShape& g, int32_t& bx, int32_t& by) {
  bx = static_cast<int32_t>(blockIdx.x % static_cast<unsigned>(g.blocks_x));
  by = static_cast<int32_t>(blockIdx.x / static_cast<unsigned>(g.blocks_x));
}

__global__ void local_kernel(GridShape g, PixelSource src, uint32_t* labels) {
  __shared__ uint32_t shared[kBlockW * kBlockH];
  DeviceAtomics at;
  int32_t bx, by;
  block_coords(g, bx, by);
  const int32_t tx = threadIdx.x, ty = threadIdx.y;
  local_init(at, g, bx, by, tx, ty, src, shared);
  __syncthreads();
  local_merge(at, g, bx, by, tx, ty, shared);
  __syncthreads();
  local_write(at, g, bx, by, tx, ty, shared, labels);
}

__global__ void border_kernel(GridShape g, uint32_t* labels) {
  DeviceAtomics at;
  int32_t bx, by;
  block_coords(g, bx, by);
  border_merge(at, g, bx, by, static_cast<int32_t>(threadIdx.x), static_cast<int32_t>(threadIdx.y), labels);
}

__global__ void compress_kernel(GridShape g, uint32_t* labels) {
  DeviceAtomics at;
  int32_t bx, by;
  block_coords(g, bx, by);
  compress(at, g, bx, by, static_cast<int32_t>(threadIdx.x), static_cast<int32_t>(threadIdx.y), labels);
}

}  // namespace

void label_components_cuda(const ComponentInput& in, ComponentOutput& out) {
  check_component_input(in);
  const int64_t plane = in.height * in.width;
  const size_t total = static_cast<size_t>(in.batch * plane);
  out.segments.assign(static_cast<size_t>(in.batch), {});

  GridShape g{};
  g.height = static_cast<int32_t>(in.height);
  g.width = static_cast<int32_t>(in.width);
  g.block_w = kBlockW;
  g.block_h = kBlockH;
  g.blocks_x = static_cast<int32_t>((in.width + kBlockW - 1) / kBlockW);
  g.blocks_y = static_cast<int32_t>((in.height + kBlockH - 1) / kBlockH);
  g.connectivity = in.connectivity;
  const int64_t blocks = static_cast<int64_t>(g.blocks_x) * g.blocks_y;
  if (blocks > 0x7fffffff) throw std::invalid_argument("components: image too large for the CUDA grid");

  DeviceBuffer<float> scores(in.scores, total);
  const size_t roi_count = in.roi ? static_cast<size_t>(in.roi_shared ? plane : in.batch * plane) : 0;
  DeviceBuffer<uint8_t> roi(in.roi, roi_count);
  DeviceBuffer<uint32_t> labels(total);

  const dim3 block(kBlockW, kBlockH);
  const dim3 grid(static_cast<unsigned>(blocks));
  for (int64_t n = 0; n < in.batch; ++n) {
    const PixelSource src{scores.get() + n * plane,
                          in.roi ? roi.get() + (in.roi_shared ? 0 : n * plane) : nullptr, in.threshold};
    uint32_t* L = labels.get() + n * plane;
    local_kernel<<<grid, block>>>(g, src, L);
    cuda_check(cudaGetLastError(), "components local kernel launch");
    border_kernel<<<grid, block>>>(g, L);
    cuda_check(cudaGetLastError(), "components border kernel launch");
    compress_kernel<<<grid, block>>>(g, L);
    cuda_check(cudaGetLastError(), "components compress kernel launch");
  }
  cuda_check(cudaDeviceSynchronize(), "components kernels");

  std::unique_ptr<uint32_t[]> scratch;
  uint32_t* host = out.labels;
  if (!host) {
    scratch.reset(new uint32_t[total]);
    host = scratch.get();
  }
  labels.download(host);
  for (int64_t n = 0; n < in.batch; ++n)
    finish_root_labels(in, n, host + n * plane, out.segments[static_cast<size_t>(n)]);
}

}  // namespace pgn
