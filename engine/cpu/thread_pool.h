// A small fixed thread pool for the CPU backend: parallel_for over an index range, the calling
// thread taking part. One pool per model; not re-entrant (a task must not call parallel_for).
// Workers spin briefly after a task before sleeping, because a decode step issues a hundred
// or more short tasks back to back and a condition-variable wake-up costs as much as one.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ghostline::cpu {

class ThreadPool {
 public:
  // threads <= 0: one per hardware thread.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over disjoint chunks covering [0, n), at most size() chunks, and returns
  // when all are done. Chunks are at least `grain` long (the last may be shorter).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

  // Calls fn(i) for every i in [0, n), handing tasks out one at a time to whichever thread is
  // free (for tasks of uneven cost, such as experts with different numbers of tokens), and
  // returns when all are done. Not re-entrant either.
  void run_tasks(int64_t n, const std::function<void(int64_t)>& fn);

 private:
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};  // bumped (under mu_) for every task
  bool stop_ = false;
  const std::function<void(int64_t, int64_t)>* task_ = nullptr;
  int64_t n_ = 0, chunk_ = 0;
  int n_chunks_ = 0;
  std::atomic<int> next_chunk_{0};
  std::atomic<int> done_chunks_{0};
  std::atomic<int> active_{0};  // workers inside the current task
};

}  // namespace ghostline::cpu
