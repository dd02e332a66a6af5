// Quick-fix plans, prompts and the search: bad input, the hint line, the FIM prompt around a span,
// generations turned into hole text, the search with a scripted generator (ranking, budgets,
// cancellation, failures), and compute_fixes with the real embedded model, where every offered
// fix must validate (the model's quality is the benchmark's business, not this test's).
#include <doctest/doctest.h>

#include <map>

#include "completion/fix.h"
#include "completion/loaded_model.h"
#include "tests/fix/fix_corpus.h"

using namespace ghostline;
using namespace ghostline::completion;
using namespace ghostline::completion::testing;

namespace {

const std::string kHole = "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>";
const std::string kBegin = "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>";

FimTemplate spm_template() {
  FimTemplate t = fim_template_for(FimFamily::DeepSeekCoder);
  t.orders = {FimOrder::PSM, FimOrder::SPM};
  return t;
}

std::string apply_edit(const std::string& text, const DocumentEdit& e) {
  std::string out = text;
  out.replace(e.start, e.old_end - e.start, e.text);
  return out;
}

// A generator that answers from a table keyed by span kind, or "" (the model said nothing).
struct Scripted {
  std::map<SpanKind, std::vector<FixCandidate>> answers;
  std::vector<std::pair<SpanKind, FixSampling>> calls;
  FixGenerator generator() {
    return [this](const FixPrompt&, const FixSpan& span, const FixSampling& s) -> Expected<FixCandidate> {
      calls.push_back({span.kind, s});
      auto it = answers.find(span.kind);
      if (it == answers.end() || it->second.empty()) return FixCandidate{};
      FixCandidate c = it->second.front();
      if (it->second.size() > 1) it->second.erase(it->second.begin());
      return c;
    };
  }
};

}  // namespace

TEST_CASE("plan_fix: bad input is an error, never a crash") {
  Snapshot py = parse_snapshot("a.py", Language::Python, "def f(x)\n    return x\n");
  CHECK(plan_fix(py, Diagnostic{100, 101, "m"}).error().code == ErrorCode::InvalidArgument);
  CHECK(plan_fix(py, Diagnostic{5, 2, "m"}).error().code == ErrorCode::InvalidArgument);
  Snapshot plain = parse_snapshot("a.txt", Language::PlainText, "hello\n");
  CHECK(plan_fix(plain, Diagnostic{0, 1, "m"}).error().code == ErrorCode::Unsupported);
  // Edge positions and odd bytes: a plan (maybe with few spans), no crash.
  Snapshot empty = parse_snapshot("a.py", Language::Python, "");
  CHECK(plan_fix(empty, Diagnostic{0, 0, "m"}));
  const std::string bytes = std::string("x = [\xff\xfe\n\xc3(\n", 11);
  Snapshot odd = parse_snapshot("a.py", Language::Python, bytes);
  for (size_t s = 0; s <= bytes.size(); ++s) {
    auto p = plan_fix(odd, Diagnostic{s, bytes.size(), "m"});
    REQUIRE(p);
    for (const auto& span : p->spans) CHECK(span.end <= bytes.size());
  }
  Snapshot eof = parse_snapshot("a.js", Language::JavaScript, "function f() {\n  return 1;\n");
  auto p = plan_fix(eof, Diagnostic{eof.text().size(), eof.text().size(), "expected '}'"});
  REQUIRE(p);
  CHECK(!p->spans.empty());
}

TEST_CASE("hint_line: one comment line in the language's syntax, cut on a character boundary") {
  CHECK(hint_line(Language::Python, "    ", "expected ':'") == "    # error: expected ':'\n");
  CHECK(hint_line(Language::Cpp, "", "a\nb") == "// error: a\n");
  CHECK(hint_line(Language::JavaScript, "  ", "bell\x07 here") == "  // error: bell here\n");
  std::string long_message;
  for (int i = 0; i < 100; ++i) long_message += "\xC3\xA9";  // é, 2 bytes each
  const std::string h = hint_line(Language::Python, "", long_message);
  CHECK(h.size() <= std::string("# error: \n").size() + 120);
  const std::string body = h.substr(9, h.size() - 10);
  CHECK(body.size() % 2 == 0);  // whole characters only
}

