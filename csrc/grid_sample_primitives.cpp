#include "grid_sample_primitives.h"

#include <algorithm>
#include <climits>
#include <optional>
#include <stdexcept>

#include "cpu/grid_sample_cpu.h"
#include "layout.h"
#include "memory_check.h"
#include "mlx/ops.h"
#include "op_checks.h"
#include "primitives.h"

#ifdef _METAL_
#include "metal/grid_sample_metal.h"
#else
namespace mlx_upsample::metal {

// The GPU backend of a build without Metal. Not reached: grid_sample()
// refuses GPU streams in such builds (check_device).
[[noreturn]] void no_metal() {
  throw std::runtime_error(
      "[grid_sample] this build of mlx-upsample has no GPU kernels (MLX was "
      "not built with Metal); run it on a CPU stream");
}
void grid_sample_forward(const mx::array&, const mx::array&, mx::array&,
                         const GridSampleParams&, mx::Stream) {
  no_metal();
}
void grid_sample_tangent(const mx::array&, const mx::array&, const mx::array&, mx::array&,
                         const GridSampleParams&, mx::Stream) {
  no_metal();
}
void grid_sample_backward(const mx::array&, const mx::array&, const mx::array&, mx::array*,
                          mx::array*, const GridSampleParams&, mx::Stream) {
  no_metal();
}

} // namespace mlx_upsample::metal
#endif

