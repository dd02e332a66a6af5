// build_context goldens per language and edge cases.
//
// Each golden/<name>.<ext> holds source with one <CURSOR> marker; <name>.<ext>.model (optional)
// holds a model output; <name>.<ext>.expected holds the expected mode, window cut lines (1-based
// first line of the prefix window, last line of the suffix window), prefix, suffix and the
// post-processed suggestion, as JSON. Budgets are small so that the windows are cut.
// GHOSTLINE_UPDATE_GOLDEN=1 rewrites the .expected files (review the diff before committing).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "completion/context.h"
#include "completion/postprocess.h"

using namespace ghostline::completion;
namespace fs = std::filesystem;

static std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

static int line_of(const std::string& t, size_t at) {
  int l = 1;
  for (size_t i = 0; i < at && i < t.size(); ++i) l += t[i] == '\n';
  return l;
}

TEST_CASE("golden contexts per language") {
  ContextOptions o;
  o.max_prefix_tokens = 48;
  o.max_suffix_tokens = 16;
  bool update = std::getenv("GHOSTLINE_UPDATE_GOLDEN") != nullptr;
  int cases = 0;
  for (const auto& e : fs::directory_iterator(GOLDEN_DIR)) {
    std::string name = e.path().filename().string();
    if (name.find(".expected") != std::string::npos || name.find(".model") != std::string::npos ||
        name.find(".captures") != std::string::npos)
      continue;
    CAPTURE(name);
    std::string src = slurp(e.path());
    size_t at = src.find("<CURSOR>");
    REQUIRE(at != std::string::npos);
    src.erase(at, 8);
    Snapshot s = parse_snapshot(name, language_from("", name), src);
    Context c = build_context(s, at, {}, o);
    nlohmann::ordered_json got;
    got["language"] = language_name(c.language);
    got["mode"] = mode_name(c.mode);
    got["prefix_first_line"] = line_of(src, c.prefix_start);
    got["suffix_last_line"] = line_of(src, c.suffix_end > 0 ? c.suffix_end - 1 : 0);
    got["prefix"] = c.prefix;
    got["suffix"] = c.suffix;
    fs::path model = e.path().string() + ".model";
    if (fs::exists(model)) got["suggestion"] = postprocess(s, c, slurp(model));
    fs::path expected = e.path().string() + ".expected";
    if (update) {
      std::ofstream(expected) << got.dump(2) << "\n";
    } else {
      REQUIRE(fs::exists(expected));
      auto want = nlohmann::ordered_json::parse(slurp(expected));
      CHECK(got.dump(2) == want.dump(2));
    }
    ++cases;
  }
  CHECK(cases >= 9);
}

TEST_CASE("imports and enclosing headers are kept above a cut") {
  std::string src = "import os\nimport sys\n\nclass Big:\n    def method(self, a):\n";
  for (int i = 0; i < 200; ++i) src += "        a = a + " + std::to_string(i) + "\n";
  src += "        return ";
  Snapshot s = parse_snapshot("big.py", Language::Python, src);
  ContextOptions o;
  o.max_prefix_tokens = 120;
  Context c = build_context(s, src.size(), {}, o);
  CAPTURE(c.prefix);
  CHECK(c.prefix_start > 100);
  CHECK(c.prefix.rfind("import os\nimport sys\nclass Big:\n    def method(self, a):\n", 0) == 0);
  CHECK(c.prefix.size() < src.size());
  CHECK(estimate_tokens(c.prefix) <= 120);
}

TEST_CASE("snippets: definitions of names used near the cursor, then similar chunks") {
  Snapshot other = parse_snapshot("lib.py", Language::Python,
                                  "def parse_header(line):\n    return line.split(':')\n\n"
                                  "def unrelated():\n    return 42\n");
  Snapshot cur = parse_snapshot("main.py", Language::Python, "from lib import parse_header\n\nh = parse_header(");
  Context c = build_context(cur, cur.text().size(), {other}, {});
  REQUIRE(!c.snippets.empty());
  CHECK(c.snippets[0].path == "lib.py");
  CHECK(c.snippets[0].text == "def parse_header(line):\n    return line.split(':')");
  ContextOptions none;
  none.max_snippet_tokens = 1;
  CHECK(build_context(cur, cur.text().size(), {other}, none).snippets.empty());
}

