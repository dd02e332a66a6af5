// LspServer: translate and delegate (see server.h).
#include "lsp/server.h"

#include <algorithm>
#include <mutex>

namespace ghostline::lsp {
namespace {

constexpr int kLogError = 1, kLogWarning = 2, kLogInfo = 3;

completion::Trigger to_trigger(int lsp_trigger_kind) {
  return lsp_trigger_kind == 1 ? completion::Trigger::Invoked : completion::Trigger::Automatic;
}

Range to_range(const LineIndex& index, size_t start, size_t end, PositionEncoding e) {
  return Range{index.to_position(start, e), index.to_position(end, e)};
}

// Quick fixes computed at once (clients that cannot resolve) for at most this many diagnostics
// of one request: each costs model time, and the service computes them one after another.
constexpr size_t kMaxEagerFixes = 5;

bool wants_quickfix(const std::optional<std::vector<std::string>>& only) {
  if (!only) return true;
  return std::find(only->begin(), only->end(), "quickfix") != only->end();
}

completion::FixRequest fix_request(const FixData& data, const LineIndex& index, PositionEncoding enc) {
  completion::FixRequest request;
  request.uri = data.uri;
  request.version = data.version;
  request.diagnostic.start = index.to_offset(data.diagnostic.range.start, enc);
  request.diagnostic.end = index.to_offset(data.diagnostic.range.end, enc);
  if (request.diagnostic.end < request.diagnostic.start) std::swap(request.diagnostic.start, request.diagnostic.end);
  request.diagnostic.message = data.diagnostic.message;
  if (data.diagnostic.source) request.diagnostic.source = *data.diagnostic.source;
  return request;
}

// The action with the fix's edits as a WorkspaceEdit (positions in the client's encoding).
CodeAction with_edit(CodeAction action, const completion::Fix& fix, const std::string& text, PositionEncoding enc) {
  LineIndex index(text);
  std::vector<TextEdit> edits;
  for (const auto& e : fix.edits) edits.push_back(TextEdit{to_range(index, e.start, e.old_end, enc), e.text});
  action.edit = std::map<std::string, std::vector<TextEdit>>{{action.data.uri, std::move(edits)}};
  return action;
}

std::string first_line(const std::string& s) {
  size_t start = s.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return s;
  size_t end = s.find_first_of("\r\n", start);
  return s.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

}  // namespace

std::shared_ptr<LspServer> LspServer::create(completion::Service& service, Outbox::Write write, ServerOptions options) {
  std::shared_ptr<LspServer> server(new LspServer(service, std::move(write), std::move(options)));
  server->bind_methods();
  server->install_observer();
  return server;
}

LspServer::LspServer(completion::Service& service, Outbox::Write write, ServerOptions options)
    : service_(service),
      outbox_(std::make_shared<Outbox>(std::move(write))),
      binder_(outbox_),
      gate_(options.latency),
      version_(std::move(options.version)),
      settings_(std::move(options.settings)) {}

LspServer::~LspServer() { service_.set_observer({}); }

void LspServer::bind_methods() {
  // Lifecycle gate for requests.
  binder_.set_gate([this](const std::string& method) -> std::optional<RpcError> {
    if (method == "initialize") {
      if (initialized_) return RpcError{kInvalidRequest, "initialize may only be sent once"};
      return std::nullopt;
    }
    if (!initialized_) return RpcError{kServerNotInitialized, "server not initialized: send initialize first (got " + method + ")"};
    if (shut_down_) return RpcError{kInvalidRequest, "server is shut down: only exit is accepted (got " + method + ")"};
    return std::nullopt;
  });
  binder_.set_log([this](const std::string& line) { log(kLogWarning, line); });

  // Notifications other than exit are dropped before initialize, as the LSP requires.
  auto after_init = [this](auto handler) {
    return [this, handler](const auto& params) {
      if (initialized_ && !shut_down_) (this->*handler)(params);
    };
  };

  binder_.request<InitializeParams>("initialize", [this](const InitializeParams& p, CancelToken, Reply r) { on_initialize(p, r); });
  binder_.raw_request("shutdown", [this](const json&, CancelToken, Reply r) { on_shutdown(r); });
  binder_.raw_notification("initialized", [](const json&) {});
  binder_.raw_notification("exit", [this](const json&) { on_exit(); });
  binder_.notification<CancelParams>("$/cancelRequest", [this](const CancelParams& p) { binder_.cancel(p.id); });
  binder_.notification<SetTraceParams>("$/setTrace", [this](const SetTraceParams& p) {
    std::lock_guard lock(settings_mu_);
    trace_ = p.value;
  });
  binder_.notification<DidOpenTextDocumentParams>("textDocument/didOpen", after_init(&LspServer::on_did_open));
  binder_.notification<DidChangeTextDocumentParams>("textDocument/didChange", after_init(&LspServer::on_did_change));
  binder_.notification<DidCloseTextDocumentParams>("textDocument/didClose", after_init(&LspServer::on_did_close));
  binder_.notification<DidSaveTextDocumentParams>("textDocument/didSave", after_init(&LspServer::on_did_save));
  binder_.notification<DidChangeConfigurationParams>("workspace/didChangeConfiguration",
                                                     after_init(&LspServer::on_did_change_configuration));
  binder_.request<InlineCompletionParams>("textDocument/inlineCompletion",
                                          [this](const InlineCompletionParams& p, CancelToken c, Reply r) { on_inline_completion(p, c, r); });
  binder_.request<CompletionParams>("textDocument/completion",
                                    [this](const CompletionParams& p, CancelToken c, Reply r) { on_completion(p, c, r); });
  binder_.request<CodeActionParams>("textDocument/codeAction",
                                    [this](const CodeActionParams& p, CancelToken c, Reply r) { on_code_action(p, c, r); });
  binder_.request<CodeAction>("codeAction/resolve",
                              [this](const CodeAction& a, CancelToken c, Reply r) { on_code_action_resolve(a, c, r); });
  binder_.raw_request("ghostline/status", [this](const json&, CancelToken, Reply r) { on_status(r); });
}

void LspServer::install_observer() {
  std::weak_ptr<LspServer> weak = weak_from_this();
  completion::Service::Observer observer;
  observer.on_log = [weak](const std::string& line) {
    auto self = weak.lock();
    if (!self) return;
    self->log(kLogInfo, line);
    bool tracing;
    {
      std::lock_guard lock(self->settings_mu_);
      tracing = self->trace_ != "off";
    }
    if (tracing) self->binder_.notify("$/logTrace", json{{"message", line}});
  };
  observer.on_progress = [weak](const std::string& message, int percent, bool done) {
    if (auto self = weak.lock()) self->progress(message, percent, done);
  };
  observer.on_diagnostics = [weak](const std::string& uri, int version, const std::vector<completion::Diagnostic>& d) {
    if (auto self = weak.lock()) self->publish(uri, version, d);
  };
  service_.set_observer(std::move(observer));
}

// ---- lifecycle ----

void LspServer::on_initialize(const InitializeParams& p, Reply reply) {
  PositionEncoding chosen = PositionEncoding::Utf16;
  for (const auto& name : p.positionEncodings) {
    if (auto e = parse_encoding(name)) {
      chosen = *e;
      break;
    }
  }
  encoding_ = static_cast<int>(chosen);
  client_progress_ = p.workDoneProgress;
  client_resolves_code_actions_ = p.codeActionResolve;
  if (p.initializationOptions.is_object()) {
    completion::Settings settings;
    {
      std::lock_guard lock(settings_mu_);
      try {
        apply_settings(p.initializationOptions, settings_);
      } catch (const std::exception& e) {
        return reply.error(RpcError{kInvalidParams, std::string("invalid initializationOptions: ") + e.what()});
      }
      settings = settings_;
    }
    service_.configure(settings);
  }
  initialized_ = true;
  reply(json(InitializeResult{chosen, version_}));
}

void LspServer::on_shutdown(Reply reply) {
  shut_down_ = true;
  reply(nullptr);
}

void LspServer::on_exit() { exited_ = true; }

// ---- documents ----

void LspServer::on_did_open(const DidOpenTextDocumentParams& p) {
  const auto& d = p.textDocument;
  documents_.open(d.uri, d.languageId, d.text, d.version);
  service_.open(d.uri, d.languageId, d.text, d.version);
}

void LspServer::on_did_change(const DidChangeTextDocumentParams& p) {
  const auto& uri = p.textDocument.uri;
  auto edits = documents_.apply(uri, p.textDocument.version, p.contentChanges, encoding());
  if (!edits) return log(kLogWarning, "didChange ignored: " + edits.error().message);
  if (auto r = service_.change(uri, p.textDocument.version, *edits); !r)
    log(kLogError, "didChange of " + uri + " failed in the completion service: " + r.error().message);
}

void LspServer::on_did_close(const DidCloseTextDocumentParams& p) {
  documents_.close(p.textDocument.uri);
  service_.close(p.textDocument.uri);
  binder_.notify("textDocument/publishDiagnostics", json(PublishDiagnosticsParams{p.textDocument.uri, std::nullopt, {}}));
}

void LspServer::on_did_save(const DidSaveTextDocumentParams& p) {
  if (!p.text) return;
  auto snap = documents_.get(p.textDocument.uri);
  if (!snap || snap->text == *p.text) return;
  // The saved text differs from ours: resynchronise with a full replacement.
  DidChangeTextDocumentParams change;
  change.textDocument = {p.textDocument.uri, snap->version};
  change.contentChanges.push_back(ContentChange{std::nullopt, *p.text});
  on_did_change(change);
}

void LspServer::on_did_change_configuration(const DidChangeConfigurationParams& p) {
  completion::Settings settings;
  {
    std::lock_guard lock(settings_mu_);
    completion::Settings updated = settings_;
    try {
      apply_settings(p.settings, updated);
    } catch (const std::exception& e) {
      return log(kLogError, std::string("configuration ignored: ") + e.what());
    }
    settings_ = settings = updated;
  }
  service_.configure(settings);
}

// ---- completions ----

void LspServer::on_inline_completion(const InlineCompletionParams& p, CancelToken cancel, Reply reply) {
  auto snap = documents_.get(p.textDocument.uri);
  if (!snap) return reply.error(RpcError{kInvalidParams, "document is not open: " + p.textDocument.uri});
  auto text = std::make_shared<const std::string>(std::move(snap->text));
  const PositionEncoding enc = encoding();
  LineIndex index(*text);
  completion::CompletionRequest request;
  request.uri = p.textDocument.uri;
  request.version = snap->version;
  request.cursor = index.to_offset(p.position, enc);
  request.trigger = to_trigger(p.triggerKind);
  if (p.selectedCompletionInfo) {
    request.selected_text = p.selectedCompletionInfo->text;
    request.selected_start = index.to_offset(p.selectedCompletionInfo->range.start, enc);
    request.selected_end = index.to_offset(p.selectedCompletionInfo->range.end, enc);
  }
  const unsigned long ticket = gate_.begin(request.uri, "inline", cancel);
  std::weak_ptr<LspServer> weak = weak_from_this();
  service_.complete(request, cancel, [weak, reply, text, enc, uri = request.uri, ticket](Expected<completion::CompletionResult> r) {
    if (auto self = weak.lock()) self->gate_.end(uri, "inline", ticket);
    if (!r) return reply.error(r.error());
    LineIndex index(*text);
    InlineCompletionList list;
    for (const auto& s : r->items) {
      InlineCompletionItem item;
      item.insertText = s.insert_text;
      item.range = to_range(index, s.replace_start, s.replace_end, enc);
      if (!s.filter_text.empty()) item.filterText = s.filter_text;
      list.items.push_back(std::move(item));
    }
    const int items = int(list.items.size());
    if (!reply(json(list))) return;  // already answered -32800: the client never saw this one
    if (auto self = weak.lock()) self->completion_stats(uri, reply.id(), "textDocument/inlineCompletion", items, r->stats);
  });
}

void LspServer::on_completion(const CompletionParams& p, CancelToken cancel, Reply reply) {
  auto snap = documents_.get(p.textDocument.uri);
  if (!snap) return reply.error(RpcError{kInvalidParams, "document is not open: " + p.textDocument.uri});
  auto text = std::make_shared<const std::string>(std::move(snap->text));
  const PositionEncoding enc = encoding();
  completion::CompletionRequest request;
  request.uri = p.textDocument.uri;
  request.version = snap->version;
  request.cursor = LineIndex(*text).to_offset(p.position, enc);
  request.trigger = to_trigger(p.triggerKind);
  const unsigned long ticket = gate_.begin(request.uri, "completion", cancel);
  std::weak_ptr<LspServer> weak = weak_from_this();
  service_.complete(request, cancel, [weak, reply, text, enc, uri = request.uri, ticket](Expected<completion::CompletionResult> r) {
    if (auto self = weak.lock()) self->gate_.end(uri, "completion", ticket);
    if (!r) return reply.error(r.error());
    LineIndex index(*text);
    CompletionList list;
    for (const auto& s : r->items) {
      if (s.insert_text.empty()) continue;
      CompletionItem item;
      item.label = first_line(s.insert_text);
      item.filterText = s.filter_text.empty() ? s.insert_text : s.filter_text;
      item.textEdit = TextEdit{to_range(index, s.replace_start, s.replace_end, enc), s.insert_text};
      list.items.push_back(std::move(item));
    }
    const int items = int(list.items.size());
    if (!reply(json(list))) return;
    if (auto self = weak.lock()) self->completion_stats(uri, reply.id(), "textDocument/completion", items, r->stats);
  });
}

void LspServer::on_status(Reply reply) { reply(json(StatusResult{service_.status()})); }

void LspServer::completion_stats(const std::string& uri, const json& request_id, const char* method, int items,
                                 const completion::CompletionStats& stats) {
  binder_.notify("ghostline/completionStats", json(CompletionStatsParams{uri, request_id, method, items, stats}));
}

// ---- quick fixes ----

void LspServer::on_code_action(const CodeActionParams& p, CancelToken cancel, Reply reply) {
  auto snap = documents_.get(p.textDocument.uri);
  if (!snap || !wants_quickfix(p.only)) {
    reply(json::array());
    return;
  }
  std::vector<CodeAction> actions;
  for (const auto& d : p.diagnostics) {
    CodeAction action;
    action.title = "Fix with Ghostline: " + first_line(d.message);
    action.diagnostics = {d};
    action.data = FixData{p.textDocument.uri, snap->version, d};
    actions.push_back(std::move(action));
  }
  if (client_resolves_code_actions_ || actions.empty()) {
    reply(json(actions));
    return;
  }

  // The client cannot resolve: compute the fixes now and offer those that were found.
  if (actions.size() > kMaxEagerFixes) actions.resize(kMaxEagerFixes);
  struct Gather {
    std::mutex mu;
    std::vector<std::optional<CodeAction>> found;
    size_t left = 0;
    bool cancelled = false;
  };
  auto gather = std::make_shared<Gather>();
  gather->found.resize(actions.size());
  gather->left = actions.size();
  auto text = std::make_shared<const std::string>(std::move(snap->text));
  const PositionEncoding enc = encoding();
  const LineIndex index(*text);
  std::weak_ptr<LspServer> weak = weak_from_this();
  for (size_t i = 0; i < actions.size(); ++i) {
    service_.fix(fix_request(actions[i].data, index, enc), cancel,
                 [gather, i, action = actions[i], text, enc, reply, weak](Expected<std::vector<completion::Fix>> r) {
                   json result;
                   bool last = false, cancelled = false;
                   {
                     std::lock_guard lock(gather->mu);
                     if (!r && r.error().code == ErrorCode::Cancelled) gather->cancelled = true;
                     if (r && !r->empty()) gather->found[i] = with_edit(action, r->front(), *text, enc);
                     last = --gather->left == 0;
                     if (last) {
                       result = json::array();
                       for (const auto& a : gather->found)
                         if (a) result.push_back(*a);
                       cancelled = gather->cancelled;
                     }
                   }
                   if (!r && r.error().code != ErrorCode::Cancelled)
                     if (auto self = weak.lock()) self->log(kLogWarning, "quick fix for '" + action.data.diagnostic.message + "' failed: " + r.error().message);
                   if (!last) return;
                   if (cancelled) return reply.error(Error(ErrorCode::Cancelled, "cancelled"));
                   reply(std::move(result));
                 });
  }
}

void LspServer::on_code_action_resolve(const CodeAction& action, CancelToken cancel, Reply reply) {
  auto snap = documents_.get(action.data.uri);
  if (!snap) return reply.error(RpcError{kInvalidParams, "document is not open: " + action.data.uri});
  if (snap->version != action.data.version)
    return reply.error(RpcError{kContentModified, "document changed since the code action was offered (version " +
                                                      std::to_string(action.data.version) + ", now " +
                                                      std::to_string(snap->version) + ")"});
  auto text = std::make_shared<const std::string>(std::move(snap->text));
  const PositionEncoding enc = encoding();
  service_.fix(fix_request(action.data, LineIndex(*text), enc), cancel,
               [reply, action, text, enc](Expected<std::vector<completion::Fix>> r) {
                 if (!r) return reply.error(r.error());
                 reply(json(r->empty() ? action : with_edit(action, r->front(), *text, enc)));
               });
}

// ---- from the service ----

void LspServer::log(int type, const std::string& message) {
  binder_.notify("window/logMessage", json{{"type", type}, {"message", message}});
}

void LspServer::progress(const std::string& message, int percent, bool done) {
  if (!client_progress_) {
    if (done || percent <= 0) log(kLogInfo, message);
    return;
  }
  std::lock_guard lock(progress_mu_);
  json value{{"message", message}};
  if (percent >= 0 && percent <= 100) value["percentage"] = percent;
  if (progress_token_.empty()) {
    if (done) return log(kLogInfo, message);
    progress_token_ = "ghostline/progress/" + std::to_string(++progress_count_);
    binder_.call("window/workDoneProgress/create", json{{"token", progress_token_}});
    value["kind"] = "begin";
    value["title"] = "Ghostline";
    value["cancellable"] = false;
  } else {
    value["kind"] = done ? "end" : "report";
    if (done) value.erase("percentage");
  }
  binder_.notify("$/progress", json{{"token", progress_token_}, {"value", value}});
  if (done) progress_token_.clear();
}

void LspServer::publish(const std::string& uri, int version, const std::vector<completion::Diagnostic>& diagnostics) {
  auto snap = documents_.get(uri);
  if (!snap || snap->version != version) return;  // stale: a newer version will be reported
  LineIndex index(snap->text);
  const PositionEncoding enc = encoding();
  PublishDiagnosticsParams params{uri, version, {}};
  for (const auto& d : diagnostics)
    params.diagnostics.push_back(LspDiagnostic{to_range(index, d.start, d.end, enc), d.message, d.source, 1});
  binder_.notify("textDocument/publishDiagnostics", json(params));
}

}  // namespace ghostline::lsp
