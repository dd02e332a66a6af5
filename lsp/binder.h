// Binder: JSON-RPC 2.0 over already-framed message bodies. It parses each message, answers
// protocol errors itself (-32700 with id null, -32600, -32601, -32602), routes requests and
// notifications to typed handlers by method name, keeps the table of pending requests for
// $/cancelRequest, and owns the Outbox: the one writer every reply and notification goes
// through, whatever thread it comes from.
//
// Contract for handlers: a request handler receives its parsed params, a CancelToken and a
// Reply; it must not block, and the Reply is answered exactly once (later answers, e.g. after
// a cancellation already answered -32800, are dropped). Cancelling a request's token answers it
// -32800 at once and tells the worker through the same token. Thread-safe: receive() is called
// by the reading thread; replies and notify() from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/base/cancel.h"
#include "engine/base/expected.h"

namespace ghostline::lsp {

using json = nlohmann::json;

// An error as the wire carries it.
struct RpcError {
  int code = -32603;
  std::string message;
};

// Maps a service Error to its JSON-RPC code (Cancelled → -32800, InvalidArgument/NotFound →
// -32602, others → -32803 RequestFailed).
RpcError to_rpc_error(const Error& e);

// The single writer: frames and writes one message at a time. `write` returns false when the
// peer is gone; after that (or close()) messages are dropped.
class Outbox {
 public:
  using Write = std::function<bool(std::string_view framed)>;
  explicit Outbox(Write write) : write_(std::move(write)) {}
  void send(const json& message);
  void close();

 private:
  std::mutex mu_;
  Write write_;
  bool closed_ = false;
};

class Binder;

// The answer to one request; copyable, answered at most once.
class Reply {
 public:
  // Sends the result; false when the request was already answered (e.g. -32800 after a
  // cancellation) and this result was dropped.
  bool operator()(json result) const;
  void error(RpcError e) const;
  void error(const Error& e) const { error(to_rpc_error(e)); }
  const json& id() const;

 private:
  friend class Binder;
  struct State;
  std::shared_ptr<State> state_;
};

class Binder {
 public:
  using RawRequest = std::function<void(const json& params, CancelToken, Reply)>;
  using RawNotification = std::function<void(const json& params)>;
  // Decides whether a request may run now (lifecycle); an RpcError refuses it.
  using Gate = std::function<std::optional<RpcError>(const std::string& method)>;

  explicit Binder(std::shared_ptr<Outbox> outbox);
  ~Binder();

  // Typed binding: params are parsed with from_json; a parse failure answers -32602 (requests)
  // or is logged and dropped (notifications).
  template <typename P>
  void request(const std::string& method, std::function<void(const P&, CancelToken, Reply)> handler) {
    raw_request(method, [method, handler = std::move(handler)](const json& params, CancelToken token, Reply reply) {
      std::optional<P> parsed;
      try {
        parsed = params.get<P>();
      } catch (const std::exception& e) {
        return reply.error(RpcError{-32602, "invalid params for " + method + ": " + e.what()});
      }
      handler(*parsed, std::move(token), std::move(reply));
    });
  }
  template <typename P>
  void notification(const std::string& method, std::function<void(const P&)> handler) {
    raw_notification(method, [this, method, handler = std::move(handler)](const json& params) {
      std::optional<P> parsed;
      try {
        parsed = params.get<P>();
      } catch (const std::exception& e) {
        return log_("invalid params for " + method + " (ignored): " + e.what());
      }
      handler(*parsed);
    });
  }
  void raw_request(const std::string& method, RawRequest handler) { requests_[method] = std::move(handler); }
  void raw_notification(const std::string& method, RawNotification handler) { notifications_[method] = std::move(handler); }
  void set_gate(Gate gate) { gate_ = std::move(gate); }
  void set_log(std::function<void(const std::string&)> log) { log_ = std::move(log); }

  // One message body from the transport.
  void receive(std::string_view body);
  // A frame the transport refused: answered -32700 with id null, and reading goes on.
  void frame_error(const Error& e);

  // Cancels a pending request by id (no effect when it already answered or never existed).
  void cancel(const json& id);

  // Messages from the server to the client.
  void notify(const std::string& method, json params);
  void call(const std::string& method, json params);  // server → client request; its response is ignored

  size_t pending() const;

 struct Core;  // shared with Reply, so late replies outlive the binder safely

 private:
  void dispatch(const json& message);
  void send_error(const json& id, RpcError e);

  std::shared_ptr<Core> core_;
  std::map<std::string, RawRequest> requests_;
  std::map<std::string, RawNotification> notifications_;
  Gate gate_;
  std::function<void(const std::string&)> log_ = [](const std::string&) {};
  std::atomic<long> next_call_id_{1};
};

}  // namespace ghostline::lsp
