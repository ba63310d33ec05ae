#include "metal/launch_plan.h"

#include <algorithm>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <utility>

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
static_assert(offsetof(upsample::KernelParams, batch_inner) == 20, "Metal layout of KernelParams");
static_assert(offsetof(upsample::KernelParams, src_batch) == 24, "Metal layout of KernelParams");
static_assert(offsetof(upsample::KernelParams, src_channel) == 32, "Metal layout of KernelParams");
static_assert(offsetof(upsample::KernelParams, src_batch_inner) == 40, "Metal layout of KernelParams");
static_assert(offsetof(upsample::KernelParams, by_batch_inner) == 48, "Metal layout of KernelParams");
static_assert(offsetof(upsample::KernelParams, axes) == 56, "Metal layout of KernelParams");
static_assert(
    sizeof(upsample::KernelParams) == 56 + 24 * upsample::MAX_DIMS,
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

std::vector<int64_t> row_strides(const std::vector<int>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) {
    strides[d - 1] = strides[d] * shape[d];
  }
  return strides;
}

// The source's batch entry n is (n / inner, n % inner) of two strides
// (kernel_params.h).
struct BatchStrides {
  unsigned int inner = 1;
  int64_t inner_stride = 0;
  int64_t outer_stride = 0;
};

// (*batch, *spatial, C) as the kernels see it, (N, *spatial, C): the leading
// axes are one batch axis of their product, whose entries step by up to two
// strides (groups of leading axes, each group one stride: its innermost
// axis longer than 1). False where they need more (reads_in_place). A batch
// of 2**31 or more would not fit a grid (one row per batch entry at least).
// `folded_strides` has the spatial axes' and the channels' strides after an
// unused 0 for the batch axis.
bool fold_batch(
    const std::vector<int>& shape,
    const std::vector<int64_t>& strides,
    int dims,
    std::vector<int>& folded,
    std::vector<int64_t>& folded_strides,
    BatchStrides& batch_strides) {
  size_t lead = shape.size() - dims - 1;
  unsigned long long batch = product(shape, 0, lead);
  if (batch >= MAX_GRID) {
    throw std::invalid_argument(
        "[upsample] too large for one Metal grid: " + shape_text(shape) + " has " +
        std::to_string(batch) + " batch entries (the product of its " +
        std::to_string(lead) + " leading axes), more than the 2**31 - 1 rows of a grid");
  }
  struct Group {
    int64_t stride;
    unsigned long long size;
    int64_t next; // the stride an axis outside it must have to join it
  };
  std::vector<Group> groups;
  for (size_t d = lead; d-- > 0;) {
    if (shape[d] == 1) {
      continue;
    }
    if (!groups.empty() && strides[d] == groups.back().next) {
      groups.back().size *= shape[d];
      groups.back().next = strides[d] * shape[d];
    } else {
      groups.push_back({strides[d], static_cast<unsigned long long>(shape[d]), strides[d] * shape[d]});
    }
  }
  if (groups.size() > 2) {
    return false;
  }
  batch_strides = BatchStrides{};
  if (groups.size() == 2) {
    batch_strides.inner = static_cast<unsigned int>(groups[0].size);
    batch_strides.inner_stride = groups[0].stride;
  }
  if (!groups.empty()) {
    batch_strides.outer_stride = groups.back().stride;
  }
  folded = {static_cast<int>(batch)};
  folded.insert(folded.end(), shape.begin() + lead, shape.end());
  folded_strides = {0};
  folded_strides.insert(folded_strides.end(), strides.begin() + lead, strides.end());
  return true;
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
// Whether every aligned run of RUN positions of the last axis's rows (one
// tap each: nearest forward) reads one source element (Note [runs]).
bool replicates(const TapTables& t, uint32_t rows, unsigned int size) {
  auto tap = [&](unsigned int q) { return t.words[2 * size_t(t.words[2 * size_t(rows + q)])]; };
  for (unsigned int q = 0; q < size; ++q) {
    if (tap(q) != tap(q - q % upsample::RUN)) {
      return false;
    }
  }
  return true;
}

// Channels per thread: two 4-vectors, one 4-vector or a 2-vector where every
// packet is aligned to its vectors (the channels, the view's start and every
// other stride of the source (batch strides included) are multiples of the vector), else 3 scalars
// when they divide the channels (an RGB pixel is one thread), else 1. A
// wider packet pays the table reads, weights and addresses of its taps once
// for more channels. Only neighbouring channels make a packet: a source
// whose channels are apart (a channels-last view of other memory) moves one.
int packet_width(
    int channels,
    long long src_offset,
    int elem_size,
    const std::vector<int64_t>& src_strides,
    const BatchStrides& batch) {
  if (src_strides.back() != 1) {
    return 1;
  }
  for (int v : {8, 4, 3, 2}) {
    // A 3-packet moves scalars: any start.
    long long vector = v == 8 ? 4 : v == 3 ? 1 : v;
    bool aligned = src_offset % (vector * elem_size) == 0 &&
        batch.outer_stride % vector == 0 && batch.inner_stride % vector == 0;
    for (size_t d = 1; d + 1 < src_strides.size() && aligned; ++d) {
      aligned = src_strides[d] % vector == 0;
    }
    if (channels % v == 0 && aligned) {
      return v;
    }
  }
  return 1;
}

Planned plan_gather(
    const std::vector<AxisGather>& axes,
    bool copy,
    const std::vector<int>& src_shape,
    const std::vector<int64_t>& src_strides,
    const BatchStrides& batch,
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
  // The elements a batch entry spans, one past its largest offset: the
  // kernels of rank 1-3 add offsets in 32 bits.
  unsigned long long extent = 1;
  for (size_t d = 1; d < src_shape.size(); ++d) {
    extent += static_cast<unsigned long long>(src_shape[d] - 1) *
        static_cast<unsigned long long>(src_strides[d]);
  }
  bool narrow = dims <= 3 && extent < MAX_NARROW_ELEMENTS;
  // One channel: runs of positions per thread (Note [runs] in upsample.metal).
  bool run = narrow && channels == 1;
  int vec = run ? 1 : packet_width(channels, src_offset, in_bytes, src_strides, batch);
  unsigned long long rows = product(dst_shape, 0, dst_shape.size() - 2);
  unsigned long long positions = static_cast<unsigned long long>(dst_shape[dims]);
  unsigned long long row_threads =
      run ? (positions + upsample::RUN - 1) / upsample::RUN : positions * (channels / vec);
  if (rows >= MAX_GRID || row_threads >= MAX_GRID) {
    throw std::invalid_argument(
        "[upsample] too large for one Metal grid: " + std::to_string(rows) +
        " rows (batch x leading spatial positions) of " + std::to_string(row_threads) +
        " threads");
  }
  std::string types = in_type == out_type ? in_type : in_type + "_" + out_type;

  Planned planned{};
  Launch& l = planned.launch;
  l.reads = reads;
  l.writes = writes;
  upsample::KernelParams& kp = l.params;
  kp.dims = dims;
  kp.channels = static_cast<unsigned int>(channels);
  kp.packets = static_cast<unsigned int>(channels / vec);
  kp.by_packets = magic_divisor(std::max(kp.packets, 1u));
  kp.batch_inner = batch.inner;
  kp.by_batch_inner = magic_divisor(batch.inner);
  kp.src_batch = static_cast<unsigned long>(batch.outer_stride);
  kp.src_batch_inner = static_cast<unsigned long>(batch.inner_stride);
  kp.src_channel = static_cast<unsigned long>(src_strides.back());
  double taps_per_element = 1.0;
  for (int a = 0; a < dims; ++a) {
    upsample::AxisParams& ap = kp.axes[a];
    uint64_t stride = static_cast<uint64_t>(src_strides[a + 1]);
    ap.size = static_cast<unsigned int>(dst_shape[a + 1]);
    ap.by_size = magic_divisor(ap.size);
    ap.stride = stride;
    uint32_t before = l.table.size();
    ap.rows = append_axis(l.table, axes[a], narrow ? stride : 1);
    double taps = double(l.table.size() - before - ap.size);
    taps_per_element *= taps / ap.size;
  }
  std::string kind = copy ? "copy_" : "gather_";
  if (run && copy && replicates(l.table, kp.axes[dims - 1].rows, kp.axes[dims - 1].size)) {
    kind = "replicate_";
  }
  l.kernel = "upsample_" + kind + types + "_" +
      (narrow ? std::to_string(dims) + "d" : std::string("nd")) +
      (run ? "_r" + std::to_string(upsample::RUN) : "_v" + std::to_string(vec));
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
// whose tables, temporary and staging copy (`scratch_bytes`) and output
// would exceed MLX's memory limit. The
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
    double scratch_bytes) {
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
      2.0 * words * sizeof(uint32_t) + piece_bytes + scratch_bytes + output_bytes,
      call,
      "its tap tables, temporary and output");
}

