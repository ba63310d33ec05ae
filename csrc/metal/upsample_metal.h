// Metal backend of the upsample primitives (built only with MLX_BUILD_METAL).
#pragma once

#include "mlx/array.h"
#include "upsample_params.h"

namespace mlx_upsample::metal {

// Same contract as the CPU backend (cpu/upsample_cpu.h): allocate `dst` and
// encode the kernel that the launch plan picks on stream `s`.
void upsample(
    const mlx::core::array& src,
    mlx::core::array& dst,
    const UpsampleParams& p,
    mlx::core::Stream s,
    bool backward);

} // namespace mlx_upsample::metal
