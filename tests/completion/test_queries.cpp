// Query files: every grammars/queries/<lang>/<kind>.scm compiles against its grammar, and over the
// golden sources gives the captures in golden/<name>.<ext>.captures (one "capture: first line of
// the captured text" per line; GHOSTLINE_UPDATE_GOLDEN=1 rewrites them).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "completion/queries.h"

using namespace ghostline::completion;
namespace fs = std::filesystem;

TEST_CASE("every query file compiles against its grammar") {
  for (Language l : {Language::Python, Language::C, Language::Cpp, Language::JavaScript, Language::TypeScript,
                     Language::Tsx, Language::Rust, Language::Go, Language::Java}) {
    Snapshot s = parse_snapshot("x", l, "");
    for (const char* kind : {"definitions", "imports", "comments"}) {
      CAPTURE(language_name(l));
      CAPTURE(kind);
      auto r = run_query(s, kind);
      CHECK_MESSAGE(r.has_value(), (r ? std::string() : r.error().message));
    }
  }
}

static std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_CASE("golden captures of the query files") {
  bool update = std::getenv("GHOSTLINE_UPDATE_GOLDEN") != nullptr;
  int files = 0;
  for (const auto& e : fs::directory_iterator(GOLDEN_DIR)) {
    std::string name = e.path().filename().string();
    if (name.find('.') != name.rfind('.')) continue;  // .expected, .model, .captures
    Language l = language_from("", name);
    if (l == Language::PlainText) continue;
    CAPTURE(name);
    std::string src = slurp(e.path());
    src.erase(src.find("<CURSOR>"), 8);
    Snapshot s = parse_snapshot(name, l, src);
    std::string got;
    for (const char* kind : {"definitions", "imports", "comments"}) {
      auto r = run_query(s, kind);
      REQUIRE(r);
      for (const auto& c : *r) {
        std::string text = src.substr(c.start, c.end - c.start);
        text = text.substr(0, text.find('\n'));
        got += c.name + ": " + text + "\n";
      }
    }
    fs::path expected = e.path().string() + ".captures";
    if (update) std::ofstream(expected) << got;
    else CHECK(got == slurp(expected));
    ++files;
  }
  CHECK(files >= 9);
}
