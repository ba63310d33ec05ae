// How eval_gpu launches a Metal kernel: kernel name, parameter block, tap
// tables, grid and threadgroup sizes. Plain C++ (no MLX, no Metal) so that
// the tests run the very same plan through the emulator on Linux.
#pragma once

#include <string>
#include <vector>

#include "kernel_params.h"
#include "metal/tap_tables.h"
#include "upsample_params.h"

namespace mlx_upsample::metal {

// Tables up to this size go to the kernel with setBytes (Metal's limit for
// it), larger ones in a buffer.
constexpr size_t MAX_INLINE_TABLE_BYTES = 4096;

struct LaunchPlan {
  std::string kernel;
  upsample::KernelParams params;
  TapTables table; // buffer 3
  // Threads per axis: exactly the data (dispatchThreads; the threadgroups at
  // the edges of the grid are partial).
  unsigned int grid[3];
  unsigned int group[3];
};

// `src_shape` is the array the kernel reads (input forward, output cotangent
// backward), `dst_shape` the one it writes; both (N, *spatial, C).
// `src_offset` is where the read array starts in its buffer, in bytes (a
// row-contiguous view need not start on a packet boundary: vector loads are
// planned only where every packet is aligned). `dtype` is "float32",
// "float16" or "bfloat16" (any dtype for nearest forward, which copies
// elements of `elem_size` bytes). `max_threads_per_group` is the pipeline's
// limit (maxTotalThreadsPerThreadgroup, which can be below 1024 for a heavy
// kernel), known only once the kernel named by the plan is loaded: call
// plan_launch, load plan.kernel, then fit_threadgroup. Throws
// std::invalid_argument for what no kernel covers.
LaunchPlan plan_launch(
    const UpsampleParams& p,
    bool backward,
    const std::vector<int>& src_shape,
    const std::vector<int>& dst_shape,
    const std::string& dtype,
    int elem_size,
    long long src_offset);

// Picks the threadgroup (at most `max_threads_per_group` threads).
void fit_threadgroup(LaunchPlan& plan, unsigned int max_threads_per_group);

} // namespace mlx_upsample::metal
