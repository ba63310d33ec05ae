#include "upsample_params.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace mlx_upsample {

bool UpsampleParams::operator==(const UpsampleParams& o) const {
  return family == o.family && method == o.method &&
      align_corners == o.align_corners &&
      recompute_scale == o.recompute_scale && scales == o.scales &&
      sizes == o.sizes;
}

std::string UpsampleParams::describe() const {
  static const char* methods[] = {"nearest", "nearest-exact", "linear", "cubic"};
  std::ostringstream s;
  s << (family == Family::MLX ? "mlx" : "pytorch") << ", "
    << methods[static_cast<int>(method)]
    << ", align_corners=" << (align_corners ? "true" : "false");
  return s.str();
}

void validate(const UpsampleParams& p) {
  if (p.scales.empty() || p.scales.size() != p.sizes.size()) {
    throw std::invalid_argument(
        "[upsample] need one scale or size per spatial dimension");
  }
  for (int a = 0; a < p.spatial_dims(); ++a) {
    bool has_scale = p.scales[a] > 0 && std::isfinite(p.scales[a]);
    bool has_size = p.sizes[a] > 0;
    if (has_scale == has_size) {
      throw std::invalid_argument(
          "[upsample] spatial axis " + std::to_string(a) +
          " needs exactly one positive finite scale or positive size");
    }
  }
  if (p.family == Family::MLX &&
      (p.method == Method::NearestExact || p.recompute_scale)) {
    throw std::invalid_argument(
        "[upsample] nearest-exact and recompute_scale are PyTorch rules");
  }
}

long long output_size(const UpsampleParams& p, int axis, int in_size) {
  if (p.sizes[axis] > 0) {
    return p.sizes[axis];
  }
  // Both references compute floor(N * scale) in double.
  return static_cast<long long>(std::floor(in_size * p.scales[axis]));
}

static bool all_integral_scales(const UpsampleParams& p) {
  for (double s : p.scales) {
    if (s != std::floor(s)) {
      return false;
    }
  }
  return true;
}

// PyTorch's compute_scales_value: 1 / scale_factor when the user gave one
// (and did not ask to recompute it), else N / M.
static float pytorch_scale(const UpsampleParams& p, int axis, int n, int m) {
  if (p.scales[axis] > 0 && !p.recompute_scale) {
    return static_cast<float>(1.0 / p.scales[axis]);
  }
  return static_cast<float>(n) / static_cast<float>(m);
}

static upsample::AxisMap nearest_map(
    const UpsampleParams& p,
    int axis,
    upsample::AxisMap a) {
  int n = a.in_size, m = a.out_size;
  if (p.family == Family::MLX) {
    // mlx.nn.Upsample broadcasts when every scale is an integer and gathers
    // with float32 index math otherwise.
    if (all_integral_scales(p)) {
      a.rule = upsample::RULE_NEAREST_REPLICATE;
      a.factor = static_cast<int>(p.scales[axis]);
    } else {
      a.rule = m > n ? upsample::RULE_NEAREST_ROUND : upsample::RULE_NEAREST_FLOOR;
      a.scale = static_cast<float>(static_cast<double>(n) / m);
    }
  } else {
    if (p.method == Method::NearestExact) {
      a.rule = upsample::RULE_NEAREST_EXACT;
    } else {
      a.rule = p.spatial_dims() == 2 ? upsample::RULE_NEAREST_LEGACY
                                     : upsample::RULE_NEAREST_FLOOR;
    }
    a.scale = pytorch_scale(p, axis, n, m);
  }
  return a;
}

upsample::AxisMap
axis_map(const UpsampleParams& p, int axis, int in_size, int out_size) {
  upsample::AxisMap a{};
  a.in_size = in_size;
  a.out_size = out_size;
  a.factor = 1;
  if (p.method == Method::Nearest || p.method == Method::NearestExact) {
    return nearest_map(p, axis, a);
  }
  int n = in_size, m = out_size;
  if (p.family == Family::MLX) {
    if (p.align_corners) {
      a.rule = upsample::RULE_ALIGN_CORNERS;
      a.scale = static_cast<float>(double(n - 1) / (m > 1 ? m - 1 : 1));
    } else {
      // MLX computes step and start in double and the grid in float32.
      double step = 1.0 / p.scales[axis];
      double start = ((m - 1) * step - n + 1) / 2;
      a.rule = upsample::RULE_CENTRED;
      a.scale = static_cast<float>(step);
      a.offset = static_cast<float>(start);
    }
  } else if (p.align_corners) {
    a.rule = upsample::RULE_ALIGN_CORNERS;
    a.scale = m > 1 ? static_cast<float>(n - 1) / static_cast<float>(m - 1)
                    : 0.0f;
  } else {
    a.rule = upsample::RULE_HALF_PIXEL;
    a.scale = pytorch_scale(p, axis, n, m);
    a.identity = p.method == Method::Linear && n == m;
  }
  return a;
}

int kernel_mode(Method m) {
  switch (m) {
    case Method::Linear:
      return upsample::MODE_LINEAR;
    case Method::Cubic:
      return upsample::MODE_CUBIC;
    default:
      return upsample::MODE_NEAREST;
  }
}

Family parse_family(const std::string& s) {
  if (s == "mlx") {
    return Family::MLX;
  } else if (s == "pytorch") {
    return Family::PyTorch;
  }
  throw std::invalid_argument("[upsample] unknown family '" + s + "'");
}

Method parse_method(const std::string& s) {
  if (s == "nearest") {
    return Method::Nearest;
  } else if (s == "nearest-exact") {
    return Method::NearestExact;
  } else if (s == "linear") {
    return Method::Linear;
  } else if (s == "cubic") {
    return Method::Cubic;
  }
  throw std::invalid_argument("[upsample] unknown method '" + s + "'");
}

} // namespace mlx_upsample
