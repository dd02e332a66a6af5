// libFuzzer target for the framing + JSON-RPC layers: arbitrary bytes, cut into arbitrary
// reads, go through FrameReader into a real LspServer over a minimal in-file service, and every
// frame the server writes must be well-formed JSON-RPC. Crashes, hangs, leaks and sanitizer
// reports are the failures.
//
// Input layout: byte 0 picks the set-up (bit 0: initialize first, bits 1-2: position encoding,
// bit 3: open a document first); byte 1 seeds the read sizes; the rest is the wire.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "completion/service.h"
#include "lsp/frame_reader.h"
#include "lsp/server.h"

namespace {

using namespace ghostline;
using json = nlohmann::json;

// Answers at once, with ranges around the cursor (some past the text) to exercise conversion.
class EchoService final : public completion::Service {
 public:
  void open(const std::string&, const std::string&, std::string text, int) override { size_ = text.size(); }
  Expected<void> change(const std::string&, int, const std::vector<completion::DocumentEdit>&) override { return ok(); }
  void close(const std::string&) override {}
  void complete(const completion::CompletionRequest& r, CancelToken cancel, Callback<completion::CompletionResult> done) override {
    if (cancel.cancelled()) return done(make_error(ErrorCode::Cancelled, "cancelled"));
    completion::CompletionResult result;
    result.items.push_back({"x\xff\n", r.cursor > 2 ? r.cursor - 2 : 0, r.cursor + 3, "x"});
    done(std::move(result));
  }
  void fix(const completion::FixRequest& r, CancelToken, Callback<std::vector<completion::Fix>> done) override {
    done(std::vector<completion::Fix>{{"t", {{r.diagnostic.start, r.diagnostic.end + 7, "y"}}}});
  }
  std::vector<completion::Diagnostic> diagnostics(const std::string&) override { return {}; }
  void configure(const completion::Settings&) override {}
  void set_observer(Observer o) override { observer_ = std::move(o); }

  Observer observer_;
  size_t size_ = 0;
};

bool check_output(lsp::FrameReader& reader) {
  while (auto m = reader.next()) {
    if (!*m) std::abort();  // the server wrote a bad frame
    json j = json::parse(**m, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("jsonrpc", "") != "2.0") std::abort();
    if (j.contains("error") && !j["error"]["code"].is_number_integer()) std::abort();
  }
  return true;
}

std::string framed(const json& j) { return lsp::frame(j.dump()); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t setup = data[0];
  uint32_t cut = data[1] * 2654435761u + 1;
  std::string_view wire(reinterpret_cast<const char*>(data + 2), size - 2);

  EchoService service;
  lsp::FrameReader output;
  auto server = lsp::LspServer::create(service, [&](std::string_view bytes) {
    output.feed(bytes);
    return check_output(output);
  }, {});

  static const char* kEncodings[] = {"utf-16", "utf-8", "utf-32", "utf-7"};
  std::string prefix;
  if (setup & 1) {
    prefix += framed({{"jsonrpc", "2.0"}, {"id", 0}, {"method", "initialize"},
                      {"params", {{"capabilities", {{"general", {{"positionEncodings", {kEncodings[(setup >> 1) & 3]}}}},
                                                    {"window", {{"workDoneProgress", true}}}}}}}});
  }
  if (setup & 8) {
    prefix += framed({{"jsonrpc", "2.0"}, {"method", "textDocument/didOpen"},
                      {"params", {{"textDocument", {{"uri", "file:///f"}, {"languageId", "c"}, {"version", 1},
                                                    {"text", "a\r\n\xf0\x9f\x98\x80 b\n\xe4\xb8\xad\xcc\x81\rz"}}}}}});
  }

  lsp::FrameReader input;
  auto deliver = [&](std::string_view chunk) {
    input.feed(chunk);
    while (!server->exited()) {
      auto m = input.next();
      if (!m) break;
      if (*m) server->receive(**m);
      else server->frame_error(m->error());
    }
  };
  deliver(prefix);
  if (service.observer_.on_diagnostics) service.observer_.on_diagnostics("file:///f", 1, {{0, 99, "d", "s"}});
  for (size_t i = 0; i < wire.size() && !server->exited();) {
    cut = cut * 1103515245u + 12345u;
    size_t n = std::min<size_t>(wire.size() - i, 1 + (cut >> 16) % 97);
    deliver(wire.substr(i, n));
    i += n;
  }
  if (service.observer_.on_progress) {
    service.observer_.on_progress("load", 10, false);
    service.observer_.on_progress("load", 100, true);
  }
  return 0;
}
