#include "cpu/uint8_resample.h"

#include <algorithm>
#include <cmath>

#include "cpu/isa.h"
#include "cpu/thread_pool.h"

namespace mlx_upsample::cpu {

namespace baseline {
#include "cpu/uint8_resample.inc"
} // namespace baseline

#ifdef UPSAMPLE_AVX2_DISPATCH
UPSAMPLE_AVX2_BEGIN
namespace avx2 {
#include "cpu/uint8_resample.inc"
} // namespace avx2
UPSAMPLE_AVX2_END
#endif

namespace {

// PyTorch's filters (UpSampleKernel.cpp, HelperInterpLinear/Cubic), in its
// order of operations.
double triangle(double x) {
  x = x < 0 ? -x : x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double cubic_inner(double x, double A) {
  return ((A + 2) * x - (A + 3)) * x * x + 1;
}

double cubic_outer(double x, double A) {
  return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
}

double keys(double x, double A) {
  x = x < 0 ? -x : x;
  if (x < 1.0) {
    return cubic_inner(x, A);
  }
  return x < 2.0 ? cubic_outer(x, A) : 0.0;
}

// area_pixel_compute_scale<double>: input units per output step.
double axis_scale(const UpsampleParams& p, int axis, int n, int m) {
  if (p.align_corners) {
    return m > 1 ? double(n - 1) / (m - 1) : 0.0;
  }
  if (p.scales[axis] > 0 && !p.recompute_scale) {
    return 1.0 / p.scales[axis];
  }
  return double(n) / m;
}

// The double weights of every output before they become int16.
struct DoubleRows {
  int stride = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<double> weight; // out_size * stride
  double max_weight = 0.0;
};

// Linear (with and without antialias) and antialiased cubic: PyTorch's
// antialias windows, which its uint8 kernels also use for plain linear
// (support 1, unit width; align_corners shifts the centre by half a pixel).
// Windows are truncated at the edges and renormalised.
DoubleRows window_rows(const UpsampleParams& p, int axis, int n, int m) {
  bool cubic = p.mode == upsample::MODE_AA_CUBIC;
  bool antialias = cubic || p.mode == upsample::MODE_AA_LINEAR;
  double scale = axis_scale(p, axis, n, m);
  double interp = cubic ? 4 : 2;
  double support = antialias && scale >= 1.0 ? interp * 0.5 * scale : interp * 0.5;
  int max_size = antialias ? static_cast<int>(std::ceil(support)) * 2 + 1
                           : static_cast<int>(interp);
  double delta = p.align_corners && !antialias ? 0.5 : 0.0;
  double invscale = scale >= 1.0 && antialias ? 1.0 / scale : 1.0;
  DoubleRows r;
  r.stride = max_size;
  r.first.resize(m);
  r.count.resize(m);
  r.weight.assign(size_t(m) * max_size, 0.0);
  for (int i = 0; i < m; ++i) {
    double center = scale * (i + 0.5 - delta);
    int64_t xmin = std::max(static_cast<int64_t>(center - support + 0.5 + delta), int64_t(0));
    int64_t xsize =
        std::min(static_cast<int64_t>(center + support + 0.5 + delta), int64_t(n)) - xmin;
    xsize = std::clamp(xsize, int64_t(0), int64_t(max_size));
    double* w = r.weight.data() + size_t(i) * max_size;
    double total = 0.0;
    for (int64_t j = 0; j < xsize; ++j) {
      double x = (j + xmin - center + 0.5 - delta) * invscale;
      w[j] = cubic ? keys(x, -0.5) : triangle(x);
      total += w[j];
    }
    if (total != 0.0) {
      for (int64_t j = 0; j < xsize; ++j) {
        w[j] /= total;
        r.max_weight = std::max(r.max_weight, w[j]);
      }
    }
    r.first[i] = static_cast<int>(xmin);
    r.count[i] = static_cast<int>(xsize);
  }
  return r;
}

// Cubic without antialias: PyTorch's float taps floor(src) - 1 .. + 2 with
// Keys a = -0.75, clamped to the edge, the weights of a repeated edge tap
// merged into one.
DoubleRows cubic_rows(const UpsampleParams& p, int axis, int n, int m) {
  constexpr double A = -0.75;
  double scale = axis_scale(p, axis, n, m);
  DoubleRows r;
  r.stride = 4;
  r.first.resize(m);
  r.count.resize(m);
  r.weight.assign(size_t(m) * 4, 0.0);
  for (int i = 0; i < m; ++i) {
    double src = p.align_corners ? scale * i : scale * (i + 0.5) - 0.5;
    double fl = std::floor(src);
    double t = src - fl;
    double coeffs[4] = {
        cubic_outer(t + 1.0, A), cubic_inner(t, A), cubic_inner(1.0 - t, A),
        cubic_outer(2.0 - t, A)};
    int64_t base = static_cast<int64_t>(fl) - 1;
    int64_t index[4];
    for (int k = 0; k < 4; ++k) {
      index[k] = std::clamp(base + k, int64_t(0), int64_t(n - 1));
    }
    double* w = r.weight.data() + size_t(i) * 4;
    for (int k = 0; k < 4; ++k) {
      w[index[k] - index[0]] += coeffs[k];
    }
    r.first[i] = static_cast<int>(index[0]);
    r.count[i] = static_cast<int>(index[3] - index[0] + 1);
    for (int k = 0; k < r.count[i]; ++k) {
      r.max_weight = std::max(r.max_weight, w[k]);
    }
  }
  return r;
}

} // namespace

FixedPointAxis fixed_point_axis(const UpsampleParams& p, int axis, int in_size, int out_size) {
  DoubleRows r = p.mode == upsample::MODE_CUBIC ? cubic_rows(p, axis, in_size, out_size)
                                           : window_rows(p, axis, in_size, out_size);
  FixedPointAxis ax;
  ax.in_size = in_size;
  ax.out_size = out_size;
  ax.stride = r.stride;
  ax.first = std::move(r.first);
  ax.count = std::move(r.count);
  // The largest precision (< 22) at which twice the largest weight still
  // fits in int16.
  int precision = 0;
  for (; precision < 22; ++precision) {
    int next = static_cast<int>(0.5 + r.max_weight * (1 << (precision + 1)));
    if (next >= (1 << 15)) {
      break;
    }
  }
  ax.precision = std::max(precision, 1);
  ax.weight.resize(r.weight.size());
  for (size_t e = 0; e < r.weight.size(); ++e) {
    double v = r.weight[e] * (1 << precision);
    ax.weight[e] = static_cast<int16_t>(v < 0 ? static_cast<int>(-0.5 + v) : static_cast<int>(0.5 + v));
  }
  return ax;
}

namespace {

// The axes that change size: the last first, then inwards.
std::vector<int> uint8_passes(
    const std::vector<int>& src_sizes,
    const std::vector<int>& dst_sizes) {
  std::vector<int> passes;
  for (int a = static_cast<int>(src_sizes.size()) - 1; a >= 0; --a) {
    if (src_sizes[a] != dst_sizes[a]) {
      passes.push_back(a);
    }
  }
  return passes;
}

// Calls f(k, count, a, outer, inner) for each pass k of `count`, along axis
// a of the array (outer, n, inner) it reads.
template <typename F>
void for_each_pass(
    int64_t batch,
    int64_t channels,
    const std::vector<int>& src_sizes,
    const std::vector<int>& dst_sizes,
    F f) {
  const int dims = static_cast<int>(src_sizes.size());
  std::vector<int> passes = uint8_passes(src_sizes, dst_sizes);
  std::vector<int> sizes = src_sizes;
  for (size_t k = 0; k < passes.size(); ++k) {
    int a = passes[k];
    int64_t outer = batch, inner = channels;
    for (int b = 0; b < a; ++b) {
      outer *= sizes[b];
    }
    for (int b = a + 1; b < dims; ++b) {
      inner *= sizes[b];
    }
    f(k, passes.size(), a, outer, inner);
    sizes[a] = dst_sizes[a];
  }
}

} // namespace

std::array<int64_t, 2> uint8_buffer_bytes(
    int64_t batch,
    int64_t channels,
    const std::vector<int>& src_sizes,
    const std::vector<int>& dst_sizes) {
  std::array<int64_t, 2> bytes = {0, 0};
  for_each_pass(
      batch, channels, src_sizes, dst_sizes,
      [&](size_t k, size_t count, int a, int64_t outer, int64_t inner) {
        if (k + 1 < count) {
          bytes[k % 2] = std::max(bytes[k % 2], outer * dst_sizes[a] * inner);
        }
      });
  return bytes;
}

void uint8_resample(
    const uint8_t* src,
    uint8_t* dst,
    int64_t batch,
    int64_t channels,
    const std::vector<int>& src_sizes,
    const std::vector<int>& dst_sizes,
    const std::vector<FixedPointAxis>& axes,
    uint8_t* const buffers[2]) {
  const uint8_t* in = src;
  for_each_pass(
      batch, channels, src_sizes, dst_sizes,
      [&](size_t k, size_t count, int a, int64_t outer, int64_t inner) {
        uint8_t* out = k + 1 < count ? buffers[k % 2] : dst;
        UPSAMPLE_ISA_KERNEL(resample_axis)(in, out, outer, inner, axes[a]);
        in = out;
      });
}

} // namespace mlx_upsample::cpu
