// grid_sample kernels for Apple GPUs: forward, the jvp in the grid, the
// grid's gradient and the input's gradient, every sum in the order of Note
// [grid_sample order of operations] (grid_sample_math.h), so that they agree
// with the CPU path bit for bit. The coordinate and weight math is the
// header's; the grids and parameter blocks are laid out in
// grid_kernel_params.h. x and the cotangents are channels-last
// (N, *spatial, C) in their dtype, the grid and its tangent (N, *out, dims)
// float32; every sum is float32.
//
// Note [grid_sample input gradient on Metal]
// Which input pixel a point reads depends on the grid, so the input
// gradient cannot be a fixed gather; and float atomics would add in the
// order the threads happen to run. Instead, over the pixels of the whole
// batch:
//  1. grid_sample_clear zeroes a count per pixel; grid_count adds 1 per
//     (point, tap) inside the input (integer atomics: the counts do not
//     depend on the order).
//  2. grid_sample_scan_reduce, _scan_top and _scan_spread turn the counts,
//     in place, into each pixel's segment start (an exclusive prefix sum,
//     GRID_SCAN_BLOCK counts per thread and level).
//  3. grid_fill writes each (point, tap)'s entry, (key, weight bits)
//     with key = point << tap_shift | tap, at its pixel's cursor (an integer
//     atomic: the order within a segment is the threads' order), which
//     leaves every count at its segment's end: segment g is
//     [end[g - 1], end[g]).
//  4. Each segment is sorted by key (keys are unique: the result does not
//     depend on the order the fill left): grid_sample_sort sorts the long
//     ones in place, the thread that sums a short one (at most
//     GRID_SHORT_SEGMENT entries, the usual case) sorts it in registers.
//  5. grid_input_grad: a thread per (pixel, chunk of channel packets) sums
//     weight * cotangent over its segment in key order from 0: increasing
//     output point, then tap order, the CPU path's order. Bitwise equal to
//     it, whatever the threads' order.
// A segment holds the taps that read its pixel: a few for a smooth grid,
// every tap of a batch entry when all its points sample one pixel. Then
// that pixel's sort is one thread's heapsort (O(L log L)) and its sum one
// thread per chunk of packets over L entries: a degenerate grid
// serialises, as the CPU path's sum for that pixel does.
#include <metal_stdlib>

#include "grid_kernel_params.h"

using namespace metal;
using namespace upsample;

#ifndef METAL_FUNC
#define METAL_FUNC inline __attribute__((__always_inline__))
#endif

// V neighbouring channels read as float32 and written back; a 3-vector is
// 16-byte aligned in Metal memory, so V = 3 moves scalars.
template <typename T, int V>
struct GridPacket {
  typedef vec<float, V> acc_t;
  static acc_t load(device const T* p) {
    return acc_t(*(device const vec<T, V>*)p);
  }
  static void store(device T* p, acc_t v) {
    *(device vec<T, V>*)p = vec<T, V>(v);
  }
};
template <typename T>
struct GridPacket<T, 1> {
  typedef float acc_t;
  static float load(device const T* p) {
    return float(*p);
  }
  static void store(device T* p, float v) {
    *p = T(v);
  }
};
template <typename T>
struct GridPacket<T, 3> {
  typedef vec<float, 3> acc_t;
  static acc_t load(device const T* p) {
    acc_t v;
    v[0] = float(p[0]);
    v[1] = float(p[1]);
    v[2] = float(p[2]);
    return v;
  }
  static void store(device T* p, acc_t v) {
    p[0] = T(v[0]);
    p[1] = T(v[1]);
    p[2] = T(v[2]);
  }
};

// The kernels that compute taps are instantiated per spatial dims and mode
// (DIMS, MODE): with both fixed, the math header's branches fold once it is
// inlined and a point's taps are a compile-time count, so that the loops
// over them unroll and the taps stay in registers (an array indexed at run
// time would live in thread memory).
template <int DIMS, int MODE>
inline GridSampleArgs fixed_args(constant GridKernelParams& p) {
  return grid_fixed_args(p.args, DIMS, MODE);
}