namespace mlx_upsample {

namespace {

std::string text(const mx::Shape& s) {
  return shape_text(std::vector<int>(s.begin(), s.end()));
}

double elements(const mx::Shape& s) {
  double n = 1.0;
  for (int d : s) {
    n *= d;
  }
  return n;
}

// The spatial dims of a call: the size of the grid's last axis.
int grid_dims(const mx::Shape& grid) {
  return grid.empty() ? 0 : grid.back();
}

// y's shape: the grid's batch and spatial axes and x's channels. Throws
// std::invalid_argument naming x or the grid where they do not fit.
mx::Shape output_shape(const mx::Shape& x, const mx::Shape& grid) {
  int dims = grid_dims(grid);
  if (dims != 2 && dims != 3) {
    throw std::invalid_argument(
        "[grid_sample] grid has shape " + text(grid) +
        ": its last axis holds the coordinates (x, y) of a 2-D sampling or (x, y, z) of a "
        "3-D one, so it must have size 2 or 3");
  }
  int lead = static_cast<int>(grid.size()) - dims - 1;
  if (lead < 1) {
    throw std::invalid_argument(
        "[grid_sample] grid has shape " + text(grid) + ": a " + std::to_string(dims) +
        "-D grid is (N, " + (dims == 3 ? "Do, " : "") + "Ho, Wo, " + std::to_string(dims) +
        ")");
  }
  if (static_cast<int>(x.size()) != lead + dims + 1 ||
      !std::equal(grid.begin(), grid.begin() + lead, x.begin())) {
    throw std::invalid_argument(
        "[grid_sample] x has shape " + text(x) + " and grid " + text(grid) +
        ": a grid of " + std::to_string(dims) + " coordinates samples x of shape (N, " +
        (dims == 3 ? "D, " : "") + "H, W, C) with the grid's N");
  }
  long long pixels = 1;
  for (int a = lead; a < lead + dims; ++a) {
    if (x[a] < 1) {
      throw std::invalid_argument(
          "[grid_sample] x has shape " + text(x) +
          ": every spatial size of the input must be at least 1");
    }
    pixels *= x[a];
  }
  if (pixels > INT_MAX) {
    throw std::invalid_argument(
        "[grid_sample] x has shape " + text(x) + ": more than 2**31 - 1 pixels per image");
  }
  mx::Shape out(grid.begin(), grid.end() - 1);
  out.push_back(x.back());
  // In double: exact up to 2**53, far beyond the limit.
  if (elements(grid) / dims * std::max(dims, x.back()) > MAX_OUTPUT_ELEMENTS) {
    throw std::invalid_argument(
        "[grid_sample] grid has shape " + text(grid) + " and x " + text(x) +
        ": the grid or the output would have more than 2**40 elements");
  }
  return out;
}

void check_float(const mx::array& a, const char* name) {
  if (!is_float(a.dtype())) {
    throw std::invalid_argument(
        std::string("[grid_sample] ") + name + " has dtype " + dtype_name(a.dtype()) +
        ": grid_sample computes in float32 and takes float32, float16 or bfloat16");
  }
}

// The kernels read row-contiguous arrays, the grid (and its tangent) in
// float32: the grid is small next to x, and its coordinates keep their
// precision whatever x's dtype. The CPU primitives copy a strided input
// themselves, once its strides are known (a broadcast grid of a huge output
// gets a MemoryError there, not a copy MLX cannot allocate); the Metal ones
// are handed row-contiguous arrays.
mx::array for_kernel(const mx::array& a, mx::Stream s) {
  return s.device.type == mx::Device::gpu ? mx::contiguous(a, false, s) : a;
}

mx::array as_kernel_grid(const mx::array& g, mx::Stream s) {
  return for_kernel(g.dtype() == mx::float32 ? g : mx::astype(g, mx::float32, s), s);
}

// The primitives, their inputs made kernel-ready (a no-op for the arrays of
// grid_sample() and of the primitives' own inputs, row-contiguous already).
mx::array make_forward(const mx::array& x, const mx::array& grid, const GridSampleParams& p,
                       mx::Stream s) {
  return mx::array(output_shape(x.shape(), grid.shape()), x.dtype(),
                   std::make_shared<GridSample>(s, p), {for_kernel(x, s), as_kernel_grid(grid, s)});
}

// A jvp's tangent in `dtype`, as the kernels compute it: float tangents
// converted, integer and bool ones too (the derivative of the float op);
// float64 and complex ones refused, with the array named: float32 kernels
// cannot give an exact float64 tangent.
mx::array as_tangent(const mx::array& t, mx::Dtype dtype, const char* what, mx::Stream s) {
  if (!is_float(t.dtype()) && mx::issubdtype(t.dtype(), mx::inexact)) {
    throw std::invalid_argument(
        std::string("[grid_sample] ") + what + " has dtype " + dtype_name(t.dtype()) +
        ": grid_sample computes in float32 and cannot give an exact " +
        dtype_name(t.dtype()) + " tangent; pass a float32, float16 or bfloat16 tangent");
  }
  return t.dtype() == dtype ? t : mx::astype(t, dtype, s);
}

mx::array make_tangent(const mx::array& x, const mx::array& grid, const mx::array& tangent,
                       const GridSampleParams& p, mx::Stream s) {
  if (tangent.shape() != grid.shape()) {
    throw std::invalid_argument(
        "[grid_sample] the grid's tangent has shape " + text(tangent.shape()) +
        ", not the grid's " + text(grid.shape()));
  }
  return mx::array(output_shape(x.shape(), grid.shape()), x.dtype(),
                   std::make_shared<GridSampleTangent>(s, p),
                   {for_kernel(x, s), as_kernel_grid(grid, s),
                    for_kernel(as_tangent(tangent, mx::float32, "the grid's tangent", s), s)});
}

std::vector<mx::array> make_backward(const mx::array& cotangent, const mx::array& x,
                                     const mx::array& grid, const GridSampleParams& p,
                                     bool wants_x, bool wants_grid, mx::Stream s) {
  mx::Shape y = output_shape(x.shape(), grid.shape());
  if (cotangent.shape() != y) {
    throw std::invalid_argument(
        "[grid_sample] the cotangent has shape " + text(cotangent.shape()) +
        ", not the output's " + text(y));
  }
  check_float(cotangent, "the cotangent");
  mx::array cot = cotangent.dtype() == x.dtype() ? cotangent : mx::astype(cotangent, x.dtype(), s);
  std::vector<mx::Shape> shapes;
  std::vector<mx::Dtype> dtypes;
  if (wants_x) {
    shapes.push_back(x.shape());
    dtypes.push_back(x.dtype());
  }
  if (wants_grid) {
    shapes.push_back(grid.shape());
    dtypes.push_back(mx::float32);
  }
  return mx::array::make_arrays(
      std::move(shapes), dtypes, std::make_shared<GridSampleBackward>(s, p, wants_x, wants_grid),
      {for_kernel(cot, s), for_kernel(x, s), as_kernel_grid(grid, s)});
}

bool has(const std::vector<int>& argnums, int k) {
  return std::find(argnums.begin(), argnums.end(), k) != argnums.end();
}

[[noreturn]] void no_second_derivative(const char* what) {
  throw NotImplemented(
      std::string("[grid_sample] ") + what +
      " is not implemented (the second derivatives of grid_sample in x and the grid)");
}

// vmap: every mapped input's axis moved in front, the others broadcast along
// it, so that the primitive sees one batch axis more.
std::vector<mx::array> batched(const std::vector<mx::array>& inputs,
                               const std::vector<int>& axes, mx::Stream s) {
  int size = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (axes[k] >= 0) {
      size = inputs[k].shape(axes[k]);
    }
  }
  std::vector<mx::array> out;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (axes[k] >= 0) {
      out.push_back(vmap_axis_to_front(inputs[k], axes[k], s));
    } else {
      mx::Shape shape = inputs[k].shape();
      shape.insert(shape.begin(), size);
      out.push_back(mx::broadcast_to(mx::expand_dims(inputs[k], 0, s), shape, s));
    }
  }
  return out;
}

