// CPU backend of the upsample primitives.
#pragma once

#include "mlx/array.h"
#include "upsample_params.h"

namespace mlx_upsample::cpu {

// Forward (backward == false): `src` is the input, `dst` the upsampled
// output. Backward: `src` is the output's cotangent, `dst` the input's.
// Allocates `dst` and enqueues the work on `s`. `held_bytes`: memory the
// call holds besides src and dst (a row-contiguous copy of a strided input,
// layout.h), which its memory check counts.
void upsample(
    const mlx::core::array& src,
    mlx::core::array& dst,
    const UpsampleParams& p,
    mlx::core::Stream s,
    bool backward,
    double held_bytes);

} // namespace mlx_upsample::cpu
