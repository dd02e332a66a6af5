// Quick-fix validation with real parses: the checker accepts every expected fix of the corpus and
// refuses what parses worse, what edits outside the hole, what deletes, renames or comments out
// code; minimal_line_edit; Python indentation errors (and none on real Python files).
#include <doctest/doctest.h>

#include <filesystem>
#include <random>

#include "completion/fix.h"
#include "tests/fix/fix_corpus.h"

using namespace ghostline;
using namespace ghostline::completion;
using namespace ghostline::completion::testing;

namespace {

std::string apply_edit(const std::string& text, const DocumentEdit& e) {
  std::string out = text;
  out.replace(e.start, e.old_end - e.start, e.text);
  return out;
}

bool at_line_start(const std::string& text, size_t pos) { return pos == 0 || text[pos - 1] == '\n'; }

}  // namespace

TEST_CASE("corpus: every broken file has a diagnostic and errors, every fixed file parses clean") {
  auto corpus = fix_corpus();
  REQUIRE(corpus.size() >= 30);
  for (const auto& c : corpus) {
    CAPTURE(c.name);
    Snapshot broken = parse_case(c, c.broken), fixed = parse_case(c, c.fixed);
    CHECK(broken.has_tree());
    CHECK(count_fix_errors(broken) >= 1);
    CHECK(!fix_diagnostics(broken).empty());
    CHECK(count_fix_errors(fixed) == 0);
    CHECK(fix_diagnostics(fixed).empty());
  }
}

TEST_CASE("the plan's holes hold each expected fix, and check_fix accepts it with no error left") {
  for (const auto& c : fix_corpus()) {
    CAPTURE(c.name);
    Snapshot snap = parse_case(c, c.broken);
    const Diagnostic d = fix_diagnostics(snap).front();
    auto plan = plan_fix(snap, d);
    REQUIRE(plan);
    REQUIRE(!plan->holes.empty());
    REQUIRE(!plan->spans.empty());
    auto edit = minimal_line_edit(c.broken, c.fixed);
    REQUIRE(edit);
    CHECK(apply_edit(c.broken, *edit) == c.fixed);
    // Some span's hole holds the expected edit, and the check accepts it there.
    bool held = false;
    for (const auto& span : plan->spans) {
      if (edit->start < span.hole.start || edit->old_end > span.hole.end) continue;
      held = true;
      FixCheck check = check_fix(snap, span.hole, {*edit});
      CAPTURE(check.reason);
      CHECK(check.ok);
      CHECK(check.errors_after == 0);
      CHECK(check.errors_before == plan->errors_before);
      break;
    }
    CHECK(held);
    // Spans lie inside their holes; holes are whole lines.
    for (const auto& span : plan->spans) {
      CHECK(span.hole.start <= span.start);
      CHECK(span.start <= span.end);
      CHECK(span.end <= span.hole.end);
      CHECK(at_line_start(c.broken, span.hole.start));
      CHECK((span.hole.end == c.broken.size() || at_line_start(c.broken, span.hole.end)));
    }
  }
}

