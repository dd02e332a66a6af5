// LatencyPolicy: the one place that decides what a newer keystroke does to completion work
// that is still pending (after clangd's DebouncePolicy).
//
// - Supersession: a newer completion request for the same document and the same method
//   (inline or list completion, counted apart because editors send both per keystroke)
//   cancels the pending one. Its CancelToken is cancelled, which answers it -32800 at once (see
//   Binder) and tells the service to stop its work.
// - No debounce: every request starts at once. The service's typing-through cache answers a
//   keystroke that matches the pending suggestion without model work, and supersession frees
//   the engine for the newest cursor, so a delay would only add latency.
//
// CompletionGate applies the policy. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "engine/base/cancel.h"

namespace ghostline::lsp {

struct LatencyPolicy {
  bool supersede_same_document = true;

  static LatencyPolicy interactive() { return {}; }
  // For tests that want every request to run to its end.
  static LatencyPolicy keep_all() { return LatencyPolicy{false}; }
};

class CompletionGate {
 public:
  explicit CompletionGate(LatencyPolicy policy) : policy_(policy) {}

  // Registers `token` as the newest completion for (uri, kind) and cancels the one it
  // supersedes. Returns a ticket for end().
  unsigned long begin(const std::string& uri, const std::string& kind, const CancelToken& token) {
    if (!policy_.supersede_same_document) return 0;
    CancelToken previous;
    unsigned long ticket;
    {
      std::lock_guard lock(mu_);
      ticket = ++next_ticket_;
      auto& slot = newest_[{uri, kind}];
      previous = std::exchange(slot.token, token);
      slot.ticket = ticket;
    }
    previous.cancel();  // outside the lock: it answers the superseded request
    return ticket;
  }

  // Forgets the request of `ticket` when it is still the newest for (uri, kind).
  void end(const std::string& uri, const std::string& kind, unsigned long ticket) {
    std::lock_guard lock(mu_);
    auto it = newest_.find({uri, kind});
    if (it != newest_.end() && it->second.ticket == ticket) newest_.erase(it);
  }

  size_t tracked() const {
    std::lock_guard lock(mu_);
    return newest_.size();
  }

  const LatencyPolicy& policy() const { return policy_; }

 private:
  LatencyPolicy policy_;
  struct Slot {
    CancelToken token;
    unsigned long ticket = 0;
  };
  mutable std::mutex mu_;
  unsigned long next_ticket_ = 0;
  std::map<std::pair<std::string, std::string>, Slot> newest_;
};

}  // namespace ghostline::lsp
