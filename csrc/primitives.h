// The two MLX primitives of the upsample operator.
//
// UpsampleForward:  x (*batch, *spatial, C)            -> y (*batch, *out_spatial, C)
// UpsampleBackward: (cotangent of y, x for its sizes)  -> cotangent of x
//
// One or more leading batch axes, which the kernels see as one axis of their
// product: vmap moves its axis in front and calls the op on the higher-rank
// array, with no reshape for a shapeless-compiled graph to replay with stale
// sizes. The Python functions take exactly (N, *spatial, C).
//
// The backward is its own primitive with its own kernels (a gather over the
// outputs each input feeds), not a composition of MLX scatters. It takes the
// forward input as a second input only for its spatial sizes: floor(N *
// scale) is not invertible, and a shapeless-compiled graph must still know N.
// Its batch axes and channels are the cotangent's.
#pragma once

#include <climits>
#include <stdexcept>

#include "mlx/ops.h"
#include "mlx/primitives.h"
#include "upsample_params.h"

namespace mlx_upsample {

namespace mx = mlx::core;

// The longest spatial axis of an output: MLX's shapes are int. The Python
// functions check it too (as _ext.MAX_AXIS_SIZE), to name the user's
// argument where it does not fit the op's arguments.
constexpr long long MAX_AXIS_SIZE = INT_MAX;

// What this build cannot do (the bindings raise NotImplementedError).
struct NotImplemented : std::logic_error {
  using std::logic_error::logic_error;
};

// Builds y = upsample(x) (the op used by the bindings), x (*batch, *spatial,
// C) with as many spatial axes as `params` has. Weighted modes (all but
// the two nearest) turn integer and bool inputs into float32. On GPU streams the
// input is made contiguous here; the CPU primitives take any layout
// (layout.h).
mx::array upsample(
    const mx::array& x,
    const UpsampleParams& params,
    mx::StreamOrDevice s = {});

// MLX's declaration macros (mlx/primitives.h) name `array` unqualified.
using mx::array;

// What both primitives share: the operator's parameters, compared in full by
// is_equivalent so that mx.compile only merges identical calls.
class UpsamplePrimitive : public mx::UnaryPrimitive {
 public:
  UpsamplePrimitive(mx::Stream stream, UpsampleParams params)
      : mx::UnaryPrimitive(stream), params_(std::move(params)) {}

  bool is_equivalent(const mx::Primitive& other) const override {
    auto o = dynamic_cast<const UpsamplePrimitive*>(&other);
    return o != nullptr && std::string(o->name()) == name() &&
        o->params_ == params_;
  }

 protected:
  UpsampleParams params_;
};

class UpsampleForward : public UpsamplePrimitive {
 public:
  using UpsamplePrimitive::UpsamplePrimitive;

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  std::vector<mx::Shape> output_shapes(
      const std::vector<mx::array>& inputs) override;

  DEFINE_VMAP()
  DEFINE_GRADS()
  DEFINE_NAME(UpsampleForward)
};

class UpsampleBackward : public UpsamplePrimitive {
 public:
  using UpsamplePrimitive::UpsamplePrimitive;

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  std::vector<mx::Shape> output_shapes(
      const std::vector<mx::array>& inputs) override;

  DEFINE_VMAP()
  DEFINE_GRADS()
  DEFINE_NAME(UpsampleBackward)
};

} // namespace mlx_upsample
