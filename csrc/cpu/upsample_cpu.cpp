#include "cpu/upsample_cpu.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include <sys/mman.h>

#include "cpu/gather_table.h"
#include "cpu/hot_loop.h"
#include "cpu/separable_gather.h"
#include "cpu/thread_pool.h"
#include "mlx/allocator.h"
#include "mlx/backend/cpu/encoder.h"

namespace mlx_upsample::cpu {

namespace mx = mlx::core;

namespace {

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
UPSAMPLE_HOT_LOOP void nearest_rows(
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

std::vector<int> spatial_sizes(const mx::array& a) {
  return std::vector<int>(a.shape().begin() + 1, a.shape().end() - 1);
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

// Allocates dst and enqueues task(src data, dst data) on the stream.
template <typename Task>
void enqueue(const mx::array& src, mx::array& dst, mx::Stream s, Task task) {
  allocate(dst);
  auto& encoder = mx::cpu::get_command_encoder(s);
  encoder.set_input_array(src);
  encoder.set_output_array(dst);
  const void* in = src.data<void>();
  void* out = dst.data<void>();
  encoder.dispatch([task, in, out]() { task(in, out); });
}

void run_nearest_forward(
    const mx::array& src,
    mx::array& dst,
    const std::vector<GatherTable>& tables,
    mx::Stream s) {
  auto plan = std::make_shared<NearestPlan>();
  plan->channels = dst.shape(-1);
  plan->in_sizes = spatial_sizes(src);
  plan->out_sizes = spatial_sizes(dst);
  for (const GatherTable& t : tables) {
    plan->index.push_back(t.index);
  }
  int64_t rows = dst.size() / (int64_t(plan->out_sizes.back()) * plan->channels);
  size_t elem = mx::size_of(src.dtype());
  enqueue(src, dst, s, [plan, elem, rows](const void* in, void* out) {
    nearest_forward(in, out, elem, *plan, rows);
  });
}

void run_separable_gather(
    const mx::array& src,
    mx::array& dst,
    std::vector<GatherTable> tables,
    mx::Stream s) {
  SeparableGatherKernel kernel = separable_gather_kernel(src.dtype());
  auto g = std::make_shared<SeparableGather>();
  g->batch = src.shape(0);
  g->channels = src.shape(-1);
  g->src_sizes = spatial_sizes(src);
  g->dst_sizes = spatial_sizes(dst);
  g->tables = std::move(tables);
  enqueue(src, dst, s, [kernel, g](const void* in, void* out) {
    kernel(in, out, *g);
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
    run_separable_gather(src, dst, std::move(tables), s);
  }
}

} // namespace mlx_upsample::cpu
