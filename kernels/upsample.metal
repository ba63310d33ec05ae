// Upsampling kernels for Apple GPUs: forward and backward of every mode.
//
// Layout is channels-last (N, *spatial, C). Grid x walks packets of V
// neighbouring channels (coalesced, vector loads when V == 4), grid y the
// spatial positions, grid z the batch. A thread computes its per-axis taps
// (or, for the antialias and area modes, its per-axis windows) once and
// reuses them for its whole packet. The taps and weights come from
// upsample_math.h, the same code the CPU path runs.
//
// The backward kernels are gathers: one thread per input element sums the
// outputs that read it, in a fixed order. No atomics, no zero-fill pass,
// bit-identical results from run to run.
//
// The grid is rounded up to whole threadgroups, so every kernel first drops
// the threads that fall past the data.
#include <metal_stdlib>

#include "kernel_params.h"

using namespace metal;
using namespace upsample;

// V channels moved as one value: T itself or a Metal vector.
template <typename T, int V>
struct Packet {
  typedef vec<T, V> type;
};
template <typename T>
struct Packet<T, 1> {
  typedef T type;
};

// Flat offset of the channel packet at spatial position `pos` (row-major
// spatial indices) of batch entry `n`; 64-bit because arrays may exceed 2^31
// elements.
inline long element_offset(
    long n,
    const thread int* pos,
    int dims,
    constant KernelParams& p,
    bool output_side) {
  long off = n;
  for (int a = 0; a < dims; ++a) {
    off = off * (output_side ? p.axes[a].out_size : p.axes[a].in_size) + pos[a];
  }
  return off * p.channels;
}

// Splits a flat position along grid y into per-axis indices.
inline void unflatten(
    uint flat,
    int dims,
    constant KernelParams& p,
    bool output_side,
    thread int* pos) {
  for (int a = dims - 1; a >= 0; --a) {
    uint len = uint(output_side ? p.axes[a].out_size : p.axes[a].in_size);
    pos[a] = int(flat % len);
    flat /= len;
  }
}

// Nearest forward: a copy of the source packet, exact for every dtype (T is
// an unsigned integer of the element's width).
template <typename T, int RANK, int V>
[[kernel]] void nearest_forward(
    device const T* in [[buffer(0)]],
    device T* out [[buffer(1)]],
    constant KernelParams& p [[buffer(2)]],
    uint3 gid [[thread_position_in_grid]]) {
  if (gid.x >= p.channel_groups || gid.y >= p.positions) {
    return;
  }
  typedef typename Packet<T, V>::type packet_t;
  constexpr int D = RANK > 0 ? RANK : MAX_DIMS;
  const int dims = RANK > 0 ? RANK : p.dims;
  int pos[D];
  unflatten(gid.y, dims, p, true, pos);
  int src[D];
  for (int a = 0; a < dims; ++a) {
    src[a] = nearest_index(p.axes[a], pos[a]);
  }
  long c = long(gid.x) * V;
  long from = element_offset(gid.z, src, dims, p, false) + c;
  long to = (long(gid.z) * p.positions + gid.y) * p.channels + c;
  *(device packet_t*)(out + to) = *(device const packet_t*)(in + from);
}

// Linear and cubic forward: the weighted sum over the product of the
// per-axis taps, accumulated in float32.
template <typename T, int MODE, int RANK, int V>
[[kernel]] void interpolate_forward(
    device const T* in [[buffer(0)]],
    device T* out [[buffer(1)]],
    constant KernelParams& p [[buffer(2)]],
    uint3 gid [[thread_position_in_grid]]) {
  if (gid.x >= p.channel_groups || gid.y >= p.positions) {
    return;
  }
  typedef typename Packet<T, V>::type packet_t;
  typedef typename Packet<float, V>::type acc_t;
  constexpr int D = RANK > 0 ? RANK : MAX_DIMS;
  const int dims = RANK > 0 ? RANK : p.dims;
  int pos[D];
  unflatten(gid.y, dims, p, true, pos);
  Taps taps[D];
  int k[D];
  for (int a = 0; a < dims; ++a) {
    taps[a] = axis_taps(p.axes[a], MODE, pos[a]);
    k[a] = 0;
  }
  long c = long(gid.x) * V;
  acc_t acc = acc_t(0.0f);
  // Odometer over the tap product; every thread runs the same trip count.
  while (true) {
    float w = 1.0f;
    int src[D];
    for (int a = 0; a < dims; ++a) {
      src[a] = taps[a].index[k[a]];
      w *= taps[a].weight[k[a]];
    }
    long from = element_offset(gid.z, src, dims, p, false) + c;
    acc += w * acc_t(*(device const packet_t*)(in + from));
    int a = dims - 1;
    while (a >= 0 && ++k[a] == taps[a].count) {
      k[a] = 0;
      --a;
    }
    if (a < 0) {
      break;
    }
  }
  long to = (long(gid.z) * p.positions + gid.y) * p.channels + c;
  *(device packet_t*)(out + to) = packet_t(acc);
}