// The taps of grid point q (global over the batch).
template <int DIMS>
inline GridPoint point_at(thread const GridSampleArgs& a, device const float* grid, uint q) {
  device const float* g = grid + ulong(q) * DIMS;
  return grid_point(a, g[0], g[1], DIMS == 3 ? g[2] : 0.0f);
}

// A point's K taps: input pixel (-1 outside) and weight.
template <int K>
struct PointTaps {
  int pixel[K];
  float weight[K];
};

// Its taps (`along` -1) or their derivatives along axis `along`.
template <int DIMS, int MODE>
METAL_FUNC PointTaps<grid_taps_per_point(DIMS, MODE)> point_taps(
    thread const GridSampleArgs& a, thread const GridPoint& pt, int along) {
  PointTaps<grid_taps_per_point(DIMS, MODE)> taps;
  for (int k = 0; k < grid_taps_per_point(DIMS, MODE); ++k) {
    GridTap t = grid_tap(a, pt, k, along);
    taps.pixel[k] = t.pixel;
    taps.weight[k] = t.weight;
  }
  return taps;
}

// A thread's place on a grid whose x is (position, chunk).
struct GridPlace {
  uint item; // point or pixel, global over the batch
  uint first; // first packet
  uint end; // one past the last packet
};

inline GridPlace place_of(constant GridKernelParams& p, uint2 gid) {
  uint position = divide(gid.x, p.by_chunks);
  uint chunk = gid.x - position * p.chunks;
  GridPlace at;
  at.item = gid.y * p.row + position;
  at.first = chunk * p.chunk;
  at.end = min(at.first + p.chunk, p.packets);
  return at;
}

// The first input pixel of point q's batch entry.
inline uint batch_pixels(constant GridKernelParams& p, uint q) {
  return divide(q, p.by_points) * p.pixels;
}

// sum over taps of value * weight from the first product, a tap outside
// reading 0; `base` is the batch entry's first pixel, channel included.
template <typename T, int V, int K>
METAL_FUNC typename GridPacket<T, V>::acc_t tap_sum(
    device const T* base, thread const PointTaps<K>& taps, uint channels) {
  typedef typename GridPacket<T, V>::acc_t acc_t;
  acc_t acc(0.0f);
  for (int k = 0; k < K; ++k) {
    int pixel = taps.pixel[k];
    acc_t v = pixel >= 0 ? GridPacket<T, V>::load(base + ulong(pixel) * channels) : acc_t(0.0f);
    if (k == 0) {
      acc = v * taps.weight[k];
    } else {
      acc += v * taps.weight[k];
    }
  }
  return acc;
}

// out = sum over taps of x * w with the taps' weights (forward) or the
// tangent's (jvp in the grid), for the packets of one thread.
template <typename T, int V, int K>
METAL_FUNC void write_tap_sums(
    device const T* x,
    device T* out,
    constant GridKernelParams& p,
    GridPlace at,
    thread const PointTaps<K>& taps) {
  device const T* base = x + ulong(batch_pixels(p, at.item)) * p.channels;
  device T* to = out + ulong(at.item) * p.channels;
  for (uint k = at.first; k < at.end; ++k) {
    uint c = k * V;
    GridPacket<T, V>::store(to + c, tap_sum<T, V, K>(base + c, taps, p.channels));
  }
}

template <typename T, int V, int DIMS, int MODE>
[[kernel]] void grid_forward(
    device const T* x [[buffer(0)]],
    device const float* grid [[buffer(1)]],
    device T* out [[buffer(2)]],
    constant GridKernelParams& p [[buffer(3)]],
    uint2 gid [[thread_position_in_grid]]) {
  GridPlace at = place_of(p, gid);
  GridSampleArgs a = fixed_args<DIMS, MODE>(p);
  GridPoint pt = point_at<DIMS>(a, grid, at.item);
  PointTaps<grid_taps_per_point(DIMS, MODE)> taps = point_taps<DIMS, MODE>(a, pt, -1);
  write_tap_sums<T, V>(x, out, p, at, taps);
}

