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

// Elements converted and accumulated at a time: the blocks of all taps fit in
// L1 and the compiler vectorises the loop.
constexpr int64_t BLOCK = 256;
// Roughly how many output elements a thread should get before splitting pays.
constexpr int64_t GRAIN_ELEMENTS = 1 << 15;

// A float32 view of n elements: the elements themselves, or their conversion
// into scratch[slot] (the scratch is only touched for the half types).
template <typename In>
inline const float*
float_block(const In* x, int64_t n, float (*scratch)[BLOCK], int slot) {
  if constexpr (std::is_same_v<In, float>) {
    return x;
  } else {
    to_float(x, scratch[slot], n);
    return scratch[slot];
  }
}

// acc[0, n) = sum_{k < K} weight[k] * rows[index[k] * stride + (0, n)], for a
// tap count K fixed at compile time so that the loop keeps K streams.
template <int K, typename In>
inline void accumulate_fixed(
    float* __restrict acc,
    const In* rows,
    int64_t stride,
    const int* index,
    const float* weight,
    int64_t n,
    float (*scratch)[BLOCK]) {
  const float* __restrict x[K];
  float w[K];
  for (int k = 0; k < K; ++k) {
    x[k] = float_block(rows + int64_t(index[k]) * stride, n, scratch, k);
    w[k] = weight[k];
  }
  if constexpr (K == 1) {
    for (int64_t c = 0; c < n; ++c) {
      acc[c] = w[0] * x[0][c];
    }
  } else if constexpr (K == 2) {
    const float* __restrict x0 = x[0];
    const float* __restrict x1 = x[1];
    for (int64_t c = 0; c < n; ++c) {
      acc[c] = w[0] * x0[c] + w[1] * x1[c];
    }
  } else {
    static_assert(K == 4);
    const float* __restrict x0 = x[0];
    const float* __restrict x1 = x[1];
    const float* __restrict x2 = x[2];
    const float* __restrict x3 = x[3];
    for (int64_t c = 0; c < n; ++c) {
      acc[c] = w[0] * x0[c] + w[1] * x1[c] + w[2] * x2[c] + w[3] * x3[c];
    }
  }
}

// The same sum for any tap count (none gives zeros), tap after tap.
template <typename In>
inline void accumulate_any(
    float* __restrict acc,
    const In* rows,
    int64_t stride,
    const int* index,
    const float* weight,
    int count,
    int64_t n,
    float (*scratch)[BLOCK]) {
  if (count == 0) {
    std::fill(acc, acc + n, 0.0f);
    return;
  }
  for (int e = 0; e < count; ++e) {
    const float* x = float_block(rows + int64_t(index[e]) * stride, n, scratch, 0);
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

// out[0, len) = sum_{e < count} weight[e] * rows[index[e] * len + (0, len)],
// in float32, a block at a time. K > 0 is the count fixed at compile time.
// Every variant adds the taps in table order, left to right, so the result
// does not depend on the variant chosen, the ISA or the thread count.
template <int K, typename In>
inline void blend_blocks(
    float* out,
    const In* rows,
    int64_t len,
    const int* index,
    const float* weight,
    int count) {
  float scratch[K > 0 ? K : 1][BLOCK];
  for (int64_t c0 = 0; c0 < len; c0 += BLOCK) {
    int64_t n = std::min(BLOCK, len - c0);
    if constexpr (K > 0) {
      accumulate_fixed<K>(out + c0, rows + c0, len, index, weight, n, scratch);
    } else {
      accumulate_any(out + c0, rows + c0, len, index, weight, count, n, scratch);
    }
  }
}

// One leading axis: a slab of the next level from the taps' slabs.
template <typename In>
UPSAMPLE_HOT_LOOP void blend_slabs(
    float* out,
    const In* slabs,
    int64_t len,
    const int* index,
    const float* weight,
    int count) {
  switch (count) {
    case 1:
      return blend_blocks<1>(out, slabs, len, index, weight, count);
    case 2:
      return blend_blocks<2>(out, slabs, len, index, weight, count);
    case 4:
      return blend_blocks<4>(out, slabs, len, index, weight, count);
    default:
      return blend_blocks<0>(out, slabs, len, index, weight, count);
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
    if constexpr (K > 0) {
      accumulate_fixed<K>(out + x * ch, row, ch, index + e0, weight + e0, ch, nullptr);
    } else {
      int count = t.offsets[x + 1] - e0;
      accumulate_any(out + x * ch, row, ch, index + e0, weight + e0, count, ch, nullptr);
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