TEST_CASE("build_fix_prompt: SPM around the span, the hint above the hole, stops per span kind") {
  const std::string text = "import math\n\n\ndef area(r)\n    return math.pi * r * r\n";
  Snapshot snap = parse_snapshot("a.py", Language::Python, text);
  const size_t line = text.find("def area");
  const size_t eol = text.find('\n', line);
  FixSpan span{eol, eol, SpanKind::AppendLine, Hole{line, eol + 1, HoleLevel::Line, ""}, "", ""};
  FixPrompt p = build_fix_prompt(snap, span, Diagnostic{line, eol, "expected ':'"}, spm_template(), {}, {});
  CHECK(p.prefix == "import math\n\n\n# error: expected ':'\ndef area(r)");
  CHECK(p.suffix == text.substr(eol));
  CHECK(p.prompt == kHole + p.suffix + kBegin + p.prefix + "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>");
  CHECK(std::find(p.stop.begin(), p.stop.end(), "\n") != p.stop.end());
  FixOptions no_hint;
  no_hint.hint = false;
  CHECK(build_fix_prompt(snap, span, Diagnostic{line, eol, "m"}, spm_template(), {}, no_hint).prefix ==
        "import math\n\n\ndef area(r)");
  // A whole-hole rewrite: no newline stop, a token budget from the hole's size.
  FixSpan whole{line, text.size(), SpanKind::WholeHole, Hole{line, text.size(), HoleLevel::Function, "x"}, "", ""};
  FixPrompt w = build_fix_prompt(snap, whole, Diagnostic{line, eol, "m"}, spm_template(), {}, {});
  CHECK(std::find(w.stop.begin(), w.stop.end(), "\n") == w.stop.end());
  CHECK(w.max_tokens > 16);
  // A tight prefix budget keeps whole lines nearest the hole.
  FixOptions tight;
  tight.max_prefix_tokens = 2;
  tight.hint = false;
  const std::string tight_prefix = build_fix_prompt(snap, span, Diagnostic{line, eol, "m"}, spm_template(), {}, tight).prefix;
  CHECK(tight_prefix.size() < std::string("import math\n\n\ndef area(r)").size());
  CHECK(tight_prefix.find("def area(r)") != std::string::npos);
  CHECK((tight_prefix.size() == 11 || tight_prefix[tight_prefix.size() - 12] == '\n'));  // whole lines
}

TEST_CASE("hole_text_from_generation: cut per span kind, repeats of the surroundings dropped") {
  const std::string text = "def f(x):\n    retrun x * x\n\nprint(f(2))\n";
  Snapshot snap = parse_snapshot("a.py", Language::Python, text);
  const size_t l2 = text.find("    retrun"), l2_end = text.find('\n', l2) + 1;
  const Hole line2{l2, l2_end, HoleLevel::Line, ""};
  const size_t w = text.find("retrun");
  // A word: the first word of the answer.
  CHECK(hole_text_from_generation(snap, FixSpan{w, w + 6, SpanKind::Word, line2, "", "r"}, "return y + 1") == "    return x * x\n");
  // A token span: what repeats the rest of the line is dropped, even when cut short.
  CHECK(hole_text_from_generation(snap, FixSpan{w, w + 6, SpanKind::Token, line2, "", ""}, "return x") == "    return x * x\n");
  CHECK(hole_text_from_generation(snap, FixSpan{w, w + 6, SpanKind::Token, line2, "", ""}, "return x * x\nmore") == "    return x * x\n");
  // A whole line (an indentation span): the line as written, indentation included.
  CHECK(hole_text_from_generation(snap, FixSpan{l2, l2_end - 1, SpanKind::Indent, line2, "", "  r"}, "  return x * x") ==
        "  return x * x\n");
  // A new line gets its lead and line break; nothing means nothing.
  CHECK(hole_text_from_generation(snap, FixSpan{l2, l2, SpanKind::NewLine, line2, "  ", ""}, "}") == "  }\n    retrun x * x\n");
  CHECK(hole_text_from_generation(snap, FixSpan{l2, l2, SpanKind::NewLine, line2, "  ", ""}, "") == "    retrun x * x\n");
  // A hole rewrite: lines repeating what follows or precedes are dropped; the line break kept.
  const Hole both{0, l2_end, HoleLevel::Function, ""};
  CHECK(hole_text_from_generation(snap, FixSpan{0, l2_end, SpanKind::WholeHole, both, "", ""},
                                  "def f(x):\n    return x * x\n\nprint(f(2))\n") == "def f(x):\n    return x * x\n");
  const Hole second{l2, l2_end, HoleLevel::Lines, ""};
  CHECK(hole_text_from_generation(snap, FixSpan{l2, l2_end, SpanKind::WholeHole, second, "", ""},
                                  "def f(x):\n    return x * x") == "    return x * x\n");
}

