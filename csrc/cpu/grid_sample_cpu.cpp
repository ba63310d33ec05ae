#include "cpu/grid_sample_cpu.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "cpu/allocate.h"
#include "cpu/isa.h"
#include "cpu/thread_pool.h"
#include "memory_check.h"
#include "mlx/allocator.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/types/half_types.h"

namespace mlx_upsample::cpu {

namespace mx = mlx::core;

namespace {

// Sizes of one call, batch axes flattened: `points` output points and
// `pixels` input pixels per batch entry.
struct GridShape {
  int64_t batch;
  int64_t points;
  int64_t pixels;
  int64_t channels;
};

// The kernels of one dtype (grid_sample.inc), over a range of their work.
struct GridKernels {
  void (*sample)(const void* x, const float* grid, const float* tangent, void* out,
                 const upsample::GridSampleArgs&, const GridShape&, int64_t begin, int64_t end);
  void (*grid_gradient)(const void* cotangent, const void* x, const float* grid, float* dgrid,
                        const upsample::GridSampleArgs&, const GridShape&, int64_t begin,
                        int64_t end);
  void (*tap_table)(const float* grid, upsample::GridTap* table,
                    const upsample::GridSampleArgs&, int64_t begin, int64_t end);
  void (*scatter)(const void* cotangent, const float* grid, const upsample::GridTap* table,
                  float* dx, const upsample::GridSampleArgs&, const GridShape&, int64_t n,
                  int64_t pixel_begin, int64_t pixel_end, int64_t c_begin, int64_t c_end);
  void (*convert)(const float* in, void* out, int64_t begin, int64_t end);
};

} // namespace

namespace baseline {
constexpr bool HAS_F16C = false;
#include "cpu/grid_sample.inc"
} // namespace baseline

#ifdef UPSAMPLE_AVX2_DISPATCH
UPSAMPLE_AVX2_BEGIN
namespace avx2 {
constexpr bool HAS_F16C = true;
#include "cpu/grid_sample.inc"
} // namespace avx2
UPSAMPLE_AVX2_END
#endif

namespace {

// x (*batch, *spatial, C) and grid (*batch, *out_spatial, dims).
GridShape shape_of(const mx::array& x, const mx::array& grid, int dims) {
  int lead = static_cast<int>(x.ndim()) - dims - 1;
  GridShape s{1, 1, 1, x.shape(-1)};
  for (int a = 0; a < lead; ++a) {
    s.batch *= x.shape(a);
  }
  for (int a = lead; a < lead + dims; ++a) {
    s.pixels *= x.shape(a);
    s.points *= grid.shape(a);
  }
  return s;
}

std::vector<int> spatial_of(const mx::array& x, int dims) {
  return std::vector<int>(x.shape().end() - dims - 1, x.shape().end() - 1);
}

std::string call_text(const mx::array& x, const mx::array& grid, const GridSampleParams& p,
                      int dims, const char* pass) {
  return std::string("[grid_sample] sampling ") +
      shape_text(std::vector<int>(x.shape().begin(), x.shape().end())) + " at a grid of " +
      shape_text(std::vector<int>(grid.shape().begin(), grid.shape().end())) + " (" +
      p.describe(dims) + ", " + pass + ") on the CPU";
}

// Items of about GRAIN_ELEMENTS multiply-adds make a chunk.
int64_t grain(int64_t work_per_item) {
  return std::max<int64_t>(1, GRAIN_ELEMENTS / std::max<int64_t>(1, work_per_item));
}

void run_sample(
    const mx::array& x,
    const mx::array& grid,
    const mx::array* tangent,
    mx::array& out,
    const GridSampleParams& p,
    mx::Stream s,
    const char* pass) {
  int dims = grid.shape(-1);
  std::string call = call_text(x, grid, p, dims, pass);
  check_memory(double(out.nbytes()), call, "its result");
  prepare_threads();
  allocate(out, call);
  if (out.size() == 0) {
    return;
  }
  upsample::GridSampleArgs args = grid_sample_args(p, spatial_of(x, dims));
  GridShape shape = shape_of(x, grid, dims);
  GridKernels kernels = UPSAMPLE_ISA_KERNEL(grid_kernels)(x.dtype(), args);
  auto& encoder = mx::cpu::get_command_encoder(s);
  encoder.set_input_array(x);
  encoder.set_input_array(grid);
  if (tangent != nullptr) {
    encoder.set_input_array(*tangent);
  }
  encoder.set_output_array(out);
  const void* xp = x.data<void>();
  const float* gp = grid.data<float>();
  const float* tp = tangent != nullptr ? tangent->data<float>() : nullptr;
  void* op = out.data<void>();
  int64_t work = shape.channels * upsample::grid_taps_per_point(args.dims, args.mode) + 64;
  encoder.dispatch([=]() {
    parallel_for(shape.batch * shape.points, grain(work), [&](int64_t b, int64_t e) {
      kernels.sample(xp, gp, tp, op, args, shape, b, e);
    });
  });
}

} // namespace

void grid_sample_forward(
    const mx::array& x,
    const mx::array& grid,
    mx::array& out,
    const GridSampleParams& p,
    mx::Stream s) {
  run_sample(x, grid, nullptr, out, p, s, "forward");
}

void grid_sample_tangent(
    const mx::array& x,
    const mx::array& grid,
    const mx::array& tangent,
    mx::array& out,
    const GridSampleParams& p,
    mx::Stream s) {
  run_sample(x, grid, &tangent, out, p, s, "jvp in the grid");
}

void grid_sample_backward(
    const mx::array& cotangent,
    const mx::array& x,
    const mx::array& grid,
    mx::array* dx,
    mx::array* dgrid,
    const GridSampleParams& p,
    mx::Stream s) {
  int dims = grid.shape(-1);
  std::string call = call_text(x, grid, p, dims, "backward");
  upsample::GridSampleArgs args = grid_sample_args(p, spatial_of(x, dims));
  GridShape shape = shape_of(x, grid, dims);
  int64_t taps = upsample::grid_taps_per_point(args.dims, args.mode);
  // The input's gradient in blocks of (batch entry, 32 channels, band of
  // pixel rows); each block walks all points of its entry in order, so that
  // every element of dx is summed by one thread in the fixed order. Bands
  // split entries with few channels between the threads (fewer blocks than
  // threads otherwise): they then read the points' taps from a table built
  // first, in parallel, instead of each deriving them again. How many bands
  // there are never changes a result.
  int64_t c_block = std::clamp<int64_t>(shape.channels, 1, 32);
  int64_t c_blocks = (shape.channels + c_block - 1) / c_block;
  int64_t row = args.axis[0].size;
  int64_t rows = shape.pixels / row;
  int64_t entries = std::max<int64_t>(shape.batch * c_blocks, 1);
  int64_t bands = dx == nullptr ? 1 : std::clamp<int64_t>((num_threads() + entries - 1) / entries, 1, rows);
  int64_t table_taps = bands > 1 ? shape.batch * shape.points * taps : 0;
  // dx is summed in float32: in place for float32, else in a buffer of its
  // own, converted at the end.
  int64_t sum_floats = dx != nullptr && dx->dtype() != mx::float32 ? int64_t(dx->size()) : 0;
  double bytes = (dx != nullptr ? double(dx->nbytes()) : 0.0) +
      (dgrid != nullptr ? double(dgrid->nbytes()) : 0.0) + double(sum_floats) * 4.0 +
      double(table_taps) * sizeof(upsample::GridTap);
  check_memory(bytes, call, "its gradients, their float32 sums and the table of its taps");
  prepare_threads();
  if (dx != nullptr) {
    allocate(*dx, call);
  }
  if (dgrid != nullptr) {
    allocate(*dgrid, call);
  }
  std::shared_ptr<float[]> sums;
  std::shared_ptr<upsample::GridTap[]> table;
  try {
    if (sum_floats > 0) {
      sums.reset(new float[size_t(sum_floats)]);
    }
    if (table_taps > 0) {
      table.reset(new upsample::GridTap[size_t(table_taps)]);
    }
  } catch (const std::bad_alloc&) {
    throw OutOfMemory(call + ": out of memory for the float32 sums of the input's gradient and "
                      "the table of its taps (" +
                      bytes_text(double(sum_floats) * 4.0 +
                                 double(table_taps) * sizeof(upsample::GridTap)) + ")");
  }
  GridKernels kernels = UPSAMPLE_ISA_KERNEL(grid_kernels)(x.dtype(), args);
  auto& encoder = mx::cpu::get_command_encoder(s);
  encoder.set_input_array(cotangent);
  encoder.set_input_array(x);
  encoder.set_input_array(grid);
  const void* cp = cotangent.data<void>();
  const void* xp = x.data<void>();
  const float* gp = grid.data<float>();
  float* dgp = nullptr;
  if (dgrid != nullptr) {
    encoder.set_output_array(*dgrid);
    dgp = dgrid->data<float>();
  }
  void* dxp = nullptr;
  float* sum_p = nullptr;
  if (dx != nullptr) {
    encoder.set_output_array(*dx);
    dxp = dx->data<void>();
    sum_p = sums ? sums.get() : static_cast<float*>(dxp);
  }
  encoder.dispatch([=, sums = sums, table = table]() {
    if (dgp != nullptr && shape.batch * shape.points > 0) {
      int64_t work = 2 * shape.channels * taps * dims + 64;
      parallel_for(shape.batch * shape.points, grain(work), [&](int64_t b, int64_t e) {
        kernels.grid_gradient(cp, xp, gp, dgp, args, shape, b, e);
      });
    }
    if (sum_p == nullptr || shape.channels == 0) {
      return;
    }
    if (table) {
      parallel_for(shape.batch * shape.points, grain(taps * 16), [&](int64_t b, int64_t e) {
        kernels.tap_table(gp, table.get(), args, b, e);
      });
    }
    int64_t blocks = shape.batch * c_blocks * bands;
    parallel_for(blocks, 1, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        int64_t band = k % bands;
        int64_t cb = (k / bands) % c_blocks;
        int64_t n = k / (bands * c_blocks);
        int64_t r0 = rows * band / bands, r1 = rows * (band + 1) / bands;
        int64_t c0 = cb * c_block, c1 = std::min(shape.channels, c0 + c_block);
        kernels.scatter(cp, gp, table.get(), sum_p, args, shape, n, r0 * row, r1 * row, c0, c1);
      }
    });
    if (sum_p != dxp) {
      int64_t total = shape.batch * shape.pixels * shape.channels;
      parallel_for(total, GRAIN_ELEMENTS, [&](int64_t b, int64_t e) {
        kernels.convert(sum_p, dxp, b, e);
      });
    }
  });
}

} // namespace mlx_upsample::cpu
