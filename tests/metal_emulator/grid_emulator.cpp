// Metal emulator of grid_sample: runs the kernels of kernels/grid_sample.metal,
// compiled as C++ against the shim in shim/, over the exact grids of the
// launch plan eval_gpu uses (csrc/metal/grid_launch_plan.cpp), binding each
// launch's buffers as csrc/metal/grid_sample_metal.cpp does.
//
// The threads of a launch run one at a time: in grid order, or with
// `order_seed` != 0 its threadgroups in a shuffled order and the threads of
// each group shuffled too (the integer atomics then hand out other slots:
// the tests check that the results keep their bits).
//
// A C interface for ctypes (grid_harness.py).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iterator>
#include <memory>
#include <new>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "grid_emulator_api.h"
#include "grid_registry.h"
#include "memory_check.h"
#include "metal/grid_launch_plan.h"

namespace emulator {

std::map<std::string, GridKernel>& grid_registry() {
  static std::map<std::string, GridKernel> kernels;
  return kernels;
}

namespace {

using mlx_upsample::metal::Access;
using mlx_upsample::metal::GridArray;
using mlx_upsample::metal::GridLaunch;
using mlx_upsample::metal::GridPlan;

std::set<std::string>& executed() {
  static std::set<std::string> names;
  return names;
}

double memory_limit_bytes = HUGE_VAL;

// The cost model (bench/grid_cost_model.py) runs, before each launch, a
// fixed pseudo-random sample of its threads between two calls (0: none);
// what they write is then undone and the launch runs whole, so that the
// launches after it see the data they would.
unsigned long long sample_threads = 0;
void (*before_sample)(const char* kernel) = nullptr;
void (*after_sample)(const char* kernel) = nullptr;

constexpr size_t CANARY = 256;
constexpr unsigned char CANARY_BYTE = 0xA5;

// A Metal buffer: page-aligned contents, `offset` bytes of something else
// first, and nothing after the data but `canary` guard bytes, so that a
// sanitizer sees a read past a read-only array and the canary a write past
// a written one.
struct Buffer {
  static constexpr std::align_val_t PAGE{16384};
  Buffer(size_t offset, size_t bytes, size_t canary)
      : offset(offset), bytes(bytes), canary(canary),
        base(static_cast<unsigned char*>(::operator new(offset + bytes + canary + 1, PAGE))) {
    std::memset(base, CANARY_BYTE, offset + bytes + canary + 1);
  }
  ~Buffer() {
    ::operator delete(base, PAGE);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  unsigned char* data() const {
    return base + offset;
  }
  void check(const std::string& what) const {
    for (size_t b = 0; b < canary; ++b) {
      if (data()[bytes + b] != CANARY_BYTE) {
        throw std::runtime_error(what + " wrote past the end of its buffer");
      }
    }
  }
  size_t offset, bytes, canary;
  unsigned char* base;
};

std::unique_ptr<Buffer> input(const void* from, size_t bytes, size_t offset) {
  auto b = std::make_unique<Buffer>(offset, bytes, 0);
  if (bytes > 0) {
    std::memcpy(b->data(), from, bytes);
  }
  return b;
}

std::unique_ptr<Buffer> output(size_t bytes) {
  return std::make_unique<Buffer>(0, bytes, CANARY);
}

// The arrays of one call, by GridArray (levels apart).
struct Arrays {
  std::unique_ptr<Buffer> x, grid, tangent, cotangent, out, dx, dgrid, entries;
  std::vector<std::unique_ptr<Buffer>> levels; // 0: the counts

