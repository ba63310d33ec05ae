// A small persistent thread pool for the CPU kernels.
//
// MLX runs a CPU stream's tasks one at a time on a single worker thread, so
// using every core is the kernel's own job. The workers sleep on a condition
// variable between calls: no spinning that would steal cores from PyTorch's
// or MLX's own threads in the same process.
#pragma once

#include <cstdint>
#include <functional>

namespace mlx_upsample::cpu {

// Threads used by the kernels: MLX_UPSAMPLE_NUM_THREADS if set, else the
// number of hardware threads.
int num_threads();
void set_num_threads(int n);

// Roughly how many output elements a thread should get before splitting a
// kernel's work pays off (the usual `grain` is this over the elements per item).
constexpr int64_t GRAIN_ELEMENTS = 1 << 15;

// Calls fn(begin, end) on disjoint chunks covering [0, n), on up to
// num_threads() threads, and returns when all are done. Chunks are at least
// `grain` long so that small calls stay on one thread, and there are a few
// per thread, taken by whichever thread is free.
void parallel_for(
    int64_t n,
    int64_t grain,
    const std::function<void(int64_t, int64_t)>& fn);

} // namespace mlx_upsample::cpu
