// LspServer through its message interface (framed output parsed back with FrameReader):
// every JSON-RPC error, the lifecycle, documents, completions, quick fixes, configuration,
// observer notifications, cancellation and supersession, against TestService.
#include <doctest/doctest.h>

#include <condition_variable>
#include <thread>

#include "lsp/frame_reader.h"
#include "lsp/server.h"
#include "test_service.h"
#include "annotated.h"
#include "unicode_reference.h"

using namespace ghostline;
using namespace ghostline::lsp;
using json = nlohmann::json;

namespace {

class Client {
 public:
  explicit Client(testing::TestService& service, LatencyPolicy policy = LatencyPolicy::interactive()) {
    server = LspServer::create(service, [this](std::string_view bytes) { return on_bytes(bytes); },
                               ServerOptions{{}, policy, "test"});
  }
  void send(const json& m) { server->receive(m.dump()); }
  void raw(std::string_view body) { server->receive(body); }
  json request(const std::string& method, json params) {
    int id = next_id++;
    send(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}});
    return wait_for_id(id);
  }
  int send_request(const std::string& method, json params) {
    int id = next_id++;
    send(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}});
    return id;
  }
  void notify(const std::string& method, json params) {
    send(json{{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}});
  }
  void initialize(json capabilities = json::object()) {
    json r = request("initialize", {{"processId", nullptr}, {"capabilities", capabilities}});
    REQUIRE(r.contains("result"));
    notify("initialized", json::object());
  }
  // The reply for `id`; fails the test after 10 s instead of hanging (not a timing assertion).
  json wait_for_id(const json& id) {
    std::unique_lock lock(mu);
    json found;
    bool ok = cv.wait_for(lock, std::chrono::seconds(10), [&] {
      for (const auto& m : received)
        if (m.contains("id") && m["id"] == id && !m.contains("method")) return found = m, true;
      return false;
    });
    REQUIRE_MESSAGE(ok, "no reply for id " << id.dump());
    return found;
  }
  std::vector<json> with_method(const std::string& method) {
    std::lock_guard lock(mu);
    std::vector<json> out;
    for (const auto& m : received)
      if (m.value("method", "") == method) out.push_back(m);
    return out;
  }
  size_t replies_for(const json& id) {
    std::lock_guard lock(mu);
    size_t n = 0;
    for (const auto& m : received) n += m.contains("id") && m["id"] == id && !m.contains("method");
    return n;
  }
  size_t count() {
    std::lock_guard lock(mu);
    return received.size();
  }
  json last() {
    std::lock_guard lock(mu);
    return received.back();
  }
  void open(const std::string& uri, const std::string& text, int version = 1) {
    notify("textDocument/didOpen", {{"textDocument", {{"uri", uri}, {"languageId", "python"}, {"version", version}, {"text", text}}}});
  }

  std::shared_ptr<LspServer> server;

 private:
  bool on_bytes(std::string_view bytes) {
    std::lock_guard lock(mu);
    reader.feed(bytes);
    while (auto m = reader.next()) {
      REQUIRE(*m);
      received.push_back(json::parse(**m));
    }
    cv.notify_all();
    return true;
  }
  std::mutex mu;
  std::condition_variable cv;
  FrameReader reader;
  std::vector<json> received;
  int next_id = 1;
};

int error_code(const json& reply) { return reply.contains("error") ? reply["error"]["code"].get<int>() : 0; }

json pos(int line, int character) { return {{"line", line}, {"character", character}}; }

json inline_params(const std::string& uri, json position, int trigger = 2) {
  return {{"textDocument", {{"uri", uri}}}, {"position", position}, {"context", {{"triggerKind", trigger}}}};
}

}  // namespace

