#include "cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace mlx_upsample::cpu {

namespace {

int default_threads() {
  if (const char* env = std::getenv("MLX_UPSAMPLE_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) {
      return n;
    }
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

// The calling thread and the workers take pieces of a job from a shared
// counter until none are left. The caller never waits for a worker to wake
// up: on a busy machine a worker can be descheduled for milliseconds, and the
// caller then simply runs the pieces itself. It waits only for workers that
// are inside the job, which are finishing a piece.
class Pool {
 public:
  explicit Pool(int workers) {
    for (int w = 0; w < workers; ++w) {
      threads_.emplace_back([this] { work(); });
    }
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) {
      t.join();
    }
  }

  int size() const {
    return static_cast<int>(threads_.size()) + 1;
  }

  void run(int64_t pieces, const std::function<void(int64_t)>& piece) {
    std::atomic<int64_t> next{0};
    std::function<void()> take_pieces = [&] {
      for (int64_t i; (i = next.fetch_add(1)) < pieces;) {
        piece(i);
      }
    };
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &take_pieces;
      ++generation_;
    }
    wake_.notify_all();
    take_pieces();
    std::unique_lock<std::mutex> lock(mutex_);
    job_ = nullptr; // workers not in the job by now stay out of it
    done_.wait(lock, [this] { return inside_ == 0; });
  }

 private:
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

std::mutex pool_mutex;
int requested_threads = 0;

// One job at a time: calls from different MLX streams queue up here.
Pool& pool() {
  static Pool* p = nullptr;
  int want = requested_threads > 0 ? requested_threads : default_threads();
  if (p == nullptr || p->size() != want) {
    delete p;
    p = new Pool(want - 1);
  }
  return *p;
}

} // namespace

int num_threads() {
  std::lock_guard<std::mutex> lock(pool_mutex);
  return requested_threads > 0 ? requested_threads : default_threads();
}

void set_num_threads(int n) {
  if (n < 1) {
    throw std::invalid_argument(
        "[upsample] set_num_threads needs n >= 1, got " + std::to_string(n));
  }
  std::lock_guard<std::mutex> lock(pool_mutex);
  requested_threads = n;
}

void parallel_for(
    int64_t n,
    int64_t grain,
    const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) {
    return;
  }
  std::lock_guard<std::mutex> lock(pool_mutex);
  Pool& p = pool();
  // A few pieces per thread, so that a late thread's share is picked up by
  // the others.
  int64_t pieces = std::min<int64_t>(PIECES_PER_THREAD * p.size(), (n + grain - 1) / grain);
  if (p.size() == 1 || pieces <= 1) {
    fn(0, n);
    return;
  }
  int64_t chunk = (n + pieces - 1) / pieces;
  p.run(pieces, [&](int64_t i) {
    int64_t begin = i * chunk;
    int64_t end = std::min(n, begin + chunk);
    if (begin < end) {
      fn(begin, end);
    }
  });
}

} // namespace mlx_upsample::cpu
