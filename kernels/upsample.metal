// Upsampling kernels for Apple GPUs: forward and backward of every mode.
//
// Layout is channels-last (N, *spatial, C): the array written row-contiguous,
// the array read with any non-negative strides (a view read in place; the
// host hands channels-first memory over as channel images, one channel
// each, csrc/layout.h). A thread makes a packet of V neighbouring channels
// at one position of the array written: grid x walks a row of it (last
// spatial axis x packets), grid y its rows (batch entry and leading spatial
// axes), as laid out in kernel_params.h. With one channel, a thread makes a
// run of positions instead (Note [runs]). The grid is exact
// (dispatchThreads): no thread falls past the data.
//
// Every weighted pass is one gather: along each axis, the row of the
// thread's position in the tap table (buffer 3, built on the host from
// upsample_math.h, the code the CPU path runs) lists the source positions
// and weights, and the thread sums the product of the axes' rows. Forward,
// a row holds an output's taps or window; backward, the outputs that read an
// input: one thread per input element sums them in a fixed order, no
// atomics, bit-identical results from run to run.
//
// The sums are the CPU path's (csrc/cpu/separable_gather.inc), operation
// for operation, so that both give the same bits: axis 0 innermost, each
// axis's taps in table order, a sum over axis a weighted by the tap of axis
// a + 1 that reads it:
//   out = sum_{last} w * (... (sum_{axis 1} w1 * (sum_{axis 0} w0 * x)))
// Each sum starts from its first product, as there (from +0.0 a sum of -0.0
// would be +0.0), and an empty row (an input no output reads) sums to +0.0;
// the rank-generic kernel starts its running sums at -0.0, which adds as
// nothing (-0.0 + x is x for every x), for the same bits. Where the plan's
// cost estimate says so, a pass runs as two launches of the same kernel
// through a float32 temporary: the leading axes (a row of the last axis as
// the channels), then the last axis; the temporary holds the CPU path's
// inner sums, so the bits stay the same.
//
// Offsets: 32 bits relative to the batch entry (premultiplied into the
// table) in the kernels of rank 1-3; the rank-generic kernel ("nd") keeps
// 64-bit offsets and serves more than 3 axes and arrays whose batch entry
// has 2^32 elements or more.
#include <metal_stdlib>

#include "kernel_params.h"

using namespace metal;
using namespace upsample;

// Metal's always-inline marker (metal_stdlib defines it), on the helpers that
// sum taps; defined here for the emulator and the shader check. Under g++ the
// emulator would otherwise call them and pass their 8-lane sums through
// memory, which no GPU does and the cost model (bench/cost_model.py) counts.
#ifndef METAL_FUNC
#define METAL_FUNC inline __attribute__((__always_inline__))
#endif

// Eight float32 lanes: two 4-vectors. A thread of 8 channels pays its
// table reads, weights and addresses once for twice the arithmetic.
struct Lanes8 {
  vec<float, 4> lo;
  vec<float, 4> hi;
  Lanes8() = default;
  explicit Lanes8(float s) : lo(s), hi(s) {}
};

inline thread Lanes8& operator+=(thread Lanes8& a, Lanes8 b) {
  a.lo += b.lo;
  a.hi += b.hi;
  return a;
}

inline Lanes8 operator*(float s, Lanes8 a) {
  Lanes8 r;
  r.lo = s * a.lo;
  r.hi = s * a.hi;
  return r;
}

