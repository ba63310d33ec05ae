#include "cpu/thread_pool.h"

#include <algorithm>
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

// Workers wait for a generation counter to move, run their share of the
// current job, and report back; the calling thread runs share 0 itself.
class Pool {
 public:
  explicit Pool(int workers) {
    for (int w = 0; w < workers; ++w) {
      threads_.emplace_back([this, w] { work(w + 1); });
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

  void run(int shares, const std::function<void(int)>& share) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &share;
      shares_ = shares;
      pending_ = shares - 1;
      ++generation_;
    }
    wake_.notify_all();
    share(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void work(int index) {
    uint64_t seen = 0;
    while (true) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) {
          return;
        }
        seen = generation_;
        if (index >= shares_) {
          continue;
        }
        job = job_;
      }
      (*job)(index);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --pending_;
      }
      done_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  int shares_ = 0;
  int pending_ = 0;
  bool stopping_ = false;
};

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
  int64_t shares = std::min<int64_t>(p.size(), (n + grain - 1) / grain);
  if (shares <= 1) {
    fn(0, n);
    return;
  }
  int64_t chunk = (n + shares - 1) / shares;
  p.run(static_cast<int>(shares), [&](int s) {
    int64_t begin = s * chunk;
    int64_t end = std::min(n, begin + chunk);
    if (begin < end) {
      fn(begin, end);
    }
  });
}

} // namespace mlx_upsample::cpu