TEST_CASE("JSON-RPC errors: -32700, -32600, -32601, -32602, -32002") {
  testing::TestService service;
  Client c(service);

  SUBCASE("a request before initialize answers -32002") {
    json r = c.request("textDocument/completion", inline_params("file:///a", pos(0, 0)));
    CHECK(error_code(r) == -32002);
  }
  SUBCASE("notifications before initialize are dropped") {
    c.open("file:///a", "x");
    CHECK(c.count() == 0);
    CHECK(service.docs.empty());
  }
  c.initialize();
  const size_t base = c.count();

  SUBCASE("invalid JSON answers -32700 with id null") {
    c.raw("{\"jsonrpc\":\"2.0\",\"id\":1,");
    json r = c.last();
    CHECK(error_code(r) == -32700);
    CHECK(r["id"].is_null());
  }
  SUBCASE("not a request object answers -32600") {
    for (std::string bad : {"[1,2]", "42", "\"x\"", "null", R"({"id":3,"method":"shutdown"})",
                            R"({"jsonrpc":"1.0","id":3,"method":"shutdown"})", R"({"jsonrpc":"2.0","id":3,"method":7})",
                            R"({"jsonrpc":"2.0","id":{"a":1},"method":"shutdown"})", R"({"jsonrpc":"2.0","id":4})"}) {
      CAPTURE(bad);
      size_t before = c.count();
      c.raw(bad);
      REQUIRE(c.count() == before + 1);
      CHECK(error_code(c.last()) == -32600);
    }
    // The id is echoed when it was valid.
    c.raw(R"({"jsonrpc":"1.0","id":3,"method":"shutdown"})");
    CHECK(c.last()["id"] == 3);
  }
  SUBCASE("an unknown method answers -32601; an unknown notification is ignored") {
    CHECK(error_code(c.request("textDocument/hover", json::object())) == -32601);
    size_t before = c.count();
    c.notify("$/unknownThing", json::object());
    c.notify("custom/whatever", {{"x", 1}});
    CHECK(c.count() == before);
  }
  SUBCASE("bad params answer -32602") {
    CHECK(error_code(c.request("textDocument/inlineCompletion", {{"textDocument", 5}})) == -32602);
    CHECK(error_code(c.request("textDocument/completion", json::object())) == -32602);
    CHECK(error_code(c.request("textDocument/codeAction", {{"textDocument", {{"uri", "u"}}}})) == -32602);
    CHECK(error_code(c.request("textDocument/inlineCompletion", inline_params("file:///not-open", pos(0, 0)))) == -32602);
    c.send(json{{"jsonrpc", "2.0"}, {"id", 77}, {"method", "textDocument/completion"}, {"params", 5}});
    CHECK(error_code(c.wait_for_id(77)) == -32602);
  }
  SUBCASE("a frame error answers -32700 with id null") {
    c.server->frame_error(make_error(ErrorCode::InvalidArgument, "frame header has no Content-Length"));
    CHECK(error_code(c.last()) == -32700);
    CHECK(c.last()["id"].is_null());
  }
  SUBCASE("a second initialize answers -32600") {
    CHECK(error_code(c.request("initialize", {{"capabilities", json::object()}})) == -32600);
  }
  CHECK(c.count() >= base);
}

TEST_CASE("lifecycle: initialize result, shutdown, exit codes") {
  testing::TestService service;
  SUBCASE("capabilities, serverInfo and the negotiated encoding") {
    Client c(service);
    json r = c.request("initialize", {{"capabilities", {{"general", {{"positionEncodings", {"utf-32", "utf-16"}}}}}}});
    const json& caps = r["result"]["capabilities"];
    CHECK(caps["positionEncoding"] == "utf-32");
    CHECK(caps["inlineCompletionProvider"].is_object());
    CHECK(caps["completionProvider"].is_object());
    CHECK(caps["codeActionProvider"]["resolveProvider"] == true);
    CHECK(caps["textDocumentSync"]["change"] == 2);
    CHECK(r["result"]["serverInfo"]["name"] == "ghostline");
    CHECK(c.server->encoding() == PositionEncoding::Utf32);
  }
  SUBCASE("no positionEncodings means utf-16") {
    Client c(service);
    json r = c.request("initialize", {{"capabilities", json::object()}});
    CHECK(r["result"]["capabilities"]["positionEncoding"] == "utf-16");
  }
  SUBCASE("exit after shutdown is 0; requests after shutdown answer -32600") {
    Client c(service);
    c.initialize();
    json r = c.request("shutdown", nullptr);
    CHECK(r.contains("result"));
    CHECK(r["result"].is_null());
    CHECK(error_code(c.request("textDocument/completion", inline_params("u", pos(0, 0)))) == -32600);
    CHECK_FALSE(c.server->exited());
    c.notify("exit", nullptr);
    CHECK(c.server->exited());
    CHECK(c.server->exit_code() == 0);
  }
  SUBCASE("exit without shutdown is 1") {
    Client c(service);
    c.initialize();
    c.notify("exit", nullptr);
    CHECK(c.server->exited());
    CHECK(c.server->exit_code() == 1);
  }
  SUBCASE("exit before initialize is allowed and is 1") {
    Client c(service);
    c.notify("exit", nullptr);
    CHECK(c.server->exited());
    CHECK(c.server->exit_code() == 1);
  }
}

