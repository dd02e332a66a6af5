// Placeholder service until the engine and context land: keeps documents, suggests nothing.
#include <map>
#include <mutex>

#include "completion/service.h"

namespace ghostline::completion {
namespace {

class PlaceholderService final : public Service {
 public:
  void open(const std::string& uri, const std::string&, std::string text, int) override {
    std::lock_guard lock(mu_);
    docs_[uri] = std::move(text);
  }
  Expected<void> change(const std::string& uri, int, const std::vector<DocumentEdit>& edits) override {
    std::lock_guard lock(mu_);
    auto it = docs_.find(uri);
    if (it == docs_.end()) return make_error(ErrorCode::NotFound, "document not open: " + uri);
    for (const auto& e : edits) {
      if (e.start > e.old_end || e.old_end > it->second.size())
        return make_error(ErrorCode::InvalidArgument, "edit out of range");
      it->second.replace(e.start, e.old_end - e.start, e.text);
    }
    return ok();
  }
  void close(const std::string& uri) override {
    std::lock_guard lock(mu_);
    docs_.erase(uri);
  }
  void complete(const CompletionRequest&, CancelToken cancel, Callback<CompletionResult> done) override {
    if (cancel.cancelled()) return done(make_error(ErrorCode::Cancelled, "cancelled"));
    CompletionResult r;
    r.stats.source = "none";
    done(std::move(r));
  }
  void fix(const FixRequest&, CancelToken, Callback<std::vector<Fix>> done) override { done(std::vector<Fix>{}); }
  std::vector<Diagnostic> diagnostics(const std::string&) override { return {}; }
  void configure(const Settings&) override {}
  void set_observer(Observer) override {}

 private:
  std::mutex mu_;
  std::map<std::string, std::string> docs_;
};

}  // namespace

std::unique_ptr<Service> make_service(const Settings&) { return std::make_unique<PlaceholderService>(); }

}  // namespace ghostline::completion