// The inputs as the kernels read them: row-contiguous (a copy of a strided
// one, enqueued on s first, refused when it does not fit MLX's memory limit).
std::vector<mx::array> row_contiguous(
    const std::vector<mx::array>& inputs, mx::Stream s, const char* pass) {
  std::vector<mx::array> out;
  for (const mx::array& a : inputs) {
    if (!a.flags().row_contiguous) {
      check_memory(double(a.nbytes()),
                   std::string("[grid_sample] copying a strided ") + text(a.shape()) +
                       " input of the " + pass,
                   "its row-contiguous copy");
    }
    double held = 0;
    out.push_back(layout::as_row_contiguous(a, 0.0, "input", s, held));
  }
  return out;
}

// The Metal kernels' inputs, row-contiguous already (for_kernel).
void check_contiguous(const std::vector<mx::array>& inputs) {
  for (const mx::array& a : inputs) {
    if (!a.flags().row_contiguous) {
      throw std::runtime_error("[grid_sample] internal: an input is not row-contiguous");
    }
  }
}

} // namespace

mx::array grid_sample(
    const mx::array& x,
    const mx::array& grid,
    const GridSampleParams& params,
    mx::StreamOrDevice s) {
  mx::Shape out = output_shape(x.shape(), grid.shape());
  validate(params, grid_dims(grid.shape()));
  check_float(x, "x");
  check_float(grid, "grid");
  check_device(s, "grid_sample");
  if (grid.dtype() != mx::float32) {
    // MLX's conversion allocates it before the primitive's own check runs,
    // and does not fail cleanly when memory runs out.
    check_memory(elements(grid.shape()) * 4.0,
                 "[grid_sample] sampling " + text(x.shape()) + " at a grid of " +
                     text(grid.shape()),
                 "the float32 copy of its grid");
  }
  mx::Stream stream = mx::to_stream(s);
  return make_forward(x, grid, params, stream);
}

bool GridSamplePrimitive::is_equivalent(const mx::Primitive& other) const {
  auto o = dynamic_cast<const GridSamplePrimitive*>(&other);
  return o != nullptr && std::string(o->name()) == name() && o->params_ == params_;
}

bool GridSampleBackward::is_equivalent(const mx::Primitive& other) const {
  auto o = dynamic_cast<const GridSampleBackward*>(&other);
  return GridSamplePrimitive::is_equivalent(other) && o->wants_x_ == wants_x_ &&
      o->wants_grid_ == wants_grid_;
}

