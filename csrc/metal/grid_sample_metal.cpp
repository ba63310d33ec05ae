#include "metal/grid_sample_metal.h"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <vector>

#include "metal/grid_launch_plan.h"
#include "metal/library.h"
#include "mlx/allocator.h"
#include "mlx/backend/metal/device.h"

namespace mlx_upsample::metal {

namespace mx = mlx::core;

namespace {

// A uint32 array of `words` words, allocated (an mx::Shape axis is an int:
// past 2**31 - 1 words, rows of 2**16; the memory check counted the words).
mx::array uint32_temporary(size_t words) {
  constexpr size_t ROW = size_t(1) << 16;
  mx::Shape shape = words < size_t(0x7FFFFFFF)
      ? mx::Shape{static_cast<int>(std::max<size_t>(words, 1))}
      : mx::Shape{static_cast<int>((words + ROW - 1) / ROW), static_cast<int>(ROW)};
  mx::array a(shape, mx::uint32, nullptr, {});
  a.set_data(mx::allocator::malloc(a.nbytes()));
  return a;
}

// The arrays of one call and its temporaries, by GridArray.
struct Bound {
  const mx::array* x = nullptr;
  const mx::array* grid = nullptr;
  const mx::array* tangent = nullptr;
  const mx::array* cotangent = nullptr;
  mx::array* out = nullptr;
  mx::array* dx = nullptr;
  mx::array* dgrid = nullptr;
  std::vector<mx::array> levels; // 0: the counts
  std::optional<mx::array> entries;

  mx::array& writable(GridArray a, int level) {
    switch (a) {
      case GridArray::Out:
        return *out;
      case GridArray::Dx:
        return *dx;
      case GridArray::Dgrid:
        return *dgrid;
      case GridArray::Counts:
        return levels.at(0);
      case GridArray::Level:
        return levels.at(level);
      case GridArray::UpperLevel:
        return levels.at(level + 1);
      case GridArray::Entries:
        return *entries;
      default:
        throw std::logic_error("[grid_sample] a launch writes one of its inputs");
    }
  }

  const mx::array& readable(GridArray a, int level) {
    switch (a) {
      case GridArray::X:
        return *x;
      case GridArray::Grid:
        return *grid;
      case GridArray::Tangent:
        return *tangent;
      case GridArray::Cotangent:
        return *cotangent;
      default:
        return writable(a, level);
    }
  }
};

GridCall call_of(
    const mx::array& x,
    const mx::array& grid,
    const GridSampleParams& p,
    const mx::array* cotangent) {
  return {
      p,
      std::vector<int>(x.shape().begin(), x.shape().end()),
      std::vector<int>(grid.shape().begin(), grid.shape().end()),
      kernel_type_name(x.dtype()),
      static_cast<int>(mx::size_of(x.dtype())),
      static_cast<long long>(x.offset()),
      cotangent != nullptr ? static_cast<long long>(cotangent->offset()) : 0};
}

// Encodes the plan's launches on `s`, each buffer bound as its slot says
// (grid_kernel_buffers), the temporaries handed to the command buffer.
void encode(GridPlan& plan, Bound& b, mx::Stream s) {
  if (plan.launches.empty()) {
    return;
  }
  auto& device = mx::metal::device(s.device);
  auto* lib = library(device);
  auto& encoder = mx::metal::get_command_encoder(s);
  if (plan.counts > 0) {
    b.levels.push_back(uint32_temporary(plan.counts));
    for (size_t n : plan.levels) {
      b.levels.push_back(uint32_temporary(n));
    }
    b.entries.emplace(uint32_temporary(2 * plan.entries));
    // Shared handles: freed once the command buffer completes, even should a
    // later launch fail to encode.
    for (const mx::array& level : b.levels) {
      encoder.add_temporary(level);
    }
    encoder.add_temporary(*b.entries);
  }
  for (GridLaunch& launch : plan.launches) {
    auto* kernel = device.get_kernel(launch.kernel, lib);
    fit_threadgroup(launch, static_cast<unsigned int>(kernel->maxTotalThreadsPerThreadgroup()));
    encoder.set_compute_pipeline_state(kernel);
    for (size_t i = 0; i < launch.buffers.size(); ++i) {
      const GridSlot& slot = launch.buffers[i];
      int index = static_cast<int>(i);
      if (slot.array == GridArray::Params) {
        encoder.set_bytes(launch.params, index);
      } else if (slot.array == GridArray::ScanParams) {
        encoder.set_bytes(launch.scan, index);
      } else if (slot.access == Access::Write) {
        encoder.set_output_array(b.writable(slot.array, launch.level), index);
      } else {
        encoder.set_input_array(b.readable(slot.array, launch.level), index);
      }
    }
    encoder.dispatch_threads(
        MTL::Size(launch.grid[0], launch.grid[1], launch.grid[2]),
        MTL::Size(launch.group[0], launch.group[1], launch.group[2]));
  }
}

void sample(
    const mx::array& x,
    const mx::array& grid,
    const mx::array* tangent,
    mx::array& out,
    const GridSampleParams& p,
    mx::Stream s) {
  GridPlan plan = plan_grid_forward(call_of(x, grid, p, nullptr), tangent != nullptr);
  out.set_data(mx::allocator::malloc(out.nbytes()));
  Bound b;
  b.x = &x;
  b.grid = &grid;
  b.tangent = tangent;
  b.out = &out;
  encode(plan, b, s);
}

} // namespace

void grid_sample_forward(
    const mx::array& x,
    const mx::array& grid,
    mx::array& out,
    const GridSampleParams& p,
    mx::Stream s) {
  sample(x, grid, nullptr, out, p, s);
}

void grid_sample_tangent(
    const mx::array& x,
    const mx::array& grid,
    const mx::array& tangent,
    mx::array& out,
    const GridSampleParams& p,
    mx::Stream s) {
  sample(x, grid, &tangent, out, p, s);
}

void grid_sample_backward(
    const mx::array& cotangent,
    const mx::array& x,
    const mx::array& grid,
    mx::array* dx,
    mx::array* dgrid,
    const GridSampleParams& p,
    mx::Stream s) {
  GridPlan plan =
      plan_grid_backward(call_of(x, grid, p, &cotangent), dx != nullptr, dgrid != nullptr);
  for (mx::array* a : {dx, dgrid}) {
    if (a != nullptr) {
      a->set_data(mx::allocator::malloc(a->nbytes()));
    }
  }
  Bound b;
  b.x = &x;
  b.grid = &grid;
  b.cotangent = &cotangent;
  b.dx = dx;
  b.dgrid = dgrid;
  encode(plan, b, s);
}

} // namespace mlx_upsample::metal
