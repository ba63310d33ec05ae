#include "cpu/upsample_cpu.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include <sys/mman.h>

#include "cpu/gather_table.h"
#include "cpu/isa.h"
#include "cpu/separable_gather.h"
#include "cpu/thread_pool.h"
#include "mlx/allocator.h"
#include "mlx/backend/cpu/encoder.h"

namespace mlx_upsample::cpu {

namespace mx = mlx::core;

namespace {

// Nearest forward in one pass, exact for every dtype. A row is the output's
// last spatial axis times the channels; rows that read the same input row as
// a row written just before (1 row in 2 when upsampling an image by 2, 3 in
// 4 for a volume) are copied from it (nearest_forward.inc).
struct NearestPlan {
  int64_t channels;
  int64_t elem_bytes;
  std::vector<int> in_sizes;
  std::vector<int> out_sizes;
  std::vector<std::vector<int>> index; // per axis: source of each output
};

namespace baseline {
#include "cpu/nearest_forward.inc"
} // namespace baseline

#ifdef UPSAMPLE_AVX2_DISPATCH
UPSAMPLE_AVX2_BEGIN
namespace avx2 {
#include "cpu/nearest_forward.inc"
} // namespace avx2
UPSAMPLE_AVX2_END
#endif

void nearest_forward(const void* src, void* dst, const NearestPlan& q, int64_t rows) {
#ifdef UPSAMPLE_AVX2_DISPATCH
  if (use_avx2_kernels()) {
    return avx2::nearest_forward(src, dst, q, rows);
  }
#endif
  baseline::nearest_forward(src, dst, q, rows);
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

// Starts the kernels' threads, allocates dst and enqueues task(src data,
// dst data) on the stream.
template <typename Task>
void enqueue(const mx::array& src, mx::array& dst, mx::Stream s, Task task) {
  prepare_threads();
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
  plan->elem_bytes = mx::size_of(src.dtype());
  plan->in_sizes = spatial_sizes(src);
  plan->out_sizes = spatial_sizes(dst);
  for (const GatherTable& t : tables) {
    plan->index.push_back(t.index);
  }
  int64_t rows = dst.size() / (int64_t(plan->out_sizes.back()) * plan->channels);
  enqueue(src, dst, s, [plan, rows](const void* in, void* out) {
    nearest_forward(in, out, *plan, rows);
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
