// The emulator's table of kernels, filled by the shim's instantiate_kernel
// (kernels.cpp) and read by the harness (emulator.cpp).
#pragma once

#include <functional>
#include <map>
#include <string>

#include "kernel_params.h"

namespace emulator {

// Runs one thread of a kernel: (input, output, parameters, tap table,
// thread position).
using Kernel = std::function<void(
    const void*,
    void*,
    const upsample::KernelParams&,
    const void*,
    unsigned int,
    unsigned int)>;

std::map<std::string, Kernel>& registry();

} // namespace emulator