TEST_CASE("plan_fix: required starts — a lone word's first letter, proposed Python indentations") {
  const std::string typo = "def f(x):\n    retrun x * x\n\nprint(f(2))\n";
  Snapshot a = parse_snapshot("a.py", Language::Python, typo);
  auto pa = plan_fix(a, fix_diagnostics(a).front());
  REQUIRE(pa);
  const size_t w = typo.find("retrun");
  bool word = false;
  for (const auto& span : pa->spans)
    if (span.kind == SpanKind::Word) {
      CHECK(span.start != typo.find("def"));  // a keyword the grammar knows is no typo
      if (span.start != w) continue;
      word = true;
      CHECK(span.end == w + 6);
      CHECK(span.required == "r");
    }
  CHECK(word);
  // "expected an indented block": the line after `def ...:` one level deeper (the file's step, 2).
  const std::string flat = "class A:\n  def f(self):\n  return 1\n";
  Snapshot b = parse_snapshot("b.py", Language::Python, flat);
  auto pb = plan_fix(b, fix_diagnostics(b).front());
  REQUIRE(pb);
  std::vector<std::string> required;
  for (const auto& span : pb->spans)
    if (span.kind == SpanKind::Indent) required.push_back(span.required);
  REQUIRE(!required.empty());
  CHECK(required.front() == "    r");
  // The prompt carries it to the engine.
  for (const auto& span : pb->spans)
    if (span.kind == SpanKind::Indent)
      CHECK(build_fix_prompt(b, span, fix_diagnostics(b).front(), spm_template(), {}, {}).required_prefix == span.required);
}

TEST_CASE("search_fixes: greedy first, stops at a clean fix, samples only when nothing validates") {
  const std::string text = "def f(x)\n    return x\n";
  Snapshot snap = parse_snapshot("a.py", Language::Python, text);
  const Diagnostic d = fix_diagnostics(snap).front();
  Scripted s;
  s.answers[SpanKind::AppendLine] = {FixCandidate{":", -0.5, 1}};
  FixReport report;
  auto fixes = search_fixes(snap, d, spm_template(), {}, s.generator(), CancelToken(), {}, &report);
  REQUIRE(fixes);
  REQUIRE(fixes->size() == 1);
  CHECK(apply_edit(text, fixes->front().edits.front()) == "def f(x):\n    return x\n");
  CHECK(fixes->front().title == "Fix with Ghostline: " + d.message);
  for (const auto& call : s.calls) CHECK(call.second.temperature == 0.0f);  // no samples needed
  CHECK(report.attempts.back().check.ok);
  CHECK(report.attempts.size() == s.calls.size());

  // Nothing validates: greedy over every span, then samples, within max_generations.
  Scripted none;
  FixOptions opt;
  opt.max_generations = 9;
  auto empty = search_fixes(snap, d, spm_template(), {}, none.generator(), CancelToken(), opt);
  REQUIRE(empty);
  CHECK(empty->empty());
  CHECK(none.calls.size() <= 9u);
  auto plan = plan_fix(snap, d);
  REQUIRE(plan);
  if (plan->spans.size() < 9u) CHECK(none.calls.back().second.temperature > 0.0f);
}

TEST_CASE("search_fixes: validated candidates ranked by likelihood; duplicates merged") {
  const std::string text = "def f(x)\n    return x\n";
  Snapshot snap = parse_snapshot("a.py", Language::Python, text);
  const Diagnostic d = fix_diagnostics(snap).front();
  FixOptions opt;
  opt.stop_at_first_clean = false;
  opt.max_fixes = 3;
  Scripted s;
  // Two different clean fixes (the likelier comes first) and the likeliest one found twice.
  s.answers[SpanKind::Token] = {FixCandidate{"def f(x) :", -3.0, 4}};
  s.answers[SpanKind::AppendLine] = {FixCandidate{":", -0.5, 1}};
  s.answers[SpanKind::WholeHole] = {FixCandidate{"def f(x):\n    return x", -0.2, 9}};
  auto fixes = search_fixes(snap, d, spm_template(), {}, s.generator(), CancelToken(), opt);
  REQUIRE(fixes);
  REQUIRE(fixes->size() == 2);
  CHECK(apply_edit(text, fixes->front().edits.front()) == "def f(x):\n    return x\n");
  CHECK(apply_edit(text, fixes->back().edits.front()) == "def f(x) :\n    return x\n");
  // With stop_at_first_clean (the default) the search ends at the first clean candidate.
  Scripted first;
  first.answers = {{SpanKind::Token, {FixCandidate{"def f(x) :", -3.0, 4}}}, {SpanKind::AppendLine, {FixCandidate{":", -0.5, 1}}}};
  auto one = search_fixes(snap, d, spm_template(), {}, first.generator(), CancelToken(), {});
  REQUIRE(one);
  REQUIRE(one->size() == 1);
  CHECK(first.calls.size() < plan_fix(snap, d)->spans.size());
}

