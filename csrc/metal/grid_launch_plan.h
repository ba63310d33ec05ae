// How eval_gpu launches the grid_sample kernels of one call
// (kernels/grid_sample.metal): per launch the kernel, the arrays it binds,
// its parameter block, grid and threadgroup. Plain C++ (no MLX, no Metal),
// so that the tests run the very same plan through the emulator on Linux,
// as launch_plan.h is for upsampling.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "grid_kernel_params.h"
#include "grid_sample_params.h"

namespace mlx_upsample::metal {

// What a launch binds at a buffer index: the call's arrays, the input
// gradient's temporaries (the counts, the scan's levels above them, the
// entries) or a parameter block.
enum class GridArray {
  X,
  Grid,
  Tangent,
  Cotangent,
  Out,
  Dx,
  Dgrid,
  Counts,
  Level, //      scan level `level` of the launch (0: the counts)
  UpperLevel, // the level above it
  Entries,
  Params, //     GridKernelParams
  ScanParams, // GridScanParams
};

// Read: set_input_array; Write: set_output_array; Bytes: set_bytes.
enum class Access { Read, Write, Bytes };

struct GridSlot {
  GridArray array;
  Access access;
};

// Every kernel function's buffers, buffer i the i-th slot: what the host
// binds for a launch of it, and what tests/metal_checks/shaders.py checks
// the function's [[buffer(N)]] arguments against.
const std::vector<std::pair<std::string, std::vector<GridSlot>>>& grid_kernel_buffers();

struct GridLaunch {
  std::string kernel; //   the library's name for it
  std::string function; // its kernel function (grid_kernel_buffers)
  std::vector<GridSlot> buffers;
  upsample::GridKernelParams params;
  upsample::GridScanParams scan;
  int level; // the scan level that GridArray::Level names
  // Threads per axis: exactly the data (dispatchThreads).
  unsigned int grid[3];
  unsigned int group[3];
};

struct GridPlan {
  std::vector<GridLaunch> launches;
  // The input gradient's temporaries: uint32 counts (one per pixel of the
  // batch), the scan's levels above them (uint32) and the (key, weight)
  // entries (uint2); none otherwise.
  size_t counts = 0;
  std::vector<size_t> levels;
  size_t entries = 0;

  double temporary_bytes() const;
};

// One call: x (*batch, *spatial, C) of `dtype` ("float32", "float16" or
// "bfloat16") starting `x_offset` bytes into its buffer, the grid (*batch,
// *out_spatial, dims) float32, and, backward, the cotangent (*batch,
// *out_spatial, C) at `cotangent_offset` (vector loads are planned only
// where every packet is aligned).
struct GridCall {
  GridSampleParams params;
  std::vector<int> x_shape;
  std::vector<int> grid_shape;
  std::string dtype;
  int elem_size;
  long long x_offset;
  long long cotangent_offset;
};

// The forward (or, with `tangent`, the jvp in the grid). Throws
// std::invalid_argument for shapes no kernel covers (32-bit indices),
// OutOfMemory beyond MLX's memory limit. No launches when the output is
// empty.
GridPlan plan_grid_forward(const GridCall& call, bool tangent);

// The cotangents of x (`dx`) and of the grid (`dgrid`); the same errors.
GridPlan plan_grid_backward(const GridCall& call, bool dx, bool dgrid);

// Picks the launch's threadgroup (at most `max_threads_per_group` threads,
// the pipeline's limit).
void fit_threadgroup(GridLaunch& launch, unsigned int max_threads_per_group);

} // namespace mlx_upsample::metal
