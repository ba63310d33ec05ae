#include "primitives.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "cpu/upsample_cpu.h"
#include "layout.h"
#include "memory_check.h"
#include "op_checks.h"
#include "mlx/ops.h"
#include "mlx/utils.h"

#ifdef _METAL_
#include "metal/upsample_metal.h"
#else
namespace mlx_upsample::metal {

// The GPU backend of a build without Metal, for both primitives' eval_gpu.
// Not reached: upsample() refuses GPU streams in such builds (check_device).
[[noreturn]] void upsample(
    const mx::array&, mx::array&, const UpsampleParams&, mx::Stream, bool /* backward */) {
  throw std::runtime_error(
      "[upsample] this build of mlx-upsample has no GPU kernels (MLX was "
      "not built with Metal); run it on a CPU stream");
}

} // namespace mlx_upsample::metal
#endif

namespace mlx_upsample {

namespace {

// `x` with the fewest significant digits that read back as `x`, in fixed
// notation from 1e-4 to 1e16 as Python writes floats: "0.25", "100000",
// "1e+20".
std::string number_text(double x) {
  char text[64];
  int digits = 1;
  for (; digits < 17; ++digits) {
    std::snprintf(text, sizeof(text), "%.*e", digits - 1, x);
    if (std::strtod(text, nullptr) == x) {
      break;
    }
  }
  std::snprintf(text, sizeof(text), "%.*e", digits - 1, x);
  int exponent = std::atoi(std::strchr(text, 'e') + 1);
  if (exponent >= -4 && exponent < 16) {
    std::snprintf(text, sizeof(text), "%.*f", std::max(0, digits - 1 - exponent), x);
  }
  return text;
}

// How the Python functions' arguments give the output's sizes:
// "scale_factor=(2, 1.5)" or "size=(5, 7)" (both where the axes mix them,
// which only the C++ API allows).
std::string sizing_text(const UpsampleParams& p) {
  std::string scales, sizes;
  bool any_scale = false, any_size = false;
  for (int a = 0; a < p.spatial_dims(); ++a) {
    scales += (a > 0 ? ", " : "") + number_text(p.scales[a]);
    sizes += (a > 0 ? ", " : "") + std::to_string(p.sizes[a]);
    any_scale = any_scale || p.sizes[a] == 0;
    any_size = any_size || p.sizes[a] > 0;
  }
  std::string text = any_scale ? "scale_factor=(" + scales + ")" : "";
  return text + (any_scale && any_size ? " and " : "") +
      (any_size ? "size=(" + sizes + ")" : "");
}

// Arrays are (*batch, *spatial, C): one or more leading axes that the
// kernels treat as a single batch axis of their product (the arrays are
// row-contiguous), which lets vmap add its axis in front without a reshape.
int batch_axes(const UpsampleParams& p, const mx::Shape& shape, const char* what) {
  int lead = static_cast<int>(shape.size()) - p.spatial_dims() - 1;
  if (lead < 1) {
    throw std::invalid_argument(
        std::string("[upsample] expected ") + what + " of at least " +
        std::to_string(p.spatial_dims() + 2) + " dims (N, *spatial, C) but got " +
        std::to_string(shape.size()));
  }
  return lead;
}

mx::Shape forward_shape(const UpsampleParams& p, const mx::Shape& in) {
  int lead = batch_axes(p, in, "an input");
  mx::Shape out = in;
  // In double: a product of integers is exact up to 2**53, and anything
  // larger is far beyond the limit, so the comparison is exact and cannot
  // overflow.
  double total = in.back();
  for (int a = 0; a < lead; ++a) {
    total *= in[a];
  }
  for (int a = 0; a < p.spatial_dims(); ++a) {
    if (in[lead + a] < 1) {
      // An output position would have no input to read.
      throw std::invalid_argument(
          "[upsample] spatial axis " + std::to_string(a) +
          " of the input is empty: input and output sizes must be at least 1");
    }
    long long m = output_size(p, a, in[lead + a]);
    if (m < 1 || m > MAX_AXIS_SIZE) {
      throw std::invalid_argument(
          "[upsample] spatial axis " + std::to_string(a) + " of length " +
          std::to_string(in[lead + a]) + " gives an output length of " +
          std::to_string(m) + ", outside [1, 2**31 - 1]");
    }
    out[lead + a] = static_cast<int>(m);
    total *= m;
  }
  if (total > MAX_OUTPUT_ELEMENTS) {
    std::ostringstream msg;
    msg.precision(17);
    msg << "[upsample] " << sizing_text(p) << " gives an output of " << total
        << " elements (spatial "
        << shape_text(std::vector<int>(out.begin() + lead, out.end() - 1))
        << "), more than 2**40";
    throw std::invalid_argument(msg.str());
  }
  return out;
}

// The cotangent of x: the cotangent's batch axes and channels, the spatial
// sizes of `x`, whose other batch axes are not read (vmap may hand over an x
// without its axis, or with one that the cotangent lacks; the last batch
// axis, the op's own N, is both's). A cotangent that does not fit x gets an
// error, not a result of the wrong shape.
mx::Shape backward_shape(
    const UpsampleParams& p,
    const mx::Shape& cotangent,
    const mx::Shape& x) {
  int lead = batch_axes(p, cotangent, "a cotangent");
  int x_lead = batch_axes(p, x, "an input");
  mx::Shape out = cotangent;
  bool fits = cotangent.back() == x.back() && cotangent[lead - 1] == x[x_lead - 1];
  for (int a = 0; a < p.spatial_dims(); ++a) {
    out[lead + a] = x[x_lead + a];
    fits = fits && cotangent[lead + a] == output_size(p, a, x[x_lead + a]);
  }
  if (!fits) {
    auto text = [](const mx::Shape& s) {
      return shape_text(std::vector<int>(s.begin(), s.end()));
    };
    throw std::invalid_argument(
        "[upsample] the cotangent has shape " + text(cotangent) +
        ", which does not fit x of shape " + text(x) + " (" + p.describe() +
        "): it needs x's batch and channels and the upsampled spatial sizes. "
        "Under mx.compile(shapeless=True) an op before the upsample kept a "
        "shape it was traced with (as the gradient of a sum under mx.vmap "
        "does in MLX 0.32)");
  }
  return out;
}

// The weighted modes compute in float32 (float16 and bfloat16 kept as
// such, integers and bools turned into float32). float64 and complex cannot
// be computed exactly by float32 kernels, so they are refused rather than
// rounded, with the array named: x, or a jvp's tangent.
bool weighted_dtype_ok(mx::Dtype t) {
  return is_float(t) || !mx::issubdtype(t, mx::inexact);
}

void check_weighted_dtype(const mx::array& x, upsample::Mode mode) {
  if (!weighted_dtype_ok(x.dtype())) {
    throw std::invalid_argument(
        "[upsample] x has dtype " + dtype_name(x.dtype()) + ", which the " +
        mode_name(mode) +
        " mode does not support: it needs float32, float16 or bfloat16 "
        "(integer and bool inputs are computed in float32); convert with "
        "x.astype(mx.float32), or use nearest, which copies any dtype");
  }
}

// The jvp's tangent goes through the op itself (it is linear).
void check_tangent_dtype(const mx::array& tangent, const mx::array& x) {
  if (!weighted_dtype_ok(tangent.dtype())) {
    throw std::invalid_argument(
        "[upsample] the tangent has dtype " + dtype_name(tangent.dtype()) +
        " (x has " + dtype_name(x.dtype()) + "): linear, cubic, antialias and "
        "area compute in float32 and cannot give an exact " +
        dtype_name(tangent.dtype()) + " tangent; pass a float32, float16 or "
        "bfloat16 tangent");
  }
}


// The cotangent of x given `cotangent`, the cotangent of y (or, in the
// backward's own jvp, a tangent: `what` names it); `x` only lends its
// spatial sizes (backward_shape).
mx::array upsample_backward(
    const mx::array& cotangent,
    const mx::array& x,
    const UpsampleParams& p,
    mx::Stream s,
    const std::string& what = "the cotangent") {
  if (!is_float(cotangent.dtype())) {
    // MLX hands the vjp a cotangent of the output's dtype: this is nearest
    // on a float64, integer or bool x, whose gradient needs sums the float32
    // kernels do not compute exactly.
    throw std::invalid_argument(
        "[upsample] " + what + " has dtype " + dtype_name(cotangent.dtype()) +
        ": gradients are computed for float32, float16 and bfloat16 only, "
        "summed in float32, which cannot give an exact " +
        dtype_name(cotangent.dtype()) + " gradient; differentiate a float32 input");
  }
  return mx::array(
      backward_shape(p, cotangent.shape(), x.shape()),
      cotangent.dtype(),
      std::make_shared<UpsampleBackward>(s, p),
      {cotangent, x});
}

} // namespace

mx::array upsample(
    const mx::array& x,
    const UpsampleParams& params,
    mx::StreamOrDevice s) {
  validate(params);
  mx::Shape out_shape = forward_shape(params, x.shape());
  check_device(s, "upsample");
  auto stream = mx::to_stream(s);
  mx::array in = x;
  if (x.dtype() == mx::uint8 && keeps_uint8(params)) {
    if (stream.device.type == mx::Device::DeviceType::gpu) {
      throw NotImplemented(
          "[upsample] interpolate on uint8 in linear and cubic modes (PyTorch's "
          "fixed-point uint8 kernels) runs on the CPU only; use stream=mx.cpu, "
          "or convert the input to float32 to interpolate on the GPU");
    }
  } else if (is_weighted(params.mode)) {
    check_weighted_dtype(x, params.mode);
    if (!is_float(x.dtype())) {
      // Integers and bools interpolate in float32, as mlx.nn.Upsample does.
      in = mx::astype(x, mx::float32, stream);
    }
  }
  return mx::array(
      out_shape,
      in.dtype(),
      std::make_shared<UpsampleForward>(stream, params),
      {in});
}

// ---- UpsampleForward --------------------------------------------------------

void UpsampleForward::eval_cpu(
    const std::vector<mx::array>& inputs,
    mx::array& out) {
  layout::run_forward(
      inputs[0], out, params_.spatial_dims(), stream(), layout::Reads::RowContiguous,
      [this](const mx::array& src, mx::array& dst, double held_bytes) {
        cpu::upsample(src, dst, params_, stream(), /*backward=*/false, held_bytes);
      });
}

void UpsampleForward::eval_gpu(
    const std::vector<mx::array>& inputs,
    mx::array& out) {
  layout::run_forward(
      inputs[0], out, params_.spatial_dims(), stream(), layout::Reads::Strided,
      [this](const mx::array& src, mx::array& dst, double /* held_bytes */) {
        metal::upsample(src, dst, params_, stream(), /*backward=*/false);
      });
}

// uint8 linear and cubic round and clamp every pass: piecewise constant, no
// derivative worth the name, and no uint8 gradient either.
void check_differentiable(const mx::array& x, const UpsampleParams& p) {
  if (x.dtype() == mx::uint8 && keeps_uint8(p)) {
    throw std::invalid_argument(
        "[upsample] interpolate's uint8 output (rounded and clamped to [0, 255] "
        "like PyTorch's) has no gradient; interpolate a float32 input to "
        "differentiate");
  }
}

std::vector<mx::array> UpsampleForward::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& tangents,
    const std::vector<int>&) {
  check_differentiable(primals[0], params_);
  mx::array tangent = tangents[0];
  if (is_weighted(params_.mode)) {
    check_tangent_dtype(tangent, primals[0]);
    if (!mx::issubdtype(tangent.dtype(), mx::inexact)) {
      // The derivative of the float op, as the op computes integer inputs;
      // not interpolate's uint8 passes, which round and clamp.
      tangent = mx::astype(tangent, mx::float32, stream());
    }
  }
  // The operator is linear: its derivative is itself.
  return {upsample(tangent, params_, stream())};
}

