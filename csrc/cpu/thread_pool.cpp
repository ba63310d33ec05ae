#include "cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include <pthread.h>

namespace mlx_upsample::cpu {

namespace {

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp<unsigned>(n, 1, MAX_THREADS));
}

struct EnvThreads {
  int threads; // 0: not set, or not usable
  std::string problem;
};

// MLX_UPSAMPLE_NUM_THREADS, parsed strictly: a decimal integer in
// [1, MAX_THREADS] with nothing but blanks around it. Anything else is
// reported (the Python package turns the report into a warning) and ignored.
EnvThreads parse_env_threads() {
  const char* env = std::getenv("MLX_UPSAMPLE_NUM_THREADS");
  if (env == nullptr || *env == '\0') {
    return {0, ""};
  }
  errno = 0;
  char* end = nullptr;
  long n = std::strtol(env, &end, 10);
  bool digits = end != env;
  while (*end == ' ' || *end == '\t') {
    ++end;
  }
  if (digits && *end == '\0' && errno == 0 && n >= 1 && n <= MAX_THREADS) {
    return {static_cast<int>(n), ""};
  }
  return {
      0,
      "MLX_UPSAMPLE_NUM_THREADS='" + std::string(env) +
          "' is not an integer in [1, " + std::to_string(MAX_THREADS) +
          "]; ignoring it and using " + std::to_string(hardware_threads()) +
          " threads (the hardware threads)"};
}

const EnvThreads& env_threads() {
  static const EnvThreads env = parse_env_threads();
  return env;
}

// The calling thread and the workers take pieces of a job from a shared
// counter until none are left. The caller never waits for a worker to wake
// up: on a busy machine a worker can be descheduled for milliseconds, and the
// caller then simply runs the pieces itself. It waits only for workers that
// are inside the job, which are finishing a piece.
class Pool {
 public:
  explicit Pool(int workers) {
    threads_.reserve(workers);
    try {
      for (int w = 0; w < workers; ++w) {
        threads_.emplace_back([this] { work(); });
      }
    } catch (const std::system_error& e) {
      // The destructor does not run for a constructor that throws: the
      // threads started so far are stopped here (destroying a joinable
      // std::thread would terminate the process).
      int started = static_cast<int>(threads_.size());
      stop();
      throw std::runtime_error(
          "[upsample] could not start CPU thread " +
          std::to_string(started + 2) + " of " + std::to_string(workers + 1) +
          " (set_num_threads / MLX_UPSAMPLE_NUM_THREADS): " + e.what() +
          "; use fewer threads");
    }
  }

  ~Pool() {
    stop();
  }

  int size() const {
    return static_cast<int>(threads_.size()) + 1;
  }

  void run(int64_t pieces, const std::function<void(int64_t)>& piece) {
    std::atomic<int64_t> next{0};
    std::mutex error_mutex;
    std::exception_ptr error;
    std::function<void()> take_pieces = [&] {
      try {
        for (int64_t i; (i = next.fetch_add(1)) < pieces;) {
          piece(i);
        }
      } catch (...) {
        next.store(pieces); // nobody starts another piece
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) {
          error = std::current_exception();
        }
      }
    };
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &take_pieces;
      ++generation_;
    }
    wake_.notify_all();
    take_pieces();
    {
      std::unique_lock<std::mutex> lock(mutex_);
      job_ = nullptr; // workers not in the job by now stay out of it
      done_.wait(lock, [this] { return inside_ == 0; });
    }
    if (error) {
      std::rethrow_exception(error);
    }
  }

 private:
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) {
      t.join();
    }
  }

  void work() {
    uint64_t seen = 0;
    while (true) {
      const std::function<void()>* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) {
          return;
        }
        seen = generation_;
        job = job_;
        if (job == nullptr) {
          continue;
        }
        ++inside_;
      }
      (*job)();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --inside_;
      }
      done_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void()>* job_ = nullptr;
  uint64_t generation_ = 0;
  int inside_ = 0;
  bool stopping_ = false;
};

constexpr int64_t PIECES_PER_THREAD = 4;

std::atomic<int> requested_threads{0}; // 0: not set
// Guards `pool` and runs one job at a time: calls from different MLX streams
// queue up here. Never taken to read or set the thread count.
std::mutex pool_mutex;
Pool* pool = nullptr;
// pool->size(), 0 without a pool: lets prepare_threads skip the lock (and
// the wait for a running job) when the pool already has the right size.
std::atomic<int> pool_size{0};

// fork() copies only the forking thread. Holding pool_mutex across it means
// that no job is half-done and no mutex of ours is held in the child; there
// the parent's workers do not exist, so their pool must be neither used nor
// destroyed (joining threads that are not there is undefined: glibc reports
// EDEADLK and the process aborts). The child abandons it, a few hundred
// bytes, and its next op builds a pool of its own.
void before_fork() {
  pool_mutex.lock();
}

void after_fork_in_parent() {
  pool_mutex.unlock();
}

void after_fork_in_child() {
  pool = nullptr;
  pool_size.store(0);
  pool_mutex.unlock();
}

// Registered when the extension is loaded (it is never unloaded). Should
// registration fail (ENOMEM), there is nothing better to do than go on.
[[maybe_unused]] const int fork_handlers_registered =
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);

} // namespace

int num_threads() {
  int n = requested_threads.load();
  if (n > 0) {
    return n;
  }
  int env = env_threads().threads;
  return env > 0 ? env : hardware_threads();
}

void set_num_threads(int n) {
  if (n < 1 || n > MAX_THREADS) {
    throw std::invalid_argument(
        "[upsample] set_num_threads needs 1 <= n <= " +
        std::to_string(MAX_THREADS) + ", got " + std::to_string(n));
  }
  requested_threads.store(n);
}

const std::string& num_threads_env_problem() {
  return env_threads().problem;
}

void prepare_threads() {
  int want = num_threads();
  if (pool_size.load() == want) {
    return;
  }
  std::lock_guard<std::mutex> lock(pool_mutex);
  if (pool_size.load() == want) {
    return;
  }
  delete pool;
  pool = nullptr;
  pool_size.store(0);
  pool = new Pool(want - 1);
  pool_size.store(want);
}

void parallel_for(
    int64_t n,
    int64_t grain,
    const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) {
    return;
  }
  std::unique_lock<std::mutex> lock(pool_mutex);
  // Without a pool (an op built after this one was enqueued failed to start
  // its threads) the job runs on this thread.
  int threads = pool != nullptr ? pool->size() : 1;
  // A few pieces per thread, so that a late thread's share is picked up by
  // the others.
  int64_t pieces = std::min<int64_t>(PIECES_PER_THREAD * threads, (n + grain - 1) / grain);
  if (threads == 1 || pieces <= 1) {
    lock.unlock();
    fn(0, n);
    return;
  }
  int64_t chunk = (n + pieces - 1) / pieces;
  pool->run(pieces, [&](int64_t i) {
    int64_t begin = i * chunk;
    int64_t end = std::min(n, begin + chunk);
    if (begin < end) {
      fn(begin, end);
    }
  });
}

} // namespace mlx_upsample::cpu
