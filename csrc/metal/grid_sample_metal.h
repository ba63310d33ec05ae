// Metal backend of the grid_sample primitives (grid_sample_primitives.h).
// Every array is row-contiguous: x (*batch, *spatial, C) float32, float16 or
// bfloat16; grid and its tangent (*batch, *out_spatial, dims) float32. Each
// function allocates its outputs and encodes the kernels on `s`.
#pragma once

#include "grid_sample_params.h"
#include "mlx/array.h"

namespace mlx_upsample::metal {

// out (*batch, *out_spatial, C), x's dtype.
void grid_sample_forward(
    const mlx::core::array& x,
    const mlx::core::array& grid,
    mlx::core::array& out,
    const GridSampleParams& p,
    mlx::core::Stream s);

// The jvp in the grid: out = d grid_sample(x, grid) / d grid . tangent.
void grid_sample_tangent(
    const mlx::core::array& x,
    const mlx::core::array& grid,
    const mlx::core::array& tangent,
    mlx::core::array& out,
    const GridSampleParams& p,
    mlx::core::Stream s);

// The cotangents of x (x's shape and dtype) and of the grid (float32), each
// computed only where its pointer is not null. The cotangent of x is summed
// in the fixed order of Note [grid_sample order of operations], with no
// float atomics.
void grid_sample_backward(
    const mlx::core::array& cotangent,
    const mlx::core::array& x,
    const mlx::core::array& grid,
    mlx::core::array* dx,
    mlx::core::array* dgrid,
    const GridSampleParams& p,
    mlx::core::Stream s);

} // namespace mlx_upsample::metal
