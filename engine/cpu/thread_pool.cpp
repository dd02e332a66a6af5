// ThreadPool: workers sleep on a condition variable between steps; chunks are claimed from an
// atomic counter so a slow (descheduled) worker does not hold up the others.
#include "engine/cpu/thread_pool.h"

#include <algorithm>

namespace ghostline::cpu {

namespace {
constexpr int kSpinIterations = 20000;
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

static void run_chunks(const std::function<void(int64_t, int64_t)>& fn, int64_t n, int64_t chunk, int n_chunks,
                       std::atomic<int>& next, std::atomic<int>& done) {
  for (;;) {
    int c = next.fetch_add(1, std::memory_order_relaxed);
    if (c >= n_chunks) return;
    int64_t b = c * chunk, e = std::min(n, b + chunk);
    fn(b, e);
    done.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::worker_loop(int) {
  uint64_t seen = 0;
  for (;;) {
    // Spin a little (about 50-100 us) for the next task before sleeping on the condition variable.
    for (int i = 0; i < kSpinIterations && generation_.load(std::memory_order_acquire) == seen; ++i) cpu_relax();
    const std::function<void(int64_t, int64_t)>* task;
    int64_t n, chunk;
    int n_chunks;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_relaxed);
      task = task_;
      n = n_;
      chunk = chunk_;
      n_chunks = n_chunks_;
      active_.fetch_add(1, std::memory_order_relaxed);
    }
    run_chunks(*task, n, chunk, n_chunks, next_chunk_, done_chunks_);
    active_.fetch_sub(1, std::memory_order_release);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t max_chunks = std::max<int64_t>(1, n / grain);
  int n_chunks = static_cast<int>(std::min<int64_t>(size(), max_chunks));
  if (n_chunks <= 1 || workers_.empty()) {
    fn(0, n);
    return;
  }
  int64_t chunk = (n + n_chunks - 1) / n_chunks;
  n_chunks = static_cast<int>((n + chunk - 1) / chunk);
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A worker that woke for an earlier task after it finished holds no chunk, but must be out
    // before the counters are reset (it increments active_ under this lock).
    while (active_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
    task_ = &fn;
    n_ = n;
    chunk_ = chunk;
    n_chunks_ = n_chunks;
    next_chunk_.store(0, std::memory_order_relaxed);
    done_chunks_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  run_chunks(fn, n, chunk, n_chunks, next_chunk_, done_chunks_);
  int spins = 0;
  // Wait for every chunk, and for every worker that picked this task up to leave it, so no
  // late worker can claim a chunk of the next task with this one's function.
  while (done_chunks_.load(std::memory_order_acquire) < n_chunks || active_.load(std::memory_order_acquire) > 0) {
    if (++spins > 2000) std::this_thread::yield();
  }
}

void ThreadPool::run_tasks(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  if (n == 1 || workers_.empty()) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  parallel_for(std::min<int64_t>(n, size()), [&](int64_t, int64_t) {
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n; i = next.fetch_add(1, std::memory_order_relaxed)) fn(i);
  });
}

}  // namespace ghostline::cpu
