// Helpers for driving an Engine in tests: run one request to completion and collect its events.
#pragma once

#include <condition_variable>
#include <future>
#include <memory>
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

// A thread-safe collector whose wait() returns at the final event. Its state is shared with the
// callback, so the callback may still be running (unlocking) when the waiter has moved on.
class Collector {
 public:
  Collector() : state_(std::make_shared<State>()), done_(state_->done.get_future()) {}
  std::function<void(const StreamEvent&)> callback() {
    return [st = state_](const StreamEvent& ev) {
      bool first_final = false;
      {
        std::lock_guard lock(st->mu);
        ++st->c.events;
        st->c.tokens.insert(st->c.tokens.end(), ev.tokens.begin(), ev.tokens.end());
        st->c.text += ev.text;
        if (ev.finished) {
          ++st->c.final_events;
          st->c.reason = ev.reason;
          st->c.stats = ev.stats;
          st->c.error = ev.error;
          first_final = st->c.final_events == 1;
        }
      }
      if (first_final) st->done.set_value();
    };
  }
  Collected wait() {
    done_.wait();
    return snapshot();
  }
  Collected snapshot() {
    std::lock_guard lock(state_->mu);
    return state_->c;
  }

 private:
  struct State {
    std::mutex mu;
    Collected c;
    std::promise<void> done;
  };
  std::shared_ptr<State> state_;
  std::shared_future<void> done_;
};

inline Collected run_one(Engine& engine, GenerationRequest req) {
  Collector c;
  engine.submit(std::move(req), c.callback());
  return c.wait();
}

}  // namespace ghostline::engine::testing
