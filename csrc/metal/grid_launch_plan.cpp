#include "metal/grid_launch_plan.h"

#include <algorithm>
#include <cstddef>
#include <stdexcept>

#include "memory_check.h"
#include "metal/launch_plan.h"
#include "metal/tap_tables.h"

namespace mlx_upsample::metal {

// The parameter blocks are set_bytes'd as they lie in host memory and read
// with Metal's layout rules: 4-byte fields only, so both give these sizes.
static_assert(sizeof(upsample::GridAxis) == 36, "Metal layout of GridAxis");
static_assert(sizeof(upsample::GridSampleArgs) == 12 + 3 * 36, "Metal layout of GridSampleArgs");
static_assert(
    offsetof(upsample::GridKernelParams, by_chunks) == 136,
    "Metal layout of GridKernelParams");
static_assert(sizeof(upsample::GridKernelParams) == 168, "Metal layout of GridKernelParams");
static_assert(sizeof(upsample::GridScanParams) == 4, "Metal layout of GridScanParams");

namespace {

// Point and pixel indices are 32-bit in the kernels; upsample::divide is
// exact below 2^31 (the points), a grid axis holds below 2^31 threads.
constexpr unsigned long long MAX_POINTS = 1ull << 31;
constexpr unsigned long long MAX_PIXELS = 1ull << 32;
constexpr unsigned long long MAX_GRID = 1ull << 31;

constexpr Access R = Access::Read;
constexpr Access W = Access::Write;
constexpr Access B = Access::Bytes;

unsigned long long product(const std::vector<int>& shape, size_t begin, size_t end) {
  unsigned long long n = 1;
  for (size_t d = begin; d < end; ++d) {
    n *= static_cast<unsigned long long>(shape[d]);
  }
  return n;
}

// A call's sizes as the kernels see them: every leading axis one batch.
struct Sizes {
  int dims;
  std::vector<int> spatial; // D, H, W or H, W
  unsigned long long batch;
  unsigned long long pixels; // per batch entry
  unsigned long long points; // per batch entry
  unsigned long long in_rows; //  batch x leading spatial axes of x
  unsigned long long out_rows; // of the grid
  int in_row; //  W
  int out_row; // Wo
  int channels;
  int taps; // per point
  std::string call;
};

int taps_per_point(const GridSampleParams& p, int dims) {
  int per_axis = p.mode == upsample::MODE_NEAREST ? 1 : p.mode == upsample::MODE_LINEAR ? 2 : 4;
  int taps = 1;
  for (int d = 0; d < dims; ++d) {
    taps *= per_axis;
  }
  return taps;
}

Sizes sizes_of(const GridCall& c, bool backward) {
  const std::vector<int>& x = c.x_shape;
  const std::vector<int>& g = c.grid_shape;
  if (g.empty() || (g.back() != 2 && g.back() != 3) || x.size() != g.size() ||
      x.size() < static_cast<size_t>(g.back()) + 2) {
    throw std::invalid_argument(
        "[grid_sample] the Metal launch plan needs x (*batch, *spatial, C) and a grid "
        "(*batch, *out_spatial, 2 or 3) of as many dims, got " + shape_text(x) + " and " +
        shape_text(g));
  }
  Sizes s{};
  s.dims = g.back();
  size_t lead = x.size() - s.dims - 1;
  for (size_t d = 0; d < lead; ++d) {
    if (x[d] != g[d]) {
      throw std::invalid_argument(
          "[grid_sample] x " + shape_text(x) + " and the grid " + shape_text(g) +
          " differ in their batch axes");
    }
  }
  s.spatial.assign(x.begin() + lead, x.end() - 1);
  s.batch = product(x, 0, lead);
  s.pixels = product(x, lead, x.size() - 1);
  s.points = product(g, lead, g.size() - 1);
  s.in_rows = product(x, 0, x.size() - 2);
  s.out_rows = product(g, 0, g.size() - 2);
  s.in_row = x[x.size() - 2];
  s.out_row = g[g.size() - 2];
  s.channels = x.back();
  validate(c.params, s.dims);
  s.taps = taps_per_point(c.params, s.dims);
  s.call = "[grid_sample] sampling " + shape_text(x) + " at " + shape_text(g) + " (" +
      c.params.describe(s.dims) + (backward ? ", backward" : "") + ") on the GPU";
  unsigned long long all_points = s.batch * s.points;
  unsigned long long all_pixels = s.batch * s.pixels;
  if (all_points >= MAX_POINTS) {
    throw std::invalid_argument(
        s.call + ": " + std::to_string(all_points) +
        " grid points, more than the 2**31 - 1 the Metal kernels index");
  }
  if (s.pixels >= MAX_POINTS || all_pixels >= MAX_PIXELS) {
    throw std::invalid_argument(
        s.call + ": " + std::to_string(all_pixels) + " input pixels (" +
        std::to_string(s.pixels) + " per batch entry), more than the 2**32 - 1 "
        "(2**31 - 1 per entry) the Metal kernels index");
  }
  if (backward && all_points * s.taps >= MAX_PIXELS) {
    throw std::invalid_argument(
        s.call + ": " + std::to_string(all_points) + " points of " + std::to_string(s.taps) +
        " taps, more than the 2**32 - 1 taps the input gradient's kernels index");
  }
  if (c.dtype != "float32" && c.dtype != "float16" && c.dtype != "bfloat16") {
    throw std::invalid_argument(
        "[grid_sample] the Metal kernels sample float32, float16 and bfloat16, not " +
        c.dtype);
  }
  return s;
}

bool aligned(long long offset, int vec, int elem_size) {
  return offset % (static_cast<long long>(vec) * elem_size) == 0;
}

// Channels per packet: a 4- or 2-vector where every packet of each array
// read is aligned, else 3 scalars when they divide the channels (an RGB
// pixel is one packet), else 1.
int packet_width(int channels, int elem_size, std::vector<long long> offsets) {
  for (int v : {4, 3, 2}) {
    bool ok = channels % v == 0;
    for (long long o : offsets) {
      ok = ok && (v == 3 || aligned(o, v, elem_size));
    }
    if (ok) {
      return v;
    }
  }
  return 1;
}

// The parameter block of a kernel over output points (`over_pixels` false)
// or input pixels, `vec` channels per packet.
upsample::GridKernelParams kernel_params(
    const GridCall& c,
    const Sizes& s,
    int vec,
    bool over_pixels) {
  upsample::GridKernelParams kp{};
  kp.args = grid_sample_args(c.params, s.spatial);
  kp.channels = static_cast<unsigned int>(s.channels);
  kp.packets = static_cast<unsigned int>(s.channels / vec);
  kp.chunk = std::max(
      1u, std::min(kp.packets, upsample::GRID_CHUNK_CHANNELS / static_cast<unsigned int>(vec)));
  kp.chunks = kp.packets == 0 ? 0 : (kp.packets + kp.chunk - 1) / kp.chunk;
  kp.by_chunks = magic_divisor(std::max(kp.chunks, 1u));
  kp.row = static_cast<unsigned int>(over_pixels ? s.in_row : s.out_row);
  kp.points = static_cast<unsigned int>(s.points);
  kp.by_points = magic_divisor(std::max(kp.points, 1u));
  kp.pixels = static_cast<unsigned int>(s.pixels);
  unsigned int shift = 0;
  while ((1 << shift) < s.taps) {
    ++shift;
  }
  kp.tap_shift = shift;
  return kp;
}

// A launch of `function` (named `kernel`) over x threads in each of y rows.
GridLaunch launch(
    const std::string& function,
    const std::string& kernel,
    unsigned long long x,
    unsigned long long y,
    const std::string& call) {
  if (x >= MAX_GRID || y >= MAX_GRID) {
    throw std::invalid_argument(
        call + ": too large for one Metal grid: " + std::to_string(y) + " rows of " +
        std::to_string(x) + " threads");
  }
  GridLaunch l{};
  l.kernel = kernel;
  l.function = function;
  for (const auto& [name, slots] : grid_kernel_buffers()) {
    if (name == function) {
      l.buffers = slots;
    }
  }
  l.grid[0] = static_cast<unsigned int>(x);
  l.grid[1] = static_cast<unsigned int>(y);
  l.grid[2] = 1;
  return l;
}

// "_2d_linear": the (dims, mode) of the kernels that compute taps.
std::string taps_suffix(const GridCall& c, int dims) {
  const char* mode = c.params.mode == upsample::MODE_NEAREST ? "nearest"
      : c.params.mode == upsample::MODE_LINEAR               ? "linear"
                                                             : "cubic";
  return "_" + std::to_string(dims) + "d_" + mode;
}

// "grid_sample_forward_float16_2d_linear_v4" (`suffix` the taps_suffix or
// none).
std::string typed(const std::string& base, const GridCall& c, const std::string& suffix, int vec) {
  return "grid_sample_" + base + "_" + c.dtype + suffix + "_v" + std::to_string(vec);
}

// Appends `l` unless its grid is empty (a dispatch of no threads).
void add(GridPlan& plan, GridLaunch l) {
  if (l.grid[0] > 0 && l.grid[1] > 0) {
    plan.launches.push_back(std::move(l));
  }
}

// The scan of the counts (level 0) into segment starts:
// sums of GRID_SCAN_BLOCK per level up to one block, the top spread, then
// each level below from the starts above it.
// plan.levels: the sizes of the levels above the counts.
void plan_scan(GridPlan& plan, const std::string& call) {
  std::vector<unsigned long long> sizes = {plan.counts};
  sizes.insert(sizes.end(), plan.levels.begin(), plan.levels.end());
  int top = static_cast<int>(sizes.size()) - 1;
  for (int k = 0; k < top; ++k) {
    GridLaunch l =
        launch("grid_sample_scan_reduce", "grid_sample_scan_reduce", sizes[k + 1], 1, call);
    l.level = k;
    l.scan.count = static_cast<unsigned int>(sizes[k]);
    add(plan, l);
  }
  GridLaunch t = launch("grid_sample_scan_top", "grid_sample_scan_top", 1, 1, call);
  t.level = top;
  t.scan.count = static_cast<unsigned int>(sizes[top]);
  add(plan, t);
  for (int k = top - 1; k >= 0; --k) {
    GridLaunch l =
        launch("grid_sample_scan_spread", "grid_sample_scan_spread", sizes[k + 1], 1, call);
    l.level = k;
    l.scan.count = static_cast<unsigned int>(sizes[k]);
    add(plan, l);
  }
}

} // namespace

const std::vector<std::pair<std::string, std::vector<GridSlot>>>& grid_kernel_buffers() {
  using A = GridArray;
  static const std::vector<std::pair<std::string, std::vector<GridSlot>>> table = {
      {"grid_forward", {{A::X, R}, {A::Grid, R}, {A::Out, W}, {A::Params, B}}},
      {"grid_tangent", {{A::X, R}, {A::Grid, R}, {A::Tangent, R}, {A::Out, W}, {A::Params, B}}},
      {"grid_grid_grad",
       {{A::X, R}, {A::Grid, R}, {A::Cotangent, R}, {A::Dgrid, W}, {A::Params, B}}},
      {"grid_sample_clear", {{A::Counts, W}, {A::Params, B}}},
      {"grid_sample_grid_zero", {{A::Dgrid, W}, {A::Params, B}}},
      {"grid_count", {{A::Grid, R}, {A::Counts, W}, {A::Params, B}}},
      {"grid_sample_scan_reduce", {{A::Level, R}, {A::UpperLevel, W}, {A::ScanParams, B}}},
      {"grid_sample_scan_top", {{A::Level, W}, {A::ScanParams, B}}},
      {"grid_sample_scan_spread", {{A::Level, W}, {A::UpperLevel, R}, {A::ScanParams, B}}},
      {"grid_fill", {{A::Grid, R}, {A::Counts, W}, {A::Entries, W}, {A::Params, B}}},
      {"grid_sample_sort", {{A::Counts, R}, {A::Entries, W}, {A::Params, B}}},
      {"grid_input_grad",
       {{A::Cotangent, R}, {A::Counts, R}, {A::Entries, R}, {A::Dx, W}, {A::Params, B}}},
  };
  return table;
}

double GridPlan::temporary_bytes() const {
  double words = double(counts);
  for (size_t n : levels) {
    words += double(n);
  }
  return 4.0 * words + 8.0 * double(entries);
}

GridPlan plan_grid_forward(const GridCall& c, bool tangent) {
  Sizes s = sizes_of(c, false);
  double out_bytes = double(s.batch * s.points) * s.channels * c.elem_size;
  check_memory(out_bytes, s.call, "its output");
  GridPlan plan;
  if (s.batch * s.points == 0 || s.channels == 0) {
    return plan;
  }
  if (s.pixels == 0) {
    throw std::invalid_argument(s.call + ": the input has no pixels to sample");
  }
  int vec = packet_width(s.channels, c.elem_size, {c.x_offset});
  std::string base = tangent ? "tangent" : "forward";
  upsample::GridKernelParams kp = kernel_params(c, s, vec, false);
  GridLaunch l = launch(
      "grid_" + base, typed(base, c, taps_suffix(c, s.dims), vec),
      static_cast<unsigned long long>(s.out_row) * kp.chunks, s.out_rows, s.call);
  l.params = kp;
  add(plan, l);
  return plan;
}

GridPlan plan_grid_backward(const GridCall& c, bool dx, bool dgrid) {
  Sizes s = sizes_of(c, true);
  unsigned long long all_points = s.batch * s.points;
  unsigned long long all_pixels = s.batch * s.pixels;
  GridPlan plan;
  bool taps_read = all_points > 0 && s.channels > 0;
  if (dx && all_pixels > 0 && s.channels > 0) {
    plan.counts = static_cast<size_t>(all_pixels);
    plan.entries = static_cast<size_t>(all_points * s.taps);
    const size_t block = upsample::GRID_SCAN_BLOCK;
    for (size_t n = plan.counts; n > block;) {
      n = (n + block - 1) / block;
      plan.levels.push_back(n);
    }
  }
  double outputs = (dx ? double(all_pixels) * s.channels * c.elem_size : 0.0) +
      (dgrid ? double(all_points) * s.dims * sizeof(float) : 0.0);
  check_memory(
      outputs + plan.temporary_bytes(),
      s.call,
      "its outputs and the input gradient's counts and entries");
  if (taps_read && s.pixels == 0) {
    throw std::invalid_argument(s.call + ": the input has no pixels to sample");
  }
  if (dgrid && all_points > 0 && c.params.mode == upsample::MODE_NEAREST) {
    GridLaunch l = launch(
        "grid_sample_grid_zero", "grid_sample_grid_zero", s.out_row, s.out_rows, s.call);
    l.params = kernel_params(c, s, 1, false);
    add(plan, l);
  } else if (dgrid && all_points > 0) {
    int vec = packet_width(s.channels, c.elem_size, {c.x_offset, c.cotangent_offset}) == 4 ? 4 : 1;
    GridLaunch l = launch(
        "grid_grid_grad", typed("grid_grad", c, taps_suffix(c, s.dims), vec), s.out_row,
        s.out_rows, s.call);
    l.params = kernel_params(c, s, vec, false);
    add(plan, l);
  }
  if (plan.counts == 0) {
    return plan;
  }
  // The dtype-free kernels: a thread per point, or per pixel, of the batch.
  upsample::GridKernelParams points = kernel_params(c, s, 1, false);
  upsample::GridKernelParams pixels = kernel_params(c, s, 1, true);
  auto over_pixels = [&](const char* name) {
    GridLaunch l = launch(name, name, s.in_row, s.in_rows, s.call);
    l.params = pixels;
    add(plan, l);
  };
  auto over_points = [&](const char* function, const std::string& base) {
    GridLaunch l = launch(
        function, "grid_sample_" + base + taps_suffix(c, s.dims), s.out_row, s.out_rows, s.call);
    l.params = points;
    add(plan, l);
  };
  over_pixels("grid_sample_clear");
  over_points("grid_count", "count");
  plan_scan(plan, s.call);
  over_points("grid_fill", "fill");
  over_pixels("grid_sample_sort");
  int vec = packet_width(s.channels, c.elem_size, {c.cotangent_offset});
  upsample::GridKernelParams sums = kernel_params(c, s, vec, true);
  GridLaunch sum = launch(
      "grid_input_grad", typed("input_grad", c, "", vec),
      static_cast<unsigned long long>(s.in_row) * sums.chunks, s.in_rows, s.call);
  sum.params = sums;
  add(plan, sum);
  return plan;
}

void fit_threadgroup(GridLaunch& launch, unsigned int max_threads_per_group) {
  fit_group(launch.grid, launch.group, max_threads_per_group);
}

} // namespace mlx_upsample::metal
