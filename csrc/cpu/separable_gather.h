// A separable resampling of every spatial axis in a single pass over the
// output, without intermediate arrays.
//
// Each axis has a gather table (gather_table.h): dst row i along that axis is
// sum_e weight[e] * src row index[e]. An output row (n, o_0, ..., o_{d-2}, :, :)
// is made by blending, axis after axis from the outermost, the source slabs
// its taps select into per-thread float32 buffers (a slab of the leading
// axis, then a row of it, ...), and then gathering the last spatial axis out
// of the final row buffer. A buffer is recomputed only when its prefix
// (n, o_0, ..., o_a) changes, so the work per output element is that of
// separate one-axis passes, while the data stays in cache and the output is
// written exactly once.
#pragma once

#include <cstdint>
#include <vector>

#include "gather_table.h"
#include "mlx/dtype.h"

namespace mlx_upsample::cpu {

// The tables (KernelTables: whole ones have dst_sizes[a] rows; the last
// one reordered by prepare_last_table) and sizes of one call.
struct SeparableGather : KernelTables {
  int64_t batch;
  int64_t channels;
  std::vector<int> src_sizes; // spatial sizes of the array read
  std::vector<int> dst_sizes; // spatial sizes of the array written
};

// The bytes prepare_last_table adds to a Whole plan's tables, and the
// reordering itself: the kernels of 1 to 3 channels read the last axis's
// table reordered (last_axis_narrow.inc), once per call, before the kernel
// is enqueued.
double last_table_extra_bytes(const SeparableGather& plan);
void prepare_last_table(SeparableGather& plan);

// Writes dst = the gather of src, both (batch, *sizes, channels) contiguous,
// accumulating in float32 on up to num_threads() threads.
using SeparableGatherKernel =
    void (*)(const void* src, void* dst, const SeparableGather& plan);

// The kernel for `dtype`: float32, float16 or bfloat16, else
// std::invalid_argument (thrown here, before any work is enqueued).
SeparableGatherKernel separable_gather_kernel(mlx::core::Dtype dtype);

} // namespace mlx_upsample::cpu
