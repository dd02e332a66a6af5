// The completion service: the LSP-free API that the language server and the CLI both use.
//
// It keeps the open documents (text, version, syntax tree), builds the FIM prompt for a cursor,
// asks the engine and post-processes the answer. Positions here are UTF-8 byte offsets into the
// document's text; the LSP layer converts its own position encodings before calling.
//
// Thread-safety: every method may be called from any thread. Callbacks are called exactly once,
// possibly on another thread, and never while a lock of the caller's is needed by the service.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/cancel.h"
#include "engine/base/expected.h"

namespace ghostline::completion {

// A replacement of bytes [start, old_end) of the current text by `text`.
struct DocumentEdit {
  size_t start = 0;
  size_t old_end = 0;
  std::string text;
};

enum class Trigger { Invoked, Automatic };

struct CompletionRequest {
  std::string uri;
  int version = 0;                   // the document version the cursor refers to
  size_t cursor = 0;                 // byte offset in the document's text
  Trigger trigger = Trigger::Automatic;
  // The item selected in the editor's completion widget (LSP selectedCompletionInfo):
  // it replaces [start, end) and the suggestion must begin with it.
  std::optional<std::string> selected_text;
  size_t selected_start = 0, selected_end = 0;
  std::optional<int> max_tokens;     // overrides the configured limit
};

struct Suggestion {
  std::string insert_text;           // replaces [replace_start, replace_end)
  size_t replace_start = 0;
  size_t replace_end = 0;
  std::string filter_text;
};

struct CompletionStats {
  int prompt_tokens = 0;
  int cached_tokens = 0;
  int generated_tokens = 0;
  int draft_proposed = 0;
  int draft_accepted = 0;
  double ttft_ms = 0;
  double total_ms = 0;
  // Where the time before the engine went (answers that built a context): from the request until
  // the worker began it (earlier work, the model load), then context windows + FIM prompt +
  // tokenization. ttft_ms - queue_ms - context_ms is the engine's wait, prefill and first token.
  double queue_ms = 0;
  double context_ms = 0;
  std::string source;                // "engine", "cache", "typing-through", "none"
};

struct CompletionResult {
  std::vector<Suggestion> items;     // empty when there is nothing to suggest
  CompletionStats stats;
};

struct Diagnostic {
  size_t start = 0, end = 0;         // byte range
  std::string message;
  std::string source = "ghostline";
};

struct FixRequest {
  std::string uri;
  int version = 0;
  Diagnostic diagnostic;             // ours or another server's, as byte ranges
};

struct Fix {
  std::string title;
  std::vector<DocumentEdit> edits;   // minimal edits against the document at `version`
};

struct Settings {
  std::string model;                 // model directory; empty = embedded default
  std::string endpoint;              // remote engine URL; empty = in-process
  std::string device = "auto";
  int max_tokens = 64;
  float temperature = 0.0f;
  std::vector<std::string> enabled_languages;  // empty = all
  bool complete_in_comments = false;
  bool complete_mid_line = false;    // also where code (not only closers) follows the cursor on its line
  double max_prefill_ms = 0;         // 0 = no limit
  double max_total_ms = 0;
  bool speculation = true;           // drafts verified in one pass (greedy output unchanged)
  bool token_healing = true;         // a partial word before the cursor is regenerated (constrained)
  // Multi-line suggestions: once the first line is complete and this many ms have passed since
  // the request, answer with that line and finish the rest in the background; the next request
  // (after accepting the line) gets the rest by typing-through. < 0 = always wait for the whole.
  double early_first_line_ms = 150;
  size_t max_prefix_tokens = 1024;   // context windows (the model's context bounds them too)
  size_t max_suffix_tokens = 384;
  size_t max_snippets = 0;           // cross-file snippets; 0 for models not trained with them
  int threads = 0;                   // CPU threads for the engine; 0 = all cores
};

// What the service has done so far: for status bars, benchmarks and tests.
struct ServiceStatus {
  std::string model;                 // the configured model path
  std::string model_name;            // its folder name, once loaded
  std::string device;                // "cpu" / "cuda", once loaded
  bool loaded = false;
  std::string load_error;            // why the model could not be loaded, if it could not
  int kv_capacity_tokens = 0;
  // Answers by source ("engine", "engine-first-line", "cache", "typing-through", "none"), and
  // requests that ended cancelled or failed.
  std::map<std::string, long> answers;
  long cancelled = 0;
  long failed = 0;
  // Over every engine answer: prompt tokens, those reused from the prefix cache, generated.
  long prompt_tokens = 0;
  long cached_tokens = 0;
  long generated_tokens = 0;
  CompletionStats last;              // the most recent answer's numbers
};

class Service {
 public:
  virtual ~Service() = default;

  // Documents. `text` must be UTF-8; invalid bytes are kept as they are and never crash parsing.
  virtual void open(const std::string& uri, const std::string& language_id, std::string text, int version) = 0;
  virtual Expected<void> change(const std::string& uri, int version, const std::vector<DocumentEdit>& edits) = 0;
  virtual void close(const std::string& uri) = 0;

  // Inline completion at a cursor. A cancelled token makes the callback answer Cancelled promptly.
  virtual void complete(const CompletionRequest& request, CancelToken cancel, Callback<CompletionResult> done) = 0;

  // Quick fixes for a diagnostic; the result may be empty (no fix that validates).
  virtual void fix(const FixRequest& request, CancelToken cancel, Callback<std::vector<Fix>> done) = 0;

  // Syntax diagnostics of a document as of its latest version.
  virtual std::vector<Diagnostic> diagnostics(const std::string& uri) = 0;

  virtual void configure(const Settings& settings) = 0;

  // Loads the configured model now (it is otherwise loaded on the first request or after
  // configure()) and waits for it: the CLI uses it to time the completion apart from the load.
  virtual Expected<void> preload() { return ok(); }

  virtual ServiceStatus status() const { return {}; }

  // Tells the user-facing layer about slow work (model load) and log lines.
  struct Observer {
    std::function<void(const std::string& uri, int version, const std::vector<Diagnostic>&)> on_diagnostics;
    std::function<void(const std::string& message, int percent, bool done)> on_progress;
    std::function<void(const std::string& line)> on_log;
  };
  virtual void set_observer(Observer observer) = 0;
};

}  // namespace ghostline::completion

namespace ghostline::completion {

// The real service: documents parsed with tree-sitter, context, engine. Loads the model lazily
// (on the first completion or at configure()), reporting progress through the observer.
std::unique_ptr<Service> make_service(const Settings& settings);

}  // namespace ghostline::completion
