// The coordinate and weight math of grid_sample, written once.
//
// Included by the CPU path (csrc/cpu/grid_sample_cpu.cpp), the Metal kernels
// (kernels/grid_sample.metal) and the Metal emulator, like upsample_math.h,
// whose rules it keeps: plain scalar arithmetic, no FMA contraction (the
// pragma there), no pointers.
//
// A grid value g in [-1, 1] along one spatial axis of the input becomes a
// source coordinate (grid_source), and that coordinate the axis's taps: one
// (nearest), two (linear) or four (cubic) input indices with their weights
// and the weights' derivatives (grid_axis_taps). A point's taps are the
// products of its axes' taps (grid_tap), enumerated z, y, x with x fastest.
//
// Note [grid_sample order of operations]
// Every backend computes, per output point and channel, in this order, so
// that the CPU path and the Metal kernels agree bit for bit:
//  - forward: out = sum over taps of value * weight, from the first product,
//    in tap order (grid_tap); a tap outside the input reads 0.
//  - gradient of x: each input element sums weight * cotangent over the
//    output points that read it, in increasing output index, and within one
//    point in tap order, from 0 (a tap outside the input adds nothing). No
//    float atomics: the order is fixed, whatever the thread count.
//  - gradient of the grid along axis a: per channel c the tap sum of
//    value * dweight[a] (grid_tap along a), times the cotangent; the channels
//    summed into GRID_PARTIALS partial sums (channel c into partial
//    c % GRID_PARTIALS, in increasing c, each from 0), then the partials
//    folded pairwise (grid_fold_partials), times the axis's multiplier
//    (GridAxisTaps::grad). Nearest: 0, written without reading anything
//    (as PyTorch; 0 * inf would be NaN).
//  - jvp in the grid: the forward's sum with the weights of grid_tangent_tap.
//
// Note [grid_sample PyTorch's 2-D and 3-D kernels]
// PyTorch's CPU kernels differ in 2-D (vectorised) and 3-D (scalar code) where
// coordinates are NaN, infinite or huge, and we follow each:
//  - 2-D: src = (g + 1) * scale - shift; clipping (border, reflection) maps
//    NaN to 0; reflection folds by truncation; with zeros padding a NaN or
//    infinite coordinate gives NaN weights, and its taps, outside, read 0:
//    the output is NaN (0 * NaN).
//  - 3-D: src = ((g + 1) * size - 1) / 2 (((g + 1) / 2) * (size - 1)
//    aligned); clipping maps NaN to size - 1; reflection folds by fmod; taps
//    outside are skipped (weight 0): with zeros padding such a point gives 0.
// The two agree to float32 rounding for every coordinate of moderate size.
// The gradients at a NaN coordinate: the grid's is 0 under border and
// reflection (the clip's derivative is 1 only strictly inside
// (0, size - 1)); PyTorch's backward reads outside its input there.
#pragma once

#include "upsample_math.h"

// Every function here is forced inline: they pass small structs by value,
// which only inlining turns into registers (a call would copy a GridPoint,
// 168 bytes, for every tap).
#define GRID_INLINE inline __attribute__((always_inline))

