// CPU backend of the upsample primitives.
#pragma once

#include "mlx/array.h"
#include "upsample_params.h"

namespace mlx_upsample::cpu {

// Forward: `src` is the input, `dst` the upsampled output. Backward: `src`
// is the output's cotangent, `dst` the input's. Both allocate `dst` (and
// their intermediates) and enqueue the work on stream `s`.
void upsample_forward(
    const mlx::core::array& src,
    mlx::core::array& dst,
    const UpsampleParams& p,
    mlx::core::Stream s);

void upsample_backward(
    const mlx::core::array& src,
    mlx::core::array& dst,
    const UpsampleParams& p,
    mlx::core::Stream s);

} // namespace mlx_upsample::cpu
