// The coordinate and weight math of every upsampling mode, written once.
//
// This header is included by the Metal kernels (kernels/upsample.metal), by
// the C++ CPU path (csrc/cpu/) and by the Metal emulator used in the tests, so
// a fix here lands on every backend. It must stay plain: no MLX, no standard
// library, no pointers, only scalar arithmetic that Metal and C++ both accept.
//
// One spatial axis is described by an AxisMap (input size N, output size M
// and the rule that maps an output index onto the input). Every mode turns an
// output index into at most MAX_TAPS (input index, weight) pairs; the N-d
// operator is the product of the per-axis taps (separable).
#pragma once

#ifdef __METAL_VERSION__
#include <metal_stdlib>
#define UPSAMPLE_CONSTANT constant
#else
#define UPSAMPLE_CONSTANT
#endif
#define UPSAMPLE_INLINE inline

namespace upsample {

// Modes: how many taps an output reads along each axis and with what weights.
enum Mode : int {
  MODE_NEAREST = 0,
  MODE_LINEAR = 1,
  MODE_CUBIC = 2,
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
};

UPSAMPLE_CONSTANT constexpr int MAX_TAPS = 4;
UPSAMPLE_CONSTANT constexpr float CUBIC_A = -0.75f;

struct AxisMap {
  int in_size;
  int out_size;
  int rule;
  int factor; // RULE_NEAREST_REPLICATE only
  float scale; // input units per output step
  float offset; // RULE_CENTRED only
  int identity; // PyTorch linear maps i -> i when sizes match
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

UPSAMPLE_INLINE float floor_f(float x) {
#ifdef __METAL_VERSION__
  return metal::floor(x);
#else
  return __builtin_floorf(x);
#endif
}

// Round half to even, as mx.round does.
UPSAMPLE_INLINE float round_even_f(float x) {
#ifdef __METAL_VERSION__
  return metal::rint(x);
#else
  return __builtin_rintf(x);
#endif
}

UPSAMPLE_INLINE int clamp_index(int i, int n) {
  return i < 0 ? 0 : (i > n - 1 ? n - 1 : i);
}

// The continuous input coordinate read by output i (linear and cubic).
UPSAMPLE_INLINE float source_index(AxisMap a, int i) {
  float fi = float(i);
  if (a.rule == RULE_ALIGN_CORNERS) {
    return a.scale * fi;
  } else if (a.rule == RULE_HALF_PIXEL) {
    return a.scale * (fi + 0.5f) - 0.5f;
  }
  return fi * a.scale - a.offset;
}

UPSAMPLE_INLINE int nearest_index(AxisMap a, int i) {
  int n = a.in_size;
  if (a.rule == RULE_NEAREST_REPLICATE) {
    return i / a.factor;
  } else if (a.rule == RULE_NEAREST_ROUND) {
    return clamp_index(int(round_even_f((float(i) + 0.5f) * a.scale - 0.5f)), n);
  } else if (a.rule == RULE_NEAREST_EXACT) {
    // PyTorch multiplies in double but floors with floorf, i.e. after
    // rounding to float: exactly a float product.
    return clamp_index(int(floor_f((float(i) + 0.5f) * a.scale)), n);
  } else if (a.rule == RULE_NEAREST_LEGACY) {
    // PyTorch's 2-D kernels special-case equal and doubled sizes before any
    // float math (its 1-D and 3-D kernels do not).
    if (a.out_size == n) {
      return i;
    } else if (a.out_size == 2 * n) {
      return i >> 1;
    }
  }
  return clamp_index(int(floor_f(float(i) * a.scale)), n);
}

UPSAMPLE_INLINE Taps nearest_taps(AxisMap a, int i) {
  Taps t;
  t.index[0] = nearest_index(a, i);
  t.weight[0] = 1.0f;
  t.count = 1;
  return t;
}

// Two taps; the coordinate is clamped into [0, N-1] so that both families'
// edge handling (MLX clips, PyTorch clamps the index and the lambda) agree.
UPSAMPLE_INLINE Taps linear_taps(AxisMap a, int i) {
  int n = a.in_size;
  float src = a.identity ? float(i) : source_index(a, i);
  src = src < 0.0f ? 0.0f : (src > float(n - 1) ? float(n - 1) : src);
  int i0 = int(floor_f(src));
  float l1 = src - float(i0);
  Taps t;
  t.index[0] = i0;
  t.index[1] = i0 < n - 1 ? i0 + 1 : i0;
  t.weight[0] = 1.0f - l1;
  t.weight[1] = l1;
  t.count = 2;
  return t;
}

// Keys' cubic convolution kernel: |x| <= 1 and 1 < |x| < 2.
UPSAMPLE_INLINE float cubic_inner(float x, float A) {
  return ((A + 2.0f) * x - (A + 3.0f)) * x * x + 1.0f;
}

UPSAMPLE_INLINE float cubic_outer(float x, float A) {
  return ((A * x - 5.0f * A) * x + 8.0f * A) * x - 4.0f * A;
}

// Weights of the four taps floor(src) - 1 .. floor(src) + 2 for the
// fractional part t, in PyTorch's order of operations.
UPSAMPLE_INLINE Taps cubic_taps(AxisMap a, int i) {
  int n = a.in_size;
  float src = source_index(a, i);
  float fl = floor_f(src);
  float t = src - fl;
  float u = 1.0f - t;
  int first = int(fl) - 1;
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

UPSAMPLE_INLINE int taps_per_output(int mode) {
  return mode == MODE_NEAREST ? 1 : (mode == MODE_LINEAR ? 2 : 4);
}

UPSAMPLE_INLINE Taps axis_taps(AxisMap a, int mode, int i) {
  if (mode == MODE_NEAREST) {
    return nearest_taps(a, i);
  } else if (mode == MODE_LINEAR) {
    return linear_taps(a, i);
  }
  return cubic_taps(a, i);
}

// Total weight with which output i's taps read input j (taps can repeat at
// the edges, so this is a sum).
UPSAMPLE_INLINE float weight_of_input(Taps t, int j) {
  float w = 0.0f;
  for (int k = 0; k < t.count; ++k) {
    w += t.index[k] == j ? t.weight[k] : 0.0f;
  }
  return w;
}

// The outputs [begin, end) whose taps can read input j: the gather form of
// the backward pass. Both the smallest and the largest tap index grow with i,
// so two binary searches over the forward mapping find the range exactly,
// with no inverse formula to drift from the forward rounding.
UPSAMPLE_INLINE OutputRange output_range(AxisMap a, int mode, int j) {
  // First output whose largest tap reaches j.
  int lo = 0;
  int hi = a.out_size;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    Taps t = axis_taps(a, mode, mid);
    if (t.index[t.count - 1] >= j) {
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
    Taps t = axis_taps(a, mode, mid);
    if (t.index[0] > j) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  r.end = lo;
  return r;
}

} // namespace upsample