// V neighbouring channels read as float32 and written back. A 3-vector is
// 16-byte aligned in Metal memory, so V = 3 moves scalars; V = 8 moves two
// 4-vectors.
template <typename T, int V>
struct Packet {
  typedef vec<float, V> acc_t;
  static acc_t load(device const T* p) {
    return acc_t(*(device const vec<T, V>*)p);
  }
  static void store(device T* p, acc_t v) {
    *(device vec<T, V>*)p = vec<T, V>(v);
  }
};
template <typename T>
struct Packet<T, 1> {
  typedef float acc_t;
  static float load(device const T* p) {
    return float(*p);
  }
  static void store(device T* p, float v) {
    *p = T(v);
  }
};
template <typename T>
struct Packet<T, 3> {
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

template <typename T>
struct Packet<T, 8> {
  typedef Lanes8 acc_t;
  static acc_t load(device const T* p) {
    Lanes8 v;
    v.lo = vec<float, 4>(*(device const vec<T, 4>*)p);
    v.hi = vec<float, 4>(*(device const vec<T, 4>*)(p + 4));
    return v;
  }
  static void store(device T* p, acc_t v) {
    *(device vec<T, 4>*)p = vec<T, 4>(v.lo);
    *(device vec<T, 4>*)(p + 4) = vec<T, 4>(v.hi);
  }
};

// V neighbouring elements copied as raw bits.
template <typename T, int V>
struct Copy {
  static void run(device T* to, device const T* from) {
    *(device vec<T, V>*)to = *(device const vec<T, V>*)from;
  }
};
template <typename T>
struct Copy<T, 1> {
  static void run(device T* to, device const T* from) {
    *to = *from;
  }
};
template <typename T>
struct Copy<T, 3> {
  static void run(device T* to, device const T* from) {
    to[0] = from[0];
    to[1] = from[1];
    to[2] = from[2];
  }
};
template <typename T>
struct Copy<T, 8> {
  static void run(device T* to, device const T* from) {
    *(device vec<T, 4>*)to = *(device const vec<T, 4>*)from;
    *(device vec<T, 4>*)(to + 4) = *(device const vec<T, 4>*)(from + 4);
  }
};

// The batch entry of grid row z; o[a] receives the position along each
// leading axis a < dims - 1.
inline uint split_row(uint z, int dims, constant KernelParams& p, thread uint* o) {
  for (int a = dims - 2; a >= 0; --a) {
    uint q = divide(z, p.axes[a].by_size);
    o[a] = z - q * p.axes[a].size;
    z = q;
  }
  return z;
}

// Where batch entry n starts in the source (kernel_params.h).
METAL_FUNC ulong batch_offset(uint n, constant KernelParams& p) {
  if (p.batch_inner == 1) {
    return ulong(n) * p.src_batch; // one stride: a branch the whole grid takes alike
  }
  uint outer = divide(n, p.by_batch_inner);
  return ulong(outer) * p.src_batch + ulong(n - outer * p.batch_inner) * p.src_batch_inner;
}

// The thread's place: position along the last axis, channel, grid row.
struct Place {
  uint position;
  uint channel;
  uint row;
};

inline Place place_of(uint2 gid, constant KernelParams& p, int vec) {
  Place at;
  at.position = divide(gid.x, p.by_packets);
  at.channel = (gid.x - at.position * p.packets) * vec;
  at.row = gid.y;
  return at;
}

// Flat offset of the thread's packet in the array written (64 bits).
inline ulong destination(Place at, constant KernelParams& p, int last) {
  return (ulong(at.row) * p.axes[last].size + at.position) * p.channels + at.channel;
}

inline uint2 table_row(constant uint2* table, constant AxisParams& a, uint position) {
  return table[a.rows + position];
}

// sum_{e in row} w_e * x(from + offset_e) along axis 0, the innermost sum,
// from its first product on (+0.0 for an empty row).
template <typename T, int V>
METAL_FUNC typename Packet<T, V>::acc_t sum_row(device const T* from, constant uint2* table, uint2 row) {
  typename Packet<T, V>::acc_t acc(0.0f);
  uint e = row.x;
  if (e < row.y) {
    uint2 tap = table[e++];
    acc = as_type<float>(tap.y) * Packet<T, V>::load(from + tap.x);
  }
  for (; e < row.y; ++e) {
    uint2 tap = table[e];
    acc += as_type<float>(tap.y) * Packet<T, V>::load(from + tap.x);
  }
  return acc;
}

// sum_{e in row} w_e * sum_row(from + offset_e, inner): axes 0 and 1, from
// the first product on (+0.0 for an empty row).
template <typename T, int V>
METAL_FUNC typename Packet<T, V>::acc_t sum_plane(
    device const T* from, constant uint2* table, uint2 inner, uint2 row) {
  typename Packet<T, V>::acc_t acc(0.0f);
  uint e = row.x;
  if (e < row.y) {
    uint2 tap = table[e++];
    acc = as_type<float>(tap.y) * sum_row<T, V>(from + tap.x, table, inner);
  }
  for (; e < row.y; ++e) {
    uint2 tap = table[e];
    acc += as_type<float>(tap.y) * sum_row<T, V>(from + tap.x, table, inner);
  }
  return acc;
}

// The sum of one position of the array written, rank 1-3: `last` is the row
// of its position along the last axis, r0 and r1 those along axes 0 and 1
// (read for the ranks that have them).
template <typename In, int V, int RANK>
METAL_FUNC typename Packet<In, V>::acc_t sum_position(
    device const In* base, constant uint2* table, uint2 r0, uint2 r1, uint2 last) {
  typedef typename Packet<In, V>::acc_t acc_t;
  if (RANK == 1) {
    return sum_row<In, V>(base, table, last);
  } else if (RANK == 2) {
    return sum_plane<In, V>(base, table, r0, last);
  }
  acc_t acc = acc_t(0.0f);
  uint e = last.x;
  if (e < last.y) {
    uint2 tap = table[e++];
    acc = as_type<float>(tap.y) * sum_plane<In, V>(base + tap.x, table, r0, r1);
  }
  for (; e < last.y; ++e) {
    uint2 tap = table[e];
    acc += as_type<float>(tap.y) * sum_plane<In, V>(base + tap.x, table, r0, r1);
  }
  return acc;
}

// Every weighted pass of rank 1-3 (see the head of the file). In and Out
// differ in the launches through a float32 temporary.
template <typename In, typename Out, int RANK, int V>
[[kernel]] void gather(
    device const In* src [[buffer(0)]],
    device Out* dst [[buffer(1)]],
    constant KernelParams& p [[buffer(2)]],
    constant uint2* table [[buffer(3)]],
    uint2 gid [[thread_position_in_grid]]) {
  Place at = place_of(gid, p, V);
  uint o[3]; // 3, not RANK: the branches of the other ranks index it too
  uint n = split_row(at.row, RANK, p, o);
  // Offsets within a batch entry fit 32 bits in the kernels of rank 1-3.
  device const In* base = src + batch_offset(n, p) + at.channel * uint(p.src_channel);
  uint2 last = table_row(table, p.axes[RANK - 1], at.position);
  uint2 r0 = last, r1 = last;
  if (RANK >= 2) {
    r0 = table_row(table, p.axes[0], o[0]);
  }
  if (RANK == 3) {
    r1 = table_row(table, p.axes[1], o[1]);
  }
  Packet<Out, V>::store(
      dst + destination(at, p, RANK - 1), sum_position<In, V, RANK>(base, table, r0, r1, last));
}

// Note [runs]
// ~~~~~~~~~~~
// With one channel (a mono signal, a mask, channel images of channels-first
// memory) a packet is one element, and a thread of the packet kernels pays
// its grid split, its leading axes' rows and a scalar store for each output.
// The run kernels make RUN neighbouring positions of the last axis per
// thread instead (grid x: ceil(positions / RUN)): the split and the leading
// rows once, and one RUN-vector store where the run is whole and starts on
// a vector boundary (where the last axis's length is a multiple of RUN, the
// plan's destination being row-contiguous from its buffer's start; the tail
// of a row is stored element by element). Each position's sum is the packet
// kernels' (sum_position), so the bits are theirs. Integer-scale nearest,
// where every aligned run of a row reads one source element (the plan checks
// the table: replicates), loads it once and stores it RUN times at once.
// RUN is in kernel_params.h, shared with the plan.

// The positions of a run that exist: RUN but at the end of a row.
inline uint run_length(uint first, constant AxisParams& last) {
  uint left = last.size - first;
  return left < uint(RUN) ? left : uint(RUN);
}

// Stores the first `count` of a run's values at dst + to (Note [runs]).
template <typename Out, typename Value>
inline void store_run(device Out* dst, ulong to, uint count, thread const Value* values) {
  if (count == uint(RUN) && to % RUN == 0) {
    vec<Out, RUN> v;
    for (int j = 0; j < RUN; ++j) {
      v[j] = Out(values[j]);
    }
    *(device vec<Out, RUN>*)(dst + to) = v;
  } else {
    for (uint j = 0; j < count; ++j) {
      dst[to + j] = Out(values[j]);
    }
  }
}

// Every weighted pass of rank 1-3 with one channel (Note [runs]).
template <typename In, typename Out, int RANK>
[[kernel]] void gather_run(
    device const In* src [[buffer(0)]],
    device Out* dst [[buffer(1)]],
    constant KernelParams& p [[buffer(2)]],
    constant uint2* table [[buffer(3)]],
    uint2 gid [[thread_position_in_grid]]) {
  uint first = gid.x * RUN;
  uint o[3];
  uint n = split_row(gid.y, RANK, p, o);
  device const In* base = src + batch_offset(n, p);
  constant AxisParams& axis = p.axes[RANK - 1];
  uint count = run_length(first, axis);
  uint2 r0 = table_row(table, axis, first), r1 = r0;
  if (RANK >= 2) {
    r0 = table_row(table, p.axes[0], o[0]);
  }
  if (RANK == 3) {
    r1 = table_row(table, p.axes[1], o[1]);
  }
  float sums[RUN];
  for (int j = 0; j < RUN; ++j) {
    sums[j] = j < int(count)
        ? sum_position<In, 1, RANK>(base, table, r0, r1, table_row(table, axis, first + j))
        : 0.0f;
  }
  store_run(dst, ulong(gid.y) * axis.size + first, count, sums);
}

// Every weighted pass of any rank, 64-bit offsets: an odometer over every
// axis's row, axis 0 fastest, summing as the rank 1-3 kernels do. `inner`
// is the running sum over the innermost axis's taps, sums[a] (a above it)
// the running sum over axis a's taps at the current taps of the axes above
// a; when axis a's row is done, its sum, weighted by the current tap of axis
// a + 1, joins sums[a + 1]. Below the highest axis with an empty row (`low`)
// every sum is +0.0: the odometer then runs over the axes from `low` on,
// adding +0.0 times the weight of each tap of axis low.
template <typename In, typename Out, int V>
[[kernel]] void gather_nd(
    device const In* src [[buffer(0)]],
    device Out* dst [[buffer(1)]],
    constant KernelParams& p [[buffer(2)]],
    constant uint2* table [[buffer(3)]],
    uint2 gid [[thread_position_in_grid]]) {
  typedef typename Packet<In, V>::acc_t acc_t;
  const int dims = p.dims;
  const int top = dims - 1;
  Place at = place_of(gid, p, V);
  uint o[MAX_DIMS];
  uint n = split_row(at.row, dims, p, o);
  o[top] = at.position;
  device const In* base = src + batch_offset(n, p) + ulong(at.channel) * p.src_channel;
  uint2 row[MAX_DIMS];
  uint e[MAX_DIMS];
  acc_t sums[MAX_DIMS];
  int low = 0;
  for (int a = 0; a < dims; ++a) {
    row[a] = table_row(table, p.axes[a], o[a]);
    e[a] = row[a].x;
    sums[a] = acc_t(-0.0f);
    low = row[a].x == row[a].y ? a + 1 : low;
  }
  acc_t result = acc_t(0.0f); // kept if the last axis's row is empty
  // offset[a]: the source offset of the current taps of axes a .. top.
  ulong offset[MAX_DIMS + 1];
  offset[dims] = 0;
  int moved = top; // the highest axis whose tap moved
  acc_t inner = acc_t(-0.0f);
  while (low < dims) {
    for (int b = moved; b >= low; --b) {
      offset[b] = offset[b + 1] + ulong(table[e[b]].x) * p.axes[b].stride;
    }
    acc_t x = low == 0 ? Packet<In, V>::load(base + offset[0]) : acc_t(0.0f);
    inner += as_type<float>(table[e[low]].y) * x;
    if (++e[low] < row[low].y) {
      moved = low;
      continue;
    }
    if (low == top) {
      result = inner;
      break;
    }
    e[low] = row[low].x;
    sums[low + 1] += as_type<float>(table[e[low + 1]].y) * inner;
    inner = acc_t(-0.0f);
    int a = low + 1;
    while (a < top && e[a] + 1 == row[a].y) {
      e[a] = row[a].x;
      sums[a + 1] += as_type<float>(table[e[a + 1]].y) * sums[a];
      sums[a] = acc_t(-0.0f);
      ++a;
    }
    if (++e[a] == row[a].y) {
      result = sums[top]; // a == top
      break;
    }
    moved = a;
  }
  Packet<Out, V>::store(dst + destination(at, p, top), result);
}

// Nearest forward, rank 1-3: the source offset (relative to the batch
// entry) of the one tap of `position` along the last axis, and of the taps
// of o[0 .. RANK - 2] along the leading axes.
inline uint last_tap(constant uint2* table, constant AxisParams& last, uint position) {
  return table[table_row(table, last, position).x].x;
}

template <int RANK>
inline uint leading_taps(constant KernelParams& p, constant uint2* table, thread const uint* o) {
  uint from = 0;
  for (int a = 0; a < RANK - 1; ++a) {
    from += table[table_row(table, p.axes[a], o[a]).x].x;
  }
  return from;
}

// Nearest forward of rank 1-3: a copy of the source packet, exact for every
// dtype (T is an unsigned integer of the element's width). Each table row
// holds its one tap.
template <typename T, int RANK, int V>
[[kernel]] void copy(
    device const T* src [[buffer(0)]],
    device T* dst [[buffer(1)]],
    constant KernelParams& p [[buffer(2)]],
    constant uint2* table [[buffer(3)]],
    uint2 gid [[thread_position_in_grid]]) {
  Place at = place_of(gid, p, V);
  uint o[3];
  uint n = split_row(at.row, RANK, p, o);
  uint from = leading_taps<RANK>(p, table, o) + last_tap(table, p.axes[RANK - 1], at.position) +
      at.channel * uint(p.src_channel);
  Copy<T, V>::run(dst + destination(at, p, RANK - 1), src + batch_offset(n, p) + from);
}

// Nearest forward of rank 1-3 with one channel, a run of positions per
// thread (Note [runs]).
template <typename T, int RANK>
[[kernel]] void copy_run(
    device const T* src [[buffer(0)]],
    device T* dst [[buffer(1)]],
    constant KernelParams& p [[buffer(2)]],
    constant uint2* table [[buffer(3)]],
    uint2 gid [[thread_position_in_grid]]) {
  uint first = gid.x * RUN;
  uint o[3];
  uint n = split_row(gid.y, RANK, p, o);
  device const T* base = src + batch_offset(n, p);
  constant AxisParams& axis = p.axes[RANK - 1];
  uint count = run_length(first, axis);
  uint lead = leading_taps<RANK>(p, table, o);
  T values[RUN];
  for (int j = 0; j < RUN; ++j) {
    // Past the row's end a run repeats its first element, which is not stored.
    values[j] = base[lead + last_tap(table, axis, j < int(count) ? first + j : first)];
  }
  store_run(dst, ulong(gid.y) * axis.size + first, count, values);
}

// Nearest forward of rank 1-3 with one channel where each run reads one
// source element (Note [runs]): one table read and one load per RUN outputs.
template <typename T, int RANK>
[[kernel]] void replicate(
    device const T* src [[buffer(0)]],
    device T* dst [[buffer(1)]],
    constant KernelParams& p [[buffer(2)]],
    constant uint2* table [[buffer(3)]],
    uint2 gid [[thread_position_in_grid]]) {
  uint first = gid.x * RUN;
  uint o[3];
  uint n = split_row(gid.y, RANK, p, o);
  constant AxisParams& axis = p.axes[RANK - 1];
  T value = src[batch_offset(n, p) + leading_taps<RANK>(p, table, o) + last_tap(table, axis, first)];
  T values[RUN];
  for (int j = 0; j < RUN; ++j) {
    values[j] = value;
  }
  store_run(dst, ulong(gid.y) * axis.size + first, run_length(first, axis), values);
}

// Nearest forward of any rank, 64-bit offsets.
template <typename T, int V>
[[kernel]] void copy_nd(
    device const T* src [[buffer(0)]],
    device T* dst [[buffer(1)]],
    constant KernelParams& p [[buffer(2)]],
    constant uint2* table [[buffer(3)]],
    uint2 gid [[thread_position_in_grid]]) {
  const int dims = p.dims;
  Place at = place_of(gid, p, V);
  uint o[MAX_DIMS];
  uint n = split_row(at.row, dims, p, o);
  o[dims - 1] = at.position;
  ulong from = batch_offset(n, p) + ulong(at.channel) * p.src_channel;
  for (int a = 0; a < dims; ++a) {
    from += ulong(table[table_row(table, p.axes[a], o[a]).x].x) * p.axes[a].stride;
  }
  Copy<T, V>::run(dst + destination(at, p, dims - 1), src + from);
}

// Note [staging]
// ~~~~~~~~~~~~~~
// A source the passes cannot read in place (negative strides, leading axes
// of three strides or more: reads_in_place in csrc/metal/launch_plan.h) is
// first copied row-contiguous into a staging buffer, one element per
// thread: grid x the innermost axis (p.channels long, stepped by the signed
// stride whose bits are p.src_channel), y the p.dims other axes, innermost
// first, each three table words: (length, magic), (shift, 0) and its signed
// 64-bit stride's bits. Offsets are signed, from the view's first element.
template <typename T>
[[kernel]] void strided_copy(
    device const T* src [[buffer(0)]],
    device T* dst [[buffer(1)]],
    constant KernelParams& p [[buffer(2)]],
    constant uint2* table [[buffer(3)]],
    uint2 gid [[thread_position_in_grid]]) {
  long from = long(gid.x) * as_type<long>(p.src_channel);
  uint z = gid.y;
  for (int a = 0; a < p.dims; ++a) {
    uint2 length = table[3 * a];
    Divisor by;
    by.magic = length.y;
    by.shift = table[3 * a + 1].x;
    uint q = divide(z, by);
    from += long(z - q * length.x) * as_type<long>(table[3 * a + 2]);
    z = q;
  }
  dst[ulong(gid.y) * p.channels + gid.x] = src[from];
}

// Kernel names: upsample_{gather|copy}_{types}_{rank}_v{V}, and for one
// channel upsample_{gather|copy|replicate}_{types}_{rank}_r4 (Note [runs]),
// built the same way by csrc/metal/launch_plan.cpp. Types: float32,
// float16, bfloat16 for gather, u8 .. u64 for copy and replicate, and
// "<in>_<out>" for the launches through a float32 temporary (any rank into
// it, rank 1 out of it); rank 1d, 2d, 3d or nd (no runs at nd). The
// staging copies: upsample_strided_copy_u<bits> (Note [staging]).
#ifndef instantiate_kernel
#define instantiate_kernel(name, func, ...) \
  template [[host_name(name)]] [[kernel]] decltype(func<__VA_ARGS__>) func<__VA_ARGS__>;
#endif

// One width v of a kernel at rank 1: the launches out of a float32
// temporary, which only ever resample the last axis.
#define instantiate_rank1(prefix, v, func, ...) \
  instantiate_kernel(prefix "_1d_v" #v, func, __VA_ARGS__, 1, v)

// One width v of a kernel at every rank.
#define instantiate_ranks(prefix, v, func, nd_func, ...)         \
  instantiate_rank1(prefix, v, func, __VA_ARGS__)                \
  instantiate_kernel(prefix "_2d_v" #v, func, __VA_ARGS__, 2, v) \
  instantiate_kernel(prefix "_3d_v" #v, func, __VA_ARGS__, 3, v) \
  instantiate_kernel(prefix "_nd_v" #v, nd_func, __VA_ARGS__, v)

// `instantiate` (one of the two above) at every packet width the launch
// plan picks (packet_width in csrc/metal/launch_plan.cpp).
#define instantiate_widths(instantiate, prefix, ...) \
  instantiate(prefix, 1, __VA_ARGS__)                \
  instantiate(prefix, 2, __VA_ARGS__)                \
  instantiate(prefix, 3, __VA_ARGS__)                \
  instantiate(prefix, 4, __VA_ARGS__)                \
  instantiate(prefix, 8, __VA_ARGS__)

// A run kernel (Note [runs]) at rank 1, and at ranks 1-3.
#define instantiate_run1(prefix, func, ...) \
  instantiate_kernel(prefix "_1d_r4", func, __VA_ARGS__, 1)
#define instantiate_runs(prefix, func, ...)                \
  instantiate_run1(prefix, func, __VA_ARGS__)              \
  instantiate_kernel(prefix "_2d_r4", func, __VA_ARGS__, 2) \
  instantiate_kernel(prefix "_3d_r4", func, __VA_ARGS__, 3)

// Every kernel of one element type of nearest forward (`bits` wide), and its
// staging copy.
#define instantiate_copies(bits, T)                                                \
  instantiate_kernel("upsample_strided_copy_u" #bits, strided_copy, T)            \
  instantiate_widths(instantiate_ranks, "upsample_copy_u" #bits, copy, copy_nd, T) \
  instantiate_runs("upsample_copy_u" #bits, copy_run, T)                           \
  instantiate_runs("upsample_replicate_u" #bits, replicate, T)

// Every gather kernel of the types In_Out (`name`), at every rank or (`1`)
// at rank 1.
#define instantiate_gathers(name, In, Out)                                                  \
  instantiate_widths(instantiate_ranks, "upsample_gather_" name, gather, gather_nd, In, Out) \
  instantiate_runs("upsample_gather_" name, gather_run, In, Out)
#define instantiate_gathers_rank1(name, In, Out)                                   \
  instantiate_widths(instantiate_rank1, "upsample_gather_" name, gather, In, Out) \
  instantiate_run1("upsample_gather_" name, gather_run, In, Out)

instantiate_copies(8, uchar)
instantiate_copies(16, ushort)
instantiate_copies(32, uint)
instantiate_copies(64, ulong)
instantiate_gathers("float32", float, float)
instantiate_gathers("float16", half, half)
instantiate_gathers("bfloat16", bfloat, bfloat)
instantiate_gathers("float16_float32", half, float)
instantiate_gathers("bfloat16_float32", bfloat, float)
instantiate_gathers_rank1("float32_float16", float, half)
instantiate_gathers_rank1("float32_bfloat16", float, bfloat)