// Antialias and area forward: the weighted sum over the product of the
// per-axis windows, accumulated in float32. A window's length grows with the
// downscale factor, so weights are not stored: each axis keeps the weight of
// its current tap and recomputes it (O(1)) when its index moves; the window
// normalisers are computed once per thread.
template <typename T, int MODE, int RANK, int V>
[[kernel]] void window_forward(
    device const T* in [[buffer(0)]],
    device T* out [[buffer(1)]],
    constant KernelParams& p [[buffer(2)]],
    uint3 gid [[thread_position_in_grid]]) {
  if (gid.x >= p.channel_groups || gid.y >= p.positions) {
    return;
  }
  typedef typename Packet<T, V>::type packet_t;
  typedef typename Packet<float, V>::type acc_t;
  constexpr int D = RANK > 0 ? RANK : MAX_DIMS;
  const int dims = RANK > 0 ? RANK : p.dims;
  int pos[D];
  unflatten(gid.y, dims, p, true, pos);
  TapWindow win[D];
  int src[D];
  float w[D];
  bool empty = false;
  for (int a = 0; a < dims; ++a) {
    win[a] = tap_window(p.axes[a], MODE, pos[a]);
    src[a] = win[a].first;
    empty = empty || win[a].count <= 0;
    w[a] = empty ? 0.0f : tap_weight(p.axes[a], MODE, win[a], src[a]);
  }
  long c = long(gid.x) * V;
  acc_t acc = acc_t(0.0f);
  // Odometer over the window product.
  while (!empty) {
    float weight = 1.0f;
    for (int a = 0; a < dims; ++a) {
      weight *= w[a];
    }
    long from = element_offset(gid.z, src, dims, p, false) + c;
    acc += weight * acc_t(*(device const packet_t*)(in + from));
    int a = dims - 1;
    while (a >= 0) {
      if (++src[a] < win[a].first + win[a].count) {
        w[a] = tap_weight(p.axes[a], MODE, win[a], src[a]);
        break;
      }
      src[a] = win[a].first;
      w[a] = tap_weight(p.axes[a], MODE, win[a], src[a]);
      --a;
    }
    empty = a < 0;
  }
  long to = (long(gid.z) * p.positions + gid.y) * p.channels + c;
  *(device packet_t*)(out + to) = packet_t(acc);
}

// Backward of every mode: the thread of input position j sums, over the
// outputs that read j (output_range per axis), the output cotangent times
// the product of the per-axis weights with which each output read j. For
// the window modes (antialias, area) the same code: output_range searches
// the window bounds, weight_of_input evaluates the output's window.
template <typename T, int MODE, int RANK, int V>
[[kernel]] void gather_backward(
    device const T* grad_out [[buffer(0)]],
    device T* grad_in [[buffer(1)]],
    constant KernelParams& p [[buffer(2)]],
    uint3 gid [[thread_position_in_grid]]) {
  if (gid.x >= p.channel_groups || gid.y >= p.positions) {
    return;
  }
  typedef typename Packet<T, V>::type packet_t;
  typedef typename Packet<float, V>::type acc_t;
  constexpr int D = RANK > 0 ? RANK : MAX_DIMS;
  const int dims = RANK > 0 ? RANK : p.dims;
  int j[D];
  unflatten(gid.y, dims, p, false, j);
  OutputRange range[D];
  int i[D];
  float w[D];
  bool empty = false;
  for (int a = 0; a < dims; ++a) {
    range[a] = output_range(p.axes[a], MODE, j[a]);
    i[a] = range[a].begin;
    empty = empty || range[a].begin >= range[a].end;
    w[a] = empty ? 0.0f : weight_of_input(p.axes[a], MODE, i[a], j[a]);
  }
  long c = long(gid.x) * V;
  acc_t acc = acc_t(0.0f);
  while (!empty) {
    float weight = 1.0f;
    for (int a = 0; a < dims; ++a) {
      weight *= w[a];
    }
    long from = element_offset(gid.z, i, dims, p, true) + c;
    acc += weight * acc_t(*(device const packet_t*)(grad_out + from));
    int a = dims - 1;
    while (a >= 0) {
      if (++i[a] < range[a].end) {
        w[a] = weight_of_input(p.axes[a], MODE, i[a], j[a]);
        break;
      }
      i[a] = range[a].begin;
      w[a] = weight_of_input(p.axes[a], MODE, i[a], j[a]);
      --a;
    }
    empty = a < 0;
  }
  long to = (long(gid.z) * p.positions + gid.y) * p.channels + c;
  *(device packet_t*)(grad_in + to) = packet_t(acc);
}

