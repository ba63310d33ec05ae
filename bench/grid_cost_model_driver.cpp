// The grid_sample cost model's driver (bench/grid_cost_model.py): plans one
// grid_sample call the way eval_gpu does, prints the plan as JSON, and runs
// it through the Metal emulator: before each launch a sample of its threads
// (then undone), and the whole launch after it, since the input gradient's
// later launches need the data the earlier ones write. Run under callgrind
// with --toggle-collect on the kernel functions, the dump after each sample
// holds the instructions of that launch's sampled threads alone (the whole
// run's are zeroed before the next sample).
//
// Usage: grid_cost_model_driver PASS MODE PADDING ALIGN DTYPE ELEM_SIZE
//          X_SHAPE GRID_SHAPE GRID_FILE SAMPLES
// PASS 0 forward, 2 backward (both gradients); MODE and PADDING the values
// of upsample::Mode and upsample::Padding; shapes comma-separated; GRID_FILE
// the grid's float32 values, raw.
#include <valgrind/callgrind.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "grid_emulator_api.h"
#include "metal/grid_launch_plan.h"

namespace {

constexpr unsigned int MAX_THREADS_PER_GROUP = 1024;

std::vector<int> parse_shape(const char* text) {
  std::vector<int> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    values.push_back(std::atoi(item.c_str()));
  }
  return values;
}

size_t elements(const std::vector<int>& shape, size_t drop_last = 0) {
  size_t n = 1;
  for (size_t d = 0; d + drop_last < shape.size(); ++d) {
    n *= size_t(shape[d]);
  }
  return n;
}

const char* array_name(mlx_upsample::metal::GridArray a) {
  using mlx_upsample::metal::GridArray;
  switch (a) {
    case GridArray::X:
      return "x";
    case GridArray::Grid:
      return "grid";
    case GridArray::Tangent:
      return "tangent";
    case GridArray::Cotangent:
      return "cotangent";
    case GridArray::Out:
      return "out";
    case GridArray::Dx:
      return "dx";
    case GridArray::Dgrid:
      return "dgrid";
    case GridArray::Counts:
      return "counts";
    case GridArray::Level:
      return "level";
    case GridArray::UpperLevel:
      return "upper_level";
    case GridArray::Entries:
      return "entries";
    default:
      return "params";
  }
}

// The counts of the previous launch's whole run are dropped; the sample's
// go to a dump of their own.
void start_sample(const char*) {
  CALLGRIND_ZERO_STATS;
}

void end_sample(const char* kernel) {
  CALLGRIND_DUMP_STATS_AT(kernel);
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 11) {
    std::fprintf(stderr, "usage: see the head of grid_cost_model_driver.cpp\n");
    return 2;
  }
  int pass = std::atoi(argv[1]);
  int mode = std::atoi(argv[2]);
  int padding = std::atoi(argv[3]);
  int align = std::atoi(argv[4]);
  const char* dtype = argv[5];
  int elem_size = std::atoi(argv[6]);
  std::vector<int> x_shape = parse_shape(argv[7]);
  std::vector<int> grid_shape = parse_shape(argv[8]);
  unsigned long long samples = std::strtoull(argv[10], nullptr, 10);
  std::vector<float> grid(elements(grid_shape));
  std::ifstream(argv[9], std::ios::binary)
      .read(reinterpret_cast<char*>(grid.data()), std::streamsize(grid.size() * sizeof(float)));

  mlx_upsample::metal::GridCall call{
      {static_cast<upsample::Mode>(mode), static_cast<upsample::Padding>(padding), align != 0},
      x_shape, grid_shape, dtype, elem_size, 0, 0};
  auto plan = pass == 2 ? mlx_upsample::metal::plan_grid_backward(call, true, true)
                        : mlx_upsample::metal::plan_grid_forward(call, false);
  std::printf("{\"levels\": [%zu", plan.counts);
  for (size_t n : plan.levels) {
    std::printf(", %zu", n);
  }
  std::printf("], \"entries\": %zu, \"launches\": [", plan.entries);
  for (size_t k = 0; k < plan.launches.size(); ++k) {
    auto& l = plan.launches[k];
    mlx_upsample::metal::fit_threadgroup(l, MAX_THREADS_PER_GROUP);
    std::printf(
        "%s{\"kernel\": \"%s\", \"function\": \"%s\", \"level\": %d, \"grid\": [%u, %u, %u], "
        "\"group\": [%u, %u, %u], \"buffers\": [",
        k == 0 ? "" : ", ", l.kernel.c_str(), l.function.c_str(), l.level, l.grid[0],
        l.grid[1], l.grid[2], l.group[0], l.group[1], l.group[2]);
    for (size_t i = 0; i < l.buffers.size(); ++i) {
      bool writes = l.buffers[i].access == mlx_upsample::metal::Access::Write;
      std::printf("%s[\"%s\", %s]", i == 0 ? "" : ", ", array_name(l.buffers[i].array),
                  writes ? "true" : "false");
    }
    std::printf("]}");
  }
  std::printf("]}\n");
  std::fflush(stdout);

  // Zero-filled data: the kernels' instruction counts depend on the grid
  // (the taps, the segments), not on the values sampled.
  size_t x_bytes = elements(x_shape) * elem_size;
  size_t y_bytes = elements(grid_shape, 1) * size_t(x_shape.back()) * elem_size;
  std::vector<unsigned char> x(x_bytes, 0), cot(y_bytes, 0), out(y_bytes), dx(x_bytes);
  std::vector<float> dgrid(grid.size());
  char kernel[4096], error[4096];
  emu_grid_sample_threads(samples, start_sample, end_sample);
  int status = emu_grid_run(
      pass, mode, padding, align, 1, 1, static_cast<int>(x_shape.size()), x_shape.data(),
      grid_shape.data(), dtype, elem_size, 0, 0, MAX_THREADS_PER_GROUP, 0, x.data(),
      grid.data(), nullptr, cot.data(), out.data(), dx.data(), dgrid.data(), kernel, error,
      sizeof(error));
  if (status != 0) {
    std::fprintf(stderr, "%s\n", error);
    return 1;
  }
  return 0;
}
