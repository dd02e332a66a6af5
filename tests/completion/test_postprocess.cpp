// Post-processing: block end by indentation and by brackets, single-line mode, suffix overlap,
// parse-worse rejection, and the streaming completeness check agreeing with the final cut.
#include <doctest/doctest.h>

#include "completion/postprocess.h"

using namespace ghostline::completion;

struct Case {
  Snapshot snap;
  Context ctx;
};

// `src` holds one <CURSOR> marker.
static Case make(const std::string& path, std::string src) {
  size_t at = src.find("<CURSOR>");
  REQUIRE(at != std::string::npos);
  src.erase(at, 8);
  Snapshot s = parse_snapshot(path, language_from("", path), src);
  Context c = build_context(s, at, {});
  return {s, c};
}

TEST_CASE("python: stop at the dedent that leaves the cursor's block") {
  auto k = make("a.py", "def f(xs):\n    total = 0\n    <CURSOR>\n\nprint(f([1]))\n");
  CHECK(k.ctx.mode == Mode::MultiLine);
  std::string raw = "for x in xs:\n        total += x\n    return total\n\ndef g():\n    pass\n";
  CHECK(postprocess(k.snap, k.ctx, raw) == "for x in xs:\n        total += x\n    return total");
  CHECK(!is_complete(k.ctx, "for x in xs:\n        total += x\n    return total\n\n"));
  CHECK(is_complete(k.ctx, "for x in xs:\n        total += x\n    return total\n\nd"));
}

TEST_CASE("python: a cursor at column 0 of a body takes the block's indentation from the suggestion") {
  auto k = make("a.py", "def f(n):\n<CURSOR>\n");
  CHECK(k.ctx.mode == Mode::MultiLine);
  CHECK(postprocess(k.snap, k.ctx, "    return n * 2\n\nprint(f(3))\n") == "    return n * 2");
}

TEST_CASE("C: stop before the brace that closes the enclosing block") {
  auto k = make("a.c", "int f(int n) {\n  int s = 0;\n  <CURSOR>\n}\n");
  std::string raw = "for (int i = 0; i < n; i++) {\n    s += i;\n  }\n  return s;\n}\n\nint g(void) { return 1; }\n";
  CHECK(postprocess(k.snap, k.ctx, raw) == "for (int i = 0; i < n; i++) {\n    s += i;\n  }\n  return s;");
}

TEST_CASE("single-line mode ends at the line and drops what repeats the suffix") {
  auto k = make("a.py", "print(<CURSOR>)\n");
  CHECK(k.ctx.mode == Mode::SingleLine);
  CHECK(postprocess(k.snap, k.ctx, "'hello')\nprint(2)\n") == "'hello'");
  CHECK(is_complete(k.ctx, "'hello')\n"));
  CHECK(!is_complete(k.ctx, "'hello')"));
}

TEST_CASE("trailing whitespace is trimmed; nothing inside comments by default") {
  auto k = make("a.py", "x = <CURSOR>\n");
  CHECK(postprocess(k.snap, k.ctx, "1   \n\n") == "1");
  auto c = make("a.py", "# a comment <CURSOR>\nx = 1\n");
  CHECK(c.ctx.mode == Mode::None);
  CHECK(postprocess(c.snap, c.ctx, "more words") == "");
}

TEST_CASE("a suggestion that makes the parse worse is rejected") {
  auto k = make("a.py", "def f(x):\n    return <CURSOR>\n");
  CHECK(postprocess(k.snap, k.ctx, "x + 1") == "x + 1");
  CHECK(postprocess(k.snap, k.ctx, "x + (1 ") == "");
}

TEST_CASE("streaming: once complete_at answers, more text does not move the cut") {
  auto py = make("a.py", "def f(xs):\n    total = 0\n    <CURSOR>\n\nprint(f([1]))\n");
  auto c = make("a.c", "int f(int n) {\n  int s = 0;\n  <CURSOR>\n}\n");
  auto one = make("a.py", "print(<CURSOR>)\n");
  const std::pair<const Context*, std::string> cases[] = {
      {&py.ctx, "for x in xs:\n        total += x\n    return total\n\ndef g():\n    pass\n"},
      {&c.ctx, "for (int i = 0; i < n; i++) {\n    s += i;\n  }\n  return s;\n}\n\nint g(void) { return 1; }\n"},
      {&one.ctx, "'hello')\nprint(2)\n"}};
  for (const auto& [ctx, raw] : cases) {
    auto final_cut = complete_at(*ctx, raw);
    REQUIRE(final_cut);
    bool seen = false;
    for (size_t n = 0; n <= raw.size(); ++n) {
      auto cut = complete_at(*ctx, std::string_view(raw).substr(0, n));
      if (!cut) continue;
      seen = true;
      CHECK(*cut == *final_cut);
    }
    CHECK(seen);
  }
}
