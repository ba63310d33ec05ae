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

// The reordering does not depend on the instruction set.
double last_table_extra_bytes(const SeparableGather& plan) {
  return baseline::reordered_bytes(plan.tables.back(), plan.channels);
}

void prepare_last_table(SeparableGather& plan) {
  baseline::reorder_for_channels(plan.tables.back(), plan.channels);
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