TEST_CASE("documents reach the service as byte edits in the negotiated encoding") {
  testing::TestService service;
  Client c(service);
  c.initialize();
  const std::string uri = "file:///e.py";
  c.open(uri, "x = '😀'\r\ny = 1\n");
  // Replace the "1" on line 1 (UTF-16 character 4) and insert after the emoji (character 7).
  c.notify("textDocument/didChange", {{"textDocument", {{"uri", uri}, {"version", 2}}},
                                      {"contentChanges", {{{"range", {{"start", pos(1, 4)}, {"end", pos(1, 5)}}}, {"text", "22"}},
                                                          {{"range", {{"start", pos(0, 7)}, {"end", pos(0, 7)}}}, {"text", "中"}}}}});
  CHECK(service.docs[uri] == "x = '😀中'\r\ny = 22\n");
  c.notify("textDocument/didChange", {{"textDocument", {{"uri", uri}, {"version", 3}}}, {"contentChanges", {{{"text", "full"}}}}});
  CHECK(service.docs[uri] == "full");
  c.notify("textDocument/didSave", {{"textDocument", {{"uri", uri}}}, {"text", "saved"}});
  CHECK(service.docs[uri] == "saved");
  c.notify("textDocument/didClose", {{"textDocument", {{"uri", uri}}}});
  CHECK(service.docs.count(uri) == 0);
  auto published = c.with_method("textDocument/publishDiagnostics");
  REQUIRE(published.size() == 1);
  CHECK(published[0]["params"]["diagnostics"].empty());
}

TEST_CASE("inline completion: cursor, trigger kind, selected item and the range of the suggestion") {
  for (auto enc : {PositionEncoding::Utf16, PositionEncoding::Utf8, PositionEncoding::Utf32}) {
    CAPTURE(to_string(enc));
    testing::TestService service;
    // Replace one byte before the cursor through one byte after it.
    service.suggestions = {completion::Suggestion{"ret(x)", size_t(-1), 1, "ret"}};
    Client c(service);
    c.initialize({{"general", {{"positionEncodings", {to_string(enc)}}}}});
    const std::string uri = "file:///i.py";
    // [[...]] is where the suggestion lands: one byte around the cursor ^.
    const testref::Annotated src(U"# 😀\r\n  [[r^e]])\n");
    c.open(uri, src.text());
    json cursor = json(src.point(enc));
    json r = c.request("textDocument/inlineCompletion", inline_params(uri, cursor, 1));
    REQUIRE(service.requests.size() == 1);
    CHECK(service.requests[0].cursor == src.point_byte());
    CHECK(service.requests[0].trigger == completion::Trigger::Invoked);
    CHECK(service.requests[0].version == 1);
    CHECK_FALSE(service.requests[0].selected_text.has_value());
    const json& items = r["result"]["items"];
    REQUIRE(items.size() == 1);
    CHECK(items[0]["insertText"] == "ret(x)");
    CHECK(items[0]["filterText"] == "ret");
    CHECK(items[0]["range"] == json(src.range(enc)));

    // The item selected in the completion widget covers [[😀 ]]; the cursor is after it.
    const testref::Annotated sel(U"x = [[😀 ]]^中\n");
    c.open("file:///sel.py", sel.text());
    json params = inline_params("file:///sel.py", json(sel.point(enc)), 2);
    params["context"]["selectedCompletionInfo"] = {{"range", json(sel.range(enc))}, {"text", "😀!"}};
    c.request("textDocument/inlineCompletion", params);
    REQUIRE(service.requests.size() == 2);
    CHECK(service.requests[1].trigger == completion::Trigger::Automatic);
    CHECK(service.requests[1].cursor == sel.point_byte());
    CHECK(service.requests[1].selected_text == "😀!");
    CHECK(service.requests[1].selected_start == sel.range_bytes().first);
    CHECK(service.requests[1].selected_end == sel.range_bytes().second);
  }
}

