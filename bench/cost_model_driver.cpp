// The cost model's driver (bench/cost_model.py): plans one upsample call the
// way eval_gpu does, prints the plan as JSON, and runs a sample of each
// launch's threads through the Metal emulator (the kernels compiled as C++).
// Run under callgrind with --toggle-collect on the kernel functions, the
// dump after each launch holds the instructions of that launch's sampled
// threads alone.
//
// Usage: cost_model_driver FAMILY MODE ALIGN RECOMPUTE BACKWARD DTYPE
//          ELEM_SIZE SRC_SHAPE DST_SHAPE SCALES SIZES SAMPLES [SRC_STRIDES]
// with FAMILY and MODE the values of mlx_upsample::Family and upsample::Mode
// (cost_model.py passes those of their Python bindings), shapes, scales,
// sizes and strides comma-separated (scales and sizes one per spatial axis,
// 0 where unused; strides in elements, of a view the kernels read in place,
// row-contiguous without them).
#include <valgrind/callgrind.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "emulator_api.h"
#include "metal/launch_plan.h"

namespace {

// An aligned source and a light kernel's pipeline limit (Apple GPUs' 1024).
constexpr long long SRC_OFFSET = 0;
constexpr unsigned int MAX_THREADS_PER_GROUP = 1024;

template <typename T>
std::vector<T> parse_list(const char* text) {
  std::vector<T> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::stringstream field(item);
    T v;
    field >> v;
    values.push_back(v);
  }
  return values;
}

size_t elements(const std::vector<int>& shape) {
  size_t n = 1;
  for (int d : shape) {
    n *= size_t(d);
  }
  return n;
}

// Each launch's counters go to a dump of their own, named after the kernel.
void dump_launch(const char* kernel) {
  CALLGRIND_DUMP_STATS_AT(kernel);
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 13 && argc != 14) {
    std::fprintf(stderr, "usage: see the head of cost_model_driver.cpp\n");
    return 2;
  }
  int family = std::atoi(argv[1]);
  int mode = std::atoi(argv[2]);
  bool align = std::atoi(argv[3]) != 0;
  bool recompute = std::atoi(argv[4]) != 0;
  bool backward = std::atoi(argv[5]) != 0;
  const char* dtype = argv[6];
  int elem_size = std::atoi(argv[7]);
  std::vector<int> src_shape = parse_list<int>(argv[8]);
  std::vector<int> dst_shape = parse_list<int>(argv[9]);
  std::vector<double> scales = parse_list<double>(argv[10]);
  std::vector<int> sizes = parse_list<int>(argv[11]);
  unsigned long long samples = std::strtoull(argv[12], nullptr, 10);
  std::vector<long long> src_strides;
  if (argc == 14) {
    src_strides = parse_list<long long>(argv[13]);
  }
  int dims = static_cast<int>(scales.size());

  mlx_upsample::UpsampleParams p{
      static_cast<mlx_upsample::Family>(family),
      static_cast<upsample::Mode>(mode),
      align,
      recompute,
      scales,
      sizes};
  auto plan = mlx_upsample::metal::plan_launch(
      p, backward, src_shape, std::vector<int64_t>(src_strides.begin(), src_strides.end()),
      dst_shape, dtype, elem_size, SRC_OFFSET);
  using mlx_upsample::metal::Buffer;
  auto bytes_of = [&](Buffer b) {
    return b == Buffer::Source ? elements(src_shape) * elem_size
        : b == Buffer::Destination ? elements(dst_shape) * elem_size
        : b == Buffer::Staging     ? plan.staging_elements * elem_size
                                   : plan.temporary_bytes();
  };
  std::printf("{\"launches\": [");
  for (size_t k = 0; k < plan.launches.size(); ++k) {
    auto& launch = plan.launches[k];
    mlx_upsample::metal::fit_threadgroup(launch, MAX_THREADS_PER_GROUP);
    std::printf(
        "%s{\"kernel\": \"%s\", \"grid\": [%u, %u, %u], "
        "\"group\": [%u, %u, %u], \"src_bytes\": %zu, \"dst_bytes\": %zu, "
        "\"table_bytes\": %zu}",
        k == 0 ? "" : ", ",
        launch.kernel.c_str(),
        launch.grid[0], launch.grid[1], launch.grid[2],
        launch.group[0], launch.group[1], launch.group[2],
        bytes_of(launch.reads),
        bytes_of(launch.writes),
        launch.table.bytes());
  }
  std::printf("]}\n");
  std::fflush(stdout);

  // Zero-filled data: the kernels' instruction counts do not depend on it.
  // A view's memory spans one past its largest offset.
  size_t src_elements = elements(src_shape);
  if (!src_strides.empty()) {
    src_elements = 1;
    for (size_t d = 0; d < src_shape.size(); ++d) {
      src_elements += size_t(src_shape[d] - 1) * size_t(src_strides[d]);
    }
  }
  std::vector<unsigned char> src(src_elements * elem_size, 0);
  std::vector<unsigned char> dst(elements(dst_shape) * elem_size, 0);
  char kernel[256], error[256];
  emu_sample_threads(samples, dump_launch);
  int status = emu_run(
      family, mode, align, recompute, scales.data(), sizes.data(), dims,
      backward, static_cast<int>(src_shape.size()), src_shape.data(),
      src_strides.empty() ? nullptr : src_strides.data(), dst_shape.data(), dtype, elem_size,
      SRC_OFFSET, static_cast<long long>(src_elements), /*view_start*/ 0, MAX_THREADS_PER_GROUP, /*passes: the plan's choice*/ 0, src.data(), dst.data(), kernel, error, sizeof(error));
  if (status != 0) {
    std::fprintf(stderr, "%s\n", error);
    return 1;
  }
  return 0;
}