TEST_CASE("search_fixes: cancellation answers Cancelled; generator failures are recorded, the search goes on") {
  const std::string text = "int f() {\n  return 1\n}\n";
  Snapshot snap = parse_snapshot("a.cpp", Language::Cpp, text);
  const Diagnostic d = fix_diagnostics(snap).front();
  CancelToken cancel = CancelToken::make();
  int calls = 0;
  FixGenerator cancelling = [&](const FixPrompt&, const FixSpan&, const FixSampling&) -> Expected<FixCandidate> {
    ++calls;
    cancel.cancel();
    return make_error(ErrorCode::Cancelled, "cancelled");
  };
  auto r = search_fixes(snap, d, spm_template(), {}, cancelling, cancel, {});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::Cancelled);
  CHECK(calls == 1);

  int failures = 0;
  FixGenerator failing = [&](const FixPrompt&, const FixSpan& span, const FixSampling&) -> Expected<FixCandidate> {
    if (++failures <= 2) return make_error(ErrorCode::ResourceExhausted, "no KV blocks");
    return FixCandidate{span.kind == SpanKind::AppendLine || span.kind == SpanKind::Insert ? ";" : "", -1, 1};
  };
  FixReport report;
  auto fixes = search_fixes(snap, d, spm_template(), {}, failing, CancelToken(), {}, &report);
  REQUIRE(fixes);
  CHECK(report.attempts.front().check.reason.find("no KV blocks") != std::string::npos);
  REQUIRE(fixes->size() == 1);
  CHECK(apply_edit(text, fixes->front().edits.front()) == "int f() {\n  return 1;\n}\n");
}

TEST_CASE("compute_fixes with the embedded model: every offered fix validates against a fresh parse") {
  ModelLoadOptions load;
  load.device = "cpu";
  load.threads = 1;
  auto model = load_model_for_completion(std::string(GHOSTLINE_SOURCE_DIR) + "/models/ghostline-coder-tiny", load);
  REQUIRE_MESSAGE(model, (model ? "" : model.error().message));
  FixOptions options;
  options.max_generations = 6;
  int offered = 0, cases = 0;
  for (const auto& c : fix_corpus()) {
    CAPTURE(c.name);
    Snapshot snap = parse_case(c, c.broken);
    const Diagnostic d = fix_diagnostics(snap).front();
    FixReport report;
    auto fixes = compute_fixes(**model, snap, d, CancelToken(), options, &report);
    REQUIRE_MESSAGE(fixes, (fixes ? "" : fixes.error().message));
    ++cases;
    CHECK(report.attempts.size() <= 6u);
    for (const auto& f : *fixes) {
      ++offered;
      REQUIRE(f.edits.size() == 1);
      const DocumentEdit& e = f.edits.front();
      const std::string edited = apply_edit(c.broken, e);
      CAPTURE(edited);
      CHECK(count_fix_errors(parse_case(c, edited)) < count_fix_errors(snap));
      bool inside_a_hole = false;
      for (const auto& h : report.plan.holes) inside_a_hole = inside_a_hole || (h.start <= e.start && e.old_end <= h.end);
      CHECK(inside_a_hole);
    }
  }
  MESSAGE("embedded model, 6 generations per diagnostic: fixes offered for " << offered << " of " << cases << " cases");
  // Cancelled before it starts: an error, promptly.
  CancelToken cancel = CancelToken::make();
  cancel.cancel();
  auto c = fix_corpus().front();
  Snapshot snap = parse_case(c, c.broken);
  auto r = compute_fixes(**model, snap, fix_diagnostics(snap).front(), cancel);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::Cancelled);
}
