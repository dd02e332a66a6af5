// CancelToken: a shared flag that a requester sets and a worker polls between steps, with
// optional callbacks for workers that must act at once (e.g. cancel an engine request).
//
// Thread-safe. Copies share one state. A default-constructed token can never be cancelled.
// on_cancel() callbacks run exactly once: on the cancelling thread, or at once on the
// registering thread when the token is already cancelled.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace ghostline {

class CancelToken {
 public:
  CancelToken() = default;
  static CancelToken make() {
    CancelToken t;
    t.state_ = std::make_shared<State>();
    return t;
  }
  void cancel() const {
    if (!state_) return;
    std::vector<std::function<void()>> run;
    {
      std::lock_guard lock(state_->mu);
      if (state_->flag.exchange(true, std::memory_order_acq_rel)) return;
      run.swap(state_->callbacks);
    }
    for (auto& f : run) f();
  }
  bool cancelled() const { return state_ && state_->flag.load(std::memory_order_acquire); }

  void on_cancel(std::function<void()> f) const {
    if (!state_) return;
    {
      std::lock_guard lock(state_->mu);
      if (!state_->flag.load(std::memory_order_acquire)) {
        state_->callbacks.push_back(std::move(f));
        return;
      }
    }
    f();
  }

 private:
  struct State {
    std::atomic<bool> flag{false};
    std::mutex mu;
    std::vector<std::function<void()>> callbacks;
  };
  std::shared_ptr<State> state_;
};

}  // namespace ghostline