  Buffer* of(GridArray a, int level) const {
    switch (a) {
      case GridArray::X:
        return x.get();
      case GridArray::Grid:
        return grid.get();
      case GridArray::Tangent:
        return tangent.get();
      case GridArray::Cotangent:
        return cotangent.get();
      case GridArray::Out:
        return out.get();
      case GridArray::Dx:
        return dx.get();
      case GridArray::Dgrid:
        return dgrid.get();
      case GridArray::Counts:
        return levels.at(0).get();
      case GridArray::Level:
        return levels.at(level).get();
      case GridArray::UpperLevel:
        return levels.at(level + 1).get();
      case GridArray::Entries:
        return entries.get();
      default:
        return nullptr;
    }
  }
};

// Runs every thread of one launch, in grid order or shuffled.
void dispatch(GridLaunch& launch, unsigned int max_threads, const Arrays& arrays,
              unsigned long long order_seed) {
  auto it = grid_registry().find(launch.kernel);
  if (it == grid_registry().end()) {
    throw std::runtime_error("no kernel named " + launch.kernel);
  }
  mlx_upsample::metal::fit_threadgroup(launch, max_threads);
  unsigned int threads = launch.group[0] * launch.group[1] * launch.group[2];
  if (threads == 0 || threads > max_threads || threads > 1024) {
    throw std::runtime_error(
        launch.kernel + ": a threadgroup of " + std::to_string(threads) +
        " threads, the pipeline allows " + std::to_string(max_threads));
  }
  if (launch.grid[2] != 1) {
    throw std::runtime_error("the grid_sample kernels take a 2-D grid");
  }
  if (it->second.buffers != launch.buffers.size()) {
    throw std::runtime_error(
        launch.kernel + " takes " + std::to_string(it->second.buffers) +
        " buffers, the plan binds " + std::to_string(launch.buffers.size()));
  }
  std::vector<void*> bound;
  for (const auto& slot : launch.buffers) {
    if (slot.array == GridArray::Params) {
      bound.push_back(&launch.params);
    } else if (slot.array == GridArray::ScanParams) {
      bound.push_back(&launch.scan);
    } else {
      Buffer* b = arrays.of(slot.array, launch.level);
      if (b == nullptr) {
        throw std::runtime_error(launch.kernel + " binds an array this call has not");
      }
      bound.push_back(b->data());
    }
  }
  const auto& run = it->second.run;
  unsigned int gx = launch.grid[0], gy = launch.grid[1];
  if (sample_threads > 0) {
    std::vector<std::pair<Buffer*, std::vector<unsigned char>>> written;
    for (const auto& slot : launch.buffers) {
      if (slot.access == Access::Write) {
        Buffer* b = arrays.of(slot.array, launch.level);
        written.emplace_back(b, std::vector<unsigned char>(b->data(), b->data() + b->bytes));
      }
    }
    std::mt19937_64 random(1);
    unsigned long long threads_in_grid = static_cast<unsigned long long>(gx) * gy;
    before_sample(launch.kernel.c_str());
    for (unsigned long long k = 0; k < sample_threads; ++k) {
      unsigned long long t = random() % threads_in_grid;
      run(bound.data(), static_cast<unsigned int>(t % gx), static_cast<unsigned int>(t / gx));
    }
    after_sample(launch.kernel.c_str());
    for (auto& [b, bytes] : written) {
      std::copy(bytes.begin(), bytes.end(), b->data());
    }
  }
  unsigned int bx = launch.group[0], by = launch.group[1];
  if (order_seed == 0) {
    for (unsigned int y = 0; y < gy; ++y) {
      for (unsigned int x = 0; x < gx; ++x) {
        run(bound.data(), x, y);
      }
    }
  } else {
    std::mt19937_64 random(order_seed);
    unsigned int nx = (gx + bx - 1) / bx, ny = (gy + by - 1) / by;
    std::vector<unsigned long long> groups(static_cast<size_t>(nx) * ny);
    for (size_t g = 0; g < groups.size(); ++g) {
      groups[g] = g;
    }
    std::shuffle(groups.begin(), groups.end(), random);
    std::vector<unsigned int> lanes(threads);
    for (unsigned long long g : groups) {
      unsigned int x0 = static_cast<unsigned int>(g % nx) * bx;
      unsigned int y0 = static_cast<unsigned int>(g / nx) * by;
      for (unsigned int t = 0; t < threads; ++t) {
        lanes[t] = t;
      }
      std::shuffle(lanes.begin(), lanes.end(), random);
      for (unsigned int t : lanes) {
        unsigned int x = x0 + t % bx, y = y0 + t / bx;
        if (x < gx && y < gy) { // the partial groups at the grid's edges
          run(bound.data(), x, y);
        }
      }
    }
  }
  for (const auto& slot : launch.buffers) {
    if (slot.access == Access::Write) {
      arrays.of(slot.array, launch.level)->check(launch.kernel);
    }
  }
  executed().insert(launch.kernel);
}

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

mlx_upsample::metal::GridCall call_of(
    int mode, int padding, int align_corners, int ndim, const int* x_shape,
    const int* grid_shape, const char* dtype, int elem_size, long long x_offset,
    long long cotangent_offset) {
  mlx_upsample::GridSampleParams p{
      static_cast<upsample::Mode>(mode), static_cast<upsample::Padding>(padding),
      align_corners != 0};
  return {p, std::vector<int>(x_shape, x_shape + ndim),
          std::vector<int>(grid_shape, grid_shape + ndim), dtype, elem_size, x_offset,
          cotangent_offset};
}

// pass: 0 forward, 1 the jvp in the grid, 2 backward.
GridPlan plan_of(const mlx_upsample::metal::GridCall& c, int pass, bool dx, bool dgrid) {
  return pass == 2 ? mlx_upsample::metal::plan_grid_backward(c, dx, dgrid)
                   : mlx_upsample::metal::plan_grid_forward(c, pass == 1);
}

size_t elements(const std::vector<int>& shape, size_t drop_last = 0) {
  size_t n = 1;
  for (size_t d = 0; d + drop_last < shape.size(); ++d) {
    n *= size_t(shape[d]);
  }
  return n;
}

std::string names(const GridPlan& plan) {
  std::string text;
  for (const auto& l : plan.launches) {
    text += (text.empty() ? "" : "+") + l.kernel;
  }
  return text;
}

} // namespace
} // namespace emulator

namespace mlx_upsample {

double memory_limit() {
  return emulator::memory_limit_bytes;
}

} // namespace mlx_upsample

extern "C" {

int emu_grid_kernel_count() {
  return static_cast<int>(emulator::grid_registry().size());
}

const char* emu_grid_kernel_name(int i) {
  auto it = emulator::grid_registry().begin();
  std::advance(it, i);
  return it->first.c_str();
}

int emu_grid_executed_count() {
  return static_cast<int>(emulator::executed().size());
}

const char* emu_grid_executed_name(int i) {
  auto it = emulator::executed().begin();
  std::advance(it, i);
  return it->c_str();
}

void emu_grid_set_memory_limit(double bytes) {
  emulator::memory_limit_bytes = bytes;
}

void emu_grid_sample_threads(
    unsigned long long count, void (*before)(const char*), void (*after)(const char*)) {
  emulator::sample_threads = count;
  emulator::before_sample = before;
  emulator::after_sample = after;
}

int emu_grid_run(
    int pass, int mode, int padding, int align_corners, int want_dx, int want_dgrid,
    int ndim, const int* x_shape, const int* grid_shape, const char* dtype, int elem_size,
    long long x_offset, long long cotangent_offset, unsigned int max_threads_per_group,
    unsigned long long order_seed, const void* x, const void* grid, const void* tangent,
    const void* cotangent, void* out, void* dx, void* dgrid, char* kernel, char* error,
    int text_capacity) {
  return emulator::report_errors(error, text_capacity, [&] {
    using namespace emulator;
    auto c = call_of(mode, padding, align_corners, ndim, x_shape, grid_shape, dtype, elem_size,
                     x_offset, cotangent_offset);
    GridPlan plan = plan_of(c, pass, want_dx != 0, want_dgrid != 0);
    std::snprintf(kernel, text_capacity, "%s", names(plan).c_str());
    size_t x_bytes = elements(c.x_shape) * elem_size;
    size_t grid_bytes = elements(c.grid_shape) * sizeof(float);
    size_t points = elements(c.grid_shape, 1);
    size_t y_bytes = points * size_t(c.x_shape.back()) * elem_size;
    Arrays a;
    a.x = input(x, x_bytes, size_t(x_offset));
    a.grid = input(grid, grid_bytes, 0);
    if (pass == 1) {
      a.tangent = input(tangent, grid_bytes, 0);
    }
    if (pass == 2) {
      a.cotangent = input(cotangent, y_bytes, size_t(cotangent_offset));
      a.dx = output(want_dx ? x_bytes : 0);
      a.dgrid = output(want_dgrid ? grid_bytes : 0);
      a.levels.push_back(output(plan.counts * 4));
      for (size_t n : plan.levels) {
        a.levels.push_back(output(n * 4));
      }
      a.entries = output(plan.entries * 8);
    } else {
      a.out = output(y_bytes);
    }
    // The read-only arrays as given, to find a kernel that writes them.
    std::vector<std::pair<const Buffer*, std::vector<unsigned char>>> inputs;
    for (const Buffer* b : {a.x.get(), a.grid.get(), a.tangent.get(), a.cotangent.get()}) {
      if (b != nullptr) {
        inputs.emplace_back(b, std::vector<unsigned char>(b->data(), b->data() + b->bytes));
      }
    }
    for (GridLaunch& launch : plan.launches) {
      dispatch(launch, max_threads_per_group, a, order_seed);
    }
    for (const auto& [b, bytes] : inputs) {
      if (!bytes.empty() && std::memcmp(b->data(), bytes.data(), bytes.size()) != 0) {
        throw std::runtime_error("a kernel wrote into a read-only array");
      }
    }
    if (pass == 2) {
      if (want_dx && x_bytes > 0) {
        std::memcpy(dx, a.dx->data(), x_bytes);
      }
      if (want_dgrid && grid_bytes > 0) {
        std::memcpy(dgrid, a.dgrid->data(), grid_bytes);
      }
    } else if (y_bytes > 0) {
      std::memcpy(out, a.out->data(), y_bytes);
    }
  });
}

// The launches eval_gpu would plan, not run: per launch "kernel grid_x
// grid_y grid_z group_x group_y group_z", separated by ';', then "|" and
// the temporary bytes. Returns 0, or 1 with a message in `error`.
int emu_grid_plan(
    int pass, int mode, int padding, int want_dx, int want_dgrid, int ndim,
    const int* x_shape, const int* grid_shape, const char* dtype, int elem_size,
    unsigned int max_threads_per_group, char* plan_text, char* error, int text_capacity) {
  return emulator::report_errors(error, text_capacity, [&] {
    auto c = emulator::call_of(mode, padding, 0, ndim, x_shape, grid_shape, dtype, elem_size, 0, 0);
    auto plan = emulator::plan_of(c, pass, want_dx != 0, want_dgrid != 0);
    std::string text;
    for (auto& l : plan.launches) {
      mlx_upsample::metal::fit_threadgroup(l, max_threads_per_group);
      text += (text.empty() ? "" : ";") + l.kernel;
      for (unsigned int v : {l.grid[0], l.grid[1], l.grid[2], l.group[0], l.group[1], l.group[2]}) {
        text += " " + std::to_string(v);
      }
    }
    text += "|" + std::to_string(plan.temporary_bytes());
    std::snprintf(plan_text, text_capacity, "%s", text.c_str());
  });
}

} // extern "C"
