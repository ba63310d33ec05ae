#include "cpu/upsample_cpu.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>


#include "cpu/allocate.h"
#include "cpu/isa.h"
#include "cpu/separable_gather.h"
#include "cpu/thread_pool.h"
#include "cpu/uint8_resample.h"
#include "gather_table.h"
#include "memory_check.h"
#include "mlx/allocator.h"
#include "mlx/backend/cpu/encoder.h"

namespace mlx_upsample::cpu {

namespace mx = mlx::core;

namespace {

// Nearest forward in one pass, exact for every dtype. A row is the output's
// last spatial axis times the channels; rows that read the same input row as
// a row written just before (1 row in 2 when upsampling an image by 2, 3 in
// 4 for a volume) are copied from it (nearest_forward.inc).
// The tables (KernelTables: whole ones hold the source of each output) and
// sizes of one call.
struct NearestPlan : KernelTables {
  int64_t channels;
  int64_t elem_bytes;
  std::vector<int> in_sizes;
  std::vector<int> out_sizes;
  // k > 0: output o of the last axis is input o / k and its pixels are 1, 2,
  // 4 or 8 bytes, copied with wide stores (nearest_replicate.inc).
  int64_t replicate = 0;
};

namespace baseline {
#include "cpu/nearest_forward.inc"
} // namespace baseline

#ifdef UPSAMPLE_AVX2_DISPATCH
UPSAMPLE_AVX2_BEGIN
namespace avx2 {
#include "cpu/nearest_forward.inc"
} // namespace avx2
UPSAMPLE_AVX2_END
#endif

// Arrays are (*batch, *spatial, C), row-contiguous: the kernels see the
// leading axes as one batch axis of their product, which may exceed 2**31
// (vmap adds its axis in front) and is kept in 64 bits.
int batch_axes(const mx::array& a, int dims) {
  return a.ndim() - dims - 1;
}

int64_t batch_size(const mx::array& a, int dims) {
  int64_t n = 1;
  for (int d = 0; d < batch_axes(a, dims); ++d) {
    n *= a.shape(d);
  }
  return n;
}

std::vector<int> spatial_sizes(const mx::array& a, int dims) {
  return std::vector<int>(a.shape().end() - 1 - dims, a.shape().end() - 1);
}

bool all_identity(
    const mx::array& src,
    const mx::array& dst,
    const std::vector<GatherTable>& tables) {
  int dims = static_cast<int>(tables.size());
  std::vector<int> from = spatial_sizes(src, dims), to = spatial_sizes(dst, dims);
  for (int a = 0; a < dims; ++a) {
    if (from[a] != to[a] || !tables[a].is_identity()) {
      return false;
    }
  }
  return true;
}

// Starts the kernels' threads, allocates dst and enqueues task(src data,
// dst data) on the stream. `call` names the call in errors.
template <typename Task>
void enqueue(
    const mx::array& src,
    mx::array& dst,
    mx::Stream s,
    const std::string& call,
    Task task) {
  prepare_threads();
  allocate(dst, call);
  auto& encoder = mx::cpu::get_command_encoder(s);
  encoder.set_input_array(src);
  encoder.set_output_array(dst);
  const void* in = src.data<void>();
  void* out = dst.data<void>();
  encoder.dispatch([task, in, out]() { task(in, out); });
}

// Pixels of `bytes` that nearest_replicate.inc copies as one word.
bool word_pixel(int64_t bytes) {
  return bytes == 1 || bytes == 2 || bytes == 4 || bytes == 8;
}

// The last axis of a nearest forward replicates by its rule: output o is
// input o / factor. Its table is then not built (for a 1-D x300 building it
// would cost more than the copy).
bool replicates_by_rule(const AxisGather& last, int64_t channels, mx::Dtype dtype) {
  return last.copies() && last.map.rule == upsample::RULE_NEAREST_REPLICATE &&
      last.map.factor > 1 && word_pixel(channels * mx::size_of(dtype));
}

// k if output o of the last axis reads input o / k (an integer scale k, by
// its rule or by its table) and a pixel is a word of 1, 2, 4 or 8 bytes;
// else 0.
int64_t replication_factor(const NearestPlan& plan, const upsample::AxisMap& last) {
  if (!word_pixel(plan.channels * plan.elem_bytes)) {
    return 0;
  }
  int64_t n = plan.in_sizes.back(), m = plan.out_sizes.back();
  if (m % n != 0 || m == n) {
    return 0;
  }
  int64_t k = m / n;
  if (last.rule == upsample::RULE_NEAREST_REPLICATE && last.factor == k) {
    return k;
  }
  if (plan.build == TableBuild::InPieces) {
    return 0;
  }
  const GatherTable& t = plan.tables.back();
  for (int64_t o = 0; o < m; ++o) {
    if (t.index[o] != o / k) {
      return 0;
    }
  }
  return k;
}

// Enqueues the kernel that `tables` are for: the nearest forward copies
// elements (nearest_forward.inc), every other pass is a separable gather
// (separable_gather.h). `last` is the last spatial axis; `checked_bytes`
// what check_cpu_resources counted, to which the kernel's reordered table or
// image tiles add (separable_gather.h).
void run_kernel(
    const mx::array& src,
    mx::array& dst,
    KernelTables tables,
    const upsample::AxisMap& last,
    double checked_bytes,
    mx::Stream s,
    const std::string& call) {
  const int dims = tables.spatial_dims();
  if (tables.axis.copies()) {
    auto plan = std::make_shared<NearestPlan>();
    plan->channels = dst.shape(-1);
    plan->elem_bytes = mx::size_of(src.dtype());
    plan->in_sizes = spatial_sizes(src, dims);
    plan->out_sizes = spatial_sizes(dst, dims);
    static_cast<KernelTables&>(*plan) = std::move(tables);
    plan->replicate = replication_factor(*plan, last);
    int64_t rows = dst.size() / (int64_t(plan->out_sizes.back()) * plan->channels);
    enqueue(src, dst, s, call, [plan, rows](const void* in, void* out) {
      UPSAMPLE_ISA_KERNEL(nearest_forward)(in, out, *plan, rows);
    });
    return;
  }
  SeparableGatherKernel kernel = separable_gather_kernel(src.dtype());
  auto plan = std::make_shared<SeparableGather>();
  plan->batch = batch_size(src, dims);
  plan->channels = src.shape(-1);
  plan->src_sizes = spatial_sizes(src, dims);
  plan->dst_sizes = spatial_sizes(dst, dims);
  static_cast<KernelTables&>(*plan) = std::move(tables);
  if (plan->build == TableBuild::Whole) {
    check_memory(
        checked_bytes + kernel_extra_bytes(*plan), call,
        "its gather tables, output and buffers");
    try {
      prepare_last_table(*plan);
    } catch (const std::bad_alloc&) {
      throw OutOfMemory(call + ": out of memory while reordering its last gather table");
    }
  }
  enqueue(src, dst, s, call, [kernel, plan](const void* in, void* out) {
    kernel(in, out, *plan);
  });
}

std::string shape_text(const mx::array& a) {
  return mlx_upsample::shape_text(std::vector<int>(a.shape().begin(), a.shape().end()));
}

// A call is refused before any table is built or its output allocated
// when a table would have more entries than the kernels' int indices
// address, or when tables, output and the kernels' row buffers together
// would exceed MLX's memory limit: Linux hands out address space freely and
// would rather kill the process half-way through zero-filling the tables
// than fail the allocation.
// A table built in pieces costs a piece per thread, next to nothing, and
// has no whole-table entry count. `src` is the array the kernel reads,
// `dst` the one this call allocates (backward, the output's cotangent and
// the input's), `held_bytes` what the call holds besides (upsample_cpu.h).
// Returns the bytes counted.
double check_cpu_resources(
    const mx::array& src,
    const mx::array& dst,
    const std::vector<AxisGather>& axes,
    TableBuild build,
    const UpsampleParams& p,
    double held_bytes,
    const std::string& call) {
  double bytes = held_bytes + static_cast<double>(dst.nbytes());
  for (size_t a = 0; a < (build == TableBuild::InPieces ? 0 : axes.size()); ++a) {
    int64_t entries = table_entries_bound(axes[a]);
    if (entries > INT_MAX) {
      throw std::invalid_argument(
          "[upsample] resampling spatial axis " + std::to_string(a) +
          " from " + std::to_string(axes[a].map.in_size) + " to " +
          std::to_string(axes[a].map.out_size) + " (" + p.describe() +
          ") needs a gather table of up to " + std::to_string(entries) +
          " entries, more than the 2**31 - 1 the CPU kernels index");
    }
    bytes += table_bytes_bound(axes[a]);
  }
  if (!axes[0].copies()) {
    // Each thread blends into float32 buffers of the source's inner slabs
    // (separable_gather.inc).
    // One per spatial axis but the first.
    std::vector<int> sizes = spatial_sizes(src, static_cast<int>(axes.size()));
    double slab = static_cast<double>(src.shape(-1));
    double buffers = 0;
    for (int a = static_cast<int>(sizes.size()) - 1; a >= 1; --a) {
      slab *= sizes[a];
      buffers += slab;
    }
    bytes += buffers * sizeof(float) * num_threads();
  }
  check_memory(bytes, call, "its gather tables, output and buffers");
  return bytes;
}

// interpolate on uint8 (uint8_resample.h): PyTorch's fixed-point passes.
void run_uint8_resample(
    const mx::array& src,
    mx::array& dst,
    const UpsampleParams& p,
    double held_bytes,
    mx::Stream s,
    const std::string& call) {
  std::vector<int> src_sizes = spatial_sizes(src, p.spatial_dims());
  std::vector<int> dst_sizes = spatial_sizes(dst, p.spatial_dims());
  if (src_sizes == dst_sizes) {
    dst.copy_shared_buffer(src);
    return;
  }
  int64_t batch = batch_size(src, p.spatial_dims()), channels = src.shape(-1);
  // The output, the two arrays the passes alternate between (PyTorch's
  // passes round to uint8 in between) and the weight tables: per output a
  // first and a count, a row of int16 weights and, while they are built, of
  // doubles; a row holds up to 2 ceil(r * max(1, N/M)) + 1 taps.
  std::array<int64_t, 2> buffer_bytes =
      uint8_buffer_bytes(batch, channels, src_sizes, dst_sizes);
  double bytes = held_bytes + double(dst.nbytes()) + double(buffer_bytes[0]) +
      double(buffer_bytes[1]);
  double radius =
      p.mode == upsample::MODE_LINEAR || p.mode == upsample::MODE_AA_LINEAR ? 1 : 2;
  for (int a = 0; a < p.spatial_dims(); ++a) {
    double taps = 2 * std::ceil(radius * std::max(1.0, double(src_sizes[a]) / dst_sizes[a])) + 1;
    bytes += double(dst_sizes[a]) * (2 * sizeof(int) + taps * (sizeof(int16_t) + sizeof(double)));
  }
  check_memory(bytes, call, "its output, intermediate passes and weights");
  // Weights and intermediate arrays are allocated here, before the work is
  // enqueued: a std::bad_alloc in the stream's worker would only reach the
  // caller as a RuntimeError without the call's name. Uninitialised: every
  // byte is written by a pass before the next reads it.
  struct Work {
    std::vector<FixedPointAxis> axes;
    std::unique_ptr<uint8_t[]> buffers[2];
  };
  auto work = std::make_shared<Work>();
  try {
    for (int a = 0; a < p.spatial_dims(); ++a) {
      work->axes.push_back(
          src_sizes[a] == dst_sizes[a]
              ? FixedPointAxis{}
              : fixed_point_axis(p, a, src_sizes[a], dst_sizes[a]));
    }
    for (int k = 0; k < 2; ++k) {
      if (buffer_bytes[k] > 0) {
        work->buffers[k].reset(new uint8_t[size_t(buffer_bytes[k])]);
      }
    }
  } catch (const std::bad_alloc&) {
    throw OutOfMemory(
        call + ": out of memory for its intermediate passes and weights (" +
        bytes_text(bytes - double(dst.nbytes())) + ")");
  }
  enqueue(src, dst, s, call, [=](const void* in, void* out) {
    uint8_t* const buffers[2] = {work->buffers[0].get(), work->buffers[1].get()};
    uint8_resample(
        static_cast<const uint8_t*>(in), static_cast<uint8_t*>(out), batch,
        channels, src_sizes, dst_sizes, work->axes, buffers);
  });
}

// Tables up to this size are built whole before the kernel runs. A larger
// one of a 1-D resampling is built in pieces while gathering, so that the
// call allocates its output and little else: whole, the table of a 1-D cubic
// upsample takes 8 times the float32 output (index and weight of 4 taps per
// output), of a uint8 nearest one 4 times. With more spatial dims a table is
// that large next to the output only when a long last axis has very few rows
// (say (1, 1, L, C)); such calls still build whole tables.
constexpr int64_t WHOLE_TABLE_BYTES = 1 << 20;

} // namespace

void upsample(
    const mx::array& src,
    mx::array& dst,
    const UpsampleParams& p,
    mx::Stream s,
    bool backward,
    double held_bytes) {
  if (dst.size() == 0) {
    // Empty batch or no channels: nothing to compute.
    dst.set_data(mx::allocator::malloc(0));
    return;
  }
  const mx::array& input_side = backward ? dst : src;
  const mx::array& output_side = backward ? src : dst;
  bool uint8 = !backward && src.dtype() == mx::uint8 && keeps_uint8(p);
  std::string call = "[upsample] resampling " + shape_text(input_side) + " to " +
      shape_text(output_side) + " (" + p.describe() + (backward ? ", backward" : "") +
      (uint8 ? ", uint8" : "") + ") on the CPU";
  if (uint8) {
    run_uint8_resample(src, dst, p, held_bytes, s, call);
    return;
  }
  std::vector<AxisGather> axes = gather_axes(
      p,
      backward,
      spatial_sizes(input_side, p.spatial_dims()),
      spatial_sizes(output_side, p.spatial_dims()));
  TableBuild build = axes.size() == 1 && table_bytes_bound(axes[0]) > WHOLE_TABLE_BYTES
      ? TableBuild::InPieces
      : TableBuild::Whole;
  const double checked_bytes = check_cpu_resources(src, dst, axes, build, p, held_bytes, call);
  if (build == TableBuild::InPieces) {
    if (is_identity_axis(axes[0])) {
      dst.copy_shared_buffer(src);
    } else {
      run_kernel(src, dst, {build, {}, axes[0]}, axes[0].map, checked_bytes, s, call);
    }
    return;
  }
  std::vector<GatherTable> tables;
  try {
    for (const AxisGather& axis : axes) {
      bool skip = &axis == &axes.back() &&
          replicates_by_rule(axis, src.shape(-1), src.dtype());
      tables.push_back(skip ? GatherTable{} : build_table(axis));
    }
  } catch (const std::bad_alloc&) {
    // Within MLX's memory limit, but not available right now.
    throw OutOfMemory(
        "[upsample] out of memory while building the gather tables for " +
        shape_text(input_side) + " -> " + shape_text(output_side) + " (" +
        p.describe() + ")");
  }
  if (all_identity(src, dst, tables)) {
    dst.copy_shared_buffer(src);
  } else {
    run_kernel(
        src, dst, {build, std::move(tables), axes[0]}, axes.back().map, checked_bytes, s,
        call);
  }
}

} // namespace mlx_upsample::cpu
