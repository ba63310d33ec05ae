#include "metal/launch_plan.h"

#include <algorithm>
#include <stdexcept>

namespace mlx_upsample::metal {

namespace {

// Enough threads per group to hide memory latency; a pipeline may allow
// fewer (fit_threadgroup).
constexpr unsigned int THREADS_PER_GROUP = 256;
// The kernels of rank 1-3 address a batch entry with 32-bit offsets.
constexpr unsigned long long MAX_NARROW_ELEMENTS = 1ull << 32;
// upsample::divide splits grid z exactly below 2^31.
constexpr unsigned long long MAX_GRID_ROWS = 1ull << 31;

unsigned int prev_pow2(unsigned int n) {
  unsigned int p = 1;
  while (2 * p <= n) {
    p <<= 1;
  }
  return p;
}

unsigned long long product(const std::vector<int>& shape, size_t begin, size_t end) {
  unsigned long long n = 1;
  for (size_t d = begin; d < end; ++d) {
    n *= static_cast<unsigned long long>(shape[d]);
  }
  return n;
}

// Channels per thread: one vector of 4 or 2 where every packet is aligned to
// its size (the channels and the view's start), else 3 scalars when they
// divide the channels (an RGB pixel is one thread), else 1. Lanes stay dense
// for any channel count: the threadgroup spans exactly the packets of a
// position and then the next positions.
int packet_width(int channels, long long src_offset, int elem_size) {
  for (int v : {4, 3, 2}) {
    bool aligned = v == 3 || src_offset % (static_cast<long long>(v) * elem_size) == 0;
    if (channels % v == 0 && aligned) {
      return v;
    }
  }
  return 1;
}

std::string type_name(bool copy, const std::string& dtype, int elem_size) {
  if (copy) {
    return "u" + std::to_string(8 * elem_size);
  }
  if (dtype != "float32" && dtype != "float16" && dtype != "bfloat16") {
    throw std::invalid_argument(
        "[upsample] the Metal kernels interpolate float32, float16 and "
        "bfloat16, not " + dtype);
  }
  return dtype;
}

} // namespace

LaunchPlan plan_launch(
    const UpsampleParams& p,
    bool backward,
    const std::vector<int>& src_shape,
    const std::vector<int>& dst_shape,
    const std::string& dtype,
    int elem_size,
    long long src_offset) {
  int dims = p.spatial_dims();
  if (dims > upsample::MAX_DIMS) {
    throw std::invalid_argument(
        "[upsample] the Metal kernels support up to " +
        std::to_string(upsample::MAX_DIMS) + " spatial dims, got " +
        std::to_string(dims));
  }
  if (elem_size != 1 && elem_size != 2 && elem_size != 4 && elem_size != 8) {
    throw std::invalid_argument("[upsample] unsupported element size");
  }
  const std::vector<int>& in_shape = backward ? dst_shape : src_shape;
  const std::vector<int>& out_shape = backward ? src_shape : dst_shape;
  int mode = kernel_mode(p.method);
  bool copy = mode == upsample::MODE_NEAREST && !backward;
  int channels = dst_shape.back();
  int vec = packet_width(channels, src_offset, elem_size);
  unsigned long long src_batch = product(src_shape, 1, src_shape.size());
  unsigned long long rows = product(dst_shape, 0, dst_shape.size() - 2);
  if (rows >= MAX_GRID_ROWS) {
    throw std::invalid_argument(
        "[upsample] too many rows (batch x leading spatial positions) for one "
        "Metal grid: " + std::to_string(rows));
  }
  bool narrow = dims <= 3 && src_batch < MAX_NARROW_ELEMENTS;

  LaunchPlan plan{};
  plan.kernel = std::string("upsample_") + (copy ? "copy_" : "gather_") +
      type_name(copy, dtype, elem_size) + "_" +
      (narrow ? std::to_string(dims) + "d" : std::string("nd")) + "_v" +
      std::to_string(vec);
  upsample::KernelParams& kp = plan.params;
  kp.dims = dims;
  kp.channels = static_cast<unsigned int>(channels);
  kp.src_batch = src_batch;
  for (int a = 0; a < dims; ++a) {
    upsample::AxisParams& ap = kp.axes[a];
    unsigned long long stride = product(src_shape, a + 2, src_shape.size());
    ap.size = static_cast<unsigned int>(dst_shape[a + 1]);
    ap.by_size = magic_divisor(ap.size);
    ap.stride = stride;
    ap.rows = append_axis(
        plan.table,
        axis_map(p, a, in_shape[a + 1], out_shape[a + 1]),
        mode,
        backward,
        narrow ? stride : 1);
  }
  plan.grid[0] = static_cast<unsigned int>(channels / vec);
  plan.grid[1] = static_cast<unsigned int>(dst_shape[dims]);
  plan.grid[2] = static_cast<unsigned int>(rows);
  return plan;
}

void fit_threadgroup(LaunchPlan& plan, unsigned int max_threads_per_group) {
  if (max_threads_per_group == 0) {
    throw std::invalid_argument("[upsample] the Metal kernel allows no threads");
  }
  // Neighbouring threads take a position's channel packets, then the next
  // positions along the last axis, then the next rows: no idle lanes between
  // positions whatever the channel count, and a SIMD group reads and writes
  // neighbouring memory. At most a power of two of threads, so that a group
  // holds whole SIMD groups when it spans whole rows.
  unsigned int threads = prev_pow2(std::min(THREADS_PER_GROUP, max_threads_per_group));
  unsigned int gx = std::max(1u, std::min(plan.grid[0], threads));
  unsigned int gy = std::max(1u, std::min(plan.grid[1], threads / gx));
  unsigned int gz = std::max(1u, std::min(plan.grid[2], threads / (gx * gy)));
  plan.group[0] = gx;
  plan.group[1] = gy;
  plan.group[2] = gz;
}

} // namespace mlx_upsample::metal
