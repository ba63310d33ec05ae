// What the deterministic input gradient of grid_sample costs (bench/
// grid_determinism.py): times the CPU path's scatter (blocks of batch entry,
// 32 channels and pixel rows, each summed by one thread in a fixed order)
// against a float-atomic scatter (threads split the points and add with
// atomic float adds, the design of PyTorch's GPU kernels), on T threads, and
// checks whether repeated runs give the same bits.
//
// Usage: grid_determinism_driver N H W C MODE PADDING THREADS REPEATS
// with MODE and PADDING the values of upsample::Mode and upsample::Padding;
// the grid is a fixed pseudo-random affine map of the image plus a wave.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "cpu/grid_sample_cpu.cpp"
#include "grid_sample_params.cpp"

namespace {

using namespace mlx_upsample;
using Clock = std::chrono::steady_clock;

template <typename F>
void on_threads(int threads, int64_t n, F f) {
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([=] { f(n * t / threads, n * (t + 1) / threads); });
  }
  for (auto& t : pool) {
    t.join();
  }
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 9) {
    std::fprintf(stderr, "usage: %s N H W C MODE PADDING THREADS REPEATS\n", argv[0]);
    return 2;
  }
  int64_t N = std::atoll(argv[1]), H = std::atoll(argv[2]), W = std::atoll(argv[3]),
          C = std::atoll(argv[4]);
  GridSampleParams p{upsample::Mode(std::atoi(argv[5])), upsample::Padding(std::atoi(argv[6])),
                     false};
  int threads = std::atoi(argv[7]), repeats = std::atoi(argv[8]);
  upsample::GridSampleArgs args = grid_sample_args(p, {int(H), int(W)});
  cpu::GridShape shape{N, H * W, H * W, C};
  std::vector<float> cot(size_t(N * H * W * C)), grid(size_t(N * H * W * 2));
  for (size_t i = 0; i < cot.size(); ++i) {
    cot[i] = std::sin(0.37f * float(i % 100003));
  }
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t i = 0; i < H; ++i) {
      for (int64_t j = 0; j < W; ++j) {
        float u = -1.0f + 2.0f * float(j) / float(W - 1), v = -1.0f + 2.0f * float(i) / float(H - 1);
        float* g = &grid[size_t(((n * H + i) * W + j) * 2)];
        g[0] = 0.9f * u - 0.2f * v + 0.05f * std::sin(float(i) / 7.0f + float(n));
        g[1] = 0.2f * u + 0.9f * v + 0.05f * std::cos(float(j) / 5.0f);
      }
    }
  }
  cpu::GridKernels kernels;
  {
    using namespace cpu;
    kernels = UPSAMPLE_ISA_KERNEL(grid_kernels)(mlx::core::float32, args);
  }
  int K = upsample::grid_taps_per_point(2, p.mode);
  std::vector<float> ours(cot.size() / size_t(C) * size_t(C)), atomic(ours.size()), first;
  double best_ours = 1e30, best_atomic = 1e30;
  bool atomic_same = true;
  // The CPU path's blocks (grid_sample_cpu.cpp).
  int64_t rows = H, c_blocks = (C + 31) / 32;
  int64_t bands = std::clamp<int64_t>((threads + N * c_blocks - 1) / (N * c_blocks), 1, rows);
  std::vector<upsample::GridTap> table(bands > 1 ? size_t(N * H * W * K) : 0);
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    if (bands > 1) {
      on_threads(threads, N * H * W, [&](int64_t b, int64_t e) {
        kernels.tap_table(grid.data(), table.data(), args, b, e);
      });
    }
    on_threads(threads, N * c_blocks * bands, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        int64_t band = k % bands, cb = (k / bands) % c_blocks, n = k / (bands * c_blocks);
        kernels.scatter(cot.data(), grid.data(), bands > 1 ? table.data() : nullptr, ours.data(),
                        args, shape, n,
                        rows * band / bands * W, rows * (band + 1) / bands * W, cb * 32,
                        std::min(C, cb * 32 + 32));
      }
    });
    auto t1 = Clock::now();
    std::memset(atomic.data(), 0, atomic.size() * sizeof(float));
    on_threads(threads, N * H * W, [&](int64_t b, int64_t e) {
      for (int64_t q = b; q < e; ++q) {
        float* image = atomic.data() + (q / shape.points) * shape.pixels * C;
        upsample::GridPoint pt = upsample::grid_point(args, grid[size_t(q * 2)],
                                                      grid[size_t(q * 2 + 1)], 0.0f);
        for (int k = 0; k < K; ++k) {
          upsample::GridTap t = upsample::grid_tap(args, pt, k, -1);
          if (t.pixel < 0) {
            continue;
          }
          for (int64_t c = 0; c < C; ++c) {
            std::atomic_ref<float>(image[t.pixel * C + c])
                .fetch_add(t.weight * cot[size_t(q * C + c)], std::memory_order_relaxed);
          }
        }
      }
    });
    auto t2 = Clock::now();
    best_ours = std::min(best_ours, std::chrono::duration<double, std::milli>(t1 - t0).count());
    best_atomic =
        std::min(best_atomic, std::chrono::duration<double, std::milli>(t2 - t1).count());
    if (r == 0) {
      first = atomic;
    } else {
      atomic_same = atomic_same && std::memcmp(first.data(), atomic.data(), first.size() * 4) == 0;
    }
  }
  std::printf("{\"fixed_order_ms\": %.4f, \"float_atomic_ms\": %.4f, "
              "\"float_atomic_bitwise_repeatable\": %s}\n",
              best_ours, best_atomic, atomic_same ? "true" : "false");
  return 0;
}
