#include "cpu/separable_gather.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "cpu/isa.h"
#include "cpu/thread_pool.h"
#include "mlx/types/half_types.h"

namespace mlx_upsample::cpu {

namespace mx = mlx::core;

namespace baseline {
constexpr bool HAS_F16C = false;
#include "cpu/separable_gather.inc"
} // namespace baseline

#ifdef UPSAMPLE_AVX2_DISPATCH
UPSAMPLE_AVX2_BEGIN
namespace avx2 {
constexpr bool HAS_F16C = true;
#include "cpu/separable_gather.inc"
} // namespace avx2
UPSAMPLE_AVX2_END
#endif

namespace {

double elements(const std::vector<int>& sizes) {
  double n = 1;
  for (int s : sizes) {
    n *= s;
  }
  return n;
}

} // namespace

bool tiles_images(const SeparableGather& plan) {
  return plan.build == TableBuild::Whole && plan.channels == 1 && plan.batch >= IMAGE_TILE &&
      double(IMAGE_TILE) * (elements(plan.src_sizes) + elements(plan.dst_sizes)) *
              sizeof(float) <=
      TILE_BYTES;
}

// The reordering does not depend on the instruction set. A tiled plan runs
// the kernels of IMAGE_TILE channels, on the table as built.
double kernel_extra_bytes(const SeparableGather& plan) {
  if (!tiles_images(plan)) {
    return baseline::reordered_bytes(plan.tables.back(), plan.channels);
  }
  // Per thread: a tile's input and output, and its float32 row buffers
  // (one per spatial axis but the first).
  double buffers = 0, slab = IMAGE_TILE;
  for (size_t a = plan.src_sizes.size() - 1; a >= 1; --a) {
    slab *= plan.src_sizes[a];
    buffers += slab;
  }
  return num_threads() *
      (TILE_BYTES + buffers * sizeof(float));
}

void prepare_last_table(SeparableGather& plan) {
  if (!tiles_images(plan)) {
    baseline::reorder_for_channels(plan.tables.back(), plan.channels);
  }
}

SeparableGatherKernel separable_gather_kernel(mx::Dtype dtype) {
  SeparableGatherKernel kernel = UPSAMPLE_ISA_KERNEL(kernel_for)(dtype);
  if (kernel == nullptr) {
    throw std::invalid_argument(
        "[upsample] linear, cubic and gradients need a float dtype");
  }
  return kernel;
}

} // namespace mlx_upsample::cpu
