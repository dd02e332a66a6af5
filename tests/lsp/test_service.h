// A test implementation of completion::Service for the server's wiring (the issue allows this
// for tests only): it records what it was asked, answers completions with a configured
// suggestion either at once or when the test releases it, and answers Cancelled as soon as a
// request's token is cancelled.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "completion/service.h"

namespace ghostline::lsp::testing {

using namespace ghostline::completion;

class TestService final : public Service {
 public:
  struct Held {
    CompletionRequest request;
    CancelToken cancel;
    Callback<CompletionResult> done;
    std::shared_ptr<std::atomic<bool>> answered = std::make_shared<std::atomic<bool>>(false);
  };

  // Configuration (set before use).
  bool hold_completions = false;                 // answer only on release()
  std::vector<Suggestion> suggestions;           // offsets relative to the cursor when `relative`
  bool relative = true;
  std::vector<Fix> fixes;
  // When set, answers each fix request instead of `fixes` (an error, or fixes per diagnostic).
  std::function<Expected<std::vector<Fix>>(const FixRequest&)> fix_answer;
  bool hold_fixes = false;                       // answer fixes only when cancelled (Cancelled)
  CompletionStats stats;                         // sent with every answer
  ServiceStatus status_value;                    // what status() returns

  // Records.
  std::mutex mu;
  std::map<std::string, std::string> docs;
  std::vector<CompletionRequest> requests;
  std::vector<FixRequest> fix_requests;
  std::vector<Settings> configured;
  std::vector<Held> held;
  Observer observer;

  void open(const std::string& uri, const std::string&, std::string text, int) override {
    std::lock_guard lock(mu);
    docs[uri] = std::move(text);
  }
  Expected<void> change(const std::string& uri, int, const std::vector<DocumentEdit>& edits) override {
    std::lock_guard lock(mu);
    auto it = docs.find(uri);
    if (it == docs.end()) return make_error(ErrorCode::NotFound, "not open: " + uri);
    for (const auto& e : edits) {
      if (e.start > e.old_end || e.old_end > it->second.size()) return make_error(ErrorCode::InvalidArgument, "edit out of range");
      it->second.replace(e.start, e.old_end - e.start, e.text);
    }
    return ok();
  }
  void close(const std::string& uri) override {
    std::lock_guard lock(mu);
    docs.erase(uri);
  }
  void complete(const CompletionRequest& request, CancelToken cancel, Callback<CompletionResult> done) override {
    CompletionResult result;
    result.stats = stats;
    for (auto s : suggestions) {
      if (relative) {
        s.replace_start += request.cursor;
        s.replace_end += request.cursor;
      }
      result.items.push_back(s);
    }
    Held h{request, cancel, done};
    {
      std::lock_guard lock(mu);
      requests.push_back(request);
      if (hold_completions) held.push_back(h);
    }
    if (!hold_completions) return done(std::move(result));
    auto answered = h.answered;
    cancel.on_cancel([answered, done] {
      if (!answered->exchange(true)) done(make_error(ErrorCode::Cancelled, "cancelled by the test service"));
    });
  }
  // Answers every held completion that is not answered yet (from the calling thread).
  void release() {
    std::vector<Held> now;
    {
      std::lock_guard lock(mu);
      now.swap(held);
    }
    for (auto& h : now) {
      if (h.answered->exchange(true)) continue;
      CompletionResult result;
      result.stats = stats;
      for (auto s : suggestions) {
        if (relative) {
          s.replace_start += h.request.cursor;
          s.replace_end += h.request.cursor;
        }
        result.items.push_back(s);
      }
      h.done(std::move(result));
    }
  }
  void fix(const FixRequest& request, CancelToken cancel, Callback<std::vector<Fix>> done) override {
    {
      std::lock_guard lock(mu);
      fix_requests.push_back(request);
    }
    if (hold_fixes) {
      cancel.on_cancel([done] { done(make_error(ErrorCode::Cancelled, "cancelled by the test service")); });
      return;
    }
    if (fix_answer) return done(fix_answer(request));
    done(fixes);
  }
  std::vector<Diagnostic> diagnostics(const std::string&) override { return {}; }
  void configure(const Settings& settings) override {
    std::lock_guard lock(mu);
    configured.push_back(settings);
  }
  ServiceStatus status() const override { return status_value; }
  void set_observer(Observer o) override {
    std::lock_guard lock(mu);
    observer = std::move(o);
  }
};

}  // namespace ghostline::lsp::testing