// The launch that copies a source of any strides (elements, signed) into
// the row-contiguous staging buffer: grid x its innermost axis, y the others
// (kernel_params.h's fields reused: channels the innermost length,
// src_channel its stride's bits, dims the outer axes, whose (length,
// divisor, stride) are the table's words; Note [staging] in upsample.metal).
Launch plan_strided_copy(
    const std::vector<int>& shape,
    const std::vector<int64_t>& strides,
    int elem_size) {
  // Axes of length 1 dropped, neighbours of one stride merged.
  std::vector<std::pair<unsigned long long, int64_t>> axes;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) {
      continue;
    }
    if (!axes.empty() && axes.back().second == strides[d] * shape[d]) {
      axes.back() = {axes.back().first * shape[d], strides[d]};
    } else {
      axes.push_back({static_cast<unsigned long long>(shape[d]), strides[d]});
    }
  }
  if (axes.empty()) {
    axes.push_back({1, 0});
  }
  unsigned long long inner = axes.back().first;
  unsigned long long rows = product(shape, 0, shape.size()) / inner;
  if (inner >= MAX_GRID || rows >= MAX_GRID) {
    throw std::invalid_argument(
        "[upsample] too large for one Metal grid: copying " + shape_text(shape) +
        " row-contiguous takes " + std::to_string(rows) + " rows of " +
        std::to_string(inner) + " threads");
  }
  Launch l{};
  l.kernel = "upsample_strided_copy_u" + std::to_string(8 * elem_size);
  l.reads = Buffer::Source;
  l.writes = Buffer::Staging;
  upsample::KernelParams& kp = l.params;
  kp.dims = static_cast<int>(axes.size()) - 1;
  kp.channels = static_cast<unsigned int>(inner);
  kp.src_channel = static_cast<unsigned long>(axes.back().second);
  for (size_t a = axes.size() - 1; a-- > 0;) {
    auto [size, stride] = axes[a];
    upsample::Divisor by = magic_divisor(static_cast<uint32_t>(size));
    uint64_t bits = static_cast<uint64_t>(stride);
    for (uint32_t word : {static_cast<uint32_t>(size), by.magic, by.shift, 0u,
                          static_cast<uint32_t>(bits), static_cast<uint32_t>(bits >> 32)}) {
      l.table.words.push_back(word);
    }
  }
  l.grid[0] = static_cast<unsigned int>(inner);
  l.grid[1] = static_cast<unsigned int>(rows);
  l.grid[2] = 1;
  return l;
}

} // namespace

