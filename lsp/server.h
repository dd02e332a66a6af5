// LspServer: the language server's handlers, one on<Method> per LSP method. Each translates
// between the protocol (positions in the negotiated encoding) and ghostline::completion::Service
// (UTF-8 byte offsets) and delegates; nothing here computes a completion or a fix.
//
// $/setTrace: with trace on, the service's log lines also go out as $/logTrace.
// Quick fixes: textDocument/codeAction offers one "Fix with Ghostline: <message>" quickfix per
// diagnostic in its context (ours or another server's), unless context.only leaves quickfix out.
// A client that resolves code actions (resolveSupport with "edit") gets them without edits and
// the service computes the edit on codeAction/resolve; for other clients the server asks the
// service at once (for the first kMaxEagerFixes diagnostics) and offers only the actions it found
// a fix for, each with its minimal edit.
// Lifecycle: requests before `initialize` answer -32002, requests after `shutdown` answer
// -32600, `exit` ends the session with code 0 after shutdown and 1 without. Service observer
// callbacks (logs, model-load progress, diagnostics) may come from any thread; everything the
// server sends goes through the Binder's one writer.
//
// Ghostline's own methods (for status bars, benchmarks and tests; field names are camelCase):
//  - request `ghostline/status` (no params) → the service's ServiceStatus: {model, modelName,
//    device, loaded, loadError, kvCapacityTokens, answers: {source: count}, cancelled, failed,
//    promptTokens, cachedTokens, generatedTokens, last: <stats>}. Answers are counted by source:
//    engine, engine-first-line, cache, typing-through, none.
//  - notification `ghostline/completionStats`, sent after each answered textDocument/inlineCompletion
//    or textDocument/completion (never for one answered with an error, e.g. -32800 when
//    superseded): {uri, requestId, method, items, source, promptTokens, cachedTokens,
//    generatedTokens, draftProposed, draftAccepted, ttftMs, totalMs, queueMs, contextMs}
//    (completion::CompletionStats: times from the service's receipt of the request). It follows the reply, and
//    costs one small message: editors show "last latency" from it.
//
// Ownership: create with LspServer::create(); the service must outlive the server. Callbacks
// from the service that arrive after the server is gone are dropped.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "completion/service.h"
#include "lsp/binder.h"
#include "lsp/documents.h"
#include "lsp/latency_policy.h"
#include "lsp/protocol.h"

namespace ghostline::lsp {

struct ServerOptions {
  completion::Settings settings;                 // from the command line; the client may override
  LatencyPolicy latency = LatencyPolicy::interactive();
  std::string version = "0.1.0";
};

class LspServer : public std::enable_shared_from_this<LspServer> {
 public:
  // `write` receives framed bytes, one message at a time, from any thread (see Outbox).
  static std::shared_ptr<LspServer> create(completion::Service& service, Outbox::Write write, ServerOptions options);
  ~LspServer();

  // One message body, or a refused frame, from the transport (the reading thread).
  void receive(std::string_view body) { binder_.receive(body); }
  void frame_error(const Error& e) { binder_.frame_error(e); }

  // True once `exit` arrived; exit_code() is then 0 if `shutdown` came first, else 1.
  bool exited() const { return exited_; }
  int exit_code() const { return shut_down_ ? 0 : 1; }
  // The exit code for a session that ended: 1 when the stream ended without `exit`.
  int exit_code_if_exited() const { return exited_ ? exit_code() : 1; }
  // Stops all output (the peer is gone).
  void close_output() { outbox_->close(); }

  PositionEncoding encoding() const { return static_cast<PositionEncoding>(encoding_.load()); }
  size_t pending_requests() const { return binder_.pending(); }

 private:
  LspServer(completion::Service& service, Outbox::Write write, ServerOptions options);
  void bind_methods();
  void install_observer();

  void on_initialize(const InitializeParams& p, Reply reply);
  void on_shutdown(Reply reply);
  void on_exit();
  void on_did_open(const DidOpenTextDocumentParams& p);
  void on_did_change(const DidChangeTextDocumentParams& p);
  void on_did_close(const DidCloseTextDocumentParams& p);
  void on_did_save(const DidSaveTextDocumentParams& p);
  void on_inline_completion(const InlineCompletionParams& p, CancelToken cancel, Reply reply);
  void on_completion(const CompletionParams& p, CancelToken cancel, Reply reply);
  void on_code_action(const CodeActionParams& p, CancelToken cancel, Reply reply);
  void on_code_action_resolve(const CodeAction& action, CancelToken cancel, Reply reply);
  void on_did_change_configuration(const DidChangeConfigurationParams& p);
  void on_status(Reply reply);
  void completion_stats(const std::string& uri, const json& request_id, const char* method, int items,
                        const completion::CompletionStats& stats);

  void log(int type, const std::string& message);
  void progress(const std::string& message, int percent, bool done);
  void publish(const std::string& uri, int version, const std::vector<completion::Diagnostic>& diagnostics);

  completion::Service& service_;
  std::shared_ptr<Outbox> outbox_;
  Binder binder_;
  DocumentStore documents_;
  CompletionGate gate_;
  std::string version_;

  std::mutex settings_mu_;
  completion::Settings settings_;
  std::string trace_ = "off";

  std::atomic<int> encoding_{static_cast<int>(PositionEncoding::Utf16)};
  std::atomic<bool> initialized_{false}, shut_down_{false}, exited_{false};
  std::atomic<bool> client_progress_{false};
  std::atomic<bool> client_resolves_code_actions_{false};

  std::mutex progress_mu_;
  std::string progress_token_;  // non-empty while a progress is shown
  int progress_count_ = 0;
};

}  // namespace ghostline::lsp