TEST_CASE("check_fix refuses what parses worse, edits outside the hole, or is no fix at all") {
  for (const auto& c : fix_corpus()) {
    CAPTURE(c.name);
    Snapshot snap = parse_case(c, c.broken);
    const Diagnostic d = fix_diagnostics(snap).front();
    auto plan = plan_fix(snap, d);
    REQUIRE(plan);
    const Hole hole = plan->holes.front();
    const std::string hole_text = c.broken.substr(hole.start, hole.end - hole.start);

    // No change.
    CHECK_FALSE(check_fix(snap, hole, {}).ok);
    CHECK_FALSE(check_fix(snap, hole, {DocumentEdit{hole.start, hole.end, hole_text}}).ok);

    // The expected fix, checked against holes that do not hold it: the lines before the line it
    // starts on, and the lines after the line it ends on.
    auto edit = minimal_line_edit(c.broken, c.fixed);
    REQUIRE(edit);
    std::vector<Hole> elsewhere;
    if (edit->start > 0) {
      // A pure insertion at a hole's end belongs to it (the hole's last line extended): stop a
      // line earlier for those.
      size_t end = edit->start;
      if (edit->old_end == edit->start) {
        const size_t nl = edit->start >= 2 ? c.broken.rfind('\n', edit->start - 2) : std::string::npos;
        end = nl == std::string::npos ? 0 : nl + 1;
      }
      if (end > 0) elsewhere.push_back(Hole{0, end, HoleLevel::Line, ""});
    }
    const size_t next_line = c.broken.find('\n', edit->old_end);
    if (next_line != std::string::npos && next_line + 1 < c.broken.size())
      elsewhere.push_back(Hole{next_line + 1, c.broken.size(), HoleLevel::Line, ""});
    CHECK(!elsewhere.empty());
    for (const Hole& h : elsewhere) {
      if (edit->start >= h.start && edit->old_end <= h.end) continue;
      FixCheck outside = check_fix(snap, h, {*edit});
      CHECK_FALSE(outside.ok);
      CHECK(outside.reason.find("outside the hole") != std::string::npos);
    }

    // Worse: unbalanced brackets added inside the hole.
    const size_t line_end = c.broken.find('\n', hole.start);
    const size_t at = line_end == std::string::npos ? c.broken.size() : line_end;
    FixCheck worse = check_fix(snap, hole, {DocumentEdit{at, at, " (( [[ {{"}});
    CHECK_FALSE(worse.ok);

    // Deleting the hole's lines parses better often enough, but deletes the code.
    FixCheck deleted = check_fix(snap, hole, {DocumentEdit{hole.start, hole.end, ""}});
    CHECK_FALSE(deleted.ok);

    // Commenting the broken line out.
    const std::string leader = line_comment(snap.language());
    FixCheck commented = check_fix(snap, hole, {DocumentEdit{hole.start, hole.start, leader + " "}});
    CHECK_FALSE(commented.ok);

    // The expected fix plus a renamed word on its line is refused (words are conserved).
    std::string renamed = edit->text;
    for (size_t i = 0; i < renamed.size(); ++i)
      if (std::isalpha(static_cast<unsigned char>(renamed[i]))) {
        size_t j = i;
        while (j < renamed.size() && (std::isalnum(static_cast<unsigned char>(renamed[j])) || renamed[j] == '_')) ++j;
        renamed.replace(i, j - i, "zzqq_renamed");
        break;
      }
    if (renamed != edit->text) CHECK_FALSE(check_fix(snap, Hole{0, c.broken.size(), HoleLevel::Block, ""},
                                                     {DocumentEdit{edit->start, edit->old_end, renamed}}).ok);

    // Out of range and reversed edits are refused, not applied.
    CHECK_FALSE(check_fix(snap, Hole{0, c.broken.size(), HoleLevel::Block, ""}, {DocumentEdit{5, 2, "x"}}).ok);
    CHECK_FALSE(check_fix(snap, Hole{0, c.broken.size() + 10, HoleLevel::Block, ""},
                          {DocumentEdit{c.broken.size() + 1, c.broken.size() + 5, "x"}}).ok);
  }
}

TEST_CASE("check_fix: random edits inside the hole are accepted only when they parse better and keep the code") {
  std::mt19937 rng(7);
  const std::string pieces[] = {":", ";", ")", "]", "}", "(", "{", " ", "\n", "    ", "x", "return", "else", ",", "\"", "#", "//"};
  int accepted = 0, tried = 0;
  for (const auto& c : fix_corpus()) {
    Snapshot snap = parse_case(c, c.broken);
    auto plan = plan_fix(snap, fix_diagnostics(snap).front());
    REQUIRE(plan);
    const SyntaxErrors before = measure_syntax_errors(snap);
    for (const auto& hole : plan->holes)
      for (int k = 0; k < 12; ++k) {
        const size_t len = hole.end - hole.start;
        size_t s = hole.start + (len ? rng() % (len + 1) : 0);
        size_t e = std::min(hole.end, s + (rng() % 3 == 0 ? rng() % 4 : 0));
        DocumentEdit edit{s, e, pieces[rng() % std::size(pieces)]};
        FixCheck check = check_fix(snap, before, hole, {edit});
        ++tried;
        if (!check.ok) continue;
        ++accepted;
        CAPTURE(c.name);
        CAPTURE(edit.text);
        // Accepted means: fewer errors in a re-parse of the edited copy, nothing outside the hole.
        Snapshot after = parse_case(c, apply_edit(c.broken, edit));
        CHECK(count_fix_errors(after) < before.count);
        CHECK(measure_syntax_errors(after).bytes <= before.bytes);
        CHECK(edit.start >= hole.start);
        CHECK(edit.old_end <= hole.end);
      }
  }
  CHECK(tried > 500);
  MESSAGE("random edits accepted: " << accepted << " of " << tried);
}

