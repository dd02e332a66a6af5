// FrameReader: split and merged frames, bad headers, oversize bodies that are never buffered.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "lsp/frame_reader.h"

using ghostline::lsp::FrameReader;
using ghostline::lsp::frame;

namespace {

struct Drained {
  std::vector<std::string> bodies;
  std::vector<std::string> errors;
};

void drain(FrameReader& r, Drained& out) {
  while (auto m = r.next()) {
    if (*m) out.bodies.push_back(**m);
    else out.errors.push_back(m->error().message);
  }
}

}  // namespace

TEST_CASE("one frame, fed whole or byte by byte") {
  const std::string body = R"({"jsonrpc":"2.0","method":"x"})";
  const std::string wire = frame(body);
  CHECK(wire == "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  for (size_t step : {wire.size(), size_t{1}, size_t{3}, size_t{17}}) {
    FrameReader r;
    Drained d;
    for (size_t i = 0; i < wire.size(); i += step) {
      r.feed(std::string_view(wire).substr(i, step));
      drain(r, d);
    }
    REQUIRE(d.bodies.size() == 1);
    CHECK(d.bodies[0] == body);
    CHECK(d.errors.empty());
    CHECK(r.buffered() == 0);
  }
}

TEST_CASE("merged frames in one read come out in order") {
  FrameReader r;
  r.feed(frame("{\"a\":1}") + frame("") + frame("{\"b\":2}"));
  Drained d;
  drain(r, d);
  REQUIRE(d.bodies.size() == 3);
  CHECK(d.bodies[0] == "{\"a\":1}");
  CHECK(d.bodies[1] == "");
  CHECK(d.bodies[2] == "{\"b\":2}");
}

TEST_CASE("other headers and any case of the header name are accepted") {
  FrameReader r;
  r.feed("Content-Type: application/vscode-jsonrpc; charset=utf-8\r\ncontent-length:  2 \r\n\r\n{}");
  Drained d;
  drain(r, d);
  REQUIRE(d.bodies.size() == 1);
  CHECK(d.bodies[0] == "{}");
}

TEST_CASE("a header without Content-Length is refused and the next frame still arrives") {
  FrameReader r;
  r.feed("Content-Type: x\r\n\r\n{\"lost\":true}" + frame("{\"ok\":1}"));
  Drained d;
  drain(r, d);
  REQUIRE(d.errors.size() == 1);
  CHECK(d.errors[0].find("no Content-Length") != std::string::npos);
  REQUIRE(d.bodies.size() == 1);
  CHECK(d.bodies[0] == "{\"ok\":1}");
}

TEST_CASE("a non-numeric Content-Length is refused") {
  for (std::string bad : {"abc", "-5", "12x", ""}) {
    FrameReader r;
    r.feed("Content-Length: " + bad + "\r\n\r\n" + frame("{}"));
    Drained d;
    drain(r, d);
    CHECK(d.errors.size() == 1);
    REQUIRE(d.bodies.size() == 1);
    CHECK(d.bodies[0] == "{}");
  }
}

TEST_CASE("a huge Content-Length is refused without buffering the body") {
  FrameReader r(/*max_body=*/1024);
  r.feed("Content-Length: 99999999999999999999999999\r\n\r\n");  // past 64 bits too
  {
    Drained first;
    drain(r, first);
    REQUIRE(first.errors.size() == 1);
    CHECK(first.errors[0].find("exceeds") != std::string::npos);
  }
  r.feed("Content-Length: 99999999999\r\n\r\n");
  Drained d;
  drain(r, d);
  REQUIRE(d.errors.size() == 1);
  CHECK(d.errors[0].find("exceeds") != std::string::npos);
  // Megabytes of the refused body go by without being held.
  const std::string chunk(64 << 10, 'x');
  for (int i = 0; i < 32; ++i) {
    r.feed(chunk);
    drain(r, d);
    CHECK(r.buffered() < 64);
  }
  r.feed(frame("{\"after\":1}"));
  drain(r, d);
  REQUIRE(d.bodies.size() == 1);
  CHECK(d.bodies[0] == "{\"after\":1}");
}

TEST_CASE("a header that never ends is refused at the header limit") {
  FrameReader r(1024, /*max_header=*/256);
  Drained d;
  for (int i = 0; i < 100; ++i) {
    r.feed("X-Junk: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    drain(r, d);
    CHECK(r.buffered() <= 256 + 64);
  }
  CHECK(!d.errors.empty());
  r.feed("\r\n\r\n" + frame("{}"));
  drain(r, d);
  REQUIRE(d.bodies.size() == 1);
  CHECK(d.bodies[0] == "{}");
}

TEST_CASE("a body at exactly the limit is accepted") {
  FrameReader r(/*max_body=*/8);
  r.feed(frame("12345678"));
  Drained d;
  drain(r, d);
  REQUIRE(d.bodies.size() == 1);
  CHECK(d.errors.empty());
}
