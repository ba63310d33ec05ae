// Metal emulator: runs the kernels of kernels/upsample.metal, compiled as
// C++ against the shim in shim/, over the exact grid of the launch plan that
// eval_gpu uses (csrc/metal/launch_plan.cpp), including the threads past the
// end of the data when the grid is rounded up to whole threadgroups.
//
// A C interface for ctypes: tests/test_metal_emulation.py builds this file
// and kernels.cpp with g++ and drives them.
#include <cstdio>
#include <cstring>
#include <exception>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "metal/launch_plan.h"
#include "registry.h"

namespace emulator {

std::map<std::string, Kernel>& registry() {
  static std::map<std::string, Kernel> kernels;
  return kernels;
}

namespace {

std::set<std::string>& executed() {
  static std::set<std::string> names;
  return names;
}

// Bytes after the output that no kernel may touch.
constexpr size_t CANARY = 256;
constexpr unsigned char CANARY_BYTE = 0xA5;

void run(
    const mlx_upsample::metal::LaunchPlan& plan,
    const void* src,
    void* dst,
    size_t dst_bytes) {
  auto it = registry().find(plan.kernel);
  if (it == registry().end()) {
    throw std::runtime_error("no kernel named " + plan.kernel);
  }
  for (int d = 0; d < 3; ++d) {
    if (plan.grid[d] % plan.group[d] != 0 || plan.group[d] == 0) {
      throw std::runtime_error("grid is not a whole number of threadgroups");
    }
  }
  if (plan.group[0] * plan.group[1] * plan.group[2] > 1024) {
    throw std::runtime_error("threadgroup larger than 1024 threads");
  }
  std::vector<unsigned char> out(dst_bytes + CANARY, CANARY_BYTE);
  for (unsigned int z = 0; z < plan.grid[2]; ++z) {
    for (unsigned int y = 0; y < plan.grid[1]; ++y) {
      for (unsigned int x = 0; x < plan.grid[0]; ++x) {
        it->second(src, out.data(), plan.params, x, y, z);
      }
    }
  }
  for (size_t b = dst_bytes; b < out.size(); ++b) {
    if (out[b] != CANARY_BYTE) {
      throw std::runtime_error(plan.kernel + " wrote past the end of its output");
    }
  }
  std::memcpy(dst, out.data(), dst_bytes);
  executed().insert(plan.kernel);
}

} // namespace
} // namespace emulator

extern "C" {

int emu_kernel_count() {
  return static_cast<int>(emulator::registry().size());
}

const char* emu_kernel_name(int i) {
  auto it = emulator::registry().begin();
  std::advance(it, i);
  return it->first.c_str();
}

int emu_executed_count() {
  return static_cast<int>(emulator::executed().size());
}

const char* emu_executed_name(int i) {
  auto it = emulator::executed().begin();
  std::advance(it, i);
  return it->c_str();
}

// Runs the kernel eval_gpu would launch. Returns 0, or 1 with a message in
// `error`. `kernel` receives the launched kernel's name.
int emu_run(
    const char* family,
    const char* method,
    int align_corners,
    int recompute_scale,
    const double* scales,
    const int* sizes,
    int dims,
    int backward,
    const int* src_shape,
    const int* dst_shape,
    const char* dtype,
    int elem_size,
    const void* src,
    void* dst,
    char* kernel,
    char* error,
    int text_capacity) {
  try {
    mlx_upsample::UpsampleParams p{
        mlx_upsample::parse_family(family),
        mlx_upsample::parse_method(method),
        align_corners != 0,
        recompute_scale != 0,
        std::vector<double>(scales, scales + dims),
        std::vector<int>(sizes, sizes + dims)};
    std::vector<int> src_dims(src_shape, src_shape + dims + 2);
    std::vector<int> dst_dims(dst_shape, dst_shape + dims + 2);
    auto plan = mlx_upsample::metal::plan_launch(
        p, backward != 0, src_dims, dst_dims, dtype, elem_size);
    std::snprintf(kernel, text_capacity, "%s", plan.kernel.c_str());
    size_t dst_bytes = size_t(elem_size);
    for (int d : dst_dims) {
      dst_bytes *= size_t(d);
    }
    emulator::run(plan, src, dst, dst_bytes);
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(error, text_capacity, "%s", e.what());
    return 1;
  }
}

} // extern "C"
