// Document: incremental reparse must give the same tree as parsing the edited text from scratch;
// bad edits are refused; diagnostics name what is missing; language detection.
#include <doctest/doctest.h>

#include <random>

#include "completion/document.h"

using namespace ghostline::completion;

static std::string tree_string(const Snapshot& s) {
  char* str = ts_node_string(s.root());
  std::string out(str);
  free(str);
  return out;
}

TEST_CASE("incremental edits give the tree of a full reparse") {
  const std::string src =
      "import os\n\ndef f(a, b):\n    if a:\n        return b\n    return [x for x in range(a)]\n\n"
      "class C:\n    def m(self):\n        return f(1, 2)\n";
  Document doc("t.py", "python", src);
  std::mt19937 rng(7);
  const std::string alphabet = "ab(): \n\t[]#'\"x=1";
  for (int step = 0; step < 300; ++step) {
    const std::string& t = doc.text();
    size_t a = rng() % (t.size() + 1);
    size_t b = std::min(t.size(), a + rng() % 3);
    std::string ins;
    for (size_t k = rng() % 3; k > 0; --k) ins += alphabet[rng() % alphabet.size()];
    REQUIRE(doc.apply(DocumentEdit{a, b, ins}));
    Snapshot fresh = parse_snapshot("t.py", Language::Python, doc.text());
    REQUIRE(tree_string(doc.snapshot()) == tree_string(fresh));
  }
}

TEST_CASE("snapshots are immutable while the document changes") {
  Document doc("x.c", "", "int main(void) { return 0; }\n");
  Snapshot before = doc.snapshot();
  REQUIRE(doc.apply(DocumentEdit{4, 8, "start"}));
  CHECK(before.text() == "int main(void) { return 0; }\n");
  CHECK(doc.snapshot().text() == "int start(void) { return 0; }\n");
  CHECK(std::string(ts_node_type(before.root())) == "translation_unit");
}

TEST_CASE("edits outside the text are refused and change nothing") {
  Document doc("x.py", "python", "abc\n");
  auto r = doc.apply(DocumentEdit{2, 10, "z"});
  REQUIRE(!r);
  CHECK(r.error().message.find("[2, 10)") != std::string::npos);
  CHECK(!doc.apply(DocumentEdit{3, 2, ""}));
  CHECK(doc.text() == "abc\n");
}

TEST_CASE("invalid UTF-8 and plain text do not crash") {
  Document bad("x.py", "python", std::string("x = '\xff\xfe'\n\xc3", 11));
  CHECK(bad.snapshot().has_tree());
  (void)syntax_diagnostics(bad.snapshot());
  Document plain("notes.txt", "", "hello\n");
  CHECK(plain.language() == Language::PlainText);
  CHECK(!plain.snapshot().has_tree());
  CHECK(syntax_diagnostics(plain.snapshot()).empty());
  REQUIRE(plain.apply(DocumentEdit{0, 5, "bye"}));
  CHECK(plain.text() == "bye\n");
}

TEST_CASE("diagnostics from MISSING and ERROR nodes") {
  auto d = syntax_diagnostics(parse_snapshot("x.c", Language::C, "int main(void) { return 0 }\n"));
  REQUIRE(d.size() == 1);
  CHECK(d[0].message == "expected ';'");
  CHECK(d[0].start == 25);
  CHECK(syntax_diagnostics(parse_snapshot("x.py", Language::Python, "def f():\n    return 1\n")).empty());
  auto e = syntax_diagnostics(parse_snapshot("x.py", Language::Python, "def f(:\n    return 1\n"));
  CHECK(!e.empty());
}

TEST_CASE("language from languageId, then extension") {
  CHECK(language_from("python", "x.txt") == Language::Python);
  CHECK(language_from("", "a/b/x.tsx") == Language::Tsx);
  CHECK(language_from("", "x.HPP") == Language::Cpp);
  CHECK(language_from("unknown", "x.rs") == Language::Rust);
  CHECK(language_from("", "Makefile") == Language::PlainText);
  for (Language l : {Language::Python, Language::C, Language::Cpp, Language::JavaScript, Language::TypeScript,
                     Language::Tsx, Language::Rust, Language::Go, Language::Java})
    CHECK(tree_sitter_language(l) != nullptr);
}
