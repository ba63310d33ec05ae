#include "cpu/separable_gather.h"

#include <algorithm>
#include <stdexcept>
#include <type_traits>

#include "cpu/convert.h"
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
// Up to this many channels the last axis is gathered pixel by pixel with the
// channels unrolled: too few to vectorise over, too many calls otherwise.
constexpr int64_t FEW_CHANNELS = 4;

// A float32 view of n elements: the elements themselves, or their conversion
// into `scratch`.
template <typename In>
inline const float* float_block(const In* x, int64_t n, float* scratch) {
  if constexpr (std::is_same_v<In, float>) {
    return x;
  } else {
    to_float(x, scratch, n);
    return scratch;
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
    x[k] = float_block(rows + int64_t(index[k]) * stride, n, scratch[k]);
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
    float* scratch) {
  if (count == 0) {
    std::fill(acc, acc + n, 0.0f);
    return;
  }
  for (int e = 0; e < count; ++e) {
    const float* x = float_block(rows + int64_t(index[e]) * stride, n, scratch);
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
// does not depend on the variant chosen or on the thread count.
template <int K, typename In, typename Out>
void blend_blocks(
    Out* out,
    const In* rows,
    int64_t len,
    const int* index,
    const float* weight,
    int count) {
  float scratch[K > 0 ? K : 1][BLOCK];
  float acc_block[BLOCK];
  for (int64_t c0 = 0; c0 < len; c0 += BLOCK) {
    int64_t n = std::min(BLOCK, len - c0);
    float* acc = acc_block;
    if constexpr (std::is_same_v<Out, float>) {
      acc = out + c0; // float outputs accumulate in place
    }
    if constexpr (K > 0) {
      accumulate_fixed<K>(acc, rows + c0, len, index, weight, n, scratch);
    } else {
      accumulate_any(acc, rows + c0, len, index, weight, count, n, scratch[0]);
    }
    if constexpr (!std::is_same_v<Out, float>) {
      from_float(acc, out + c0, n);
    }
  }
}

template <typename In, typename Out>
void blend(
    Out* out,
    const In* rows,
    int64_t len,
    const int* index,
    const float* weight,
    int count) {
  switch (count) {
    case 1:
      return blend_blocks<1>(out, rows, len, index, weight, count);
    case 2:
      return blend_blocks<2>(out, rows, len, index, weight, count);
    case 4:
      return blend_blocks<4>(out, rows, len, index, weight, count);
    default:
      return blend_blocks<0>(out, rows, len, index, weight, count);
  }
}

// The last axis for C <= FEW_CHANNELS channels, from and into float32 rows:
// out[x, :] = sum_{e in row x} weight[e] * row[index[e], :].
template <int C>
void gather_few_channels(float* out, const float* row, const GatherTable& t) {
  int dst_len = static_cast<int>(t.offsets.size()) - 1;
  for (int x = 0; x < dst_len; ++x) {
    int e0 = t.offsets[x];
    int e1 = t.offsets[x + 1];
    float acc[C];
    for (int c = 0; c < C; ++c) {
      acc[c] = 0.0f;
    }
    if (e0 < e1) {
      const float* p = row + int64_t(t.index[e0]) * C;
      for (int c = 0; c < C; ++c) {
        acc[c] = t.weight[e0] * p[c];
      }
    }
    for (int e = e0 + 1; e < e1; ++e) {
      const float* p = row + int64_t(t.index[e]) * C;
      for (int c = 0; c < C; ++c) {
        acc[c] += t.weight[e] * p[c];
      }
    }
    for (int c = 0; c < C; ++c) {
      out[int64_t(x) * C + c] = acc[c];
    }
  }
}

void gather_few_channels(
    float* out,
    const float* row,
    const GatherTable& t,
    int64_t channels) {
  switch (channels) {
    case 1:
      return gather_few_channels<1>(out, row, t);
    case 2:
      return gather_few_channels<2>(out, row, t);
    case 3:
      return gather_few_channels<3>(out, row, t);
    default:
      return gather_few_channels<4>(out, row, t);
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
  const int64_t C = g.channels;
  const bool few_channels = C <= FEW_CHANNELS;

  std::vector<std::vector<float>> buffer(d);
  for (int a = 1; a < d; ++a) {
    buffer[a].resize(L.slab[a]);
  }
  // Float32 staging for the last axis when it is gathered channel-unrolled
  // from or into a half type.
  std::vector<float> row_in(few_channels && !is_float && d == 1 ? L.slab[0] : 0);
  std::vector<float> row_out(few_channels && !is_float ? L.row_len : 0);
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
        blend(out, batch_src, L.slab[a], index, weight, count);
      } else {
        if (count == 1 && weight[0] == 1.0f) {
          level[a] = level[a - 1] + int64_t(index[0]) * L.slab[a];
          continue;
        }
        blend(out, level[a - 1], L.slab[a], index, weight, count);
      }
      level[a] = out;
    }

    const GatherTable& t = g.tables[d - 1];
    T* out = dst + r * L.row_len;
    if (few_channels) {
      const float* row = d > 1 ? level[d - 1] : nullptr;
      if (d == 1) {
        if constexpr (is_float) {
          row = batch_src;
        } else {
          to_float(batch_src, row_in.data(), L.slab[0]);
          row = row_in.data();
        }
      }
      if constexpr (is_float) {
        gather_few_channels(out, row, t, C);
      } else {
        gather_few_channels(row_out.data(), row, t, C);
        from_float(row_out.data(), out, L.row_len);
      }
      continue;
    }
    int dst_len = g.dst_sizes[d - 1];
    for (int x = 0; x < dst_len; ++x) {
      int e0 = t.offsets[x];
      int count = t.offsets[x + 1] - e0;
      const int* index = t.index.data() + e0;
      const float* weight = t.weight.data() + e0;
      if (d == 1) {
        blend(out + int64_t(x) * C, batch_src, C, index, weight, count);
      } else {
        blend(out + int64_t(x) * C, level[d - 1], C, index, weight, count);
      }
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
