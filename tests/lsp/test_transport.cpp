// serve(): the read loop over a scripted Stream (frames cut at arbitrary points), the exit
// codes it returns, and parsing of --listen addresses.
#include <doctest/doctest.h>

#include <deque>

#include "lsp/frame_reader.h"
#include "lsp/transport.h"
#include "test_service.h"

using namespace ghostline;
using namespace ghostline::lsp;
using json = nlohmann::json;

namespace {

class ScriptedStream final : public Stream {
 public:
  std::deque<std::string> reads;  // each read_some returns the next chunk; then end of stream
  std::string written;
  Expected<size_t> read_some(char* data, size_t size) override {
    if (reads.empty()) return size_t{0};
    std::string& chunk = reads.front();
    size_t n = std::min(size, chunk.size());
    std::copy(chunk.begin(), chunk.begin() + n, data);
    chunk.erase(0, n);
    if (chunk.empty()) reads.pop_front();
    return n;
  }
  Expected<void> write_all(std::string_view data) override {
    written.append(data);
    return ok();
  }
};

std::string msg(const json& j) { return frame(j.dump()); }

std::vector<json> replies(const std::string& wire) {
  FrameReader r;
  r.feed(wire);
  std::vector<json> out;
  while (auto m = r.next()) {
    REQUIRE(*m);
    out.push_back(json::parse(**m));
  }
  return out;
}

int run(ScriptedStream& stream) {
  testing::TestService service;
  auto server = LspServer::create(service, [&](std::string_view b) { return bool(stream.write_all(b)); }, {});
  return serve(stream, *server);
}

const json kInit = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "initialize"}, {"params", {{"capabilities", json::object()}}}};
const json kShutdown = {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "shutdown"}};
const json kExit = {{"jsonrpc", "2.0"}, {"method", "exit"}};

}  // namespace

TEST_CASE("serve: shutdown then exit returns 0 and reads nothing after exit") {
  ScriptedStream s;
  std::string wire = msg(kInit) + msg(kShutdown) + msg(kExit) + msg({{"jsonrpc", "2.0"}, {"id", 3}, {"method", "x"}});
  // Cut the wire into uneven chunks, splitting headers and bodies.
  for (size_t i = 0, n = 1; i < wire.size(); i += n, n = n % 13 + 2) s.reads.push_back(wire.substr(i, n));
  CHECK(run(s) == 0);
  auto out = replies(s.written);
  REQUIRE(out.size() == 2);
  CHECK(out[0]["id"] == 1);
  CHECK(out[1]["id"] == 2);
}

TEST_CASE("serve: exit without shutdown returns 1; the end of the stream returns 1") {
  ScriptedStream a;
  a.reads.push_back(msg(kInit) + msg(kExit));
  CHECK(run(a) == 1);
  ScriptedStream b;
  b.reads.push_back(msg(kInit) + msg(kShutdown));
  CHECK(run(b) == 1);
}

TEST_CASE("serve: a malformed frame is answered and the next one served") {
  ScriptedStream s;
  s.reads.push_back("Content-Length: x\r\n\r\n" + msg(kInit) + msg(kShutdown) + msg(kExit));
  CHECK(run(s) == 0);
  auto out = replies(s.written);
  REQUIRE(out.size() == 3);
  CHECK(out[0]["error"]["code"] == -32700);
  CHECK(out[0]["id"].is_null());
  CHECK(out[1]["id"] == 1);
}

TEST_CASE("--listen addresses") {
  auto a = parse_listen_address("127.0.0.1:8080");
  REQUIRE(a);
  CHECK(a->first == "127.0.0.1");
  CHECK(a->second == 8080);
  auto b = parse_listen_address("[::1]:0");
  REQUIRE(b);
  CHECK(b->first == "::1");
  CHECK(b->second == 0);
  for (std::string bad : {"nohostport", "127.0.0.1:", ":80", "h:99999", "h:8x", "h:-1"}) {
    CAPTURE(bad);
    auto r = parse_listen_address(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find(bad) != std::string::npos);
  }
}
