#include "upsample_params.h"

#include <cfloat>
#include <climits>
#include <cmath>
#include <numeric>
#include <sstream>
#include <stdexcept>

namespace mlx_upsample {

bool is_weighted(upsample::Mode m) {
  return !upsample::is_nearest_mode(m);
}

static bool is_antialias(upsample::Mode m) {
  return m == upsample::MODE_AA_LINEAR || m == upsample::MODE_AA_CUBIC;
}

bool keeps_uint8(const UpsampleParams& p) {
  return p.family == Family::PyTorch && is_weighted(p.mode) &&
      p.mode != upsample::MODE_AREA;
}

bool UpsampleParams::operator==(const UpsampleParams& o) const {
  return family == o.family && mode == o.mode &&
      align_corners == o.align_corners &&
      recompute_scale == o.recompute_scale && scales == o.scales &&
      sizes == o.sizes;
}

std::string UpsampleParams::describe() const {
  std::ostringstream s;
  s << family_name(family) << ", " << mode_name(mode)
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
  if (p.family == Family::MLX) {
    // upsample(size=...) sizes every axis; replicates() relies on it.
    bool sized = p.sizes[0] > 0;
    for (int size : p.sizes) {
      if ((size > 0) != sized) {
        throw std::invalid_argument(
            "[upsample] the MLX rules take a scale for every axis or a size "
            "for every axis");
      }
    }
  }
  if (p.family == Family::MLX &&
      (p.mode == upsample::MODE_NEAREST_EXACT || p.mode == upsample::MODE_AREA ||
       p.recompute_scale)) {
    throw std::invalid_argument(
        "[upsample] nearest-exact, area and recompute_scale are PyTorch rules");
  }
  if (p.align_corners &&
      (p.mode == upsample::MODE_AREA ||
       (p.family == Family::MLX && is_antialias(p.mode)))) {
    // PyTorch has no align_corners for area; mlx.nn.Upsample rejects it
    // with antialias (PyTorch's antialias accepts it: its scale changes).
    throw std::invalid_argument(
        "[upsample] align_corners is not supported with this method");
  }
}

long long output_size(const UpsampleParams& p, int axis, int in_size) {
  if (p.sizes[axis] > 0) {
    return p.sizes[axis];
  }
  // Both references compute floor(N * scale) in double. A length beyond
  // long long (the caller's limits are far lower) saturates: converting it
  // would be undefined.
  double m = std::floor(in_size * p.scales[axis]);
  return m < 0x1p62 ? static_cast<long long>(m) : LLONG_MAX;
}

// The MLX family's scale of `axis` for an input of `n`: the user's, or
// size / n for upsample(size=...) (Python floats: double).
static double mlx_scale(const UpsampleParams& p, int axis, int n) {
  return p.sizes[axis] > 0 ? double(p.sizes[axis]) / n : p.scales[axis];
}

// Whether mlx.nn.Upsample's nearest replicates (every scale an integer).
// With upsample(size=...) each axis is judged alone, since its input size is
// all that is known here: an axis whose size is a multiple of its input
// replicates. The other rule picks the same sources on such an axis (its
// float32 error stays below the distance to a rounding tie for outputs up to
// 2^22), so this only ever differs from judging all axes together where
// replicating is the exact answer.
static bool replicates(const UpsampleParams& p, int axis, int n, int m) {
  if (p.sizes[axis] > 0) {
    return m % n == 0;
  }
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

// A fraction p / q (q > 0) for the exact coordinates of long axes.
struct Fraction {
  long long num;
  long long den;
};

// The simplest fraction equal to x up to double rounding, with numerator and
// denominator below 2^30 (so that every exact coordinate's numerator stays
// below 2^63 for i < 2^31): the continued fraction of x, cut where a convergent
// matches x or the next would grow too large. 1 / 1.7 gives 10 / 17, 1 / 3
// gives 1 / 3: the ratio the user meant, not its binary rounding.
static Fraction fraction_of(double x) {
  constexpr long long LIMIT = 1LL << 30;
  long long p0 = 0, q0 = 1, p1 = 1, q1 = 0; // convergents k-2, k-1
  double rest = x;
  while (true) {
    double whole = std::floor(rest);
    if (whole > double(LIMIT)) {
      break;
    }
    long long a = static_cast<long long>(whole);
    long long p2 = a * p1 + p0, q2 = a * q1 + q0;
    if (p2 >= LIMIT || q2 >= LIMIT) {
      break;
    }
    p0 = p1, q0 = q1, p1 = p2, q1 = q2;
    double error = std::fabs(double(p1) / double(q1) - x);
    if (error <= 4 * DBL_EPSILON * x || rest == whole) {
      break;
    }
    rest = 1.0 / (rest - whole);
  }
  if (q1 == 0) { // x above LIMIT: not a scale any axis can have
    return {LIMIT - 1, 1};
  }
  return {p1, q1};
}

// num / den in lowest terms; past 2^30 (axes of a billion pixels) the
// closest fraction fraction_of finds, so that the coordinates fit 64 bits.
static Fraction reduced(long long num, long long den) {
  long long g = std::gcd(num, den);
  Fraction f = g > 1 ? Fraction{num / g, den / g} : Fraction{num, den};
  constexpr long long LIMIT = 1LL << 30;
  return f.num < LIMIT && f.den < LIMIT ? f : fraction_of(double(num) / double(den));
}

// The exact coordinate (step * i + start) / den of output i, used when the
// axis is long (see upsample::AxisMap::exact).
static void set_exact(
    upsample::AxisMap& a,
    long long step,
    long long start,
    long long den) {
  a.exact = a.in_size > upsample::FLOAT_COORD_LIMIT ||
      a.out_size > upsample::FLOAT_COORD_LIMIT;
  a.exact_step = step;
  a.exact_start = start;
  a.exact_den = den;
}

// The scale PyTorch's kernels use (input units per output step), exactly:
// 1 / scale_factor as the user meant it, or N / M.
static Fraction pytorch_fraction(const UpsampleParams& p, int axis, int n, int m) {
  if (p.scales[axis] > 0 && !p.recompute_scale) {
    return fraction_of(1.0 / p.scales[axis]);
  }
  return reduced(n, m);
}

// s * (i + 0.5) - 0.5 = (2 P i + P - Q) / 2Q for s = P / Q.
static void set_exact_half_pixel(upsample::AxisMap& a, Fraction s) {
  set_exact(a, 2 * s.num, s.num - s.den, 2 * s.den);
}

// mlx.nn's centred coordinate with step s = P / Q:
// i * P/Q - ((M - 1) P/Q - N + 1) / 2 = (2 P i + (N - 1) Q - (M - 1) P) / 2Q
static void set_exact_centred(upsample::AxisMap& a, Fraction s) {
  long long n = a.in_size, m = a.out_size;
  set_exact(a, 2 * s.num, (n - 1) * s.den - (m - 1) * s.num, 2 * s.den);
}

// The antialias windows (docs/semantics.md, "antialias"). The filter radius is 1
// (triangle) or 2 (cubic) and widens with the downscale factor.
static upsample::AxisMap antialias_map(
    const UpsampleParams& p,
    int axis,
    upsample::AxisMap a) {
  int n = a.in_size, m = a.out_size;
  double radius = p.mode == upsample::MODE_AA_LINEAR ? 1.0 : 2.0;
  if (p.family == Family::MLX) {
    // mlx.nn.Upsample: the centred coordinate of RULE_CENTRED; the filter
    // widens by 1 / scale when downscaling; taps floor(src) + k for
    // |k| <= ceil(support). Python floats: double.
    double scale = mlx_scale(p, axis, n);
    double step = 1.0 / scale;
    double start = ((m - 1) * step - n + 1) / 2;
    double inv_scale = scale < 1 ? 1.0 / scale : 1.0;
    a.rule = upsample::RULE_AA_CENTRED;
    a.scale = static_cast<float>(step);
    a.offset = static_cast<float>(start);
    a.width = static_cast<float>(inv_scale);
    a.support = static_cast<float>(radius * inv_scale);
    a.reach = static_cast<int>(std::ceil(radius * inv_scale));
    set_exact_centred(a, fraction_of(step));
  } else if (n == m) {
    // PyTorch's antialias skips an axis that keeps its size (a copy, even
    // when the scale is not 1, e.g. floor(5 * 1.1) == 5). Its backward does
    // not (measured, torch 2.13): we differentiate the forward. An area
    // window with N == M is exactly the identity.
    a.rule = upsample::RULE_AREA;
  } else {
    // PyTorch: the input/output ratio of its other modes (align_corners
    // only changes that ratio), support r * scale when downscaling, float
    // math (opmath of float inputs).
    float scale = p.align_corners
        ? (m > 1 ? static_cast<float>(n - 1) / static_cast<float>(m - 1) : 0.0f)
        : pytorch_scale(p, axis, n, m);
    float r = static_cast<float>(radius);
    a.rule = upsample::RULE_AA_PIXEL;
    a.scale = scale;
    a.support = scale >= 1.0f ? r * scale : r;
    a.width = scale >= 1.0f ? scale : 1.0f;
    // centre = s * (i + 0.5) = (2 P i + P) / 2Q; support r * s or r.
    Fraction s = p.align_corners
        ? (m > 1 ? reduced(n - 1, m - 1) : Fraction{0, 1})
        : pytorch_fraction(p, axis, n, m);
    set_exact(a, 2 * s.num, s.num, 2 * s.den);
    long long r_int = static_cast<long long>(radius);
    a.exact_support = s.num >= s.den ? 2 * r_int * s.num : 2 * r_int * s.den;
  }
  return a;
}

static upsample::AxisMap nearest_map(
    const UpsampleParams& p,
    int axis,
    upsample::AxisMap a) {
  int n = a.in_size, m = a.out_size;
  if (p.family == Family::MLX) {
    // mlx.nn.Upsample broadcasts when every scale is an integer and gathers
    // with float32 index math otherwise.
    if (replicates(p, axis, n, m)) {
      a.rule = upsample::RULE_NEAREST_REPLICATE;
      a.factor = m / n;
    } else if (m > n) {
      // round_half_even((i + 0.5) * N/M - 0.5) = round(((2i + 1) N - M) / 2M)
      a.rule = upsample::RULE_NEAREST_ROUND;
      a.scale = static_cast<float>(static_cast<double>(n) / m);
      Fraction s = reduced(n, m);
      set_exact_half_pixel(a, s);
    } else {
      a.rule = upsample::RULE_NEAREST_FLOOR;
      a.scale = static_cast<float>(static_cast<double>(n) / m);
      Fraction s = reduced(n, m);
      set_exact(a, s.num, 0, s.den);
    }
  } else {
    Fraction s = pytorch_fraction(p, axis, n, m);
    if (p.mode == upsample::MODE_NEAREST_EXACT) {
      // floor((i + 0.5) * s) = floor((2 P i + P) / 2Q)
      a.rule = upsample::RULE_NEAREST_EXACT;
      set_exact(a, 2 * s.num, s.num, 2 * s.den);
    } else {
      a.rule = p.spatial_dims() == 2 ? upsample::RULE_NEAREST_LEGACY
                                     : upsample::RULE_NEAREST_FLOOR;
      set_exact(a, s.num, 0, s.den);
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
  if (upsample::is_nearest_mode(p.mode)) {
    return nearest_map(p, axis, a);
  } else if (p.mode == upsample::MODE_AREA) {
    a.rule = upsample::RULE_AREA;
    return a;
  } else if (is_antialias(p.mode)) {
    return antialias_map(p, axis, a);
  }
  int n = in_size, m = out_size;
  if (p.family == Family::MLX) {
    a.mlx_taps = 1;
    if (p.align_corners) {
      a.rule = upsample::RULE_ALIGN_CORNERS;
      a.scale = static_cast<float>(double(n - 1) / (m > 1 ? m - 1 : 1));
      Fraction s = reduced(n - 1, m > 1 ? m - 1 : 1);
      set_exact(a, s.num, 0, s.den);
    } else {
      // MLX computes step and start in double and the grid in float32.
      double step = 1.0 / mlx_scale(p, axis, n);
      double start = ((m - 1) * step - n + 1) / 2;
      a.rule = upsample::RULE_CENTRED;
      a.scale = static_cast<float>(step);
      a.offset = static_cast<float>(start);
      set_exact_centred(a, fraction_of(step));
    }
  } else if (p.align_corners) {
    a.rule = upsample::RULE_ALIGN_CORNERS;
    a.scale = m > 1 ? static_cast<float>(n - 1) / static_cast<float>(m - 1)
                    : 0.0f;
    Fraction s = m > 1 ? reduced(n - 1, m - 1) : Fraction{0, 1};
    set_exact(a, s.num, 0, s.den);
  } else {
    a.rule = upsample::RULE_HALF_PIXEL;
    a.scale = pytorch_scale(p, axis, n, m);
    set_exact_half_pixel(a, pytorch_fraction(p, axis, n, m));
  }
  if (p.family == Family::PyTorch) {
    // PyTorch's linear kernels copy an axis that keeps its size, whatever the
    // scale and align_corners.
    a.identity = p.mode == upsample::MODE_LINEAR && n == m;
  }
  return a;
}

const char* mode_name(upsample::Mode m) {
  // In the order of upsample::Mode.
  static const char* const names[] = {
      "nearest", "nearest-exact", "linear", "cubic", "antialias-linear", "antialias-cubic", "area"};
  static_assert(sizeof(names) / sizeof(names[0]) == upsample::MODE_AREA + 1, "a name per mode");
  return names[m];
}

const char* family_name(Family f) {
  return f == Family::MLX ? "mlx" : "pytorch";
}

} // namespace mlx_upsample