TEST_CASE("check_fix on a document without syntax errors: semantic fixes keep it clean, or are off") {
  auto c = fix_corpus().front();
  Snapshot clean = parse_case(c, c.fixed);
  REQUIRE(count_fix_errors(clean) == 0);
  const size_t nl = c.fixed.find('\n');
  Hole first_line{0, nl + 1, HoleLevel::Line, ""};
  // A rename of nothing (same words, respaced) keeps it clean.
  std::string respaced = c.fixed.substr(0, nl);
  respaced += "  \n";
  FixOptions on;
  CHECK(check_fix(clean, first_line, {DocumentEdit{0, nl + 1, respaced}}, on).ok);
  FixOptions off;
  off.semantic_fixes = false;
  CHECK_FALSE(check_fix(clean, first_line, {DocumentEdit{0, nl + 1, respaced}}, off).ok);
  // An edit that breaks it is refused.
  CHECK_FALSE(check_fix(clean, first_line, {DocumentEdit{nl, nl, " ((("}}, on).ok);
}

TEST_CASE("minimal_line_edit: whole changed lines only, and applying it gives the new text") {
  CHECK_FALSE(minimal_line_edit("a\nb\n", "a\nb\n"));
  auto e = minimal_line_edit("a\nbc\nd\n", "a\nbxc\nd\n");
  REQUIRE(e);
  CHECK(e->start == 2);
  CHECK(e->old_end == 5);
  CHECK(e->text == "bxc\n");
  auto ins = minimal_line_edit("a\nb\n", "a\nX\nb\n");
  REQUIRE(ins);
  CHECK(ins->start == 2);
  CHECK(ins->old_end == 2);
  CHECK(ins->text == "X\n");
  auto tail = minimal_line_edit("a\nb", "a\nb;");
  REQUIRE(tail);
  CHECK(tail->start == 2);
  CHECK(tail->old_end == 3);
  CHECK(tail->text == "b;");
  // Property: on random texts the edit applies exactly and is aligned to lines.
  std::mt19937 rng(1);
  const char alphabet[] = "ab\n ;";
  for (int i = 0; i < 3000; ++i) {
    std::string a, b;
    for (int k = rng() % 20; k > 0; --k) a += alphabet[rng() % 5];
    b = a;
    for (int k = rng() % 3 + 1; k > 0; --k) {
      size_t at = b.empty() ? 0 : rng() % (b.size() + 1);
      if (rng() % 2 && at < b.size()) b.erase(at, 1 + rng() % 2);
      else b.insert(at, 1, alphabet[rng() % 5]);
    }
    auto d = minimal_line_edit(a, b);
    if (a == b) {
      CHECK_FALSE(d);
      continue;
    }
    REQUIRE(d);
    CHECK(apply_edit(a, *d) == b);
    CHECK(at_line_start(a, d->start));
    CHECK((d->old_end == a.size() || at_line_start(a, d->old_end)));
  }
}