namespace upsample {

// How a coordinate outside the input samples (torch's padding_mode).
enum Padding : int {
  PADDING_ZEROS = 0, //      taps outside read 0
  PADDING_BORDER = 1, //     the coordinate clipped to [0, size - 1]
  PADDING_REFLECTION = 2, // reflected at the borders, then clipped
};

UPSAMPLE_CONSTANT constexpr int GRID_MAX_DIMS = 3;
UPSAMPLE_CONSTANT constexpr int GRID_PARTIALS = 32;

// One spatial axis of the input as grid values see it: the constants of
// PyTorch's ComputeLocation (its CPU kernel), precomputed on the host.
struct GridAxis {
  int size;
  float scale; //      pixels per grid unit: (size - 1) / 2 aligned, size / 2 not
  float shift; //      src = (g + 1) * scale - shift: 0 aligned, 0.5 not
  float max_val; //    size - 1
  float low; //        reflection: within [low, low + twice_span / 2]
  float twice_span;
  int reflect_empty; // aligned, size 1: reflection maps every g to 0
  int align_corners;
  int scalar_rules; // 3-D: the rules of PyTorch's 3-D kernel (Note above)
};

// The parameter block of one call (a Metal kernel's buffer as it is).
struct GridSampleArgs {
  int dims; // 2 or 3
  Mode mode; // MODE_NEAREST, MODE_LINEAR or MODE_CUBIC
  Padding padding;
  GridAxis axis[GRID_MAX_DIMS]; // x (the last spatial axis), y, z
};

GRID_INLINE GridAxis grid_axis(int size, int align_corners, int dims) {
  GridAxis a;
  a.size = size;
  a.max_val = float(size - 1);
  a.align_corners = align_corners;
  a.scalar_rules = dims == 3;
  if (align_corners) {
    a.scale = float(size - 1) / 2.0f;
    a.shift = 0.0f;
    a.low = 0.0f;
    a.twice_span = float(size - 1) * 2.0f;
    a.reflect_empty = size <= 1;
  } else {
    a.scale = float(size) / 2.0f;
    a.shift = 0.5f;
    a.low = -0.5f;
    a.twice_span = float(size) * 2.0f;
    a.reflect_empty = 0;
  }
  return a;
}

GRID_INLINE float trunc_f(float x) {
#ifdef __METAL_VERSION__
  return metal::trunc(x);
#else
  return __builtin_truncf(x);
#endif
}

GRID_INLINE float fmod_f(float x, float y) {
#ifdef __METAL_VERSION__
  return metal::fmod(x, y);
#else
  return __builtin_fmodf(x, y);
#endif
}

GRID_INLINE bool is_nan_f(float x) {
  return !(x == x);
}

// The integer of a whole-valued float, or INT_MIN (outside every axis)
// where it has none: NaN, infinities and |x| >= 2^31 (what x86's conversion
// gives, which PyTorch's kernels rely on).
GRID_INLINE int grid_index(float x) {
  return (x > -2147483648.0f && x < 2147483648.0f) ? int(x) : (-2147483647 - 1);
}

GRID_INLINE bool grid_inside(int i, int size) {
  return i > -1 && i < size;
}

// A coordinate and its derivative with respect to the value it came from.
struct GridCoord {
  float x;
  float grad;
};

// Clipped to [0, size - 1]; the derivative is 1 strictly inside, 0 on and
// past the borders (PyTorch: "borders are considered out of bounds").
GRID_INLINE GridCoord grid_clip(GridAxis a, float x) {
  GridCoord c;
  if (is_nan_f(x)) {
    c.x = a.scalar_rules ? a.max_val : 0.0f;
    c.grad = 0.0f;
    return c;
  }
  c.x = x > 0.0f ? (x < a.max_val ? x : a.max_val) : 0.0f;
  c.grad = (x > 0.0f && x < a.max_val) ? 1.0f : 0.0f;
  return c;
}

// Reflected into [low, low + twice_span / 2]: in 2-D by PyTorch's vectorised
// formula (folds of twice the span by truncation, then one more flip where
// needed), in 3-D by its scalar one (fmod by the span, flipped on odd folds).
GRID_INLINE GridCoord grid_reflect(GridAxis a, float x) {
  GridCoord c;
  if (a.reflect_empty) {
    c.x = 0.0f;
    c.grad = 0.0f;
    return c;
  }
  float in = x - a.low;
  float sign = in < 0.0f ? -1.0f : 1.0f;
  float dist = abs_f(in);
  bool flip;
  float folded;
  if (a.scalar_rules) {
    float span = a.twice_span / 2.0f;
    float extra = fmod_f(dist, span);
    // An even INT_MIN where the folds overflow, as x86's conversion gives.
    flip = grid_index(floor_f(dist / span)) % 2 != 0;
    folded = flip ? span - extra : extra;
  } else {
    float extra = dist - trunc_f(dist / a.twice_span) * a.twice_span;
    float flipped = a.twice_span - extra;
    flip = extra > flipped;
    folded = flip ? flipped : extra;
  }
  c.x = folded + a.low;
  c.grad = flip ? -sign : sign;
  return c;
}

// Padding applied to a coordinate already in pixels (PyTorch's
// compute_coordinates): the identity for zeros.
GRID_INLINE GridCoord grid_pad(GridAxis a, Padding padding, float x) {
  GridCoord c;
  c.x = x;
  c.grad = 1.0f;
  if (padding == PADDING_REFLECTION) {
    GridCoord r = grid_reflect(a, x);
    GridCoord k = grid_clip(a, r.x);
    c.x = k.x;
    c.grad = r.grad * k.grad;
  } else if (padding == PADDING_BORDER) {
    c = grid_clip(a, x);
  }
  return c;
}

GRID_INLINE float grid_unnormalize(GridAxis a, float g) {
  if (a.scalar_rules) {
    float size = float(a.size);
    return a.align_corners ? ((g + 1.0f) / 2.0f) * (size - 1.0f)
                           : ((g + 1.0f) * size - 1.0f) / 2.0f;
  }
  return (g + 1.0f) * a.scale - a.shift;
}

// The source coordinate of grid value g (nearest and linear) and d src / d g.
GRID_INLINE GridCoord grid_source(GridAxis a, Padding padding, float g) {
  GridCoord c = grid_pad(a, padding, grid_unnormalize(a, g));
  c.grad = c.grad * a.scale;
  return c;
}

// One axis of one point: input indices (INT_MIN-like where outside),
// weights, the weights' derivatives in the source coordinate, and the
// coordinate's derivative in the grid value.
struct GridAxisTaps {
  int index[4];
  float weight[4];
  float dweight[4];
  int count;
  float grad;
};

GRID_INLINE GridAxisTaps grid_nearest_taps(GridAxis a, Padding padding, float g) {
  GridAxisTaps t;
  // Round half to even, as PyTorch's kernels round.
  t.index[0] = grid_index(round_even_f(grid_source(a, padding, g).x));
  t.weight[0] = 1.0f;
  t.dweight[0] = 0.0f;
  t.count = 1;
  t.grad = 0.0f;
  return t;
}

GRID_INLINE GridAxisTaps grid_linear_taps(GridAxis a, Padding padding, float g) {
  GridCoord c = grid_source(a, padding, g);
  float fl = floor_f(c.x);
  float frac = c.x - fl;
  GridAxisTaps t;
  t.index[0] = grid_index(fl);
  // Below 2^31 - 128 when not INT_MIN: no overflow.
  t.index[1] = t.index[0] + 1;
  t.weight[0] = 1.0f - frac;
  t.weight[1] = frac;
  t.dweight[0] = -1.0f;
  t.dweight[1] = 1.0f;
  t.count = 2;
  t.grad = c.grad;
  return t;
}

// Keys' cubic weights (A = -0.75) of the taps floor(x) - 1 .. floor(x) + 2
// and their derivatives in x, in the order of operations of PyTorch's CPU
// grid_sample (it writes the derivatives' negatives; a negation is exact).
// Its cubic mode pads each tap, not the coordinate, and its grid gradient
// ignores the padding: the multiplier is the scale alone.
GRID_INLINE GridAxisTaps grid_cubic_taps(GridAxis a, Padding padding, float g) {
  float x = grid_unnormalize(a, g);
  float fl = floor_f(x);
  float t = x - fl;
  float A = CUBIC_A;
  GridAxisTaps taps;
  taps.weight[0] = cubic_outer(t + 1.0f, A);
  taps.weight[1] = cubic_inner(t, A);
  taps.weight[2] = cubic_inner(1.0f - t, A);
  taps.weight[3] = cubic_outer(2.0f - t, A);
  float u = -1.0f - t;
  taps.dweight[0] = -((-3.0f * A * u - 10.0f * A) * u - 8.0f * A);
  u = 0.0f - t;
  taps.dweight[1] = -((-3.0f * (A + 2.0f) * u - 2.0f * (A + 3.0f)) * u);
  u = 1.0f - t;
  taps.dweight[2] = -((3.0f * (A + 2.0f) * u - 2.0f * (A + 3.0f)) * u);
  u = 2.0f - t;
  taps.dweight[3] = -((3.0f * A * u - 10.0f * A) * u + 8.0f * A);
  for (int k = 0; k < 4; ++k) {
    taps.index[k] = grid_index(grid_pad(a, padding, fl + float(k - 1)).x);
  }
  taps.count = 4;
  taps.grad = a.scale;
  return taps;
}

// Grid value g along axis `d` (0: x, 1: y, 2: z) of a point.
GRID_INLINE GridAxisTaps grid_axis_taps(GridSampleArgs p, int d, float g) {
  GridAxis a = p.axis[d];
  if (p.mode == MODE_NEAREST) {
    return grid_nearest_taps(a, p.padding, g);
  } else if (p.mode == MODE_LINEAR) {
    return grid_linear_taps(a, p.padding, g);
  }
  return grid_cubic_taps(a, p.padding, g);
}

// The one tap of a 2-D point's missing z axis.
GRID_INLINE GridAxisTaps grid_unit_taps() {
  GridAxisTaps t;
  t.index[0] = 0;
  t.weight[0] = 1.0f;
  t.dweight[0] = 0.0f;
  t.count = 1;
  t.grad = 0.0f;
  return t;
}

// The taps of the point at grid values (gx, gy[, gz]) (gz unused in 2-D).
struct GridPoint {
  GridAxisTaps axis[GRID_MAX_DIMS];
};

GRID_INLINE GridPoint grid_point(GridSampleArgs p, float gx, float gy, float gz) {
  GridPoint pt;
  pt.axis[0] = grid_axis_taps(p, 0, gx);
  pt.axis[1] = grid_axis_taps(p, 1, gy);
  pt.axis[2] = p.dims == 3 ? grid_axis_taps(p, 2, gz) : grid_unit_taps();
  return pt;
}

// Taps per point: 1 (nearest), 2^dims (linear), 16 (cubic, 2-D only).
GRID_INLINE constexpr int grid_taps_per_point(int dims, int mode) {
  return mode == MODE_NEAREST ? 1 : mode == MODE_LINEAR ? (dims == 3 ? 8 : 4) : 16;
}

// The call's parameter block with dims and mode fixed (to compile-time
// constants in the kernels: once these functions are inlined, their branches
// fold and their loops over taps unroll).
GRID_INLINE GridSampleArgs grid_fixed_args(GridSampleArgs a, int dims, int mode) {
  a.dims = dims;
  a.mode = Mode(mode);
  return a;
}

// Tap k of a point, z, y, x with x fastest: the input pixel (row-major over
// the spatial axes, -1 when outside on any axis) and a product of the axes'
// weights, (x * y) * z (0 outside in 3-D). With `along` = 0, 1 or 2 the
// weight of that axis is replaced by its derivative (the tap weights of
// d out / d src[along]); -1 gives the weights themselves.
struct GridTap {
  int pixel;
  float weight;
};

GRID_INLINE GridTap grid_tap(GridSampleArgs p, GridPoint pt, int k, int along) {
  int nx = pt.axis[0].count;
  int kx = k % nx;
  int ky = (k / nx) % pt.axis[1].count;
  int kz = k / (nx * pt.axis[1].count);
  int ix = pt.axis[0].index[kx];
  int iy = pt.axis[1].index[ky];
  int iz = pt.axis[2].index[kz];
  float wx = along == 0 ? pt.axis[0].dweight[kx] : pt.axis[0].weight[kx];
  float wy = along == 1 ? pt.axis[1].dweight[ky] : pt.axis[1].weight[ky];
  float wz = along == 2 ? pt.axis[2].dweight[kz] : pt.axis[2].weight[kz];
  bool inside = grid_inside(ix, p.axis[0].size) && grid_inside(iy, p.axis[1].size) &&
      (p.dims < 3 || grid_inside(iz, p.axis[2].size));
  GridTap t;
  t.pixel = inside ? (iz * p.axis[1].size + iy) * p.axis[0].size + ix : -1;
  t.weight = (!inside && p.dims == 3) ? 0.0f : (wx * wy) * wz;
  return t;
}

// The jvp's weight of tap k for grid tangents (tx, ty[, tz]): the sum over
// axes of the derivative's weight times grad[a] * t[a], x first.
GRID_INLINE GridTap grid_tangent_tap(GridSampleArgs p, GridPoint pt, int k, float tx, float ty, float tz) {
  GridTap t = grid_tap(p, pt, k, 0);
  float w = t.weight * (pt.axis[0].grad * tx) + grid_tap(p, pt, k, 1).weight * (pt.axis[1].grad * ty);
  t.weight = p.dims == 3 ? w + grid_tap(p, pt, k, 2).weight * (pt.axis[2].grad * tz) : w;
  return t;
}

// The channel sums of the grid gradient (Note [grid_sample order of
// operations]): partial[l] += partial[l + w] for w = 16, 8, 4, 2, 1.
struct GridPartials {
  float sum[GRID_PARTIALS];
};

GRID_INLINE float grid_fold_partials(GridPartials s) {
  for (int w = GRID_PARTIALS / 2; w > 0; w /= 2) {
    for (int l = 0; l < w; ++l) {
      s.sum[l] = s.sum[l] + s.sum[l + w];
    }
  }
  return s.sum[0];
}

} // namespace upsample
