// The emulator's table of grid_sample kernels (kernels/grid_sample.metal),
// filled by the shim's instantiate_kernel and plain_kernel
// (grid_kernels.cpp) and read by grid_emulator.cpp. A kernel takes its
// buffers in index order (what the launch plan's slots bind) and a thread
// position.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>

namespace emulator {

struct GridKernel {
  size_t buffers; // how many it takes
  std::function<void(void* const*, unsigned int, unsigned int)> run;
};

std::map<std::string, GridKernel>& grid_registry();

} // namespace emulator
