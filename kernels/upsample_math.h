// The coordinate and weight math of every upsampling mode, written once.
//
// This header is included by the Metal kernels (kernels/upsample.metal), by
// the C++ CPU path (csrc/cpu/) and by the Metal emulator used in the tests, so
// a fix here lands on every backend. It must stay plain: no MLX, no standard
// library, no pointers, only scalar arithmetic that Metal and C++ both accept.
//
// One spatial axis is described by an AxisMap (input size N, output size M
// and the rule that maps an output index onto the input). The N-d operator is
// the product of per-axis taps (separable). The modes and rules are this
// header's enums, which the host code passes as they are and the bindings
// give Python (csrc/bindings.cpp). Two kinds of modes:
//  - tap modes (the two nearest, linear, cubic) turn an output index into at
//    most MAX_TAPS (input index, weight) pairs, indices repeated at the
//    edges: axis_taps().
//  - window modes (antialiased linear and cubic, area) read a contiguous,
//    unbounded window of inputs whose length grows with the downscale factor:
//    tap_window() gives the window and its normaliser, tap_weight() the
//    weight of one input of it, computed on the fly (no arrays).
// Both kinds answer the question of the gather backward in one form:
// lowest_tap/highest_tap, nondecreasing in i, so that output_range can binary
// search them for the outputs that read an input.
#pragma once

// No fused multiply-add: every coordinate and weight rounds after each
// operation, `(i + 0.5) * scale - 0.5` after the product and after the
// difference. That is the one rounding every backend reproduces (the CPU
// path, the Metal kernels with contraction off, and so could any other, e.g.
// CUDA with nvcc -fmad=false), and the one of PyTorch's default (scalar) CPU
// kernels, ATEN_CPU_CAPABILITY=default. Its AVX2 and AVX-512 kernels are
// compiled with contraction and round `s * (i + 0.5) - 0.5` once, which moves
// long-axis coordinates by a float32 step (a 2^20 + 7 -> 3 * 2^20 + 5
// linear axis: 16 outputs of a ramp, by up to 0.0625); an index that lands
// exactly on .5 or on an integer would move too (MLX nearest 2 -> 7 would read
// input 1 at output 3). The C++ build passes -ffp-contract=off; the Metal
// compiler contracts by default, so the pragma holds it off for the rest of
// every translation unit that includes this header: the kernels' sums also
// round like the CPU path's.
#if defined(__clang__) || defined(__METAL_VERSION__)
#pragma clang fp contract(off)
#endif

#ifdef __METAL_VERSION__
#include <metal_stdlib>
#define UPSAMPLE_CONSTANT constant
#else
#define UPSAMPLE_CONSTANT
#endif