template <typename T, int V, int DIMS, int MODE>
[[kernel]] void grid_tangent(
    device const T* x [[buffer(0)]],
    device const float* grid [[buffer(1)]],
    device const float* tangent [[buffer(2)]],
    device T* out [[buffer(3)]],
    constant GridKernelParams& p [[buffer(4)]],
    uint2 gid [[thread_position_in_grid]]) {
  GridPlace at = place_of(p, gid);
  GridSampleArgs a = fixed_args<DIMS, MODE>(p);
  GridPoint pt = point_at<DIMS>(a, grid, at.item);
  device const float* t = tangent + ulong(at.item) * DIMS;
  float tz = DIMS == 3 ? t[2] : 0.0f;
  PointTaps<grid_taps_per_point(DIMS, MODE)> taps;
  for (int k = 0; k < grid_taps_per_point(DIMS, MODE); ++k) {
    GridTap tap = grid_tangent_tap(a, pt, k, t[0], t[1], tz);
    taps.pixel[k] = tap.pixel;
    taps.weight[k] = tap.weight;
  }
  write_tap_sums<T, V>(x, out, p, at, taps);
}

// The grid gradient's GRID_PARTIALS channel partials, as V-lane packets:
// packet j (channels V j .. V j + V - 1) joins partials V (j % (32 / V)) + l.
template <int V>
struct GridGradPartials {
  typedef vec<float, V> acc_t;
  acc_t part[GRID_PARTIALS / V];
  static float lane(acc_t v, int l) {
    return v[l];
  }
};
template <>
struct GridGradPartials<1> {
  typedef float acc_t;
  float part[GRID_PARTIALS];
  static float lane(float v, int) {
    return v;
  }
};

// d out / d grid of one point (linear and cubic): a thread per point, every
// channel, V at a time (V divides 32).
template <typename T, int V, int DIMS, int MODE>
[[kernel]] void grid_grid_grad(
    device const T* x [[buffer(0)]],
    device const float* grid [[buffer(1)]],
    device const T* cotangent [[buffer(2)]],
    device float* dgrid [[buffer(3)]],
    constant GridKernelParams& p [[buffer(4)]],
    uint2 gid [[thread_position_in_grid]]) {
  typedef typename GridPacket<T, V>::acc_t acc_t;
  uint q = gid.y * p.row + gid.x;
  device float* to = dgrid + ulong(q) * DIMS;
  GridSampleArgs a = fixed_args<DIMS, MODE>(p);
  GridPoint pt = point_at<DIMS>(a, grid, q);
  device const T* base = x + ulong(batch_pixels(p, q)) * p.channels;
  device const T* g = cotangent + ulong(q) * p.channels;
  const uint slots = GRID_PARTIALS / V;
  for (int axis = 0; axis < DIMS; ++axis) {
    PointTaps<grid_taps_per_point(DIMS, MODE)> taps = point_taps<DIMS, MODE>(a, pt, axis);
    GridGradPartials<V> s;
    for (uint j = 0; j < slots; ++j) {
      s.part[j] = acc_t(0.0f);
    }
    for (uint k = 0; k < p.packets; ++k) {
      uint c = k * V;
      acc_t d = tap_sum<T, V>(base + c, taps, p.channels) * GridPacket<T, V>::load(g + c);
      s.part[k % slots] += d;
    }
    GridPartials partials;
    for (int l = 0; l < GRID_PARTIALS; ++l) {
      partials.sum[l] = GridGradPartials<V>::lane(s.part[l / V], l % V);
    }
    to[axis] = grid_fold_partials(partials) * pt.axis[axis].grad;
  }
}

// Nearest's grid gradient: 0, written without reading anything (a thread per
// point).
[[kernel]] void grid_sample_grid_zero(
    device float* dgrid [[buffer(0)]],
    constant GridKernelParams& p [[buffer(1)]],
    uint2 gid [[thread_position_in_grid]]) {
  uint q = gid.y * p.row + gid.x;
  for (int a = 0; a < p.args.dims; ++a) {
    dgrid[ulong(q) * p.args.dims + a] = 0.0f;
  }
}

// ---- the input gradient (Note [grid_sample input gradient on Metal]) -------

// A thread per pixel of the batch: its count to 0.
[[kernel]] void grid_sample_clear(
    device uint* counts [[buffer(0)]],
    constant GridKernelParams& p [[buffer(1)]],
    uint2 gid [[thread_position_in_grid]]) {
  counts[gid.y * p.row + gid.x] = 0u;
}