TEST_CASE("completion list: the same suggestion as a CompletionItem with a textEdit") {
  testing::TestService service;
  service.suggestions = {completion::Suggestion{"urn x\n  done", 0, 0, ""}};
  Client c(service);
  c.initialize({{"general", {{"positionEncodings", {"utf-8"}}}}});
  c.open("file:///c.py", "中 ret");
  json r = c.request("textDocument/completion", {{"textDocument", {{"uri", "file:///c.py"}}}, {"position", pos(0, 7)}});
  CHECK(service.requests.at(0).cursor == 7);
  const json& items = r["result"]["items"];
  REQUIRE(items.size() == 1);
  CHECK(items[0]["label"] == "urn x");
  CHECK(items[0]["textEdit"]["newText"] == "urn x\n  done");
  CHECK(items[0]["textEdit"]["range"] == json{{"start", pos(0, 7)}, {"end", pos(0, 7)}});
  CHECK(r["result"]["isIncomplete"] == true);
}

TEST_CASE("$/cancelRequest answers -32800 at once and cancels the service's token") {
  testing::TestService service;
  service.hold_completions = true;
  Client c(service);
  c.initialize();
  c.open("file:///k.py", "abc");
  int id = c.send_request("textDocument/inlineCompletion", inline_params("file:///k.py", pos(0, 3)));
  REQUIRE(service.held.size() == 1);
  CHECK(c.replies_for(id) == 0);
  c.notify("$/cancelRequest", {{"id", id}});
  json r = c.wait_for_id(id);
  CHECK(error_code(r) == -32800);
  CHECK(service.requests[0].cursor == 3);
  service.release();  // a late answer is dropped: exactly one reply
  CHECK(c.replies_for(id) == 1);
  CHECK(c.server->pending_requests() == 0);
  c.notify("$/cancelRequest", {{"id", 9999}});  // unknown ids are ignored
}

TEST_CASE("a newer completion for the same document supersedes the pending one") {
  testing::TestService service;
  service.hold_completions = true;
  service.suggestions = {completion::Suggestion{"x", 0, 0, ""}};
  Client c(service);
  c.initialize();
  c.open("file:///s.py", "abc");
  c.open("file:///other.py", "abc");
  int first = c.send_request("textDocument/inlineCompletion", inline_params("file:///s.py", pos(0, 1)));
  int other = c.send_request("textDocument/inlineCompletion", inline_params("file:///other.py", pos(0, 1)));
  int list = c.send_request("textDocument/completion", {{"textDocument", {{"uri", "file:///s.py"}}}, {"position", pos(0, 1)}});
  int second = c.send_request("textDocument/inlineCompletion", inline_params("file:///s.py", pos(0, 2)));
  // The first answered -32800 before the service let anything go.
  CHECK(error_code(c.wait_for_id(first)) == -32800);
  CHECK(c.replies_for(other) == 0);
  CHECK(c.replies_for(list) == 0);
  CHECK(c.replies_for(second) == 0);
  service.release();
  CHECK(c.wait_for_id(second)["result"]["items"].size() == 1);
  CHECK(c.wait_for_id(other)["result"]["items"].size() == 1);  // another document: not superseded
  CHECK(c.wait_for_id(list)["result"]["items"].size() == 1);   // list completion: counted apart
  CHECK(c.replies_for(first) == 1);
}