namespace upsample {

// Modes: the resampling methods of both families (UpsampleParams::mode, and
// Python's _ext.Mode), each reading along every axis a number of taps or a
// window with its own weights. The two nearest modes read one tap of weight
// 1 and differ only in their AxisMap's rule.
enum Mode : int {
  MODE_NEAREST = 0,
  MODE_NEAREST_EXACT = 1, // PyTorch's pixel-centre nearest, RULE_NEAREST_EXACT
  MODE_LINEAR = 2,
  MODE_CUBIC = 3,
  // Window modes, last (is_window_mode).
  MODE_AA_LINEAR = 4, // antialiased linear: triangle filter, widened
  MODE_AA_CUBIC = 5, //  antialiased cubic: Keys a = -0.5, widened
  MODE_AREA = 6, //      adaptive average pooling windows (PyTorch "area")
};

// Rules: how an output index i becomes an input coordinate along one axis.
enum Rule : int {
  // Continuous coordinates (linear and cubic modes).
  RULE_ALIGN_CORNERS = 0, // src = scale * i                       (both)
  RULE_HALF_PIXEL = 1, //    src = scale * (i + 0.5) - 0.5           (PyTorch)
  RULE_CENTRED = 2, //       src = i * scale - offset                (MLX)
  // Nearest-neighbour indices.
  RULE_NEAREST_REPLICATE = 3, // i / factor: MLX with integer scales
  RULE_NEAREST_ROUND = 4, //     MLX upsampling by other scales
  RULE_NEAREST_FLOOR = 5, //     floor(i * scale): MLX otherwise, PyTorch
  RULE_NEAREST_LEGACY = 6, //    PyTorch "nearest" in 2-D: FLOOR + fast paths
  RULE_NEAREST_EXACT = 7, //     PyTorch "nearest-exact"
  // Windows (antialias, area).
  RULE_AA_CENTRED = 8, // MLX: taps floor(src) - reach .. floor(src) + reach
                       //      around the RULE_CENTRED coordinate src
  RULE_AA_PIXEL = 9, //   PyTorch: centre scale * (i + 0.5), half-width support
  RULE_AREA = 10, //      [floor(i * N / M), ceil((i + 1) * N / M)), equal
                  //      weights; the identity when N == M
};

UPSAMPLE_CONSTANT constexpr int MAX_TAPS = 4;
UPSAMPLE_CONSTANT constexpr float CUBIC_A = -0.75f;
// Antialiased cubic uses Keys' kernel with a = -0.5 (Pillow's bicubic), in
// both MLX and PyTorch.
UPSAMPLE_CONSTANT constexpr float AA_CUBIC_A = -0.5f;

// Axes longer than this (inputs or outputs) take exact coordinates (see
// AxisMap::exact); shorter ones the float32 arithmetic of the references.
UPSAMPLE_CONSTANT constexpr int FLOAT_COORD_LIMIT = 1 << 23;

struct AxisMap {
  int in_size;
  int out_size;
  Rule rule;
  int factor; // RULE_NEAREST_REPLICATE only
  float scale; // input units per output step
  float offset; // RULE_CENTRED only
  int identity; // PyTorch linear maps i -> i when sizes match
  // Linear edges, which only non-finite inputs tell apart. mlx.nn clips the
  // coordinate to [0, N-1] and reads floor(src) and ceil(src), which
  // coincide at whole coordinates (so 0 * inf never reaches an output).
  // PyTorch clamps it below at 0 but past N-1 keeps the fraction (on the last
  // input twice), and reads the next input whatever the weight.
  int mlx_taps;
  // Antialias only.
  float support; // RULE_AA_PIXEL: half-width of the window, input units
  float width; //   the filter's stretch: max(1, input/output ratio)
  int reach; //     RULE_AA_CENTRED: taps floor(src) +- reach
  // Exact coordinates, for axes longer than FLOAT_COORD_LIMIT. Float32
  // cannot even number the outputs of such an axis (float(i + 0.5) rounds
  // from 2^23 on), so the references' float32 arithmetic (PyTorch's opmath
  // for float inputs, mlx.nn's float32 grid) reads the wrong source there;
  // instead the coordinate of output i is the exact rational
  //   (exact_step * i + exact_start) / exact_den
  // (the scale as a fraction: N/M, (N-1)/(M-1), or 1/scale_factor), whose
  // integer part is computed in 64-bit integers and only the fraction in
  // [0, 1) rounded to float: what the formulas give in exact arithmetic.
  // (No reference computes that: PyTorch's coordinates are float32 even for
  // float64 tensors, its nearest indices for every dtype.) Nearest rules
  // floor (or round) the same coordinate.
  int exact;
  long exact_step;
  long exact_start;
  long exact_den;
  long exact_support; // RULE_AA_PIXEL: support * exact_den
};

// Taps of one output index along one axis: indices ascending, inside
// [0, in_size), repeated where the kernel runs past an edge.
struct Taps {
  int index[MAX_TAPS];
  float weight[MAX_TAPS];
  int count;
};

struct OutputRange {
  int begin;
  int end;
};

inline float floor_f(float x) {
#ifdef __METAL_VERSION__
  return metal::floor(x);
#else
  return __builtin_floorf(x);
#endif
}

// Round half to even, as mx.round does.
inline float round_even_f(float x) {
#ifdef __METAL_VERSION__
  return metal::rint(x);
#else
  return __builtin_rintf(x);
#endif
}

inline int clamp_index(int i, int n) {
  return i < 0 ? 0 : (i > n - 1 ? n - 1 : i);
}

// An input coordinate as its integer part and its fraction in [0, 1).
struct SplitCoord {
  long whole;
  float frac;
};

// floor(num / den) for den > 0 (integer division truncates towards zero).
inline long floor_div(long num, long den) {
  long q = num / den;
  return (num % den != 0 && num < 0) ? q - 1 : q;
}

// The exact coordinate (exact_step * i + exact_start) / exact_den of output
// i, split. The fraction is a ratio of two integers below 2^32 rounded to
// float, kept below 1.
inline SplitCoord exact_coord(AxisMap a, int i) {
  long num = a.exact_step * long(i) + a.exact_start;
  SplitCoord c;
  c.whole = floor_div(num, a.exact_den);
  float frac = float(num - c.whole * a.exact_den) / float(a.exact_den);
  c.frac = frac < 0.99999994f ? frac : 0.99999994f;
  return c;
}

// The continuous input coordinate read by output i (linear and cubic).
inline float source_index(AxisMap a, int i) {
  float fi = float(i);
  if (a.rule == RULE_ALIGN_CORNERS) {
    return a.scale * fi;
  } else if (a.rule == RULE_HALF_PIXEL) {
    return a.scale * (fi + 0.5f) - 0.5f;
  }
  return fi * a.scale - a.offset;
}

// Nearest on a long axis: the exact coordinate floored, or rounded half to
// even (RULE_NEAREST_ROUND, as mx.round).
inline int exact_nearest_index(AxisMap a, int i) {
  long num = a.exact_step * long(i) + a.exact_start;
  long q = floor_div(num, a.exact_den);
  if (a.rule == RULE_NEAREST_ROUND) {
    long twice_rem = 2 * (num - q * a.exact_den);
    if (twice_rem > a.exact_den || (twice_rem == a.exact_den && (q & 1) != 0)) {
      q += 1;
    }
  }
  long n = long(a.in_size);
  return int(q < 0 ? 0 : (q > n - 1 ? n - 1 : q));
}

inline int nearest_index(AxisMap a, int i) {
  int n = a.in_size;
  if (a.rule == RULE_NEAREST_REPLICATE) {
    return i / a.factor;
  } else if (a.rule == RULE_NEAREST_LEGACY && a.out_size == n) {
    return i;
  } else if (a.rule == RULE_NEAREST_LEGACY && long(a.out_size) == 2 * long(n)) {
    return i >> 1;
  } else if (a.exact) {
    return exact_nearest_index(a, i);
  } else if (a.rule == RULE_NEAREST_ROUND) {
    return clamp_index(int(round_even_f((float(i) + 0.5f) * a.scale - 0.5f)), n);
  } else if (a.rule == RULE_NEAREST_EXACT) {
    // PyTorch multiplies in double but floors with floorf, i.e. after
    // rounding to float: exactly a float product.
    return clamp_index(int(floor_f((float(i) + 0.5f) * a.scale)), n);
  }
  // RULE_NEAREST_LEGACY: PyTorch's 2-D kernels special-case equal and
  // doubled sizes before any float math (above; its 1-D and 3-D kernels do
  // not) and otherwise floor like RULE_NEAREST_FLOOR.
  return clamp_index(int(floor_f(float(i) * a.scale)), n);
}

inline Taps nearest_taps(AxisMap a, int i) {
  Taps t;
  t.index[0] = nearest_index(a, i);
  t.weight[0] = 1.0f;
  t.count = 1;
  return t;
}

// Two taps, with each family's edges (AxisMap::mlx_taps). An axis PyTorch
// copies (identity) reads its own input twice.
inline Taps linear_taps(AxisMap a, int i) {
  int n = a.in_size;
  int i0;
  float l1;
  if (a.identity) {
    i0 = i;
    l1 = 0.0f;
  } else if (a.exact) {
    SplitCoord c = exact_coord(a, i);
    if (c.whole < 0) {
      i0 = 0;
      l1 = 0.0f;
    } else {
      bool inside = c.whole < long(n - 1);
      i0 = inside ? int(c.whole) : n - 1;
      bool keeps = inside || (!a.mlx_taps && c.whole == long(n - 1));
      l1 = keeps ? c.frac : 0.0f;
    }
  } else {
    float src = source_index(a, i);
    src = src < 0.0f ? 0.0f : src;
    src = a.mlx_taps && src > float(n - 1) ? float(n - 1) : src;
    // float(n - 1) is exact below FLOAT_COORD_LIMIT; the index is clamped
    // all the same (PyTorch's fix for its issue 88939, where it was not).
    i0 = int(floor_f(src));
    i0 = i0 < n - 1 ? i0 : n - 1;
    l1 = src - float(i0);
    l1 = l1 < 1.0f ? l1 : 1.0f;
  }
  bool second = i0 < n - 1 && !a.identity && !(a.mlx_taps && l1 == 0.0f);
  Taps t;
  t.index[0] = i0;
  t.index[1] = second ? i0 + 1 : i0;
  t.weight[0] = 1.0f - l1;
  t.weight[1] = l1;
  t.count = 2;
  return t;
}

// Keys' cubic convolution kernel: |x| <= 1 and 1 < |x| < 2.
inline float cubic_inner(float x, float A) {
  return ((A + 2.0f) * x - (A + 3.0f)) * x * x + 1.0f;
}

inline float cubic_outer(float x, float A) {
  return ((A * x - 5.0f * A) * x + 8.0f * A) * x - 4.0f * A;
}

// Weights of the four taps floor(src) - 1 .. floor(src) + 2 for the
// fractional part t, in PyTorch's order of operations.
inline Taps cubic_taps(AxisMap a, int i) {
  int n = a.in_size;
  long whole;
  float t;
  if (a.exact) {
    SplitCoord c = exact_coord(a, i);
    whole = c.whole;
    t = c.frac;
  } else {
    float src = source_index(a, i);
    float fl = floor_f(src);
    whole = long(fl);
    t = src - fl;
  }
  float u = 1.0f - t;
  // The coordinate lies in about [-1, N]: the taps fit an int.
  int first = int(whole) - 1;
  Taps taps;
  taps.weight[0] = cubic_outer(t + 1.0f, CUBIC_A);
  taps.weight[1] = cubic_inner(t, CUBIC_A);
  taps.weight[2] = cubic_inner(u, CUBIC_A);
  taps.weight[3] = cubic_outer(u + 1.0f, CUBIC_A);
  for (int k = 0; k < 4; ++k) {
    taps.index[k] = clamp_index(first + k, n);
  }
  taps.count = 4;
  return taps;
}

inline bool is_nearest_mode(Mode mode) {
  return mode == MODE_NEAREST || mode == MODE_NEAREST_EXACT;
}

inline bool is_window_mode(Mode mode) {
  return mode >= MODE_AA_LINEAR;
}

// Taps per output of a tap mode; 0 for the window modes (variable).
inline int taps_per_output(Mode mode) {
  if (is_window_mode(mode)) {
    return 0;
  }
  return is_nearest_mode(mode) ? 1 : (mode == MODE_LINEAR ? 2 : 4);
}

inline Taps axis_taps(AxisMap a, Mode mode, int i) {
  if (is_nearest_mode(mode)) {
    return nearest_taps(a, i);
  } else if (mode == MODE_LINEAR) {
    return linear_taps(a, i);
  }
  return cubic_taps(a, i);
}

// ---- window modes -----------------------------------------------------------

// The inputs first .. first + count - 1 (all inside [0, in_size)) read by one
// output, the filter's centre and the sum of the raw weights. The centre is
// base + center: on long axes base is its integer part, so that the
// distance of a tap, float(j - base) - center, keeps its fraction; elsewhere
// base is 0.
struct TapWindow {
  int first;
  int count;
  int base;
  float center;
  float total;
};

inline float abs_f(float x) {
  return x < 0.0f ? -x : x;
}

// The antialias filters at distance x (in filter units): the triangle, or
// Keys' cubic with a = -0.5. Both references agree on the value at the
// breakpoints (0 at |x| = 1 for the triangle, at |x| = 2 for the cubic).
inline float aa_filter(Mode mode, float x) {
  x = abs_f(x);
  if (mode == MODE_AA_LINEAR) {
    return x < 1.0f ? 1.0f - x : 0.0f;
  }
  if (x < 1.0f) {
    return cubic_inner(x, AA_CUBIC_A);
  }
  return x < 2.0f ? cubic_outer(x, AA_CUBIC_A) : 0.0f;
}

// The window of output i without its normaliser (total = 0): O(1), what the
// binary searches of output_range need. The window rules are told apart by
// the AxisMap's rule (RULE_AREA also serves as the identity of an antialias
// axis that keeps its size, see axis_map).
inline TapWindow window_span(AxisMap a, int i) {
  int n = a.in_size;
  TapWindow w;
  w.total = 0.0f;
  w.base = 0;
  if (a.rule == RULE_AREA) {
    // Adaptive average pooling, in integers like PyTorch (64-bit products).
    long m = long(a.out_size);
    long first = (long(i) * long(n)) / m;
    long end = ((long(i) + 1) * long(n) + m - 1) / m;
    w.first = int(first);
    w.count = int(end - first);
    w.center = 0.0f;
  } else if (a.rule == RULE_AA_CENTRED) {
    // MLX: taps floor(src) + k for k in -reach .. reach; the ones outside
    // [0, N) have weight 0 and are left out.
    long base;
    if (a.exact) {
      SplitCoord c = exact_coord(a, i);
      base = c.whole;
      w.base = int(base);
      w.center = c.frac;
    } else {
      float src = source_index(a, i);
      base = long(floor_f(src));
      w.center = src;
    }
    long lo = base - a.reach;
    long hi = base + a.reach;
    lo = lo < 0 ? 0 : lo;
    hi = hi > long(n - 1) ? long(n - 1) : hi;
    w.first = int(lo);
    w.count = int(hi - lo + 1);
  } else {
    // PyTorch: xmin = max(int(centre - support + 0.5), 0),
    // xmax = min(int(centre + support + 0.5), N); int() truncates, which
    // the clamp at 0 makes a floor.
    long lo, hi;
    if (a.exact) {
      // centre = (exact_step * i + exact_start) / exact_den; 0.5 is
      // exact_den / 2.
      long num = a.exact_step * long(i) + a.exact_start + a.exact_den / 2;
      lo = floor_div(num - a.exact_support, a.exact_den);
      hi = floor_div(num + a.exact_support, a.exact_den);
      SplitCoord c = exact_coord(a, i);
      w.base = int(c.whole);
      w.center = c.frac;
    } else {
      float center = a.scale * (float(i) + 0.5f);
      lo = long(int(center - a.support + 0.5f));
      hi = long(int(center + a.support + 0.5f));
      w.center = center;
    }
    lo = lo < 0 ? 0 : lo;
    hi = hi > long(n) ? long(n) : hi;
    w.first = int(lo);
    w.count = int(hi - lo);
  }
  return w;
}

// The raw (unnormalised) filter value of input j for window w.
inline float raw_tap_weight(AxisMap a, Mode mode, TapWindow w, int j) {
  if (a.rule == RULE_AREA) {
    return 1.0f;
  } else if (a.rule == RULE_AA_CENTRED) {
    // MLX: kernel(|src - tap| / max(1, 1/scale)).
    return aa_filter(mode, abs_f(w.center - float(j - w.base)) / a.width);
  }
  // PyTorch: filter((j - centre + 0.5) * invscale).
  return aa_filter(mode, (float(j - w.base) - w.center + 0.5f) * (1.0f / a.width));
}

// The window of output i with the sum of its raw weights, summed in tap
// order like both references.
inline TapWindow tap_window(AxisMap a, Mode mode, int i) {
  TapWindow w = window_span(a, i);
  if (a.rule == RULE_AREA) {
    w.total = float(w.count);
    return w;
  }
  float total = 0.0f;
  for (int k = 0; k < w.count; ++k) {
    total += raw_tap_weight(a, mode, w, w.first + k);
  }
  w.total = total;
  return w;
}

// The normalised weight of input j (inside window w). A window whose raw
// weights sum to zero is left unnormalised (MLX: sums <= 0; PyTorch: == 0).
inline float tap_weight(AxisMap a, Mode mode, TapWindow w, int j) {
  float raw = raw_tap_weight(a, mode, w, j);
  bool normalise = a.rule == RULE_AA_CENTRED ? w.total > 0.0f : w.total != 0.0f;
  return normalise ? raw / w.total : raw;
}

// ---- both kinds: what the gather backward needs -------------------------------

// Smallest and largest input index read by output i (an empty window gives
// highest < lowest). Both are nondecreasing in i for every mode.
inline int lowest_tap(AxisMap a, Mode mode, int i) {
  if (is_window_mode(mode)) {
    return window_span(a, i).first;
  }
  return axis_taps(a, mode, i).index[0];
}

inline int highest_tap(AxisMap a, Mode mode, int i) {
  if (is_window_mode(mode)) {
    TapWindow w = window_span(a, i);
    return w.first + w.count - 1;
  }
  Taps t = axis_taps(a, mode, i);
  return t.index[t.count - 1];
}

// The outputs [begin, end) whose taps can read input j: the gather form of
// the backward pass. Both the smallest and the largest tap index grow with i,
// so two binary searches over the forward mapping find the range exactly,
// with no inverse formula to drift from the forward rounding.
inline OutputRange output_range(AxisMap a, Mode mode, int j) {
  // First output whose largest tap reaches j.
  int lo = 0;
  int hi = a.out_size;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (highest_tap(a, mode, mid) >= j) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  OutputRange r;
  r.begin = lo;
  // First output whose smallest tap lies past j.
  hi = a.out_size;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (lowest_tap(a, mode, mid) > j) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  r.end = lo;
  return r;
}

} // namespace upsample