TEST_CASE("Python indentation errors: found in the corpus, none in the repository's Python files") {
  Snapshot unexpected = parse_snapshot("a.py", Language::Python, "def f():\n    a = 1\n      return a\n");
  auto d = indentation_diagnostics(unexpected);
  REQUIRE(d.size() == 1);
  CHECK(d[0].message == "unexpected indent");
  CHECK(unexpected.text().substr(d[0].start, d[0].end - d[0].start) == "return a");
  Snapshot empty_body = parse_snapshot("a.py", Language::Python, "def f():\nreturn 1\n");
  auto e = indentation_diagnostics(empty_body);
  REQUIRE(e.size() == 1);
  CHECK(e[0].message == "expected an indented block");
  CHECK(empty_body.text().substr(e[0].start, e[0].end - e[0].start) == "return 1");
  Snapshot dedent = parse_snapshot("a.py", Language::Python, "if x:\n    a = 1\n  b = 2\n");
  CHECK(!indentation_diagnostics(dedent).empty());
  // Valid layouts: one-line bodies, comments anywhere, continuation lines, nested blocks.
  Snapshot valid = parse_snapshot("a.py", Language::Python,
                                  "if x: y = 1\n# c\ndef f(a,\n      b):\n  # deep\n    return (a +\n        b)\n\nclass C:\n    def g(self):\n        pass\n");
  CHECK(indentation_diagnostics(valid).empty());
  CHECK(indentation_diagnostics(parse_snapshot("a.cpp", Language::Cpp, "int f() {\n      return 1;\n}\n")).empty());

  namespace fs = std::filesystem;
  int files = 0;
  for (const char* dir : {"tools", "bench", "tests"}) {
    const fs::path root = fs::path(GHOSTLINE_SOURCE_DIR) / dir;
    if (!fs::exists(root)) continue;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
      if (it->is_directory() && (it->path().filename() == "node_modules" || it->path().filename() == "fixtures")) {
        it.disable_recursion_pending();
        continue;
      }
      if (it->path().extension() != ".py") continue;
      Snapshot s = parse_snapshot(it->path().string(), Language::Python, read_text(it->path()));
      if (count_syntax_errors(s.root()) != 0) continue;
      ++files;
      CAPTURE(it->path().string());
      CHECK(indentation_diagnostics(s).empty());
    }
  }
  CHECK(files >= 3);
}

TEST_CASE("check_fix: operators and punctuation survive a fix, save one stray closer") {
  const std::string text = "def sign(x):\n    if x > 0:\n        return 1\n    elsif x < 0:\n        return -1\n    return 0\n";
  Snapshot snap = parse_snapshot("s.py", Language::Python, text);
  const size_t s = text.find("    elsif"), e = text.find('\n', s) + 1;
  const Hole line{s, e, HoleLevel::Line, ""};
  CHECK(check_fix(snap, line, {DocumentEdit{s, e, "    elif x < 0:\n"}}).ok);
  FixCheck flipped = check_fix(snap, line, {DocumentEdit{s, e, "    elif x > 0:\n"}});
  CHECK_FALSE(flipped.ok);
  CHECK((flipped.reason.find("'<'") != std::string::npos || flipped.reason.find("'>'") != std::string::npos));
  // New operators and names are no fix either; a keyword of the grammar is ("for x range(3)").
  CHECK_FALSE(check_fix(snap, line, {DocumentEdit{s, e, "    elif x < 0 + 1:\n"}}).ok);
  const std::string for_in = "for x range(3):\n    print(x)\n";
  Snapshot fi = parse_snapshot("f.py", Language::Python, for_in);
  REQUIRE(count_fix_errors(fi) > 0);
  CHECK(check_fix(fi, Hole{0, 16, HoleLevel::Line, ""}, {DocumentEdit{0, 16, "for x in range(3):\n"}}).ok);
  CHECK_FALSE(check_fix(fi, Hole{0, 16, HoleLevel::Line, ""}, {DocumentEdit{0, 16, "for x, y range(3):\n"}}).ok);
  // A typo fix must leave a word used nowhere else for a keyword or a name in use.
  const std::string typo = "def f(value):\n    retrun value\n";
  Snapshot ty = parse_snapshot("t.py", Language::Python, typo);
  const size_t l2 = typo.find("    retrun");
  const Hole l2_hole{l2, typo.size(), HoleLevel::Line, ""};
  CHECK(check_fix(ty, l2_hole, {DocumentEdit{l2, typo.size(), "    return value\n"}}).ok);
  CHECK_FALSE(check_fix(ty, l2_hole, {DocumentEdit{l2, typo.size(), "    retrun valeu\n"}}).ok);
  const std::string stray = "x = f(1))\ny = 2\n";
  Snapshot st = parse_snapshot("t.py", Language::Python, stray);
  CHECK(check_fix(st, Hole{0, 10, HoleLevel::Line, ""}, {DocumentEdit{0, 10, "x = f(1)\n"}}).ok);
  CHECK_FALSE(check_fix(st, Hole{0, 10, HoleLevel::Line, ""}, {DocumentEdit{0, 10, "x = f1\n"}}).ok);
}
