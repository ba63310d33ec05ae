#include "primitives.h"

#include <climits>
#include <sstream>
#include <stdexcept>
#include <variant>

#include "cpu/upsample_cpu.h"
#include "mlx/ops.h"
#include "mlx/utils.h"

#ifdef _METAL_
#include "metal/upsample_metal.h"
#endif

namespace mlx_upsample {

namespace {

// The largest output mlx-upsample agrees to build, in elements.
constexpr long long MAX_OUTPUT_ELEMENTS = 1LL << 40;

// Arrays are (*batch, *spatial, C): one or more leading axes that the
// kernels treat as a single batch axis of their product (the arrays are
// row-contiguous).
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
    if (m < 1 || m > INT_MAX) {
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
    msg << "[upsample] the output would have " << total
        << " elements, more than 2**40";
    throw std::invalid_argument(msg.str());
  }
  return out;
}

// The op hands the primitives row-contiguous arrays (mx::contiguous) and
// every backend indexes them as such.
const mx::array& contiguous_input(const mx::array& a) {
  if (!a.flags().row_contiguous) {
    throw std::runtime_error("[upsample] internal: input is not contiguous");
  }
  return a;
}

bool is_float(mx::Dtype t) {
  return t == mx::float32 || t == mx::float16 || t == mx::bfloat16;
}

std::string dtype_name(mx::Dtype t) {
  std::ostringstream s;
  s << t;
  return s.str();
}

// Our GPU kernels are Metal kernels. On an MLX whose GPU is another backend
// (CUDA on Linux, where the GPU is then the default device) the op would
// only fail at mx.eval, with a message about Metal; refuse it while it is
// built, and say what works. A Metal build has nothing to refuse.
#ifndef _METAL_
// The device an op asked for `s` runs on, found without making a stream:
// MLX refuses to make a GPU stream where it has no GPU backend, with a
// message that does not say what to do instead.
mx::Device requested_device(const mx::StreamOrDevice& s) {
  if (const auto* stream = std::get_if<mx::Stream>(&s)) {
    return stream->device;
  }
  if (const auto* device = std::get_if<mx::Device>(&s)) {
    return *device;
  }
  return mx::default_device();
}

void check_device(const mx::StreamOrDevice& s) {
  mx::Device device = requested_device(s);
  if (device.type == mx::Device::gpu) {
    std::ostringstream msg;
    msg << "[upsample] stream=" << device
        << (std::holds_alternative<std::monostate>(s) ? " (MLX's default device)" : "")
        << ": mlx-upsample has GPU kernels only for Metal (Apple silicon), "
           "and this MLX has no Metal backend; pass stream=mx.cpu (CUDA "
           "kernels are not written yet)";
    throw std::invalid_argument(msg.str());
  }
}
#else
void check_device(const mx::StreamOrDevice&) {}
#endif

// The cotangent of x given the cotangent of y; `x` only lends its shape.
mx::array upsample_backward(
    const mx::array& cotangent,
    const mx::array& x,
    const UpsampleParams& p,
    mx::Stream s) {
  if (!is_float(cotangent.dtype())) {
    throw std::invalid_argument(
        "[upsample] gradients need a float32, float16 or bfloat16 cotangent, "
        "got " + dtype_name(cotangent.dtype()));
  }
  return mx::array(
      x.shape(),
      cotangent.dtype(),
      std::make_shared<UpsampleBackward>(s, p),
      {mx::contiguous(cotangent, false, s), x});
}

// Moves the vmapped axis to the front and folds it into the batch axis:
// upsampling treats batch entries independently. An unmapped input is
// broadcast along the new axis.
mx::array fold_vmap_axis(const mx::array& a, int axis, int size, mx::Stream s) {
  mx::array front = axis < 0
      ? mx::broadcast_to(mx::expand_dims(a, 0, s), [&] {
          mx::Shape sh = a.shape();
          sh.insert(sh.begin(), size);
          return sh;
        }(), s)
      : mx::moveaxis(a, axis, 0, s);
  mx::Shape folded(front.shape().begin() + 1, front.shape().end());
  folded[0] *= size;
  return mx::reshape(front, folded, s);
}

// The batch length of one vmapped entry of `a`.
int unmapped_batch(const mx::array& a, int axis) {
  return a.shape(axis == 0 ? 1 : 0);
}

// Splits the folded batch axis of a result back into (size, batch). Both are
// given: the folded length alone does not give `batch` back when `size` is 0
// (a vmap over an empty axis).
mx::array unfold_vmap_axis(const mx::array& a, int size, int batch, mx::Stream s) {
  mx::Shape sh = a.shape();
  sh[0] = batch;
  sh.insert(sh.begin(), size);
  return mx::reshape(a, sh, s);
}

} // namespace