TEST_CASE("snippets: definitions across C-like files, and similar chunks by Jaccard") {
  Snapshot util = parse_snapshot("util.c", Language::C, "static int clamp_value(int v, int lo, int hi) {\n  return v < lo ? lo : v > hi ? hi : v;\n}\n");
  Snapshot cur = parse_snapshot("main.c", Language::C, "int main(void) {\n  int x = clamp_value(");
  Context c = build_context(cur, cur.text().size(), {util}, {});
  REQUIRE(c.snippets.size() == 1);
  CHECK(c.snippets[0].text.rfind("static int clamp_value(int v", 0) == 0);
  // No shared definition: the chunk sharing the most identifiers comes first.
  Snapshot a = parse_snapshot("a.txt", Language::PlainText, "alpha beta gamma delta\n");
  Snapshot b = parse_snapshot("b.txt", Language::PlainText, "zeta eta theta\n");
  Snapshot q = parse_snapshot("q.txt", Language::PlainText, "alpha beta gamma\n");
  Context j = build_context(q, q.text().size(), {b, a}, {});
  REQUIRE(j.snippets.size() == 1);
  CHECK(j.snippets[0].path == "a.txt");
}

TEST_CASE("a caller-supplied token counter sets the budget") {
  std::string src;
  for (int i = 0; i < 100; ++i) src.append("x").append(std::to_string(i)).append(" = 1\n");
  Snapshot s = parse_snapshot("a.py", Language::Python, src);
  ContextOptions o;
  o.max_prefix_tokens = 10;
  o.count_tokens = [](std::string_view t) { size_t n = 0; for (char ch : t) n += ch == '\n'; return n; };  // one per line
  Context c = build_context(s, src.size(), {}, o);
  std::string want;
  for (int i = 90; i < 100; ++i) want.append("x").append(std::to_string(i)).append(" = 1\n");
  CHECK(c.prefix == want);
}

TEST_CASE("edge cases never crash and give sensible windows") {
  SUBCASE("empty file") {
    Snapshot s = parse_snapshot("e.py", Language::Python, "");
    Context c = build_context(s, 0, {});
    CHECK(c.prefix.empty());
    CHECK(c.suffix.empty());
    CHECK(c.mode == Mode::MultiLine);
  }
  SUBCASE("cursor at start, at end, past the end") {
    Snapshot s = parse_snapshot("e.c", Language::C, "int x;\n");
    CHECK(build_context(s, 0, {}).suffix == "int x;\n");
    CHECK(build_context(s, 7, {}).prefix == "int x;\n");
    CHECK(build_context(s, 999, {}).cursor == 7);
  }
  SUBCASE("50,000-line file") {
    std::string src;
    for (int i = 0; i < 50000; ++i) src += "def f" + std::to_string(i) + "(a):\n    return a\n";
    Snapshot s = parse_snapshot("big.py", Language::Python, src);
    Context c = build_context(s, src.size() / 2, {});
    CHECK(estimate_tokens(c.prefix) <= 1536);
    CHECK(estimate_tokens(c.suffix) <= 512);
    CHECK(!c.prefix.empty());
  }
  SUBCASE("invalid UTF-8: the cursor moves to a character boundary") {
    std::string src = "x = '\xc3\xa9\xff'\n";
    Snapshot s = parse_snapshot("u.py", Language::Python, src);
    Context c = build_context(s, 6, {});  // inside the two-byte é
    CHECK(c.cursor == 5);
  }
  SUBCASE("no grammar: plain text, line windows") {
    Snapshot s = parse_snapshot("notes.txt", Language::PlainText, "one\ntwo\nthree\n");
    Context c = build_context(s, 8, {});
    CHECK(c.language == Language::PlainText);
    CHECK(c.prefix == "one\ntwo\n");
    CHECK(c.suffix == "three\n");
  }
  SUBCASE("a file that does not parse at all") {
    Snapshot s = parse_snapshot("bad.rs", Language::Rust, ")))) fn {{ ;; ]] <<");
    Context c = build_context(s, 5, {});
    CHECK(c.cursor == 5);
  }
  SUBCASE("cursor inside a string: none unless configured") {
    Snapshot s = parse_snapshot("s.js", Language::JavaScript, "const s = \"hello world\";\n");
    CHECK(build_context(s, 15, {}).mode == Mode::None);
    ContextOptions o;
    o.complete_in_strings = true;
    o.complete_mid_line = true;
    CHECK(build_context(s, 15, {}, o).mode == Mode::SingleLine);
  }
  SUBCASE("CRLF line endings") {
    std::string src = "def f():\r\n    return 1\r\n\r\ndef g():\r\n    ";
    Snapshot s = parse_snapshot("c.py", Language::Python, src);
    Context c = build_context(s, src.size(), {});
    CHECK(c.mode == Mode::MultiLine);
    CHECK(c.line_prefix == "    ");
    CHECK(c.prefix == src);
  }
}