TEST_CASE("with LatencyPolicy::keep_all nothing is superseded") {
  testing::TestService service;
  service.hold_completions = true;
  Client c(service, LatencyPolicy::keep_all());
  c.initialize();
  c.open("file:///s.py", "abc");
  int first = c.send_request("textDocument/inlineCompletion", inline_params("file:///s.py", pos(0, 1)));
  int second = c.send_request("textDocument/inlineCompletion", inline_params("file:///s.py", pos(0, 2)));
  CHECK(c.replies_for(first) == 0);
  service.release();
  CHECK(c.wait_for_id(first).contains("result"));
  CHECK(c.wait_for_id(second).contains("result"));
}

TEST_CASE("replies from another thread go through the one writer") {
  testing::TestService service;
  service.hold_completions = true;
  Client c(service);
  c.initialize();
  c.open("file:///t.py", "abc");
  int id = c.send_request("textDocument/completion", {{"textDocument", {{"uri", "file:///t.py"}}}, {"position", pos(0, 3)}});
  std::thread worker([&] { service.release(); });
  worker.join();
  CHECK(c.wait_for_id(id).contains("result"));
}

const json kResolvingClient = {{"textDocument", {{"codeAction", {{"dataSupport", true}, {"resolveSupport", {{"properties", {"edit"}}}}}}}}};

TEST_CASE("code actions offer a fix per diagnostic; resolve asks the service and converts its edits") {
  testing::TestService service;
  service.fixes = {completion::Fix{"add paren", {completion::DocumentEdit{9, 9, ")"}}}};
  Client c(service);
  c.initialize(kResolvingClient);
  const std::string uri = "file:///f.py";
  c.open(uri, "😀 = f(1\n", 4);
  json diag = {{"range", {{"start", pos(0, 5)}, {"end", pos(0, 8)}}}, {"message", "missing )"}, {"severity", 1}};
  json r = c.request("textDocument/codeAction", {{"textDocument", {{"uri", uri}}}, {"range", {{"start", pos(0, 0)}, {"end", pos(0, 0)}}},
                                                  {"context", {{"diagnostics", {diag}}}}});
  const json& actions = r["result"];
  REQUIRE(actions.size() == 1);
  CHECK(actions[0]["title"] == "Fix with Ghostline: missing )");
  CHECK(actions[0]["kind"] == "quickfix");
  CHECK_FALSE(actions[0].contains("edit"));
  CHECK(service.fix_requests.empty());  // the edit is computed on resolve only

  json resolved = c.request("codeAction/resolve", actions[0]);
  REQUIRE(service.fix_requests.size() == 1);
  CHECK(service.fix_requests[0].version == 4);
  CHECK(service.fix_requests[0].diagnostic.start == 7);  // UTF-16 5 = after "😀 = "
  CHECK(service.fix_requests[0].diagnostic.end == 10);
  CHECK(service.fix_requests[0].diagnostic.message == "missing )");
  const json& edits = resolved["result"]["edit"]["changes"][uri];
  REQUIRE(edits.size() == 1);
  CHECK(edits[0]["newText"] == ")");
  CHECK(edits[0]["range"] == json{{"start", pos(0, 7)}, {"end", pos(0, 7)}});

  c.notify("textDocument/didChange", {{"textDocument", {{"uri", uri}, {"version", 5}}}, {"contentChanges", {{{"text", "y"}}}}});
  CHECK(error_code(c.request("codeAction/resolve", actions[0])) == -32801);
}

