#include "memory_check.h"

#include "mlx/memory.h"

namespace mlx_upsample {

double memory_limit() {
  return static_cast<double>(mlx::core::get_memory_limit());
}

} // namespace mlx_upsample
