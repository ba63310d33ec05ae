// CPU backend of the grid_sample primitives (grid_sample_primitives.h), the
// same contract as the Metal one (metal/grid_sample_metal.h): row-contiguous
// x (*batch, *spatial, C) float32, float16 or bfloat16, grid and its tangent
// (*batch, *out_spatial, dims) float32; outputs allocated here and the work
// enqueued on `s`.
#pragma once

#include "grid_sample_params.h"
#include "mlx/array.h"

namespace mlx_upsample::cpu {

void grid_sample_forward(
    const mlx::core::array& x,
    const mlx::core::array& grid,
    mlx::core::array& out,
    const GridSampleParams& p,
    mlx::core::Stream s);

void grid_sample_tangent(
    const mlx::core::array& x,
    const mlx::core::array& grid,
    const mlx::core::array& tangent,
    mlx::core::array& out,
    const GridSampleParams& p,
    mlx::core::Stream s);

// The cotangents of x and of the grid, each where its pointer is not null.
void grid_sample_backward(
    const mlx::core::array& cotangent,
    const mlx::core::array& x,
    const mlx::core::array& grid,
    mlx::core::array* dx,
    mlx::core::array* dgrid,
    const GridSampleParams& p,
    mlx::core::Stream s);

} // namespace mlx_upsample::cpu