bool reads_in_place(
    const std::vector<int>& shape,
    const std::vector<int64_t>& strides,
    int dims) {
  for (int64_t stride : strides) {
    if (stride < 0) {
      return false;
    }
  }
  std::vector<int> folded;
  std::vector<int64_t> folded_strides;
  BatchStrides batch;
  return static_cast<int>(shape.size()) >= dims + 2 && strides.size() == shape.size() &&
      fold_batch(shape, strides, dims, folded, folded_strides, batch);
}

LaunchPlan plan_launch(
    const UpsampleParams& p,
    bool backward,
    const std::vector<int>& src_batch_shape,
    const std::vector<int64_t>& src_batch_strides,
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
  // Negative strides (reversed views) and leading axes of three strides or
  // more (a vmapped, batch-sliced view) would need signed offsets or more
  // divisions per thread in every kernel, for layouts that real calls
  // rarely hand over: those are copied row-contiguous first.
  std::vector<int64_t> given_strides =
      src_batch_strides.empty() ? row_strides(src_batch_shape) : src_batch_strides;
  std::optional<Launch> staging;
  Buffer source = Buffer::Source;
  if (!reads_in_place(src_batch_shape, given_strides, dims)) {
    staging = plan_strided_copy(src_batch_shape, given_strides, elem_size);
    given_strides = row_strides(src_batch_shape);
    src_offset = 0;
    source = Buffer::Staging;
  }
  std::vector<int> src_shape, dst_shape;
  std::vector<int64_t> src_strides, dst_strides;
  BatchStrides batch, dst_batch;
  fold_batch(src_batch_shape, given_strides, dims, src_shape, src_strides, batch);
  fold_batch(dst_batch_shape, row_strides(dst_batch_shape), dims, dst_shape, dst_strides, dst_batch);
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
  // The first of two launches sees a row of the last axis as its channels:
  // one stride apart, where the source's last axis steps over its channels
  // exactly.
  int last = dims;
  int channels = dst_shape.back();
  unsigned long long last_row = product(src_shape, dims, dims + 2);
  unsigned long long first_row_threads = last_row * (dims > 1 ? dst_shape[dims - 1] : 1);
  bool rows_are_channels = src_strides[last] == int64_t(channels) * src_strides.back();
  bool one_only = copy || dims < 2 || passes == Passes::One ||
      first_row_threads >= MAX_GRID || !rows_are_channels;
  // Two launches go through a float32 temporary (N, dst's leading axes,
  // src's last axis, C).
  double temporary_bytes = one_only
      ? 0.0
      : double(product(dst_shape, 0, last)) * src_shape[last] * channels * sizeof(float);
  double staging_bytes =
      staging ? double(product(src_batch_shape, 0, src_batch_shape.size())) * elem_size : 0.0;
  check_metal_resources(
      p, backward, axes, src_batch_shape, dst_batch_shape, elem_size,
      temporary_bytes + staging_bytes);
  Planned one = plan_gather(
      axes, copy, src_shape, src_strides, batch, dst_shape, type, type, elem_size, elem_size,
      src_offset, source, Buffer::Destination);
  // The staging copy, if any, goes first.
  auto plan_of = [&](std::vector<Launch> launches, std::vector<int> temporary) {
    LaunchPlan plan{{}, std::move(temporary)};
    if (staging) {
      plan.launches.push_back(*staging);
      plan.staging_elements = size_t(product(src_batch_shape, 0, src_batch_shape.size()));
    }
    plan.launches.insert(plan.launches.end(), launches.begin(), launches.end());
    return plan;
  };
  if (one_only) {
    return plan_of({one.launch}, {});
  }

  // The leading axes first, treating the last axis and the channels as one
  // row of channels, then the last axis of every row.
  int row_channels = static_cast<int>(last_row);
  std::vector<int> src_a(src_shape.begin(), src_shape.begin() + last);
  src_a.push_back(row_channels);
  std::vector<int64_t> src_a_strides(src_strides.begin(), src_strides.begin() + last);
  src_a_strides.push_back(src_strides.back());
  std::vector<int> tmp_a(dst_shape.begin(), dst_shape.begin() + last);
  tmp_a.push_back(row_channels);
  int rows = static_cast<int>(product(dst_shape, 0, last));
  std::vector<int> tmp_b = {rows, src_shape[last], channels};
  std::vector<int> dst_b = {rows, dst_shape[last], channels};
  Planned lead = plan_gather(
      std::vector<AxisGather>(axes.begin(), axes.end() - 1), false, src_a, src_a_strides, batch,
      tmp_a, type, "float32", elem_size, 4, src_offset, source, Buffer::Temporary);
  BatchStrides rows_batch;
  rows_batch.outer_stride = int64_t(src_shape[last]) * channels;
  Planned rest = plan_gather(
      {axes.back()}, false, tmp_b, row_strides(tmp_b), rows_batch, dst_b, "float32", type, 4, elem_size,
      0, Buffer::Temporary, Buffer::Destination);
  if (passes == Passes::Two || lead.cost + rest.cost < one.cost) {
    return plan_of({lead.launch, rest.launch}, tmp_b);
  }
  return plan_of({one.launch}, {});
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