// Kernel names:
// upsample_{nearest|linear|cubic|aa_linear|aa_cubic|area}_{fwd|bwd}_{type}_{rank}_v{V},
// built the same way by csrc/metal/launch_plan.cpp. Rank "nd" is the general
// kernel for up to MAX_DIMS spatial dims.
#ifndef instantiate_kernel
#define instantiate_kernel(name, func, ...) \
  template [[host_name(name)]] [[kernel]] decltype(func<__VA_ARGS__>) func<__VA_ARGS__>;
#endif

#define instantiate_ranks(prefix, func, ...)                    \
  instantiate_kernel(prefix "_1d_v1", func, __VA_ARGS__, 1, 1)  \
  instantiate_kernel(prefix "_2d_v1", func, __VA_ARGS__, 2, 1)  \
  instantiate_kernel(prefix "_3d_v1", func, __VA_ARGS__, 3, 1)  \
  instantiate_kernel(prefix "_nd_v1", func, __VA_ARGS__, 0, 1)  \
  instantiate_kernel(prefix "_1d_v4", func, __VA_ARGS__, 1, 4)  \
  instantiate_kernel(prefix "_2d_v4", func, __VA_ARGS__, 2, 4)  \
  instantiate_kernel(prefix "_3d_v4", func, __VA_ARGS__, 3, 4)  \
  instantiate_kernel(prefix "_nd_v4", func, __VA_ARGS__, 0, 4)

#define instantiate_float_type(tname, type)                                           \
  instantiate_ranks("upsample_linear_fwd_" tname, interpolate_forward, type, MODE_LINEAR) \
  instantiate_ranks("upsample_cubic_fwd_" tname, interpolate_forward, type, MODE_CUBIC)   \
  instantiate_ranks("upsample_nearest_bwd_" tname, gather_backward, type, MODE_NEAREST)   \
  instantiate_ranks("upsample_linear_bwd_" tname, gather_backward, type, MODE_LINEAR)     \
  instantiate_ranks("upsample_cubic_bwd_" tname, gather_backward, type, MODE_CUBIC)     \
  instantiate_ranks("upsample_aa_linear_fwd_" tname, window_forward, type, MODE_AA_LINEAR) \
  instantiate_ranks("upsample_aa_cubic_fwd_" tname, window_forward, type, MODE_AA_CUBIC)   \
  instantiate_ranks("upsample_area_fwd_" tname, window_forward, type, MODE_AREA)           \
  instantiate_ranks("upsample_aa_linear_bwd_" tname, gather_backward, type, MODE_AA_LINEAR) \
  instantiate_ranks("upsample_aa_cubic_bwd_" tname, gather_backward, type, MODE_AA_CUBIC)   \
  instantiate_ranks("upsample_area_bwd_" tname, gather_backward, type, MODE_AREA)

instantiate_ranks("upsample_nearest_fwd_u8", nearest_forward, uchar)
instantiate_ranks("upsample_nearest_fwd_u16", nearest_forward, ushort)
instantiate_ranks("upsample_nearest_fwd_u32", nearest_forward, uint)
instantiate_ranks("upsample_nearest_fwd_u64", nearest_forward, ulong)
instantiate_float_type("float32", float)
instantiate_float_type("float16", half)
instantiate_float_type("bfloat16", bfloat)
