#include "cpu/upsample_cpu.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <sys/mman.h>

#include "cpu/gather_plan.h"
#include "cpu/thread_pool.h"
#include "mlx/allocator.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/types/half_types.h"

namespace mlx_upsample::cpu {

namespace mx = mlx::core;

namespace {

// Rows of floats accumulated at a time: fits in L1 and lets the compiler
// vectorise the channel loop.
constexpr int64_t BLOCK = 256;
// Roughly how many elements a thread should get before splitting pays off.
constexpr int64_t GRAIN_ELEMENTS = 1 << 15;

// One gather pass with float32 accumulation. K > 0 fixes the taps per row
// at compile time (forward), K == 0 reads the row lengths from the table.
template <typename In, typename Out, int K>
void gather_rows(
    const In* src,
    Out* dst,
    const AxisPass& p,
    int64_t r0,
    int64_t r1) {
  const int* offsets = p.table.offsets.data();
  const int* index = p.table.index.data();
  const float* weight = p.table.weight.data();
  float acc[BLOCK];
  for (int64_t r = r0; r < r1; ++r) {
    int64_t o = r / p.dst_len;
    int i = static_cast<int>(r % p.dst_len);
    const In* base = src + o * p.src_len * p.inner;
    Out* out = dst + r * p.inner;
    int e0 = K > 0 ? i * K : offsets[i];
    int e1 = K > 0 ? e0 + K : offsets[i + 1];
    for (int64_t c0 = 0; c0 < p.inner; c0 += BLOCK) {
      int64_t n = std::min(BLOCK, p.inner - c0);
      std::fill(acc, acc + n, 0.0f);
      for (int e = e0; e < e1; ++e) {
        const In* row = base + int64_t(index[e]) * p.inner + c0;
        float w = weight[e];
        for (int64_t c = 0; c < n; ++c) {
          acc[c] += w * static_cast<float>(row[c]);
        }
      }
      for (int64_t c = 0; c < n; ++c) {
        out[c0 + c] = static_cast<Out>(acc[c]);
      }
    }
  }
}

// Nearest forward: a pure copy of whole rows, exact for every dtype.
void copy_rows(
    const char* src,
    char* dst,
    size_t elem,
    const AxisPass& p,
    int64_t r0,
    int64_t r1) {
  size_t row_bytes = p.inner * elem;
  for (int64_t r = r0; r < r1; ++r) {
    int64_t o = r / p.dst_len;
    int i = static_cast<int>(r % p.dst_len);
    const char* from =
        src + (o * p.src_len + p.table.index[i]) * int64_t(row_bytes);
    std::memcpy(dst + r * int64_t(row_bytes), from, row_bytes);
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

void copy_pass(const void* src, void* dst, size_t elem, const AxisPass& p) {
  int64_t rows = p.outer * p.dst_len;
  int64_t grain = std::max<int64_t>(1, GRAIN_ELEMENTS / p.inner);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    copy_rows(
        static_cast<const char*>(src), static_cast<char*>(dst), elem, p, r0, r1);
  });
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

void run(
    const mx::array& src,
    mx::array& dst,
    const UpsampleParams& p,
    mx::Stream s,
    bool backward) {
  if (!src.flags().row_contiguous) {
    throw std::runtime_error("[upsample] internal: input is not contiguous");
  }
  if (dst.size() == 0) {
    // Empty batch or no channels: nothing to compute.
    dst.set_data(mx::allocator::malloc(0));
    return;
  }
  int mode = kernel_mode(p.method);
  bool copy_only = !backward && mode == upsample::MODE_NEAREST;
  if (!copy_only &&
      !(src.dtype() == mx::float32 || src.dtype() == mx::float16 ||
        src.dtype() == mx::bfloat16)) {
    throw std::invalid_argument(
        "[upsample] linear, cubic and gradients need a float dtype");
  }
  const mx::array& input_side = backward ? dst : src;
  const mx::array& output_side = backward ? src : dst;
  std::vector<GatherTable> tables;
  for (int a = 0; a < p.spatial_dims(); ++a) {
    upsample::AxisMap m = axis_map(
        p, a, input_side.shape(a + 1), output_side.shape(a + 1));
    tables.push_back(
        backward ? backward_table(m, mode) : forward_table(m, mode));
  }
  auto passes = std::make_shared<std::vector<AxisPass>>(
      plan_passes(shape_of(src), shape_of(dst), std::move(tables)));

  if (passes->empty()) {
    dst.copy_shared_buffer(src);
    return;
  }
  dst.set_data(mx::allocator::malloc(dst.nbytes()));
  prefer_huge_pages(dst.data<void>(), dst.nbytes());

  // Intermediates live until the task has run; none is larger than the
  // bigger of input and output.
  mx::Dtype mid_dtype = copy_only ? src.dtype() : mx::float32;
  std::vector<void*> buffers{const_cast<void*>(src.data<void>())};
  auto& encoder = mx::cpu::get_command_encoder(s);
  encoder.set_input_array(src);
  encoder.set_output_array(dst);
  for (size_t k = 0; k + 1 < passes->size(); ++k) {
    const AxisPass& q = (*passes)[k];
    mx::array mid(
        mx::Shape{static_cast<int>(q.outer * q.dst_len * q.inner)},
        mid_dtype,
        nullptr,
        {});
    mid.set_data(mx::allocator::malloc(mid.nbytes()));
    prefer_huge_pages(mid.data<void>(), mid.nbytes());
    buffers.push_back(mid.data<void>());
    encoder.add_temporary(mid);
  }
  buffers.push_back(dst.data<void>());

  mx::Dtype dtype = src.dtype();
  size_t elem = mx::size_of(dtype);
  encoder.dispatch([passes, buffers, dtype, elem, copy_only]() {
    size_t n = passes->size();
    for (size_t k = 0; k < n; ++k) {
      const AxisPass& q = (*passes)[k];
      if (copy_only) {
        copy_pass(buffers[k], buffers[k + 1], elem, q);
      } else {
        weighted_pass(dtype, buffers[k], buffers[k + 1], q, k == 0, k + 1 == n);
      }
    }
  });
}

} // namespace

void upsample_forward(
    const mx::array& src,
    mx::array& dst,
    const UpsampleParams& p,
    mx::Stream s) {
  run(src, dst, p, s, /*backward=*/false);
}

void upsample_backward(
    const mx::array& src,
    mx::array& dst,
    const UpsampleParams& p,
    mx::Stream s) {
  run(src, dst, p, s, /*backward=*/true);
}

} // namespace mlx_upsample::cpu