TEST_CASE("code actions for a client that cannot resolve: fixes computed at once, only found ones offered") {
  testing::TestService service;
  // A fix for the diagnostic "fixable" only; "broken" fails in the service; others find nothing.
  service.fix_answer = [](const completion::FixRequest& r) -> Expected<std::vector<completion::Fix>> {
    if (r.diagnostic.message == "broken") return make_error(ErrorCode::InvalidArgument, "range outside");
    if (r.diagnostic.message != "fixable") return std::vector<completion::Fix>{};
    return std::vector<completion::Fix>{completion::Fix{"t", {completion::DocumentEdit{r.diagnostic.end, r.diagnostic.end, ":"}}}};
  };
  Client c(service);
  c.initialize();  // no resolveSupport
  const std::string uri = "file:///g.py";
  c.open(uri, "x = \"é\"\ndef f()\n    pass\n", 3);
  auto diag = [](int line, int from, int to, const std::string& message) {
    return json{{"range", {{"start", pos(line, from)}, {"end", pos(line, to)}}}, {"message", message}, {"source", "pyright"}};
  };
  json params = {{"textDocument", {{"uri", uri}}}, {"range", {{"start", pos(1, 0)}, {"end", pos(1, 0)}}},
                 {"context", {{"diagnostics", {diag(1, 0, 7, "nothing"), diag(1, 0, 7, "fixable"), diag(1, 0, 7, "broken")}}}}};
  json r = c.request("textDocument/codeAction", params);
  REQUIRE(service.fix_requests.size() == 3);
  for (const auto& fr : service.fix_requests) CHECK(fr.version == 3);
  CHECK(service.fix_requests[1].diagnostic.start == 9);  // line 1 starts after 'x = "é"\n' (9 bytes)
  CHECK(service.fix_requests[1].diagnostic.end == 16);
  const json& actions = r["result"];
  REQUIRE(actions.size() == 1);
  CHECK(actions[0]["title"] == "Fix with Ghostline: fixable");
  CHECK(actions[0]["kind"] == "quickfix");
  const json& edits = actions[0]["edit"]["changes"][uri];
  REQUIRE(edits.size() == 1);
  CHECK(edits[0]["newText"] == ":");
  CHECK(edits[0]["range"] == json{{"start", pos(1, 7)}, {"end", pos(1, 7)}});
  // Resolving such an action again still works (the data is there).
  CHECK(c.request("codeAction/resolve", actions[0])["result"]["edit"]["changes"][uri][0]["newText"] == ":");

  // Many diagnostics: only the first few are computed.
  service.fix_requests.clear();
  json many = params;
  many["context"]["diagnostics"] = json::array();
  for (int i = 0; i < 12; ++i) many["context"]["diagnostics"].push_back(diag(1, 0, 7, "fixable"));
  CHECK(c.request("textDocument/codeAction", many)["result"].size() == 5);
  CHECK(service.fix_requests.size() == 5);

  // context.only without quickfix: nothing offered, nothing computed.
  service.fix_requests.clear();
  json refactor = params;
  refactor["context"]["only"] = {"refactor"};
  CHECK(c.request("textDocument/codeAction", refactor)["result"] == json::array());
  CHECK(service.fix_requests.empty());
  json quick = params;
  quick["context"]["only"] = {"quickfix"};
  CHECK(c.request("textDocument/codeAction", quick)["result"].size() == 1);
  // No diagnostics, or a document that is not open: an empty list.
  json none = params;
  none["context"]["diagnostics"] = json::array();
  CHECK(c.request("textDocument/codeAction", none)["result"] == json::array());
  json closed = params;
  closed["textDocument"]["uri"] = "file:///not-open.py";
  CHECK(c.request("textDocument/codeAction", closed)["result"] == json::array());
}

TEST_CASE("code actions computed at once are cancelled with $/cancelRequest") {
  testing::TestService service;
  service.hold_fixes = true;
  Client c(service);
  c.initialize(json{{"textDocument", {{"codeAction", {{"dataSupport", false}, {"resolveSupport", {{"properties", {"edit"}}}}}}}}});
  c.open("file:///h.py", "def f()\n", 1);
  json d = {{"range", {{"start", pos(0, 0)}, {"end", pos(0, 7)}}}, {"message", "expected ':'"}};
  int id = c.send_request("textDocument/codeAction", {{"textDocument", {{"uri", "file:///h.py"}}},
                                                      {"range", {{"start", pos(0, 0)}, {"end", pos(0, 0)}}},
                                                      {"context", {{"diagnostics", {d}}}}});
  c.notify("$/cancelRequest", {{"id", id}});
  json r = c.wait_for_id(id);
  CHECK(error_code(r) == -32800);
  CHECK(service.fix_requests.size() == 1);  // dataSupport false: resolve is no use, computed at once
}

