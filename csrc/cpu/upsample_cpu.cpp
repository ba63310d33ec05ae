#include "cpu/upsample_cpu.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <type_traits>

#include <sys/mman.h>

#include "cpu/convert.h"
#include "cpu/gather_plan.h"
#include "cpu/thread_pool.h"
#include "mlx/allocator.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/types/half_types.h"

namespace mlx_upsample::cpu {

namespace mx = mlx::core;

namespace {

// Channels converted and accumulated at a time: the blocks of all taps fit in
// L1 and the compiler vectorises the channel loop.
constexpr int64_t BLOCK = 256;
// Roughly how many elements a thread should get before splitting pays off.
constexpr int64_t GRAIN_ELEMENTS = 1 << 15;

// A float32 view of n elements of a row: the row itself, or the row
// converted into `scratch`.
template <typename In>
inline const float* float_block(const In* row, int64_t n, float* scratch) {
  if constexpr (std::is_same_v<In, float>) {
    return row;
  } else {
    to_float(row, scratch, n);
    return scratch;
  }
}

// acc[0, n) = sum_k weight[k] * rows[index[k]][0, n), for K fixed taps.
template <int K, typename In>
inline void accumulate_taps(
    float* __restrict acc,
    const In* base,
    const int* index,
    const float* weight,
    int64_t inner,
    int64_t n,
    float (*scratch)[BLOCK]) {
  const float* __restrict x[K];
  float w[K];
  for (int k = 0; k < K; ++k) {
    x[k] = float_block(base + int64_t(index[k]) * inner, n, scratch[k]);
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
    const float* __restrict x0 = x[0];
    const float* __restrict x1 = x[1];
    const float* __restrict x2 = x[2];
    const float* __restrict x3 = x[3];
    for (int64_t c = 0; c < n; ++c) {
      acc[c] = w[0] * x0[c] + w[1] * x1[c] + w[2] * x2[c] + w[3] * x3[c];
    }
  }
}

// One gather pass with float32 accumulation, a block of channels at a time.
// K > 0 fixes the taps per row at compile time (forward); K == 0 reads the
// row lengths from the table (backward). Every variant sums the taps in
// table order, so results do not depend on the variant or the thread count.
template <typename In, typename Out, int K>
void gather_rows(
    const In* src,
    Out* dst,
    const AxisPass& p,
    int64_t r0,
    int64_t r1) {
  constexpr bool float_out = std::is_same_v<Out, float>;
  const int* offsets = p.table.offsets.data();
  const int* index = p.table.index.data();
  const float* weight = p.table.weight.data();
  const int64_t inner = p.inner;
  float scratch[K > 0 ? K : 1][BLOCK];
  float acc_block[BLOCK];
  for (int64_t r = r0; r < r1; ++r) {
    int64_t o = r / p.dst_len;
    int i = static_cast<int>(r % p.dst_len);
    const In* base = src + o * p.src_len * inner;
    Out* out = dst + r * inner;
    int e0 = K > 0 ? i * K : offsets[i];
    int e1 = K > 0 ? e0 + K : offsets[i + 1];
    for (int64_t c0 = 0; c0 < inner; c0 += BLOCK) {
      int64_t n = std::min(BLOCK, inner - c0);
      // Float outputs accumulate in place (the row is in cache).
      float* acc = nullptr;
      if constexpr (float_out) {
        acc = out + c0;
      } else {
        acc = acc_block;
      }
      if constexpr (K > 0) {
        accumulate_taps<K>(
            acc, base + c0, index + e0, weight + e0, inner, n, scratch);
      } else {
        if (e0 == e1) {
          std::fill(acc, acc + n, 0.0f);
        }
        for (int e = e0; e < e1; ++e) {
          const float* x =
              float_block(base + int64_t(index[e]) * inner + c0, n, scratch[0]);
          float w = weight[e];
          if (e == e0) {
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
      if constexpr (!float_out) {
        from_float(acc, out + c0, n);
      }
    }
  }
}

// Nearest forward in one pass, exact for every dtype (T: an unsigned integer
// of the element's width). A row is the output's last spatial axis times the
// channels; consecutive rows that read the same input row (every other row
// when upsampling by 2) are copied from the row just written.
struct NearestPlan {
  int64_t channels;
  std::vector<int> in_sizes;
  std::vector<int> out_sizes;
  std::vector<std::vector<int>> index; // per axis: source of each output
};

template <typename T>
void nearest_rows(
    const T* src,
    T* dst,
    const NearestPlan& q,
    int64_t r0,
    int64_t r1) {
  const int last = static_cast<int>(q.out_sizes.size()) - 1;
  const int64_t in_row = q.in_sizes[last] * q.channels;
  const int64_t out_row = q.out_sizes[last] * q.channels;
  const int* last_index = q.index[last].data();
  int64_t previous = -1;
  for (int64_t r = r0; r < r1; ++r) {
    // Row r = (n, o_0, ..., o_{last-1}) in row-major order.
    int64_t rem = r;
    int64_t stride = 1;
    int64_t source = 0;
    for (int a = last - 1; a >= 0; --a) {
      int o = static_cast<int>(rem % q.out_sizes[a]);
      rem /= q.out_sizes[a];
      source += q.index[a][o] * stride;
      stride *= q.in_sizes[a];
    }
    source += rem * stride; // batch entry
    T* out = dst + r * out_row;
    if (source == previous) {
      std::memcpy(out, out - out_row, out_row * sizeof(T));
    } else {
      const T* in = src + source * in_row;
      for (int o = 0; o < q.out_sizes[last]; ++o) {
        const T* pixel = in + int64_t(last_index[o]) * q.channels;
        for (int64_t c = 0; c < q.channels; ++c) {
          out[o * q.channels + c] = pixel[c];
        }
      }
    }
    previous = source;
  }
}

template <typename T>
void nearest_forward(const void* src, void* dst, const NearestPlan& q, int64_t rows) {
  int64_t row_elements = int64_t(q.out_sizes.back()) * q.channels;
  int64_t grain = std::max<int64_t>(1, GRAIN_ELEMENTS / row_elements);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    nearest_rows<T>(static_cast<const T*>(src), static_cast<T*>(dst), q, r0, r1);
  });
}

void nearest_forward(
    const void* src,
    void* dst,
    size_t elem,
    const NearestPlan& q,
    int64_t rows) {
  switch (elem) {
    case 1:
      return nearest_forward<uint8_t>(src, dst, q, rows);
    case 2:
      return nearest_forward<uint16_t>(src, dst, q, rows);
    case 4:
      return nearest_forward<uint32_t>(src, dst, q, rows);
    default:
      return nearest_forward<uint64_t>(src, dst, q, rows);
  }
}

template <typename In, typename Out>
void gather_pass(const void* src, void* dst, const AxisPass& p) {
  auto in = static_cast<const In*>(src);
  auto out = static_cast<Out*>(dst);
  int64_t rows = p.outer * p.dst_len;
  int64_t grain = std::max<int64_t>(1, GRAIN_ELEMENTS / p.inner);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    switch (p.table.taps) {
      case 1:
        return gather_rows<In, Out, 1>(in, out, p, r0, r1);
      case 2:
        return gather_rows<In, Out, 2>(in, out, p, r0, r1);
      case 4:
        return gather_rows<In, Out, 4>(in, out, p, r0, r1);
      default:
        return gather_rows<In, Out, 0>(in, out, p, r0, r1);
    }
  });
}

template <typename T>
void gather_pass_typed(
    const void* src,
    void* dst,
    const AxisPass& p,
    bool first,
    bool last) {
  // Intermediates are float32: the whole chain accumulates in float32.
  if (first && last) {
    gather_pass<T, T>(src, dst, p);
  } else if (first) {
    gather_pass<T, float>(src, dst, p);
  } else if (last) {
    gather_pass<float, T>(src, dst, p);
  } else {
    gather_pass<float, float>(src, dst, p);
  }
}

void weighted_pass(
    mx::Dtype dtype,
    const void* src,
    void* dst,
    const AxisPass& p,
    bool first,
    bool last) {
  switch (dtype) {
    case mx::float32:
      return gather_pass_typed<float>(src, dst, p, first, last);
    case mx::float16:
      return gather_pass_typed<mx::float16_t>(src, dst, p, first, last);
    case mx::bfloat16:
      return gather_pass_typed<mx::bfloat16_t>(src, dst, p, first, last);
    default:
      throw std::invalid_argument(
          "[upsample] linear, cubic and gradients need a float dtype");
  }
}

// Fresh large allocations arrive as untouched pages, and faulting them in 4 KB
// at a time costs more than the upsampling itself. Where the kernel lets
// processes opt in to transparent huge pages, ask for them on our own
// freshly allocated output (a hint: nothing changes if it is declined).
void prefer_huge_pages(void* data, size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t HUGE_PAGE = uintptr_t(2) << 20;
  if (bytes < 2 * HUGE_PAGE) {
    return;
  }
  uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(HUGE_PAGE - 1);
  if (end > begin) {
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
#endif
}

std::vector<int> shape_of(const mx::array& a) {
  return std::vector<int>(a.shape().begin(), a.shape().end());
}

void allocate(mx::array& a) {
  a.set_data(mx::allocator::malloc(a.nbytes()));
  prefer_huge_pages(a.data<void>(), a.nbytes());
}

bool all_identity(
    const mx::array& src,
    const mx::array& dst,
    const std::vector<GatherTable>& tables) {
  for (size_t a = 0; a < tables.size(); ++a) {
    if (src.shape(a + 1) != dst.shape(a + 1) || !tables[a].is_identity()) {
      return false;
    }
  }
  return true;
}

void run_nearest_forward(
    const mx::array& src,
    mx::array& dst,
    const std::vector<GatherTable>& tables,
    mx::Stream s) {
  auto plan = std::make_shared<NearestPlan>();
  plan->channels = dst.shape(-1);
  for (size_t a = 0; a < tables.size(); ++a) {
    plan->in_sizes.push_back(src.shape(a + 1));
    plan->out_sizes.push_back(dst.shape(a + 1));
    plan->index.push_back(tables[a].index);
  }
  allocate(dst);
  int64_t rows = dst.size() / (int64_t(plan->out_sizes.back()) * plan->channels);
  auto& encoder = mx::cpu::get_command_encoder(s);
  encoder.set_input_array(src);
  encoder.set_output_array(dst);
  const void* in = src.data<void>();
  void* out = dst.data<void>();
  size_t elem = mx::size_of(src.dtype());
  encoder.dispatch([plan, in, out, elem, rows]() {
    nearest_forward(in, out, elem, *plan, rows);
  });
}

void run_gather_passes(
    const mx::array& src,
    mx::array& dst,
    std::vector<GatherTable> tables,
    mx::Stream s) {
  if (!(src.dtype() == mx::float32 || src.dtype() == mx::float16 ||
        src.dtype() == mx::bfloat16)) {
    throw std::invalid_argument(
        "[upsample] linear, cubic and gradients need a float dtype");
  }
  auto passes = std::make_shared<std::vector<AxisPass>>(
      plan_passes(shape_of(src), shape_of(dst), std::move(tables)));
  allocate(dst);
  // Intermediates (float32) live until the task has run; none is larger
  // than the bigger of input and output.
  std::vector<void*> buffers{const_cast<void*>(src.data<void>())};
  auto& encoder = mx::cpu::get_command_encoder(s);
  encoder.set_input_array(src);
  encoder.set_output_array(dst);
  for (size_t k = 0; k + 1 < passes->size(); ++k) {
    const AxisPass& q = (*passes)[k];
    mx::array mid(
        mx::Shape{static_cast<int>(q.outer * q.dst_len * q.inner)},
        mx::float32,
        nullptr,
        {});
    allocate(mid);
    buffers.push_back(mid.data<void>());
    encoder.add_temporary(mid);
  }
  buffers.push_back(dst.data<void>());
  mx::Dtype dtype = src.dtype();
  encoder.dispatch([passes, buffers, dtype]() {
    size_t n = passes->size();
    for (size_t k = 0; k < n; ++k) {
      weighted_pass(dtype, buffers[k], buffers[k + 1], (*passes)[k], k == 0, k + 1 == n);
    }
  });
}

} // namespace

void upsample(
    const mx::array& src,
    mx::array& dst,
    const UpsampleParams& p,
    mx::Stream s,
    bool backward) {
  if (dst.size() == 0) {
    // Empty batch or no channels: nothing to compute.
    dst.set_data(mx::allocator::malloc(0));
    return;
  }
  int mode = kernel_mode(p.method);
  const mx::array& input_side = backward ? dst : src;
  const mx::array& output_side = backward ? src : dst;
  std::vector<GatherTable> tables;
  for (int a = 0; a < p.spatial_dims(); ++a) {
    upsample::AxisMap m = axis_map(
        p, a, input_side.shape(a + 1), output_side.shape(a + 1));
    tables.push_back(
        backward ? backward_table(m, mode) : forward_table(m, mode));
  }
  if (all_identity(src, dst, tables)) {
    dst.copy_shared_buffer(src);
  } else if (!backward && mode == upsample::MODE_NEAREST) {
    run_nearest_forward(src, dst, tables, s);
  } else {
    run_gather_passes(src, dst, std::move(tables), s);
  }
}

} // namespace mlx_upsample::cpu