std::vector<mx::array> UpsampleForward::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& cotangents,
    const std::vector<int>&,
    const std::vector<mx::array>&) {
  check_differentiable(primals[0], params_);
  return {upsample_backward(cotangents[0], primals[0], params_, stream())};
}

std::pair<std::vector<mx::array>, std::vector<int>> UpsampleForward::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  // The vmapped axis becomes the leading batch axis of a higher-rank call.
  auto x = vmap_axis_to_front(inputs[0], axes[0], stream());
  return {{upsample(x, params_, stream())}, {0}};
}

std::vector<mx::Shape> UpsampleForward::output_shapes(
    const std::vector<mx::array>& inputs) {
  return {forward_shape(params_, inputs[0].shape())};
}

// ---- UpsampleBackward -------------------------------------------------------

void UpsampleBackward::eval_cpu(
    const std::vector<mx::array>& inputs,
    mx::array& out) {
  layout::run_backward(
      inputs[0], inputs[1], out, params_.spatial_dims(), stream(), layout::Reads::RowContiguous,
      [this](const mx::array& src, mx::array& dst, double held_bytes) {
        cpu::upsample(src, dst, params_, stream(), /*backward=*/true, held_bytes);
      });
}

void UpsampleBackward::eval_gpu(
    const std::vector<mx::array>& inputs,
    mx::array& out) {
  layout::run_backward(
      inputs[0], inputs[1], out, params_.spatial_dims(), stream(), layout::Reads::Strided,
      [this](const mx::array& src, mx::array& dst, double /* held_bytes */) {
        metal::upsample(src, dst, params_, stream(), /*backward=*/true);
      });
}

