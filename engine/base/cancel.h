// CancelToken: a shared flag that a requester sets and a worker polls between steps.
//
// Thread-safe. Copies share one flag. A default-constructed token can never be cancelled.
#pragma once

#include <atomic>
#include <memory>

namespace ghostline {

class CancelToken {
 public:
  CancelToken() = default;
  static CancelToken make() {
    CancelToken t;
    t.flag_ = std::make_shared<std::atomic<bool>>(false);
    return t;
  }
  void cancel() const {
    if (flag_) flag_->store(true, std::memory_order_release);
  }
  bool cancelled() const { return flag_ && flag_->load(std::memory_order_acquire); }

 private:
  std::shared_ptr<std::atomic<bool>> flag_;
};

}  // namespace ghostline
