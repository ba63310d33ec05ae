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

// Images of one channel that are many and small (a plan of channel images,
// layout.h: a ViT position embedding's 768 of 16 x 16) are resampled
// IMAGE_TILE at a time as the channels of one channels-last image, which
// each thread transposes in and out of its cache: the kernels' per-row work
// on rows of a few dozen elements would cost more than the transposes.
// Whole tables, and a tile's input and output within TILE_BYTES in float32.
constexpr int IMAGE_TILE = 32;
constexpr double TILE_BYTES = 256 << 10;
bool tiles_images(const SeparableGather& plan);

// The kernels of 1 to 3 channels read the last axis's table reordered
// (last_axis_narrow.inc), once per call before the kernel is enqueued
// (prepare_last_table). kernel_extra_bytes: what that reordering and the
// threads' image tiles add to a Whole plan's tables and buffers.
double kernel_extra_bytes(const SeparableGather& plan);
void prepare_last_table(SeparableGather& plan);

// Writes dst = the gather of src, both (batch, *sizes, channels) contiguous,
// accumulating in float32 on up to num_threads() threads.
using SeparableGatherKernel =
    void (*)(const void* src, void* dst, const SeparableGather& plan);

// The kernel for `dtype`: float32, float16 or bfloat16, else
// std::invalid_argument (thrown here, before any work is enqueued).
SeparableGatherKernel separable_gather_kernel(mlx::core::Dtype dtype);

} // namespace mlx_upsample::cpu
