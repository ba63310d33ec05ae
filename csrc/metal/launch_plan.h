// How eval_gpu launches the Metal kernels of one call: per launch the kernel
// name, parameter block, tap tables, grid and threadgroup sizes. Plain C++
// (no MLX, no Metal) so that the tests run the very same plan through the
// emulator on Linux.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernel_params.h"
#include "metal/tap_tables.h"
#include "upsample_params.h"

namespace mlx_upsample::metal {

// Tables smaller than this go to the kernel with setBytes (Metal documents
// it for data under 4 KB), the others in a buffer.
constexpr size_t MAX_INLINE_TABLE_BYTES = 4096;

// Where a launch reads and writes: the call's arrays, the float32
// temporary between two passes, or the staging copy of a source that the
// passes cannot read in place (reads_in_place).
enum class Buffer { Source, Destination, Temporary, Staging };

struct Launch {
  std::string kernel;
  upsample::KernelParams params;
  TapTables table; // buffer 3
  Buffer reads; // buffer 0
  Buffer writes; // buffer 1
  // Threads per axis: exactly the data (dispatchThreads; the threadgroups at
  // the edges of the grid are partial).
  unsigned int grid[3];
  unsigned int group[3];
};

// One launch, or two through a float32 temporary: a separable pass is
// split (leading axes, then the last axis) when that moves fewer bytes than
// it saves in arithmetic (the plan's cost estimate, launch_plan.cpp).
struct LaunchPlan {
  // None when every axis is the identity (is_identity_axis): the result is
  // the source itself, as on the CPU path.
  std::vector<Launch> launches;
  std::vector<int> temporary_shape; // float32 elements; empty without one
  // The source's elements copied row-contiguous (a first launch,
  // upsample_strided_copy_u<bits>); 0 without one.
  size_t staging_elements = 0;

  size_t temporary_bytes() const;
};

// How many launches a weighted pass may take: the plan's choice (eval_gpu),
// or one or two whatever the cost (tests, cost model).
enum class Passes { Cheapest, One, Two };

// Whether the kernels read a source of this shape and these strides (in
// elements, (*batch, *spatial, C) with `dims` spatial axes) in place: every
// stride non-negative, and the leading axes of at most two strides (as the
// channel images of channels-last memory are, (N, C)); any layout of the
// spatial axes and the channels, dense or not: a transposed, sliced,
// stepped or broadcast view. The plan copies any other source first.
bool reads_in_place(
    const std::vector<int>& shape,
    const std::vector<int64_t>& strides,
    int dims);

// `src_shape` is the array the kernel reads (input forward, output cotangent
// backward), with `src_strides` in elements (empty: row-contiguous; any
// other: read in place where reads_in_place, else copied by a first launch
// into the staging buffer), `dst_shape` the row-contiguous
// array it writes; both (*batch, *spatial, C), one or more leading batch
// axes that the kernels see as one (their product, which must stay below
// 2**31).
// `src_offset` is where the read array starts in its buffer, in bytes (a
// view need not start on a packet boundary: vector loads are planned only
// where every packet is aligned). `dtype` is "float32",
// "float16" or "bfloat16" (any dtype for nearest forward, which copies
// elements of `elem_size` bytes). Each launch's threadgroup depends on its
// pipeline's limit (maxTotalThreadsPerThreadgroup, which can be below 1024
// for a heavy kernel), known only once the kernel named by the launch is
// loaded: call plan_launch, load each launch's kernel, then fit_threadgroup.
// Passes::Two for a pass that cannot be split (nearest forward, one
// spatial axis, a source whose last axis does not step over its channels
// exactly) plans one launch. Throws std::invalid_argument for what no
// kernel covers.
LaunchPlan plan_launch(
    const UpsampleParams& p,
    bool backward,
    const std::vector<int>& src_shape,
    const std::vector<int64_t>& src_strides,
    const std::vector<int>& dst_shape,
    const std::string& dtype,
    int elem_size,
    long long src_offset,
    Passes passes = Passes::Cheapest);

// Picks the launch's threadgroup (at most `max_threads_per_group` threads).
void fit_threadgroup(Launch& launch, unsigned int max_threads_per_group);

// The threadgroup of any 2-D grid, as fit_threadgroup picks it (the
// grid_sample launches too).
void fit_group(
    const unsigned int grid[3],
    unsigned int group[3],
    unsigned int max_threads_per_group);

} // namespace mlx_upsample::metal