// ---- GridSample -------------------------------------------------------------

void GridSample::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  auto in = row_contiguous(inputs, stream(), "forward");
  cpu::grid_sample_forward(in[0], in[1], outputs[0], params_, stream());
}

void GridSample::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  check_contiguous(inputs);
  metal::grid_sample_forward(inputs[0], inputs[1], outputs[0], params_, stream());
}

std::vector<mx::Shape> GridSample::output_shapes(const std::vector<mx::array>& inputs) {
  return {output_shape(inputs[0].shape(), inputs[1].shape())};
}

std::vector<mx::array> GridSample::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& tangents,
    const std::vector<int>& argnums) {
  const mx::array& x = primals[0];
  std::optional<mx::array> sum;
  for (size_t k = 0; k < argnums.size(); ++k) {
    mx::array term = argnums[k] == 0
        ? make_forward(as_tangent(tangents[k], x.dtype(), "x's tangent", stream()), primals[1],
                       params_, stream())
        : make_tangent(x, primals[1], tangents[k], params_, stream());
    sum = sum ? mx::add(*sum, term, stream()) : term;
  }
  return {*sum};
}

std::vector<mx::array> GridSample::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& cotangents,
    const std::vector<int>& argnums,
    const std::vector<mx::array>&) {
  bool wants_x = has(argnums, 0), wants_grid = has(argnums, 1);
  auto grads = make_backward(cotangents[0], primals[0], primals[1], params_, wants_x, wants_grid,
                             stream());
  std::vector<mx::array> out;
  for (int arg : argnums) {
    out.push_back(arg == 0 ? grads[0] : grads[wants_x ? 1 : 0]);
  }
  return out;
}

std::pair<std::vector<mx::array>, std::vector<int>> GridSample::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  auto in = batched(inputs, axes, stream());
  return {{make_forward(in[0], in[1], params_, stream())}, {0}};
}

// ---- GridSampleTangent ------------------------------------------------------

void GridSampleTangent::eval_cpu(const std::vector<mx::array>& inputs,
                                 std::vector<mx::array>& outputs) {
  auto in = row_contiguous(inputs, stream(), "jvp in the grid");
  cpu::grid_sample_tangent(in[0], in[1], in[2], outputs[0], params_, stream());
}

void GridSampleTangent::eval_gpu(const std::vector<mx::array>& inputs,
                                 std::vector<mx::array>& outputs) {
  check_contiguous(inputs);
  metal::grid_sample_tangent(inputs[0], inputs[1], inputs[2], outputs[0], params_, stream());
}

std::vector<mx::Shape> GridSampleTangent::output_shapes(const std::vector<mx::array>& inputs) {
  return {output_shape(inputs[0].shape(), inputs[1].shape())};
}

// Linear in x and in the tangent.
std::vector<mx::array> GridSampleTangent::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& tangents,
    const std::vector<int>& argnums) {
  std::optional<mx::array> sum;
  for (size_t k = 0; k < argnums.size(); ++k) {
    if (argnums[k] == 1) {
      no_second_derivative("the jvp of grid_sample's grid jvp in the grid");
    }
    mx::array term = argnums[k] == 0
        ? make_tangent(as_tangent(tangents[k], primals[0].dtype(), "x's tangent", stream()),
                       primals[1],
                       primals[2], params_, stream())
        : make_tangent(primals[0], primals[1], tangents[k], params_, stream());
    sum = sum ? mx::add(*sum, term, stream()) : term;
  }
  return {*sum};
}

// In the tangent, the vjp is the grid's cotangent of the forward.
std::vector<mx::array> GridSampleTangent::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& cotangents,
    const std::vector<int>& argnums,
    const std::vector<mx::array>&) {
  std::vector<mx::array> out;
  for (int arg : argnums) {
    if (arg != 2) {
      no_second_derivative("the vjp of grid_sample's grid jvp in x or the grid");
    }
    out.push_back(
        make_backward(cotangents[0], primals[0], primals[1], params_, false, true, stream())[0]);
  }
  return out;
}

