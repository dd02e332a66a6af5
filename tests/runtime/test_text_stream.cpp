// TextStream over the real tokenizer of the embedded model: streamed text equals the tokenizer's
// own decode of all ids (multi-byte characters split across tokens included), and stop strings
// cut the text exactly before their first occurrence, never showing any part of them.
#include <doctest/doctest.h>

#include "engine/runtime/text_stream.h"
#include "engine/tokenizer/tokenizer.h"

using namespace ghostline::engine;
using namespace ghostline::engine::runtime;

namespace {
std::shared_ptr<const Tokenizer> tokenizer() {
  auto t = Tokenizer::from_file(std::string(GHOSTLINE_SOURCE_DIR) + "/models/ghostline-coder-tiny/tokenizer.json");
  REQUIRE_MESSAGE(t, (t ? "" : t.error().message));
  return *t;
}

const std::string kText =
    "def f(x):\n    return x * 2  # double\n\n\nclass Ünïcode:\n    s = \"日本語 テキスト 🎉🎉\"\n    t = 'ok'\n";
}  // namespace

TEST_CASE("streamed text equals the whole decode") {
  auto tok = tokenizer();
  auto ids = tok->encode(kText);
  TextStream ts(tok, {});
  std::string out;
  for (int32_t id : ids) {
    std::string piece = ts.push(id);
    out += piece;
  }
  out += ts.flush();
  CHECK(out == tok->decode(ids));
  CHECK(out == kText);
}

TEST_CASE("stop strings cut the text before their first occurrence") {
  auto tok = tokenizer();
  auto ids = tok->encode(kText);
  for (std::string stop : {"\n\n", "return", "🎉", "'ok'", "x * 2  #"}) {
    TextStream ts(tok, {"never-there", stop});
    std::string out;
    size_t used = 0;
    for (int32_t id : ids) {
      out += ts.push(id);
      ++used;
      if (ts.stopped()) break;
      // Nothing shown so far may contain the stop string.
      CHECK(out.find(stop) == std::string::npos);
    }
    CAPTURE(stop);
    CHECK(ts.stopped());
    CHECK(out == kText.substr(0, kText.find(stop)));
  }
  // Without a match, everything comes out (held-back text at the end included).
  TextStream ts(tok, {"\n\n\n\n"});
  std::string out;
  for (int32_t id : ids) out += ts.push(id);
  out += ts.flush();
  CHECK_FALSE(ts.stopped());
  CHECK(out == kText);
}