std::vector<mx::array> UpsampleBackward::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& tangents,
    const std::vector<int>& argnums) {
  // Linear in the cotangent; the second input only carries a shape.
  for (size_t k = 0; k < argnums.size(); ++k) {
    if (argnums[k] == 0) {
      return {upsample_backward(
          tangents[k], primals[1], params_, stream(), "the tangent of the cotangent")};
    }
  }
  // Zeros of the output's shape, built from the inputs' shapes (not from
  // numbers, which a shapeless-compiled graph would replay).
  return {upsample_backward(
      mx::zeros_like(primals[0], stream()), primals[1], params_, stream())};
}

std::vector<mx::array> UpsampleBackward::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& cotangents,
    const std::vector<int>& argnums,
    const std::vector<mx::array>&) {
  std::vector<mx::array> grads;
  for (int arg : argnums) {
    grads.push_back(
        arg == 0 ? upsample(cotangents[0], params_, stream())
                 : mx::zeros_like(primals[1], stream()));
  }
  return grads;
}

std::pair<std::vector<mx::array>, std::vector<int>> UpsampleBackward::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  auto x = vmap_axis_to_front(inputs[1], axes[1], stream());
  if (axes[0] >= 0) {
    // x lends only its spatial sizes: mapped or not, the result has the
    // cotangent's batch axes, the vmapped one in front.
    auto cotangent = vmap_axis_to_front(inputs[0], axes[0], stream());
    return {{upsample_backward(cotangent, x, params_, stream())}, {0}};
  }
  // One cotangent for every entry (the grad of a sum): one result, broadcast
  // along x's vmapped axis. The broadcast takes that axis's length from an
  // array of shape (size, 1, ..., 1) made from x by shapeless-safe ops, so a
  // shapeless-compiled graph follows new sizes; x's other leading axes need
  // not match the result's. Outside shapeless compilation broadcast_arrays
  // reads only the shapes and the reduction is never evaluated.
  auto result = upsample_backward(inputs[0], x, params_, stream());
  std::vector<int> rest(x.ndim() - 1), ones(result.ndim());
  std::iota(rest.begin(), rest.end(), 1);
  std::iota(ones.begin(), ones.end(), 1);
  auto length = mx::expand_dims(
      mx::sum(mx::stop_gradient(x, stream()), rest, false, stream()), ones, stream());
  return {{mx::broadcast_arrays({result, length}, stream())[0]}, {0}};
}

std::vector<mx::Shape> UpsampleBackward::output_shapes(
    const std::vector<mx::array>& inputs) {
  return {backward_shape(params_, inputs[0].shape(), inputs[1].shape())};
}

} // namespace mlx_upsample
