// Binder: JSON-RPC parsing, routing, pending requests and the one writer (see binder.h).
#include "lsp/binder.h"

#include "lsp/frame_reader.h"

namespace ghostline::lsp {

RpcError to_rpc_error(const Error& e) {
  switch (e.code) {
    case ErrorCode::Cancelled: return {-32800, e.message.empty() ? "request cancelled" : e.message};
    case ErrorCode::InvalidArgument:
    case ErrorCode::NotFound: return {-32602, e.message};
    case ErrorCode::Internal: return {-32603, e.message};
    default: return {-32803, e.message};
  }
}

void Outbox::send(const json& message) {
  // Strings with invalid UTF-8 (from a document) are written with U+FFFD, never thrown.
  std::string framed = frame(message.dump(-1, ' ', false, json::error_handler_t::replace));
  std::lock_guard lock(mu_);
  if (closed_) return;
  if (!write_(framed)) closed_ = true;
}

void Outbox::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
}

struct Binder::Core {
  std::shared_ptr<Outbox> outbox;
  std::mutex mu;
  std::map<std::string, CancelToken> pending;  // key: id.dump()
};

struct Reply::State {
  std::shared_ptr<Binder::Core> core;
  json id;
  std::string key;
  std::atomic<bool> done{false};

  bool claim() {
    if (done.exchange(true)) return false;
    std::lock_guard lock(core->mu);
    core->pending.erase(key);
    return true;
  }
};

bool Reply::operator()(json result) const {
  if (!state_ || !state_->claim()) return false;
  state_->core->outbox->send(json{{"jsonrpc", "2.0"}, {"id", state_->id}, {"result", std::move(result)}});
  return true;
}

void Reply::error(RpcError e) const {
  if (!state_ || !state_->claim()) return;
  state_->core->outbox->send(json{{"jsonrpc", "2.0"}, {"id", state_->id},
                                  {"error", {{"code", e.code}, {"message", e.message}}}});
}

const json& Reply::id() const {
  static const json null_id;
  return state_ ? state_->id : null_id;
}

Binder::Binder(std::shared_ptr<Outbox> outbox) : core_(std::make_shared<Core>()) { core_->outbox = std::move(outbox); }

Binder::~Binder() {
  // Whatever is still pending is cancelled so that workers stop; their late replies still go
  // through the shared outbox if it is open.
  std::map<std::string, CancelToken> pending;
  {
    std::lock_guard lock(core_->mu);
    pending.swap(core_->pending);
  }
  for (auto& [key, token] : pending) token.cancel();
}

void Binder::send_error(const json& id, RpcError e) {
  core_->outbox->send(json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", e.code}, {"message", e.message}}}});
}

void Binder::frame_error(const Error& e) { send_error(nullptr, RpcError{-32700, "bad frame: " + e.message}); }

void Binder::receive(std::string_view body) {
  json message = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (message.is_discarded()) return send_error(nullptr, {-32700, "parse error: the message is not valid JSON"});
  dispatch(message);
}

void Binder::dispatch(const json& m) {
  if (!m.is_object()) return send_error(nullptr, {-32600, "invalid request: a message must be a JSON object"});
  json id;  // null unless a valid id is present
  bool has_id = m.contains("id");
  if (has_id) {
    const json& raw = m["id"];
    if (raw.is_number_integer() || raw.is_string()) id = raw;
    else return send_error(nullptr, {-32600, "invalid request: id must be an integer or a string"});
  }
  auto jsonrpc = m.find("jsonrpc");
  if (jsonrpc == m.end() || *jsonrpc != "2.0")
    return send_error(id, {-32600, "invalid request: \"jsonrpc\" must be \"2.0\""});
  auto method_it = m.find("method");
  if (method_it == m.end()) {
    if (has_id && (m.contains("result") || m.contains("error"))) return;  // a response to our call
    return send_error(id, {-32600, "invalid request: no \"method\""});
  }
  if (!method_it->is_string()) return send_error(id, {-32600, "invalid request: \"method\" must be a string"});
  const std::string method = method_it->get<std::string>();
  json params = m.contains("params") ? m["params"] : json(nullptr);
  if (!params.is_null() && !params.is_object() && !params.is_array()) {
    if (has_id) return send_error(id, {-32602, "invalid params: \"params\" must be an object or an array"});
    return log_("notification " + method + " with non-structured params ignored");
  }

  if (!has_id) {
    auto it = notifications_.find(method);
    if (it == notifications_.end()) return;  // unknown notifications are ignored ($/ or not)
    try {
      it->second(params);
    } catch (const std::exception& e) {
      log_("notification " + method + " failed: " + e.what());
    }
    return;
  }

  if (gate_) {
    if (auto refused = gate_(method)) return send_error(id, *refused);
  }
  auto it = requests_.find(method);
  if (it == requests_.end()) return send_error(id, {-32601, "method not found: " + method});

  Reply reply;
  reply.state_ = std::make_shared<Reply::State>();
  reply.state_->core = core_;
  reply.state_->id = id;
  reply.state_->key = id.dump();
  CancelToken token = CancelToken::make();
  {
    std::lock_guard lock(core_->mu);
    auto [slot, fresh] = core_->pending.emplace(reply.state_->key, token);
    if (!fresh) {
      // A second request reusing a pending id: refuse it, keep the first.
      reply.state_->done = true;
      return send_error(id, {-32600, "invalid request: id " + id.dump() + " is already pending"});
    }
  }
  // Cancelling (client $/cancelRequest, supersession, shutdown) answers at once.
  token.on_cancel([reply] { reply.error(RpcError{-32800, "request cancelled"}); });
  try {
    it->second(params, token, reply);
  } catch (const std::exception& e) {
    reply.error(RpcError{-32603, "internal error in " + method + ": " + e.what()});
  }
}

void Binder::cancel(const json& id) {
  CancelToken token;
  {
    std::lock_guard lock(core_->mu);
    auto it = core_->pending.find(id.dump());
    if (it == core_->pending.end()) return;
    token = it->second;
  }
  token.cancel();  // outside the lock: the cancel callback answers and takes it
}

void Binder::notify(const std::string& method, json params) {
  core_->outbox->send(json{{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}});
}

void Binder::call(const std::string& method, json params) {
  core_->outbox->send(json{{"jsonrpc", "2.0"}, {"id", "ghostline-" + std::to_string(next_call_id_++)},
                           {"method", method}, {"params", std::move(params)}});
}

size_t Binder::pending() const {
  std::lock_guard lock(core_->mu);
  return core_->pending.size();
}

}  // namespace ghostline::lsp