// A thread per point: 1 for each of its taps inside the input.
template <int DIMS, int MODE>
[[kernel]] void grid_count(
    device const float* grid [[buffer(0)]],
    device atomic_uint* counts [[buffer(1)]],
    constant GridKernelParams& p [[buffer(2)]],
    uint2 gid [[thread_position_in_grid]]) {
  uint q = gid.y * p.row + gid.x;
  GridSampleArgs a = fixed_args<DIMS, MODE>(p);
  GridPoint pt = point_at<DIMS>(a, grid, q);
  PointTaps<grid_taps_per_point(DIMS, MODE)> taps = point_taps<DIMS, MODE>(a, pt, -1);
  uint first = batch_pixels(p, q);
  for (int k = 0; k < grid_taps_per_point(DIMS, MODE); ++k) {
    if (taps.pixel[k] >= 0) {
      atomic_fetch_add_explicit(&counts[first + uint(taps.pixel[k])], 1u, memory_order_relaxed);
    }
  }
}

// A thread per block of GRID_SCAN_BLOCK elements of a level: their sum, the
// element of the level above.
[[kernel]] void grid_sample_scan_reduce(
    device const uint* level [[buffer(0)]],
    device uint* sums [[buffer(1)]],
    constant GridScanParams& p [[buffer(2)]],
    uint2 gid [[thread_position_in_grid]]) {
  uint begin = gid.x * GRID_SCAN_BLOCK;
  uint end = min(begin + GRID_SCAN_BLOCK, p.count);
  uint sum = 0u;
  for (uint i = begin; i < end; ++i) {
    sum += level[i];
  }
  sums[gid.x] = sum;
}

// Exclusive prefix sums of a block, in place, from `start`.
inline void spread_block(device uint* level, uint begin, uint end, uint start) {
  uint running = start;
  for (uint i = begin; i < end; ++i) {
    uint v = level[i];
    level[i] = running;
    running += v;
  }
}

// The top level (at most GRID_SCAN_BLOCK elements), one thread.
[[kernel]] void grid_sample_scan_top(
    device uint* level [[buffer(0)]],
    constant GridScanParams& p [[buffer(1)]]) {
  spread_block(level, 0u, p.count, 0u);
}

// A thread per block of a level below the top, from the block's start that
// the level above now holds.
[[kernel]] void grid_sample_scan_spread(
    device uint* level [[buffer(0)]],
    device const uint* starts [[buffer(1)]],
    constant GridScanParams& p [[buffer(2)]],
    uint2 gid [[thread_position_in_grid]]) {
  uint begin = gid.x * GRID_SCAN_BLOCK;
  spread_block(level, begin, min(begin + GRID_SCAN_BLOCK, p.count), starts[gid.x]);
}

// A thread per point: each tap inside writes its entry at its pixel's cursor.
template <int DIMS, int MODE>
[[kernel]] void grid_fill(
    device const float* grid [[buffer(0)]],
    device atomic_uint* cursors [[buffer(1)]],
    device uint2* entries [[buffer(2)]],
    constant GridKernelParams& p [[buffer(3)]],
    uint2 gid [[thread_position_in_grid]]) {
  uint q = gid.y * p.row + gid.x;
  GridSampleArgs a = fixed_args<DIMS, MODE>(p);
  GridPoint pt = point_at<DIMS>(a, grid, q);
  PointTaps<grid_taps_per_point(DIMS, MODE)> taps = point_taps<DIMS, MODE>(a, pt, -1);
  uint first = batch_pixels(p, q);
  for (int k = 0; k < grid_taps_per_point(DIMS, MODE); ++k) {
    if (taps.pixel[k] >= 0) {
      uint slot = atomic_fetch_add_explicit(
          &cursors[first + uint(taps.pixel[k])], 1u, memory_order_relaxed);
      uint2 entry;
      entry.x = (q << p.tap_shift) | uint(k);
      entry.y = as_type<uint>(taps.weight[k]);
      entries[slot] = entry;
    }
  }
}

inline void swap_entries(device uint2* a, uint i, uint j) {
  uint2 t = a[i];
  a[i] = a[j];
  a[j] = t;
}

