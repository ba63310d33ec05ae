#include "op_checks.h"

#include <sstream>
#include <stdexcept>
#include <variant>

#include "mlx/ops.h"

namespace mlx_upsample {

bool is_float(mx::Dtype t) {
  return t == mx::float32 || t == mx::float16 || t == mx::bfloat16;
}

std::string dtype_name(mx::Dtype t) {
  std::ostringstream s;
  s << t;
  return s.str();
}

#ifndef _METAL_
namespace {

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

} // namespace

void check_device(const mx::StreamOrDevice& s, const char* op) {
  mx::Device device = requested_device(s);
  if (device.type == mx::Device::gpu) {
    std::ostringstream msg;
    msg << "[" << op << "] stream=" << device
        << (std::holds_alternative<std::monostate>(s) ? " (MLX's default device)" : "")
        << ": mlx-upsample has GPU kernels only for Metal (Apple silicon), "
           "and this MLX has no Metal backend; pass stream=mx.cpu (CUDA "
           "kernels are not written yet)";
    throw std::invalid_argument(msg.str());
  }
}
#else
void check_device(const mx::StreamOrDevice&, const char*) {}
#endif

mx::array vmap_axis_to_front(const mx::array& a, int axis, mx::Stream s) {
  return axis > 0 ? mx::moveaxis(a, axis, 0, s) : a;
}

} // namespace mlx_upsample
