// A small persistent thread pool for the CPU kernels.
//
// MLX runs a CPU stream's tasks one at a time on a single worker thread, so
// using every core is the kernel's own job. The workers sleep on a condition
// variable between calls: no spinning that would steal cores from PyTorch's
// or MLX's own threads in the same process.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace mlx_upsample::cpu {

// More threads than this is a typo, not a machine: the largest CPUs have a
// few hundred hardware threads, and every thread of the pool costs a stack.
constexpr int MAX_THREADS = 1024;

// Threads used by the kernels: set_num_threads(n) if called, else
// MLX_UPSAMPLE_NUM_THREADS (read once, at the first use) when it is an
// integer in [1, MAX_THREADS], else the number of hardware threads. Never
// blocks, even while a kernel runs.
int num_threads();

// Throws std::invalid_argument unless 1 <= n <= MAX_THREADS. Takes effect
// from the next evaluated op.
void set_num_threads(int n);

// Why MLX_UPSAMPLE_NUM_THREADS was ignored, or "" when it is unset or used.
const std::string& num_threads_env_problem();

// Builds the pool for num_threads() threads if it does not have that size
// yet. Called on the thread that evaluates an op, before its task is
// enqueued, so that a failure to start threads raises there (a
// std::runtime_error; the pool is then left empty and the next call tries
// again) instead of inside MLX's stream thread.
void prepare_threads();

// Roughly how many output elements a thread should get before splitting a
// kernel's work pays off (the usual `grain` is this over the elements per item).
constexpr int64_t GRAIN_ELEMENTS = 1 << 15;

// Calls fn(begin, end) on disjoint chunks covering [0, n), on the threads of
// the pool prepare_threads built (on the calling thread alone if there is
// none), and returns when all are done. Chunks are at least `grain` long so
// that small calls stay on one thread, and there are a few per thread, taken
// by whichever thread is free. The first exception thrown by fn is rethrown
// here once every chunk has been taken or abandoned.
void parallel_for(
    int64_t n,
    int64_t grain,
    const std::function<void(int64_t, int64_t)>& fn);

} // namespace mlx_upsample::cpu