// Moves a[root] down the max-heap a[0 .. n) (keys in .x).
inline void sift_down(device uint2* a, uint root, uint n) {
  while (true) {
    ulong child = ulong(root) * 2 + 1;
    if (child >= n) {
      return;
    }
    uint c = uint(child);
    if (c + 1u < n && a[c + 1u].x > a[c].x) {
      ++c;
    }
    if (a[root].x >= a[c].x) {
      return;
    }
    swap_entries(a, root, c);
    root = c;
  }
}

// a[0 .. n) by increasing key, by insertion: a short segment, in the
// registers of the thread that sums it.
inline void insertion_sort(thread uint2* a, uint n) {
  for (uint i = 1u; i < n; ++i) {
    uint2 e = a[i];
    uint j = i;
    while (j > 0u && a[j - 1u].x > e.x) {
      a[j] = a[j - 1u];
      --j;
    }
    a[j] = e;
  }
}

inline uint segment_begin(device const uint* ends, uint pixel) {
  return pixel == 0u ? 0u : ends[pixel - 1u];
}

// A thread per pixel of the batch: a segment longer than GRID_SHORT_SEGMENT
// sorted in place by heapsort (no recursion, O(n log n)); the short ones
// are sorted by the threads that sum them.
[[kernel]] void grid_sample_sort(
    device const uint* ends [[buffer(0)]],
    device uint2* entries [[buffer(1)]],
    constant GridKernelParams& p [[buffer(2)]],
    uint2 gid [[thread_position_in_grid]]) {
  uint pixel = gid.y * p.row + gid.x;
  uint begin = segment_begin(ends, pixel);
  uint n = ends[pixel] - begin;
  if (n <= GRID_SHORT_SEGMENT) {
    return;
  }
  device uint2* a = entries + begin;
  for (uint i = n / 2u; i > 0u; --i) {
    sift_down(a, i - 1u, n);
  }
  for (uint end = n - 1u; end > 0u; --end) {
    swap_entries(a, 0u, end);
    sift_down(a, 0u, end);
  }
}

// sum over `n` entries in order of weight * cotangent, from 0 (P: the
// entries in registers or in device memory).
template <typename T, int V, typename P>
METAL_FUNC typename GridPacket<T, V>::acc_t segment_sum(
    P entries, uint n, device const T* cotangent, constant GridKernelParams& p, uint c) {
  typename GridPacket<T, V>::acc_t acc(0.0f);
  for (uint e = 0u; e < n; ++e) {
    uint2 entry = entries[e];
    ulong point = ulong(entry.x >> p.tap_shift);
    acc += GridPacket<T, V>::load(cotangent + point * p.channels + c) * as_type<float>(entry.y);
  }
  return acc;
}

// A thread per (pixel, chunk of packets): dx = sum over its segment of
// weight * cotangent, in key order, from 0. A short segment is copied into
// registers and sorted there.
template <typename T, int V>
[[kernel]] void grid_input_grad(
    device const T* cotangent [[buffer(0)]],
    device const uint* ends [[buffer(1)]],
    device const uint2* entries [[buffer(2)]],
    device T* dx [[buffer(3)]],
    constant GridKernelParams& p [[buffer(4)]],
    uint2 gid [[thread_position_in_grid]]) {
  GridPlace at = place_of(p, gid);
  uint begin = segment_begin(ends, at.item);
  uint n = ends[at.item] - begin;
  device T* to = dx + ulong(at.item) * p.channels;
  if (n <= GRID_SHORT_SEGMENT) {
    uint2 segment[GRID_SHORT_SEGMENT];
    for (uint e = 0u; e < n; ++e) {
      segment[e] = entries[begin + e];
    }
    insertion_sort(segment, n);
    for (uint k = at.first; k < at.end; ++k) {
      uint c = k * V;
      GridPacket<T, V>::store(to + c, segment_sum<T, V>(segment, n, cotangent, p, c));
    }
    return;
  }
  for (uint k = at.first; k < at.end; ++k) {
    uint c = k * V;
    GridPacket<T, V>::store(to + c, segment_sum<T, V>(entries + begin, n, cotangent, p, c));
  }
}

