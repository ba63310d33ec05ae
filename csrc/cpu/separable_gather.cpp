#include "cpu/separable_gather.h"

#include <algorithm>
#include <stdexcept>
#include <type_traits>

#include "cpu/convert.h"
#include "cpu/hot_loop.h"
#include "cpu/thread_pool.h"
#include "mlx/types/half_types.h"

namespace mlx_upsample::cpu {

namespace mx = mlx::core;

namespace {

// Half-precision source elements converted to float32 at a time.
constexpr int64_t HALF_BLOCK = 256;

// Every sum below adds the taps in table order, left to right, starting from
// the first product, so that results do not depend on the code path, the ISA
// clone or the thread count.

// A lane is a float, or eight floats (GCC/Clang vector extension: an AVX2
// register in the AVX2 clone, a pair of SSE or NEON registers elsewhere);
// lanes are read and written at any float's alignment.
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x8_ref __attribute__((vector_size(32), aligned(4), may_alias));

template <typename Lane>
inline Lane load_lane(const float* p) {
  if constexpr (std::is_same_v<Lane, float>) {
    return *p;
  } else {
    return *reinterpret_cast<const f32x8_ref*>(p);
  }
}

template <typename Lane>
inline void store_lane(float* p, Lane v) {
  if constexpr (std::is_same_v<Lane, float>) {
    *p = v;
  } else {
    *reinterpret_cast<f32x8_ref*>(p) = v;
  }
}

// out[0, N * width) = sum_{e < count} weight[e] * rows[index[e] * stride + ...]
// held in N registers of the given Lane type; K > 0 fixes the tap count at
// compile time.
template <int K, typename Lane, int N>
inline void sum_lanes(
    float* out,
    const float* rows,
    int64_t stride,
    const int* index,
    const float* weight,
    int count) {
  constexpr int width = sizeof(Lane) / sizeof(float);
  const int n = K > 0 ? K : count;
  Lane acc[N];
  for (int v = 0; v < N; ++v) {
    acc[v] = Lane{};
  }
  if (n > 0) {
    const float* x = rows + int64_t(index[0]) * stride;
    for (int v = 0; v < N; ++v) {
      acc[v] = weight[0] * load_lane<Lane>(x + width * v);
    }
  }
  for (int e = 1; e < n; ++e) {
    const float* x = rows + int64_t(index[e]) * stride;
    for (int v = 0; v < N; ++v) {
      acc[v] += weight[e] * load_lane<Lane>(x + width * v);
    }
  }
  for (int v = 0; v < N; ++v) {
    store_lane(out + width * v, acc[v]);
  }
}

// The same sum over a run-time length: 32 floats (four registers) at a time,
// then 8, then single floats.
template <int K>
inline void sum_taps(
    float* out,
    const float* rows,
    int64_t stride,
    const int* index,
    const float* weight,
    int count,
    int64_t len) {
  int64_t c = 0;
  for (; c + 32 <= len; c += 32) {
    sum_lanes<K, f32x8, 4>(out + c, rows + c, stride, index, weight, count);
  }
  for (; c + 8 <= len; c += 8) {
    sum_lanes<K, f32x8, 1>(out + c, rows + c, stride, index, weight, count);
  }
  for (; c < len; ++c) {
    sum_lanes<K, float, 1>(out + c, rows + c, stride, index, weight, count);
  }
}

// The same sum from half-precision rows, converted a block at a time and
// accumulated into `out` tap after tap.
template <typename In>
inline void sum_half_taps(
    float* __restrict out,
    const In* rows,
    int64_t stride,
    const int* index,
    const float* weight,
    int count,
    int64_t len) {
  float x[HALF_BLOCK];
  for (int64_t c0 = 0; c0 < len; c0 += HALF_BLOCK) {
    int64_t n = std::min(HALF_BLOCK, len - c0);
    float* acc = out + c0;
    if (count == 0) {
      std::fill(acc, acc + n, 0.0f);
    }
    for (int e = 0; e < count; ++e) {
      to_float(rows + int64_t(index[e]) * stride + c0, x, n);
      float w = weight[e];
      if (e == 0) {
        for (int64_t c = 0; c < n; ++c) {
          acc[c] = w * x[c];
        }
      } else {
        for (int64_t c = 0; c < n; ++c) {
          acc[c] += w * x[c];
        }
      }
    }
  }
}

// One leading axis: out (the next level's slab, `len` floats) from the
// slabs its taps select.
template <typename In>
UPSAMPLE_HOT_LOOP void blend_slabs(
    float* out,
    const In* slabs,
    int64_t len,
    const int* index,
    const float* weight,
    int count) {
  if constexpr (!std::is_same_v<In, float>) {
    return sum_half_taps(out, slabs, len, index, weight, count, len);
  } else {
    switch (count) {
      case 1:
        return sum_taps<1>(out, slabs, len, index, weight, count, len);
      case 2:
        return sum_taps<2>(out, slabs, len, index, weight, count, len);
      case 4:
        return sum_taps<4>(out, slabs, len, index, weight, count, len);
      default:
        return sum_taps<0>(out, slabs, len, index, weight, count, len);
    }
  }
}

// The last spatial axis, between float32 rows:
// out[x, :] = sum_{e in row x} weight[e] * row[index[e], :].
// K > 0: every output has K taps; C > 0: the channel count, fixed at compile
// time so that a few channels unroll instead of looping.
template <int K, int C>
UPSAMPLE_HOT_LOOP void gather_last_axis(
    float* out,
    const float* row,
    const GatherTable& t,
    int64_t channels) {
  const int64_t ch = C > 0 ? C : channels;
  const int dst_len = static_cast<int>(t.offsets.size()) - 1;
  const int* index = t.index.data();
  const float* weight = t.weight.data();
  for (int x = 0; x < dst_len; ++x) {
    int e0 = K > 0 ? x * K : t.offsets[x];
    int count = K > 0 ? K : t.offsets[x + 1] - e0;
    if constexpr (C > 0) {
      sum_lanes<K, float, C>(out + x * ch, row, ch, index + e0, weight + e0, count);
    } else {
      sum_taps<K>(out + x * ch, row, ch, index + e0, weight + e0, count, ch);
    }
  }
}

using LastAxisKernel =
    void (*)(float*, const float*, const GatherTable&, int64_t);

template <int K>
LastAxisKernel last_axis_kernel(int64_t channels) {
  switch (channels) {
    case 1:
      return gather_last_axis<K, 1>;
    case 2:
      return gather_last_axis<K, 2>;
    case 3:
      return gather_last_axis<K, 3>;
    case 4:
      return gather_last_axis<K, 4>;
    default:
      return gather_last_axis<K, 0>;
  }
}

LastAxisKernel last_axis_kernel(int taps, int64_t channels) {
  switch (taps) {
    case 1:
      return last_axis_kernel<1>(channels);
    case 2:
      return last_axis_kernel<2>(channels);
    case 4:
      return last_axis_kernel<4>(channels);
    default:
      return last_axis_kernel<0>(channels);
  }
}

// Sizes derived once per call. With d spatial axes, slab[a] is the length of
// the array's tail from spatial axis a on, at source sizes (slab[d] = C), and
// rows_per_prefix[a] the number of output rows that share one prefix
// (n, o_0, ..., o_{a-1}).
struct Layout {
  int dims;
  std::vector<int64_t> slab;
  std::vector<int64_t> rows_per_prefix;
  int64_t rows;
  int64_t row_len; // output elements per row

