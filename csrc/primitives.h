// The two MLX primitives of the upsample operator.
//
// UpsampleForward:  x (N, *spatial, C)             -> y (N, *out_spatial, C)
// UpsampleBackward: (cotangent of y, x as shape)  -> cotangent of x
//
// The backward is its own primitive with its own kernels (a gather over the
// outputs each input feeds), not a composition of MLX scatters. It takes the
// forward input as a second input only for its shape: floor(N * scale) is
// not invertible, and a shapeless-compiled graph must still know N.
#pragma once

#include "mlx/ops.h"
#include "mlx/primitives.h"
#include "upsample_params.h"

namespace mlx_upsample {

namespace mx = mlx::core;

// Builds y = upsample(x) (the op used by the bindings). Weighted methods
// (all but nearest) turn integer and bool inputs into float32; contiguity
// is taken care of here.
mx::array upsample(
    const mx::array& x,
    const UpsampleParams& params,
    mx::StreamOrDevice s = {});

class UpsampleForward : public mx::UnaryPrimitive {
 public:
  UpsampleForward(mx::Stream stream, UpsampleParams params)
      : mx::UnaryPrimitive(stream), params_(std::move(params)) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;

  std::vector<mx::array> jvp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& tangents,
      const std::vector<int>& argnums) override;
  std::vector<mx::array> vjp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& cotangents,
      const std::vector<int>& argnums,
      const std::vector<mx::array>& outputs) override;
  std::pair<std::vector<mx::array>, std::vector<int>> vmap(
      const std::vector<mx::array>& inputs,
      const std::vector<int>& axes) override;
  std::vector<mx::Shape> output_shapes(
      const std::vector<mx::array>& inputs) override;
  bool is_equivalent(const mx::Primitive& other) const override;
  const char* name() const override {
    return "UpsampleForward";
  }

  const UpsampleParams& params() const {
    return params_;
  }

 private:
  UpsampleParams params_;
};

class UpsampleBackward : public mx::UnaryPrimitive {
 public:
  UpsampleBackward(mx::Stream stream, UpsampleParams params)
      : mx::UnaryPrimitive(stream), params_(std::move(params)) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;

  std::vector<mx::array> jvp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& tangents,
      const std::vector<int>& argnums) override;
  std::vector<mx::array> vjp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& cotangents,
      const std::vector<int>& argnums,
      const std::vector<mx::array>& outputs) override;
  std::pair<std::vector<mx::array>, std::vector<int>> vmap(
      const std::vector<mx::array>& inputs,
      const std::vector<int>& axes) override;
  std::vector<mx::Shape> output_shapes(
      const std::vector<mx::array>& inputs) override;
  bool is_equivalent(const mx::Primitive& other) const override;
  const char* name() const override {
    return "UpsampleBackward";
  }

 private:
  UpsampleParams params_;
};

} // namespace mlx_upsample