// Kernel names, as csrc/metal/grid_launch_plan.cpp makes them:
// grid_sample_{forward|tangent}_{dtype}_{2d|3d}_{mode}_v{V} (V = 1, 2, 3,
// 4), grid_sample_grid_grad_{dtype}_{2d|3d}_{mode}_v{V} (V = 1, 4; linear
// and cubic), grid_sample_{count|fill}_{2d|3d}_{mode},
// grid_sample_input_grad_{dtype}_v{V}; the kernels above that are no
// template go by their own names (grid_sample_clear, ...). The modes:
// nearest, linear, cubic (2-D only).
#ifndef instantiate_kernel
#define instantiate_kernel(name, func, ...) \
  template [[host_name(name)]] [[kernel]] decltype(func<__VA_ARGS__>) func<__VA_ARGS__>;
#endif
// A kernel that is no template is in the library as it is; the emulator
// registers it under its name.
#ifndef plain_kernel
#define plain_kernel(func)
#endif

#define instantiate_widths(prefix, func, type, dims, mode) \
  instantiate_kernel(prefix "_v1", func, type, 1, dims, mode) \
  instantiate_kernel(prefix "_v2", func, type, 2, dims, mode) \
  instantiate_kernel(prefix "_v3", func, type, 3, dims, mode) \
  instantiate_kernel(prefix "_v4", func, type, 4, dims, mode)

// The kernels of one dtype at one (dims, mode); grid_grad only where the
// weights have derivatives.
#define instantiate_sampling(name, type, dims, mode, suffix)                         \
  instantiate_widths("grid_sample_forward_" name suffix, grid_forward, type, dims, mode) \
  instantiate_widths("grid_sample_tangent_" name suffix, grid_tangent, type, dims, mode)
#define instantiate_grid_grad(name, type, dims, mode, suffix)                                 \
  instantiate_kernel("grid_sample_grid_grad_" name suffix "_v1", grid_grid_grad, type, 1, dims, mode) \
  instantiate_kernel("grid_sample_grid_grad_" name suffix "_v4", grid_grid_grad, type, 4, dims, mode)

#define instantiate_dtype(name, type)                                                  \
  instantiate_sampling(name, type, 2, MODE_NEAREST, "_2d_nearest")                     \
  instantiate_sampling(name, type, 2, MODE_LINEAR, "_2d_linear")                       \
  instantiate_sampling(name, type, 2, MODE_CUBIC, "_2d_cubic")                         \
  instantiate_sampling(name, type, 3, MODE_NEAREST, "_3d_nearest")                     \
  instantiate_sampling(name, type, 3, MODE_LINEAR, "_3d_linear")                       \
  instantiate_grid_grad(name, type, 2, MODE_LINEAR, "_2d_linear")                      \
  instantiate_grid_grad(name, type, 2, MODE_CUBIC, "_2d_cubic")                        \
  instantiate_grid_grad(name, type, 3, MODE_LINEAR, "_3d_linear")                      \
  instantiate_kernel("grid_sample_input_grad_" name "_v1", grid_input_grad, type, 1)   \
  instantiate_kernel("grid_sample_input_grad_" name "_v2", grid_input_grad, type, 2)   \
  instantiate_kernel("grid_sample_input_grad_" name "_v3", grid_input_grad, type, 3)   \
  instantiate_kernel("grid_sample_input_grad_" name "_v4", grid_input_grad, type, 4)

#define instantiate_taps(dims, mode, suffix)                                    \
  instantiate_kernel("grid_sample_count" suffix, grid_count, dims, mode)        \
  instantiate_kernel("grid_sample_fill" suffix, grid_fill, dims, mode)

instantiate_dtype("float32", float)
instantiate_dtype("float16", half)
instantiate_dtype("bfloat16", bfloat)
instantiate_taps(2, MODE_NEAREST, "_2d_nearest")
instantiate_taps(2, MODE_LINEAR, "_2d_linear")
instantiate_taps(2, MODE_CUBIC, "_2d_cubic")
instantiate_taps(3, MODE_NEAREST, "_3d_nearest")
instantiate_taps(3, MODE_LINEAR, "_3d_linear")
plain_kernel(grid_sample_grid_zero)
plain_kernel(grid_sample_clear)
plain_kernel(grid_sample_scan_reduce)
plain_kernel(grid_sample_scan_top)
plain_kernel(grid_sample_scan_spread)
plain_kernel(grid_sample_sort)
