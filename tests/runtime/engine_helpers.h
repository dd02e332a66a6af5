// Helpers for driving an Engine in tests: run one request to completion and collect its events.
#pragma once

#include <condition_variable>
#include <future>
#include <mutex>
#include <vector>

#include "engine/engine.h"

namespace ghostline::engine::testing {

struct Collected {
  std::vector<int32_t> tokens;
  std::string text;
  int events = 0;
  int final_events = 0;
  FinishReason reason = FinishReason::None;
  GenerationStats stats;
  std::string error;
};

// A thread-safe collector whose done() future resolves at the final event.
class Collector {
 public:
  std::function<void(const StreamEvent&)> callback() {
    return [this](const StreamEvent& ev) {
      std::lock_guard lock(mu_);
      ++c_.events;
      c_.tokens.insert(c_.tokens.end(), ev.tokens.begin(), ev.tokens.end());
      c_.text += ev.text;
      if (ev.finished) {
        ++c_.final_events;
        c_.reason = ev.reason;
        c_.stats = ev.stats;
        c_.error = ev.error;
        if (c_.final_events == 1) done_.set_value();
      }
    };
  }
  const Collected& wait() {
    done_.get_future().wait();
    return c_;
  }
  Collected snapshot() {
    std::lock_guard lock(mu_);
    return c_;
  }

 private:
  std::mutex mu_;
  Collected c_;
  std::promise<void> done_;
};

inline Collected run_one(Engine& engine, GenerationRequest req) {
  Collector c;
  engine.submit(std::move(req), c.callback());
  return c.wait();
}

}  // namespace ghostline::engine::testing
