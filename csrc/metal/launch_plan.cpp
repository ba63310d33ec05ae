#include "metal/launch_plan.h"

#include <algorithm>
#include <cstddef>
#include <stdexcept>

#include "memory_check.h"

namespace mlx_upsample::metal {

// The parameter block is set_bytes'd as it lies in host memory and read by
// the kernels with Metal's layout rules (uint: 4 bytes, ulong: 8 bytes and
// 8-aligned, structs padded to their largest member). Both give these
// offsets; a field reordered, or a host whose `unsigned long` is not 64-bit,
// would make the GPU read other fields than the host wrote.
static_assert(sizeof(unsigned long) == 8, "kernel_params.h's ulong fields are 64-bit in Metal");
static_assert(sizeof(upsample::Divisor) == 8, "Metal layout of Divisor");
static_assert(offsetof(upsample::AxisParams, by_size) == 8, "Metal layout of AxisParams");
static_assert(offsetof(upsample::AxisParams, stride) == 16, "Metal layout of AxisParams");
static_assert(sizeof(upsample::AxisParams) == 24, "Metal layout of AxisParams");
static_assert(offsetof(upsample::KernelParams, by_packets) == 12, "Metal layout of KernelParams");
static_assert(offsetof(upsample::KernelParams, src_batch) == 24, "Metal layout of KernelParams");
static_assert(offsetof(upsample::KernelParams, axes) == 32, "Metal layout of KernelParams");
static_assert(
    sizeof(upsample::KernelParams) == 32 + 24 * upsample::MAX_DIMS,
    "Metal layout of KernelParams");

namespace {

// Enough threads per group to hide memory latency; a pipeline may allow
// fewer (fit_threadgroup).
constexpr unsigned int THREADS_PER_GROUP = 256;
// The kernels of rank 1-3 address a batch entry with 32-bit offsets.
constexpr unsigned long long MAX_NARROW_ELEMENTS = 1ull << 32;
// upsample::divide splits grid x and y exactly below 2^31.
constexpr unsigned long long MAX_GRID = 1ull << 31;
// The cost estimate that picks one launch or two: an M2-class GPU runs ~18
// instructions per byte it moves to or from memory (1.8e12 instructions/s
// against 100 GB/s; Apple scales both together across its GPUs), and a tap
// costs a table load, its weight, its address and V multiply-adds
// (bench/cost_model.py counts ~15 for V = 4).
constexpr double INSTRUCTIONS_PER_BYTE = 18.0;
// A launch's fixed cost (a few microseconds of dispatch and drain) as bytes
// moved in that time: small calls stay in one launch.
constexpr double LAUNCH_BYTES = 512.0 * 1024;

double tap_instructions(int vec) {
  return 3.0 + 3.0 * vec;
}

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

// Channels per thread: two 4-vectors, one 4-vector or a 2-vector where every
// packet is aligned to its vectors (the channels and the view's start), else
// 3 scalars when they divide the channels (an RGB pixel is one thread), else
// 1. A wider packet pays the table reads, weights and addresses of its taps
// once for more channels.
int packet_width(int channels, long long src_offset, int elem_size) {
  for (int v : {8, 4, 3, 2}) {
    long long vector = v == 8 ? 4 : v;
    bool aligned = v == 3 || src_offset % (vector * elem_size) == 0;
    if (channels % v == 0 && aligned) {
      return v;
    }
  }
  return 1;
}

// (*batch, *spatial, C) as the kernels see it, (N, *spatial, C): the leading
// axes of a row-contiguous array are one batch axis of their product. A
// batch of 2**31 or more would not fit a grid (one row per batch entry at
// least).
std::vector<int> fold_batch(const std::vector<int>& shape, int dims) {
  size_t lead = shape.size() - dims - 1;
  unsigned long long batch = product(shape, 0, lead);
  if (batch >= MAX_GRID) {
    throw std::invalid_argument(
        "[upsample] too large for one Metal grid: " + shape_text(shape) + " has " +
        std::to_string(batch) + " batch entries (the product of its " +
        std::to_string(lead) + " leading axes), more than the 2**31 - 1 rows of a grid");
  }
  std::vector<int> folded = {static_cast<int>(batch)};
  folded.insert(folded.end(), shape.begin() + lead, shape.end());
  return folded;
}

void check_float(const std::string& dtype) {
  if (dtype != "float32" && dtype != "float16" && dtype != "bfloat16") {
    throw std::invalid_argument(
        "[upsample] the Metal kernels interpolate float32, float16 and "
        "bfloat16, not " + dtype);
  }
}

// One launch, and what the cost estimate needs of it.
struct Planned {
  Launch launch;
  double cost; // max(instructions / INSTRUCTIONS_PER_BYTE, bytes moved) + LAUNCH_BYTES
};

// The launch that resamples every spatial axis of `src_shape` into
// `dst_shape` (both (batch, *spatial, channels) as the kernel sees them),
// axis a along axes[a]. `in_type` / `out_type` name the element types read
// and written ("u<bits>" for a copy), `in_bytes` / `out_bytes` their sizes.
Planned plan_gather(
    const std::vector<AxisGather>& axes,
    bool copy,
    const std::vector<int>& src_shape,
    const std::vector<int>& dst_shape,
    const std::string& in_type,
    const std::string& out_type,
    int in_bytes,
    int out_bytes,
    long long src_offset,
    Buffer reads,
    Buffer writes) {
  int dims = static_cast<int>(axes.size());
  int channels = dst_shape.back();
  int vec = packet_width(channels, src_offset, in_bytes);
  unsigned long long src_batch = product(src_shape, 1, src_shape.size());
  unsigned long long rows = product(dst_shape, 0, dst_shape.size() - 2);
  unsigned long long row_threads =
      static_cast<unsigned long long>(dst_shape[dims]) * (channels / vec);
  if (rows >= MAX_GRID || row_threads >= MAX_GRID) {
    throw std::invalid_argument(
        "[upsample] too large for one Metal grid: " + std::to_string(rows) +
        " rows (batch x leading spatial positions) of " + std::to_string(row_threads) +
        " threads");
  }
  bool narrow = dims <= 3 && src_batch < MAX_NARROW_ELEMENTS;
  std::string types = in_type == out_type ? in_type : in_type + "_" + out_type;

  Planned planned{};
  Launch& l = planned.launch;
  l.kernel = std::string("upsample_") + (copy ? "copy_" : "gather_") + types + "_" +
      (narrow ? std::to_string(dims) + "d" : std::string("nd")) + "_v" +
      std::to_string(vec);
  l.reads = reads;
  l.writes = writes;
  upsample::KernelParams& kp = l.params;
  kp.dims = dims;
  kp.channels = static_cast<unsigned int>(channels);
  kp.packets = static_cast<unsigned int>(channels / vec);
  kp.by_packets = magic_divisor(std::max(kp.packets, 1u));
  kp.src_batch = src_batch;
  double taps_per_element = 1.0;
  for (int a = 0; a < dims; ++a) {
    upsample::AxisParams& ap = kp.axes[a];
    unsigned long long stride = product(src_shape, a + 2, src_shape.size());
    ap.size = static_cast<unsigned int>(dst_shape[a + 1]);
    ap.by_size = magic_divisor(ap.size);
    ap.stride = stride;
    uint32_t before = l.table.size();
    ap.rows = append_axis(l.table, axes[a], narrow ? stride : 1);
    double taps = double(l.table.size() - before - ap.size);
    taps_per_element *= taps / ap.size;
  }
  l.grid[0] = static_cast<unsigned int>(row_threads);
  l.grid[1] = static_cast<unsigned int>(rows);
  l.grid[2] = 1;

  double dst_elements = double(product(dst_shape, 0, dst_shape.size()));
  double instructions = dst_elements / vec * taps_per_element * tap_instructions(vec);
  double bytes = double(product(src_shape, 0, src_shape.size())) * in_bytes +
      dst_elements * out_bytes + double(l.table.bytes());
  planned.cost = std::max(instructions / INSTRUCTIONS_PER_BYTE, bytes) + LAUNCH_BYTES;
  return planned;
}

// Refuses, before any table is built, a call whose one-launch table (every
// axis: the largest of any launch) would hold more than MAX_TABLE_WORDS, or
// whose tables, temporary and output would exceed MLX's memory limit. The
// tables count twice: the plan holds a one-launch and a two-launch version
// while it compares them, and eval_gpu copies the chosen one into a buffer
// (while the builder holds its largest piece).
void check_metal_resources(
    const UpsampleParams& p,
    bool backward,
    const std::vector<AxisGather>& axes,
    const std::vector<int>& src_shape,
    const std::vector<int>& dst_shape,
    int elem_size,
    double temporary_bytes) {
  uint64_t words = 0;
  double piece_bytes = 0;
  std::string sizes;
  for (const AxisGather& axis : axes) {
    words += axis_words_bound(axis);
    piece_bytes = std::max(piece_bytes, append_axis_piece_bytes(axis));
    sizes += (sizes.empty() ? "" : ", ") + std::to_string(axis.map.in_size) + " -> " +
        std::to_string(axis.map.out_size);
  }
  std::string call = "[upsample] resampling " + shape_text(src_shape) + " to " +
      shape_text(dst_shape) + " (" + p.describe() + (backward ? ", backward" : "") +
      ") on the GPU";
  if (words > MAX_TABLE_WORDS) {
    throw std::invalid_argument(
        call + ": spatial axes " + sizes + " need a Metal tap table of up to " +
        std::to_string(words) + " 32-bit words, more than the 2**31 - 1 a table holds");
  }
  double output_bytes = double(product(dst_shape, 0, dst_shape.size())) * elem_size;
  check_memory(
      2.0 * words * sizeof(uint32_t) + piece_bytes + temporary_bytes + output_bytes,
      call,
      "its tap tables, temporary and output");
}

} // namespace

LaunchPlan plan_launch(
    const UpsampleParams& p,
    bool backward,
    const std::vector<int>& src_batch_shape,
    const std::vector<int>& dst_batch_shape,
    const std::string& dtype,
    int elem_size,
    long long src_offset,
    Passes passes) {
  int dims = p.spatial_dims();
  if (dims > upsample::MAX_DIMS) {
    throw std::invalid_argument(
        "[upsample] the Metal kernels support up to " +
        std::to_string(upsample::MAX_DIMS) + " spatial dims, got " +
        std::to_string(dims));
  }
  for (const std::vector<int>* shape : {&src_batch_shape, &dst_batch_shape}) {
    if (static_cast<int>(shape->size()) < dims + 2) {
      throw std::invalid_argument(
          "[upsample] the Metal launch plan needs shapes of at least " +
          std::to_string(dims + 2) + " dims (N, *spatial, C), got " + shape_text(*shape));
    }
  }
  const std::vector<int> src_shape = fold_batch(src_batch_shape, dims);
  const std::vector<int> dst_shape = fold_batch(dst_batch_shape, dims);
  if (elem_size != 1 && elem_size != 2 && elem_size != 4 && elem_size != 8) {
    throw std::invalid_argument("[upsample] unsupported element size");
  }
  const std::vector<int>& in_shape = backward ? dst_shape : src_shape;
  const std::vector<int>& out_shape = backward ? src_shape : dst_shape;
  const std::vector<AxisGather> axes = gather_axes(
      p,
      backward,
      std::vector<int>(in_shape.begin() + 1, in_shape.end() - 1),
      std::vector<int>(out_shape.begin() + 1, out_shape.end() - 1));
  bool copy = axes[0].copies();
  std::string type = copy ? "u" + std::to_string(8 * elem_size) : dtype;
  if (!copy) {
    check_float(dtype);
  }
  bool identity = true;
  for (const AxisGather& axis : axes) {
    identity = identity && is_identity_axis(axis);
  }
  if (identity) {
    return {};
  }
  // The first of two launches sees a row of the last axis as its channels.
  unsigned long long last_row = product(src_shape, dims, dims + 2);
  unsigned long long first_row_threads = last_row * (dims > 1 ? dst_shape[dims - 1] : 1);
  bool one_only =
      copy || dims < 2 || passes == Passes::One || first_row_threads >= MAX_GRID;
  // Two launches go through a float32 temporary (N, dst's leading axes,
  // src's last axis, C).
  int last = dims;
  double temporary_bytes = one_only
      ? 0.0
      : double(product(dst_shape, 0, last)) * src_shape[last] * dst_shape.back() *
          sizeof(float);
  check_metal_resources(
      p, backward, axes, src_batch_shape, dst_batch_shape, elem_size, temporary_bytes);
  Planned one = plan_gather(
      axes, copy, src_shape, dst_shape, type, type, elem_size, elem_size, src_offset,
      Buffer::Source, Buffer::Destination);
  if (one_only) {
    return {{one.launch}, {}};
  }

  // The leading axes first, treating the last axis and the channels as one
  // row of channels, then the last axis of every row.
  int row_channels = static_cast<int>(last_row);
  std::vector<int> src_a(src_shape.begin(), src_shape.begin() + last);
  src_a.push_back(row_channels);
  std::vector<int> tmp_a(dst_shape.begin(), dst_shape.begin() + last);
  tmp_a.push_back(row_channels);
  int rows = static_cast<int>(product(dst_shape, 0, last));
  int channels = dst_shape.back();
  std::vector<int> tmp_b = {rows, src_shape[last], channels};
  std::vector<int> dst_b = {rows, dst_shape[last], channels};
  Planned lead = plan_gather(
      std::vector<AxisGather>(axes.begin(), axes.end() - 1), false, src_a, tmp_a, type,
      "float32", elem_size, 4, src_offset, Buffer::Source, Buffer::Temporary);
  Planned rest = plan_gather(
      {axes.back()}, false, tmp_b, dst_b, "float32", type, 4, elem_size, 0,
      Buffer::Temporary, Buffer::Destination);
  if (passes == Passes::Two || lead.cost + rest.cost < one.cost) {
    return {{lead.launch, rest.launch}, tmp_b};
  }
  return {{one.launch}, {}};
}

size_t LaunchPlan::temporary_bytes() const {
  return temporary_shape.empty() ? 0 : size_t(product(temporary_shape, 0, 3)) * 4;
}

void fit_threadgroup(Launch& launch, unsigned int max_threads_per_group) {
  fit_group(launch.grid, launch.group, max_threads_per_group);
}

void fit_group(
    const unsigned int grid[3],
    unsigned int group[3],
    unsigned int max_threads_per_group) {
  if (max_threads_per_group == 0) {
    throw std::invalid_argument("[upsample] the Metal kernel allows no threads");
  }
  // Along a row first (neighbouring packets, then positions: a SIMD group
  // reads and writes neighbouring memory), then across rows. A power of two:
  // whole SIMD groups of 32 whenever the limit allows 32 threads or more and
  // the row is long enough.
  unsigned int threads = prev_pow2(std::min(THREADS_PER_GROUP, max_threads_per_group));
  unsigned int gx = std::max(1u, std::min(grid[0], threads));
  unsigned int gy = std::max(1u, std::min(grid[1], threads / gx));
  group[0] = gx;
  group[1] = gy;
  group[2] = 1;
}

} // namespace mlx_upsample::metal
