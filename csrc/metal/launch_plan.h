// How eval_gpu launches a Metal kernel: kernel name, parameter block, grid
// and threadgroup sizes. Plain C++ (no MLX, no Metal) so that the tests run
// the very same plan through the emulator on Linux.
#pragma once

#include <string>
#include <vector>

#include "kernel_params.h"
#include "upsample_params.h"

namespace mlx_upsample::metal {

struct LaunchPlan {
  std::string kernel;
  upsample::KernelParams params;
  // Threads per axis, rounded up to whole threadgroups: kernels drop the
  // threads that fall past the data.
  unsigned int grid[3];
  unsigned int group[3];
};

// `src_shape` is the array the kernel reads (input forward, output cotangent
// backward), `dst_shape` the one it writes; both (N, *spatial, C). `dtype` is
// "float32", "float16" or "bfloat16" (any dtype for nearest forward, which
// copies elements of `elem_size` bytes). Throws std::invalid_argument for
// what no kernel covers.
LaunchPlan plan_launch(
    const UpsampleParams& p,
    bool backward,
    const std::vector<int>& src_shape,
    const std::vector<int>& dst_shape,
    const std::string& dtype,
    int elem_size);

} // namespace mlx_upsample::metal