  explicit Layout(const SeparableGather& g) {
    dims = static_cast<int>(g.src_sizes.size());
    slab.assign(dims + 1, g.channels);
    for (int a = dims - 1; a >= 0; --a) {
      slab[a] = slab[a + 1] * g.src_sizes[a];
    }
    rows_per_prefix.assign(dims, 1);
    for (int a = dims - 2; a >= 0; --a) {
      rows_per_prefix[a] = rows_per_prefix[a + 1] * g.dst_sizes[a];
    }
    rows = g.batch * rows_per_prefix[0];
    row_len = int64_t(g.dst_sizes[dims - 1]) * g.channels;
  }
};

// Output rows [r0, r1) of a gather from `src` (T) into `dst` (T). level[a]
// (a = 1 .. d-1) is the source slab of spatial axes a.. blended over the
// leading axes for the current prefix; it points into this thread's buffer,
// or straight into its parent when the blend is a single tap of weight 1.
template <typename T>
void gather_rows(
    const T* src,
    T* dst,
    const SeparableGather& g,
    const Layout& L,
    int64_t r0,
    int64_t r1) {
  constexpr bool is_float = std::is_same_v<T, float>;
  const int d = L.dims;
  const GatherTable& last = g.tables[d - 1];
  const LastAxisKernel gather_last = last_axis_kernel(last.taps, g.channels);

  std::vector<std::vector<float>> buffer(d);
  for (int a = 1; a < d; ++a) {
    buffer[a].resize(L.slab[a]);
  }
  // Float32 staging of the last axis's source and result for the half types.
  std::vector<float> row_in(!is_float && d == 1 ? L.slab[0] : 0);
  std::vector<float> row_out(is_float ? 0 : L.row_len);
  std::vector<const float*> level(d, nullptr);
  std::vector<int64_t> prefix(d, -1);

  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / L.rows_per_prefix[0];
    const T* batch_src = src + n * L.slab[0];
    for (int a = 1; a < d; ++a) {
      int64_t id = r / L.rows_per_prefix[a];
      if (id == prefix[a]) {
        continue; // still valid, and so is every deeper level's parent
      }
      prefix[a] = id;
      for (int b = a + 1; b < d; ++b) {
        prefix[b] = -1;
      }
      const GatherTable& t = g.tables[a - 1];
      int o = static_cast<int>(id % g.dst_sizes[a - 1]);
      int e0 = t.offsets[o];
      int count = t.offsets[o + 1] - e0;
      const int* index = t.index.data() + e0;
      const float* weight = t.weight.data() + e0;
      float* out = buffer[a].data();
      if (a == 1) {
        if constexpr (is_float) {
          if (count == 1 && weight[0] == 1.0f) {
            level[a] = batch_src + int64_t(index[0]) * L.slab[a];
            continue;
          }
        }
        blend_slabs(out, batch_src, L.slab[a], index, weight, count);
      } else {
        if (count == 1 && weight[0] == 1.0f) {
          level[a] = level[a - 1] + int64_t(index[0]) * L.slab[a];
          continue;
        }
        blend_slabs(out, level[a - 1], L.slab[a], index, weight, count);
      }
      level[a] = out;
    }

    const float* row = level[d - 1];
    if (d == 1) {
      if constexpr (is_float) {
        row = batch_src;
      } else {
        to_float(batch_src, row_in.data(), L.slab[0]);
        row = row_in.data();
      }
    }
    T* out = dst + r * L.row_len;
    if constexpr (is_float) {
      gather_last(out, row, last, g.channels);
    } else {
      gather_last(row_out.data(), row, last, g.channels);
      from_float(row_out.data(), out, L.row_len);
    }
  }
}

template <typename T>
void separable_gather(const void* src, void* dst, const SeparableGather& g) {
  Layout L(g);
  int64_t grain = std::max<int64_t>(1, GRAIN_ELEMENTS / L.row_len);
  parallel_for(L.rows, grain, [&](int64_t r0, int64_t r1) {
    gather_rows<T>(static_cast<const T*>(src), static_cast<T*>(dst), g, L, r0, r1);
  });
}

} // namespace

SeparableGatherKernel separable_gather_kernel(mx::Dtype dtype) {
  switch (dtype) {
    case mx::float32:
      return separable_gather<float>;
    case mx::float16:
      return separable_gather<mx::float16_t>;
    case mx::bfloat16:
      return separable_gather<mx::bfloat16_t>;
    default:
      throw std::invalid_argument(
          "[upsample] linear, cubic and gradients need a float dtype");
  }
}

} // namespace mlx_upsample::cpu
