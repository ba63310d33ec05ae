// Metal emulator: runs the kernels of kernels/upsample.metal, compiled as
// C++ against the shim in shim/, over the exact grid of the launch plan that
// eval_gpu uses (csrc/metal/launch_plan.cpp), with its tap tables.
//
// A C interface for ctypes: tests/test_metal_emulation.py builds this file
// and kernels.cpp with g++ and drives them.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iterator>
#include <new>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "emulator_api.h"
#include "memory_check.h"
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

// The cost model (bench/cost_model.py) runs a fixed pseudo-random sample of
// a launch's threads instead of all of them (0: all), and is told when each
// launch ends, so that it can count the instructions of every launch apart.
unsigned long long sample_threads = 0;
void (*after_launch)(const char* kernel) = nullptr;

// splitmix64: the same sample on every run.
unsigned long long next_random(unsigned long long& state) {
  unsigned long long z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Bytes after the output that no kernel may touch.
constexpr size_t CANARY = 256;
constexpr unsigned char CANARY_BYTE = 0xA5;

// A Metal buffer: its contents start on a page boundary, and this one ends
// exactly where the data does, so that a sanitizer sees a read one past it.
struct DeviceBuffer {
  static constexpr std::align_val_t PAGE{16384};
  explicit DeviceBuffer(size_t bytes)
      : data(static_cast<unsigned char*>(::operator new(bytes ? bytes : 1, PAGE))) {}
  ~DeviceBuffer() {
    ::operator delete(data, PAGE);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  unsigned char* data;
};

// A buffer with CANARY bytes after its data, checked after every launch.
struct GuardedBuffer {
  explicit GuardedBuffer(size_t bytes) : bytes(bytes), buffer(bytes + CANARY) {
    std::memset(buffer.data, CANARY_BYTE, bytes + CANARY);
  }
  void check(const std::string& kernel) const {
    for (size_t b = bytes; b < bytes + CANARY; ++b) {
      if (buffer.data[b] != CANARY_BYTE) {
        throw std::runtime_error(kernel + " wrote past the end of its output");
      }
    }
  }
  size_t bytes;
  DeviceBuffer buffer;
};

// Runs every thread of one launch's grid (or the cost model's sample).
void dispatch(
    const mlx_upsample::metal::Launch& launch,
    unsigned int max_threads_per_group,
    const unsigned char* in,
    unsigned char* out) {
  auto it = registry().find(launch.kernel);
  if (it == registry().end()) {
    throw std::runtime_error("no kernel named " + launch.kernel);
  }
  // dispatchThreads: any grid, the threadgroups at its edges are partial.
  for (int d = 0; d < 3; ++d) {
    if (launch.group[d] == 0) {
      throw std::runtime_error("a threadgroup of no threads");
    }
  }
  // Metal rejects a dispatch whose threadgroup exceeds the pipeline's
  // maxTotalThreadsPerThreadgroup (at most 1024 on Apple GPUs).
  unsigned int threads = launch.group[0] * launch.group[1] * launch.group[2];
  if (threads > max_threads_per_group || threads > 1024) {
    throw std::runtime_error(
        "threadgroup of " + std::to_string(threads) + " threads, the pipeline allows " +
        std::to_string(max_threads_per_group));
  }
  DeviceBuffer table(launch.table.bytes());
  std::memcpy(table.data, launch.table.words.data(), launch.table.bytes());
  if (launch.grid[2] != 1) {
    throw std::runtime_error("the kernels take a 2-D grid");
  }
  unsigned long long gx = launch.grid[0];
  unsigned long long grid_threads = gx * launch.grid[1];
  if (sample_threads > 0 && sample_threads < grid_threads) {
    unsigned long long state = 1;
    for (unsigned long long s = 0; s < sample_threads; ++s) {
      unsigned long long t = next_random(state) % grid_threads;
      it->second(in, out, launch.params, table.data, t % gx, t / gx);
    }
  } else {
    for (unsigned int y = 0; y < launch.grid[1]; ++y) {
      for (unsigned int x = 0; x < launch.grid[0]; ++x) {
        it->second(in, out, launch.params, table.data, x, y);
      }
    }
  }
  if (after_launch != nullptr) {
    after_launch(launch.kernel.c_str());
  }
  executed().insert(launch.kernel);
}

// The source memory `src` (`src_bytes`) lies `memory_offset` bytes into its
// buffer, the view the kernels read `view_offset` bytes into it.
void run(
    const mlx_upsample::metal::LaunchPlan& plan,
    unsigned int max_threads_per_group,
    const void* src,
    size_t src_bytes,
    size_t memory_offset,
    size_t view_offset,
    size_t elem_size,
    void* dst,
    size_t dst_bytes) {
  using mlx_upsample::metal::Buffer;
  if (plan.launches.empty()) {
    // eval_gpu shares the source's buffer (identity calls on packed sources).
    std::memcpy(dst, static_cast<const unsigned char*>(src) + (view_offset - memory_offset), dst_bytes);
    return;
  }
  DeviceBuffer in(memory_offset + src_bytes);
  std::memcpy(in.data + memory_offset, src, src_bytes);
  const size_t src_offset = view_offset;
  GuardedBuffer out(dst_bytes);
  GuardedBuffer temporary(plan.temporary_bytes());
  GuardedBuffer staging(plan.staging_elements * elem_size);
  for (const auto& launch : plan.launches) {
    const unsigned char* from = launch.reads == Buffer::Source ? in.data + src_offset
        : launch.reads == Buffer::Staging                      ? staging.buffer.data
                                                               : temporary.buffer.data;
    GuardedBuffer& to = launch.writes == Buffer::Destination ? out
        : launch.writes == Buffer::Staging                   ? staging
                                                             : temporary;
    dispatch(launch, max_threads_per_group, from, to.buffer.data);
    to.check(launch.kernel);
  }
  std::memcpy(dst, out.buffer.data, dst_bytes);
}

// `family` and `mode` are values of mlx_upsample::Family and upsample::Mode
// (harness.py passes those of their Python bindings).
mlx_upsample::UpsampleParams params(
    int family,
    int mode,
    int align_corners,
    int recompute_scale,
    std::vector<double> scales,
    std::vector<int> sizes) {
  return {
      static_cast<mlx_upsample::Family>(family),
      static_cast<upsample::Mode>(mode),
      align_corners != 0,
      recompute_scale != 0,
      std::move(scales),
      std::move(sizes)};
}

// The C interface's error convention: 0, or 1 with the message in `error`.
template <typename Body>
int report_errors(char* error, int text_capacity, Body body) {
  try {
    body();
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(error, text_capacity, "%s", e.what());
    return 1;
  }
}

// What eval_gpu would encode: the plan, each launch fitted to a pipeline
// that allows `max_threads_per_group` threads.
mlx_upsample::metal::LaunchPlan fitted_plan(
    const mlx_upsample::UpsampleParams& p,
    bool backward,
    const std::vector<int>& src_dims,
    const std::vector<int64_t>& src_strides,
    const std::vector<int>& dst_dims,
    const char* dtype,
    int elem_size,
    long long src_offset,
    mlx_upsample::metal::Passes passes,
    unsigned int max_threads_per_group) {
  auto plan = mlx_upsample::metal::plan_launch(
      p, backward, src_dims, src_strides, dst_dims, dtype, elem_size, src_offset, passes);
  for (auto& launch : plan.launches) {
    mlx_upsample::metal::fit_threadgroup(launch, max_threads_per_group);
  }
  return plan;
}

// The memory limit plan_launch checks against (MLX's in the extension):
// none until a test sets one (emu_set_memory_limit).
double memory_limit_bytes = HUGE_VAL;

} // namespace
} // namespace emulator

