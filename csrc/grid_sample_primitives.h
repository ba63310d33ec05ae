// The MLX primitives of grid_sample.
//
// GridSample:         (x, grid)           -> y
// GridSampleTangent:  (x, grid, tangent)  -> d y / d grid . tangent
// GridSampleBackward: (cotangent of y, x, grid) -> cotangents of x and/or grid
//
// x is (*batch, *spatial, C) with 2 or 3 spatial axes, the grid (*batch,
// *out_spatial, dims) float32 with the same batch axes, y (*batch,
// *out_spatial, C) of x's dtype. One or more batch axes, which the kernels
// see as one: vmap puts its axis in front (as for upsample, primitives.h).
// The backward is its own primitive with its own kernels, and the cotangent
// of x is summed in a fixed order (Note [grid_sample order of operations]),
// never with float atomics.
#pragma once

#include "grid_sample_params.h"
#include "mlx/ops.h"
#include "mlx/primitives.h"

namespace mlx_upsample {

namespace mx = mlx::core;

// y = grid_sample(x, grid) (the op of the bindings). Refuses what the
// kernels cannot compute (std::invalid_argument): dtypes other than
// float32, float16 and bfloat16 (the grid turned into float32 here), shapes
// that do not fit.
mx::array grid_sample(
    const mx::array& x,
    const mx::array& grid,
    const GridSampleParams& params,
    mx::StreamOrDevice s = {});

using mx::array;

class GridSamplePrimitive : public mx::Primitive {
 public:
  GridSamplePrimitive(mx::Stream stream, GridSampleParams params)
      : mx::Primitive(stream), params_(params) {}

  bool is_equivalent(const mx::Primitive& other) const override;

 protected:
  GridSampleParams params_;
};

class GridSample : public GridSamplePrimitive {
 public:
  using GridSamplePrimitive::GridSamplePrimitive;

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override;
  void eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override;

  DEFINE_VMAP()
  DEFINE_GRADS()
  DEFINE_NAME(GridSample)
};

class GridSampleTangent : public GridSamplePrimitive {
 public:
  using GridSamplePrimitive::GridSamplePrimitive;

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override;
  void eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override;

  DEFINE_VMAP()
  DEFINE_GRADS()
  DEFINE_NAME(GridSampleTangent)
};

// Outputs: the cotangent of x where wants_x, then the grid's where
// wants_grid (float32).
class GridSampleBackward : public GridSamplePrimitive {
 public:
  GridSampleBackward(mx::Stream stream, GridSampleParams params, bool wants_x, bool wants_grid)
      : GridSamplePrimitive(stream, params), wants_x_(wants_x), wants_grid_(wants_grid) {}

  bool is_equivalent(const mx::Primitive& other) const override;
  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override;
  void eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override;

  DEFINE_VMAP()
  DEFINE_GRADS()
  DEFINE_NAME(GridSampleBackward)

 private:
  bool wants_x_;
  bool wants_grid_;
};

} // namespace mlx_upsample
