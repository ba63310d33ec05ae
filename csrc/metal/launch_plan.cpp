#include "metal/launch_plan.h"

#include <algorithm>
#include <stdexcept>

namespace mlx_upsample::metal {

namespace {

// Enough threads per group to hide memory latency; a pipeline may allow
// fewer (fit_threadgroup).
constexpr unsigned int THREADS_PER_GROUP = 256;

unsigned int round_up(unsigned long long n, unsigned int multiple) {
  unsigned long long r = (n + multiple - 1) / multiple * multiple;
  if (r > 0xFFFFFFFFull) {
    throw std::invalid_argument(
        "[upsample] the array is too large for one Metal grid");
  }
  return static_cast<unsigned int>(r);
}

unsigned int next_pow2(unsigned int n) {
  unsigned int p = 1;
  while (p < n) {
    p <<= 1;
  }
  return p;
}

unsigned int prev_pow2(unsigned int n) {
  unsigned int p = 1;
  while (2 * p <= n) {
    p <<= 1;
  }
  return p;
}

std::string kernel_name(
    int mode,
    bool backward,
    const std::string& dtype,
    int elem_size,
    int dims,
    int vec) {
  // Indexed by upsample::Mode.
  static const char* modes[] = {
      "nearest", "linear", "cubic", "aa_linear", "aa_cubic", "area"};
  std::string type = dtype;
  if (mode == upsample::MODE_NEAREST && !backward) {
    type = "u" + std::to_string(8 * elem_size);
  } else if (dtype != "float32" && dtype != "float16" && dtype != "bfloat16") {
    throw std::invalid_argument(
        "[upsample] the Metal kernels interpolate float32, float16 and "
        "bfloat16, not " + dtype);
  }
  std::string rank = dims <= 3 ? std::to_string(dims) + "d" : "nd";
  return std::string("upsample_") + modes[mode] + (backward ? "_bwd_" : "_fwd_") +
      type + "_" + rank + "_v" + std::to_string(vec);
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
  int channels = dst_shape.back();
  // A packet of 4 is one aligned vector load only if every packet starts on
  // a multiple of its size: the channels and the view's start must both be.
  bool aligned = src_offset % (4LL * elem_size) == 0;
  int vec = channels % 4 == 0 && aligned ? 4 : 1;

  LaunchPlan plan{};
  plan.kernel = kernel_name(mode, backward, dtype, elem_size, dims, vec);
  upsample::KernelParams& kp = plan.params;
  kp.dims = dims;
  kp.channels = channels;
  kp.channel_groups = static_cast<unsigned int>(channels / vec);
  unsigned long long positions = 1;
  for (int a = 0; a < dims; ++a) {
    kp.axes[a] = axis_map(p, a, in_shape[a + 1], out_shape[a + 1]);
    positions *= static_cast<unsigned long long>(dst_shape[a + 1]);
  }
  if (positions > 0xFFFFFFFFull) {
    throw std::invalid_argument(
        "[upsample] too many spatial positions for one Metal grid");
  }
  kp.positions = static_cast<unsigned int>(positions);

  plan.grid[0] = kp.channel_groups;
  plan.grid[1] = kp.positions;
  plan.grid[2] = static_cast<unsigned int>(dst_shape.front());
  return plan;
}

void fit_threadgroup(LaunchPlan& plan, unsigned int max_threads_per_group) {
  if (max_threads_per_group == 0) {
    throw std::invalid_argument("[upsample] the Metal kernel allows no threads");
  }
  // Neighbouring threads take neighbouring channel packets (coalesced); the
  // rest of the threadgroup spans neighbouring positions. Powers of two:
  // whole SIMD groups of 32 whenever the limit allows 32 threads or more.
  unsigned int threads = prev_pow2(std::min(THREADS_PER_GROUP, max_threads_per_group));
  unsigned int gx = std::min({next_pow2(plan.params.channel_groups), 64u, threads});
  unsigned int gy = threads / gx;
  plan.group[0] = gx;
  plan.group[1] = gy;
  plan.group[2] = 1;
  plan.grid[0] = round_up(plan.grid[0], gx);
  plan.grid[1] = round_up(plan.grid[1], gy);
}

} // namespace mlx_upsample::metal