TEST_CASE("didChangeConfiguration and initializationOptions configure the service") {
  testing::TestService service;
  Client c(service);
  json r = c.request("initialize", {{"capabilities", json::object()}, {"initializationOptions", {{"ghostline", {{"maxTokens", 12}}}}}});
  REQUIRE(service.configured.size() == 1);
  CHECK(service.configured[0].max_tokens == 12);
  c.notify("workspace/didChangeConfiguration",
           {{"settings", {{"ghostline", {{"model", "/m"}, {"device", "cpu"}, {"temperature", 0.5}, {"enabledLanguages", {"python", "cpp"}}}}}}});
  REQUIRE(service.configured.size() == 2);
  CHECK(service.configured[1].model == "/m");
  CHECK(service.configured[1].device == "cpu");
  CHECK(service.configured[1].temperature == doctest::Approx(0.5));
  CHECK(service.configured[1].max_tokens == 12);  // kept from before
  CHECK(service.configured[1].enabled_languages == std::vector<std::string>{"python", "cpp"});
  c.notify("workspace/didChangeConfiguration", {{"settings", {{"maxTokens", "lots"}}}});
  CHECK(service.configured.size() == 2);  // mistyped: logged, not applied
  CHECK_FALSE(c.with_method("window/logMessage").empty());
}

TEST_CASE("the service's observer becomes logMessage, workDoneProgress and publishDiagnostics") {
  testing::TestService service;
  Client c(service);
  c.initialize({{"window", {{"workDoneProgress", true}}}});
  c.open("file:///d.py", "a😀 b\n");
  auto observer = service.observer;
  std::thread worker([&] {
    observer.on_log("model loaded");
    observer.on_progress("loading model", 0, false);
    observer.on_progress("loading model", 50, false);
    observer.on_progress("model ready", 100, true);
    observer.on_diagnostics("file:///d.py", 1, {completion::Diagnostic{5, 7, "unexpected token", "ghostline"}});
    observer.on_diagnostics("file:///d.py", 0, {completion::Diagnostic{0, 1, "stale", "ghostline"}});
  });
  worker.join();
  auto logs = c.with_method("window/logMessage");
  REQUIRE(logs.size() == 1);
  CHECK(logs[0]["params"]["message"] == "model loaded");
  CHECK(c.with_method("$/logTrace").empty());  // trace is off until $/setTrace
  c.notify("$/setTrace", {{"value", "verbose"}});
  service.observer.on_log("traced line");
  auto traces = c.with_method("$/logTrace");
  REQUIRE(traces.size() == 1);
  CHECK(traces[0]["params"]["message"] == "traced line");
  auto created = c.with_method("window/workDoneProgress/create");
  REQUIRE(created.size() == 1);
  auto progress = c.with_method("$/progress");
  REQUIRE(progress.size() == 3);
  CHECK(progress[0]["params"]["token"] == created[0]["params"]["token"]);
  CHECK(progress[0]["params"]["value"]["kind"] == "begin");
  CHECK(progress[1]["params"]["value"]["kind"] == "report");
  CHECK(progress[1]["params"]["value"]["percentage"] == 50);
  CHECK(progress[2]["params"]["value"]["kind"] == "end");
  auto diags = c.with_method("textDocument/publishDiagnostics");
  REQUIRE(diags.size() == 1);  // the stale version is dropped
  CHECK(diags[0]["params"]["version"] == 1);
  CHECK(diags[0]["params"]["diagnostics"][0]["range"] == json{{"start", pos(0, 3)}, {"end", pos(0, 5)}});
  CHECK(diags[0]["params"]["diagnostics"][0]["message"] == "unexpected token");
  // The client's answer to our create request is accepted silently.
  size_t before = c.count();
  c.send(json{{"jsonrpc", "2.0"}, {"id", created[0]["id"]}, {"result", nullptr}});
  CHECK(c.count() == before);
}