std::pair<std::vector<mx::array>, std::vector<int>> GridSampleTangent::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  auto in = batched(inputs, axes, stream());
  return {{make_tangent(in[0], in[1], in[2], params_, stream())}, {0}};
}

// ---- GridSampleBackward -----------------------------------------------------

void GridSampleBackward::eval_cpu(const std::vector<mx::array>& inputs,
                                  std::vector<mx::array>& outputs) {
  auto in = row_contiguous(inputs, stream(), "backward");
  mx::array* dx = wants_x_ ? &outputs[0] : nullptr;
  mx::array* dgrid = wants_grid_ ? &outputs[wants_x_ ? 1 : 0] : nullptr;
  cpu::grid_sample_backward(in[0], in[1], in[2], dx, dgrid, params_, stream());
}

void GridSampleBackward::eval_gpu(const std::vector<mx::array>& inputs,
                                  std::vector<mx::array>& outputs) {
  check_contiguous(inputs);
  mx::array* dx = wants_x_ ? &outputs[0] : nullptr;
  mx::array* dgrid = wants_grid_ ? &outputs[wants_x_ ? 1 : 0] : nullptr;
  metal::grid_sample_backward(inputs[0], inputs[1], inputs[2], dx, dgrid, params_, stream());
}

std::vector<mx::Shape> GridSampleBackward::output_shapes(const std::vector<mx::array>& inputs) {
  output_shape(inputs[1].shape(), inputs[2].shape());
  std::vector<mx::Shape> shapes;
  if (wants_x_) {
    shapes.push_back(inputs[1].shape());
  }
  if (wants_grid_) {
    shapes.push_back(inputs[2].shape());
  }
  return shapes;
}

// Linear in the cotangent; x's cotangent does not depend on x (only the
// grid's does).
std::vector<mx::array> GridSampleBackward::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& tangents,
    const std::vector<int>& argnums) {
  std::optional<std::vector<mx::array>> sum;
  for (size_t k = 0; k < argnums.size(); ++k) {
    if (argnums[k] == 2 || (argnums[k] == 1 && wants_grid_)) {
      no_second_derivative("the jvp of grid_sample's backward in the grid, or of the grid's "
                           "gradient in x,");
    }
    if (argnums[k] == 0) {
      sum = make_backward(tangents[k], primals[1], primals[2], params_, wants_x_, wants_grid_,
                          stream());
    }
  }
  if (!sum) {
    // A tangent of x alone: x's cotangent does not move.
    return {mx::zeros_like(primals[1], stream())};
  }
  return *sum;
}

// In the cotangent: the transpose of the backward is the forward for x's
// cotangent and the grid's jvp for the grid's. x's cotangent does not depend
// on x.
std::vector<mx::array> GridSampleBackward::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& cotangents,
    const std::vector<int>& argnums,
    const std::vector<mx::array>&) {
  std::vector<mx::array> out;
  for (int arg : argnums) {
    if (arg == 2 || (arg == 1 && wants_grid_)) {
      no_second_derivative("the vjp of grid_sample's backward in the grid, or of the grid's "
                           "gradient in x,");
    }
    if (arg == 1) {
      out.push_back(mx::zeros_like(primals[1], stream()));
      continue;
    }
    std::optional<mx::array> sum;
    if (wants_x_) {
      sum = make_forward(cotangents[0], primals[2], params_, stream());
    }
    if (wants_grid_) {
      mx::array term =
          make_tangent(primals[1], primals[2], cotangents[wants_x_ ? 1 : 0], params_, stream());
      sum = sum ? mx::add(*sum, term, stream()) : term;
    }
    out.push_back(*sum);
  }
  return out;
}

std::pair<std::vector<mx::array>, std::vector<int>> GridSampleBackward::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  auto in = batched(inputs, axes, stream());
  auto outs = make_backward(in[0], in[1], in[2], params_, wants_x_, wants_grid_, stream());
  return {outs, std::vector<int>(outs.size(), 0)};
}

} // namespace mlx_upsample