mx::array upsample(
    const mx::array& x,
    const UpsampleParams& params,
    mx::StreamOrDevice s) {
  validate(params);
  mx::Shape out_shape = forward_shape(params, x.shape());
  check_device(s);
  auto stream = mx::to_stream(s);
  mx::array in = x;
  if (x.dtype() == mx::uint8 && keeps_uint8(params)) {
    if (stream.device.type == mx::Device::DeviceType::gpu) {
      throw NotImplemented(
          "[upsample] interpolate on uint8 in linear and cubic modes (PyTorch's "
          "fixed-point uint8 kernels) runs on the CPU only; use stream=mx.cpu, "
          "or convert the input to float32 to interpolate on the GPU");
    }
  } else if (is_weighted(params.method)) {
    if (!is_float(x.dtype())) {
      if (mx::issubdtype(x.dtype(), mx::inexact)) {
        throw std::invalid_argument(
            "[upsample] x has dtype " + dtype_name(x.dtype()) +
            ": linear, cubic, antialias and area support float32, float16 "
            "and bfloat16 (and integer or bool inputs, computed in float32)");
      }
      // Integers and bools interpolate in float32, as mlx.nn.Upsample does.
      in = mx::astype(x, mx::float32, stream);
    }
  }
  in = mx::contiguous(in, false, stream);
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
  cpu::upsample(contiguous_input(inputs[0]), out, params_, stream(), /*backward=*/false);
}

void UpsampleForward::eval_gpu(
    const std::vector<mx::array>& inputs,
    mx::array& out) {
#ifdef _METAL_
  metal::upsample(contiguous_input(inputs[0]), out, params_, stream(), /*backward=*/false);
#else
  // Not reached: upsample() refuses GPU streams in builds without Metal.
  throw std::runtime_error(
      "[upsample] this build of mlx-upsample has no GPU kernels (MLX was "
      "not built with Metal); run it on a CPU stream");
#endif
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
  // The operator is linear: its derivative is itself.
  return {upsample(tangents[0], params_, stream())};
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
  int size = inputs[0].shape(axes[0]);
  int batch = unmapped_batch(inputs[0], axes[0]);
  auto x = fold_vmap_axis(inputs[0], axes[0], size, stream());
  return {
      {unfold_vmap_axis(upsample(x, params_, stream()), size, batch, stream())},
      {0}};
}

std::vector<mx::Shape> UpsampleForward::output_shapes(
    const std::vector<mx::array>& inputs) {
  return {forward_shape(params_, inputs[0].shape())};
}

// ---- UpsampleBackward -------------------------------------------------------

void UpsampleBackward::eval_cpu(
    const std::vector<mx::array>& inputs,
    mx::array& out) {
  cpu::upsample(contiguous_input(inputs[0]), out, params_, stream(), /*backward=*/true);
}

void UpsampleBackward::eval_gpu(
    const std::vector<mx::array>& inputs,
    mx::array& out) {
#ifdef _METAL_
  metal::upsample(contiguous_input(inputs[0]), out, params_, stream(), /*backward=*/true);
#else
  // Not reached: upsample() refuses GPU streams in builds without Metal.
  throw std::runtime_error(
      "[upsample] this build of mlx-upsample has no GPU kernels (MLX was "
      "not built with Metal); run it on a CPU stream");
#endif
}

std::vector<mx::array> UpsampleBackward::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& tangents,
    const std::vector<int>& argnums) {
  // Linear in the cotangent; the second input only carries a shape.
  for (size_t k = 0; k < argnums.size(); ++k) {
    if (argnums[k] == 0) {
      return {upsample_backward(tangents[k], primals[1], params_, stream())};
    }
  }
  return {mx::zeros(primals[1].shape(), primals[0].dtype(), stream())};
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
  int size = axes[0] >= 0 ? inputs[0].shape(axes[0])
                          : inputs[1].shape(axes[1]);
  int batch = unmapped_batch(inputs[1], axes[1]);
  auto cotangent = fold_vmap_axis(inputs[0], axes[0], size, stream());
  auto x = fold_vmap_axis(inputs[1], axes[1], size, stream());
  return {
      {unfold_vmap_axis(
          upsample_backward(cotangent, x, params_, stream()),
          size,
          batch,
          stream())},
      {0}};
}

std::vector<mx::Shape> UpsampleBackward::output_shapes(
    const std::vector<mx::array>& inputs) {
  return {inputs[1].shape()};
}

} // namespace mlx_upsample
