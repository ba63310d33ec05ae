// Metal backend of the upsample primitives (built only with MLX_BUILD_METAL).
#pragma once

#include "mlx/array.h"
#include "upsample_params.h"

namespace mlx_upsample::metal {

// Allocates `dst` (row-contiguous) and encodes on stream `s` the kernels
// that the launch plan picks, reading `src` with its strides as it lies
// (layout.h's Reads::Strided).
void upsample(
    const mlx::core::array& src,
    mlx::core::array& dst,
    const UpsampleParams& p,
    mlx::core::Stream s,
    bool backward);

} // namespace mlx_upsample::metal