namespace mlx_upsample {

double memory_limit() {
  return emulator::memory_limit_bytes;
}

} // namespace mlx_upsample

extern "C" {

int emu_kernel_count() {
  return static_cast<int>(emulator::registry().size());
}

const char* emu_kernel_name(int i) {
  auto it = emulator::registry().begin();
  std::advance(it, i);
  return it->first.c_str();
}

void emu_sample_threads(unsigned long long count, void (*callback)(const char*)) {
  emulator::sample_threads = count;
  emulator::after_launch = callback;
}

// The memory limit, in bytes, that plan_launch refuses calls beyond from now
// on (mx.set_memory_limit in the extension).
void emu_set_memory_limit(double bytes) {
  emulator::memory_limit_bytes = bytes;
}

int emu_executed_count() {
  return static_cast<int>(emulator::executed().size());
}

const char* emu_executed_name(int i) {
  auto it = emulator::executed().begin();
  std::advance(it, i);
  return it->c_str();
}

int emu_run(
    int family,
    int mode,
    int align_corners,
    int recompute_scale,
    const double* scales,
    const int* sizes,
    int dims,
    int backward,
    int ndim,
    const int* src_shape,
    const long long* src_strides,
    const int* dst_shape,
    const char* dtype,
    int elem_size,
    long long src_offset,
    long long src_elements,
    long long view_start,
    unsigned int max_threads_per_group,
    int passes,
    const void* src,
    void* dst,
    char* kernel,
    char* error,
    int text_capacity) {
  return emulator::report_errors(error, text_capacity, [&] {
    auto p = emulator::params(
        family,
        mode,
        align_corners,
        recompute_scale,
        std::vector<double>(scales, scales + dims),
        std::vector<int>(sizes, sizes + dims));
    std::vector<int> src_dims(src_shape, src_shape + ndim);
    std::vector<int> dst_dims(dst_shape, dst_shape + ndim);
    std::vector<int64_t> strides;
    if (src_strides != nullptr) {
      strides.assign(src_strides, src_strides + ndim);
    }
    using mlx_upsample::metal::Passes;
    Passes choice = passes == 1 ? Passes::One : passes == 2 ? Passes::Two : Passes::Cheapest;
    auto plan = emulator::fitted_plan(
        p, backward != 0, src_dims, strides, dst_dims, dtype, elem_size, src_offset, choice,
        max_threads_per_group);
    std::string names;
    for (const auto& launch : plan.launches) {
      names += (names.empty() ? "" : "+") + launch.kernel;
    }
    std::snprintf(kernel, text_capacity, "%s", names.c_str());
    size_t dst_bytes = size_t(elem_size);
    for (int d = 0; d < ndim; ++d) {
      dst_bytes *= size_t(dst_dims[d]);
    }
    long long memory_offset = src_offset - view_start * elem_size;
    if (memory_offset < 0 || view_start < 0) {
      throw std::invalid_argument("the view starts before its buffer");
    }
    emulator::run(
        plan, max_threads_per_group, src, size_t(src_elements) * elem_size,
        size_t(memory_offset), size_t(src_offset), size_t(elem_size), dst, dst_bytes);
  });
}

// The launches eval_gpu would plan, without running them (shapes too large
// to emulate), for a source of `src_strides` (elements; nullptr:
// row-contiguous) that starts at its buffer's start: per launch "kernel grid_x grid_y grid_z group_x group_y
// group_z", launches separated by ';', in `plan`. Both shapes have `ndim`
// entries, (*batch, *spatial, C). Returns 0, or 1 with a message in `error`.
int emu_plan(
    int family,
    int mode,
    const double* scales,
    int dims,
    int backward,
    int ndim,
    const int* src_shape,
    const long long* src_strides,
    const int* dst_shape,
    const char* dtype,
    int elem_size,
    unsigned int max_threads_per_group,
    char* plan_text,
    char* error,
    int text_capacity) {
  return emulator::report_errors(error, text_capacity, [&] {
    auto p = emulator::params(
        family, mode, 0, 0, std::vector<double>(scales, scales + dims),
        std::vector<int>(dims, 0));
    std::vector<int64_t> strides;
    if (src_strides != nullptr) {
      strides.assign(src_strides, src_strides + ndim);
    }
    auto plan = emulator::fitted_plan(
        p, backward != 0, std::vector<int>(src_shape, src_shape + ndim), strides,
        std::vector<int>(dst_shape, dst_shape + ndim), dtype, elem_size, 0,
        mlx_upsample::metal::Passes::Cheapest, max_threads_per_group);
    std::string text;
    for (const auto& l : plan.launches) {
      text += (text.empty() ? "" : ";") + l.kernel;
      for (unsigned int v : {l.grid[0], l.grid[1], l.grid[2], l.group[0], l.group[1], l.group[2]}) {
        text += " " + std::to_string(v);
      }
    }
    std::snprintf(plan_text, text_capacity, "%s", text.c_str());
  });
}

// q = n / d through the kernels' magic-number division, for `count`
// numerators. Returns 0, or 1 with a message in `error`.
int emu_divide(
    const unsigned int* n,
    int count,
    unsigned int d,
    unsigned int* q,
    char* error,
    int text_capacity) {
  return emulator::report_errors(error, text_capacity, [&] {
    upsample::Divisor by = mlx_upsample::metal::magic_divisor(d);
    for (int i = 0; i < count; ++i) {
      q[i] = upsample::divide(n[i], by);
    }
  });
}

// The smallest input index read by each output 0 .. out_size - 1 along one
// axis: the index math of the kernels, compiled like them. Lets a test sweep
// the rounding of the coordinate rules over many (N, M, i) at once. Returns
// 0, or 1 with a message in `error`.
int emu_lowest_taps(
    int family,
    int mode,
    int align_corners,
    double scale,
    int size,
    int in_size,
    int out_size,
    int* taps,
    char* error,
    int text_capacity) {
  return emulator::report_errors(error, text_capacity, [&] {
    auto p = emulator::params(family, mode, align_corners, false, {scale}, {size});
    upsample::AxisMap a = mlx_upsample::axis_map(p, 0, in_size, out_size);
    for (int i = 0; i < out_size; ++i) {
      taps[i] = upsample::lowest_tap(a, p.mode, i);
    }
  });
}

} // extern "C"