TEST_CASE("ghostline/status answers the service's status in camelCase") {
  testing::TestService service;
  service.status_value.model = "/models/m";
  service.status_value.model_name = "m";
  service.status_value.device = "cpu";
  service.status_value.loaded = true;
  service.status_value.kv_capacity_tokens = 4096;
  service.status_value.answers = {{"engine", 3}, {"typing-through", 5}};
  service.status_value.cancelled = 7;
  service.status_value.failed = 1;
  service.status_value.prompt_tokens = 900;
  service.status_value.cached_tokens = 800;
  service.status_value.generated_tokens = 40;
  service.status_value.last.source = "cache";
  service.status_value.last.total_ms = 1.5;
  Client c(service);
  CHECK(error_code(c.request("ghostline/status", json::object())) == -32002);  // before initialize
  c.initialize();
  json r = c.request("ghostline/status", nullptr)["result"];
  CHECK(r["model"] == "/models/m");
  CHECK(r["modelName"] == "m");
  CHECK(r["device"] == "cpu");
  CHECK(r["loaded"] == true);
  CHECK(r["loadError"] == "");
  CHECK(r["kvCapacityTokens"] == 4096);
  CHECK(r["answers"] == json{{"engine", 3}, {"typing-through", 5}});
  CHECK(r["cancelled"] == 7);
  CHECK(r["failed"] == 1);
  CHECK(r["promptTokens"] == 900);
  CHECK(r["cachedTokens"] == 800);
  CHECK(r["generatedTokens"] == 40);
  CHECK(r["last"]["source"] == "cache");
  CHECK(r["last"]["totalMs"] == doctest::Approx(1.5));
  CHECK(r["last"].contains("ttftMs"));
}

TEST_CASE("ghostline/completionStats follows each answered completion, never a cancelled one") {
  testing::TestService service;
  service.suggestions = {completion::Suggestion{"x + 1", 0, 0, ""}};
  service.stats.source = "engine";
  service.stats.prompt_tokens = 120;
  service.stats.cached_tokens = 100;
  service.stats.generated_tokens = 4;
  service.stats.ttft_ms = 12.5;
  service.stats.total_ms = 20.25;
  service.stats.queue_ms = 1.5;
  service.stats.context_ms = 3.25;
  Client c(service);
  c.initialize();
  c.open("file:///n.py", "y = ");
  int inline_id = c.send_request("textDocument/inlineCompletion", inline_params("file:///n.py", pos(0, 4)));
  c.wait_for_id(inline_id);
  int list_id = c.send_request("textDocument/completion", {{"textDocument", {{"uri", "file:///n.py"}}}, {"position", pos(0, 4)}});
  c.wait_for_id(list_id);
  auto stats = c.with_method("ghostline/completionStats");
  REQUIRE(stats.size() == 2);
  const json& p = stats[0]["params"];
  CHECK(p["uri"] == "file:///n.py");
  CHECK(p["requestId"] == inline_id);
  CHECK(p["method"] == "textDocument/inlineCompletion");
  CHECK(p["items"] == 1);
  CHECK(p["source"] == "engine");
  CHECK(p["promptTokens"] == 120);
  CHECK(p["cachedTokens"] == 100);
  CHECK(p["generatedTokens"] == 4);
  CHECK(p["ttftMs"] == doctest::Approx(12.5));
  CHECK(p["totalMs"] == doctest::Approx(20.25));
  CHECK(p["queueMs"] == doctest::Approx(1.5));
  CHECK(p["contextMs"] == doctest::Approx(3.25));
  CHECK(stats[1]["params"]["requestId"] == list_id);
  CHECK(stats[1]["params"]["method"] == "textDocument/completion");

  // A superseded request answers -32800; its late result is dropped and reports nothing.
  service.hold_completions = true;
  int first = c.send_request("textDocument/inlineCompletion", inline_params("file:///n.py", pos(0, 4)));
  int second = c.send_request("textDocument/inlineCompletion", inline_params("file:///n.py", pos(0, 4)));
  CHECK(error_code(c.wait_for_id(first)) == -32800);
  service.release();
  CHECK(c.wait_for_id(second).contains("result"));
  stats = c.with_method("ghostline/completionStats");
  REQUIRE(stats.size() == 3);
  CHECK(stats[2]["params"]["requestId"] == second);
  // The notification comes after the reply it describes.
  CHECK(c.last()["method"] == "ghostline/completionStats");
}
