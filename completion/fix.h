// Quick fixes for a diagnostic (issue 10): where the model may write (the hole: whole lines
// around the error — the line, then the enclosing statement, block, function), what it is asked
// (a FIM prompt around a span of the hole, with the diagnostic's message as a comment line above
// it), which candidates are offered (only those that parse with fewer errors and change nothing
// outside their hole, as one minimal edit of whole lines), and the search that ties them
// together: every span greedily first, then a few sampled candidates, ranked by the parse check
// and then by the model's mean log-probability per generated token.
//
// The pure parts (plan_fix, build_fix_prompt, hole_text_from_generation, check_fix,
// minimal_line_edit, the error counts) need no model and are what the tests exercise with real
// parses; search_fixes takes the model as a FixGenerator so that it can be tested with a scripted
// one; compute_fixes is search_fixes over a LoadedModel.
//
// Thread-safety: pure functions of their arguments, callable from any thread; search_fixes and
// compute_fixes block the calling thread on generations (never call them on the engine thread).
// Cancellation: the token is checked between generations and cancels the running one; the result
// is then a Cancelled error. Bad input (a range outside the text, plain text, invalid UTF-8)
// gives an error or an empty list, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "completion/context.h"
#include "completion/document.h"
#include "completion/fim.h"
#include "completion/service.h"
#include "engine/base/cancel.h"
#include "engine/base/expected.h"

namespace ghostline::completion {

struct LoadedModel;

struct FixOptions {
  // Holes: larger syntax nodes than this are not offered to the model.
  size_t max_hole_lines = 30;
  size_t max_hole_bytes = 2048;
  // Prompt windows around the hole, in tokens (cut at line starts).
  size_t max_prefix_tokens = 768;
  size_t max_suffix_tokens = 256;
  bool hint = true;                 // the diagnostic's message as a comment line above the hole
  // Search.
  int max_generations = 14;         // greedy and sampled generations together
  int sample_rounds = 2;            // rounds of samples over the sampled spans when no greedy one validates
  size_t sampled_spans = 5;         // how many of the plan's spans are sampled (in plan order)
  float temperature = 0.8f;
  float top_p = 0.95f;
  uint64_t seed = 1;
  int max_line_tokens = 48;         // single-line spans
  int max_hole_tokens = 320;        // whole-hole rewrites
  bool stop_at_first_clean = true;  // stop once a candidate validates with no syntax error left
  double max_total_ms = 0;          // 0 = no time budget; else no new generation starts after it
  bool speculation = true;
  // Offers.
  size_t max_fixes = 1;
  // A fix must look like an edit of what was there: whitespace-insensitive similarity of the
  // changed lines before and after (1 - Levenshtein / longer length). Deleting or rewriting the
  // broken code wholesale is not a fix, even when it parses.
  double min_similarity = 0.6;
  size_t max_inserted_chars = 40;   // pure insertions (nothing replaced): non-space characters at most
  // The words of the changed lines (identifiers, numbers, words in strings) survive in order —
  // save misspellings: a word found nowhere else in the file turned into a keyword or a name the
  // file uses ("retrun" -> "return") — and at most `max_new_words` keywords of the grammar are
  // added (a missing `in`). Operators survive too; only brackets and separators (";:,") are added,
  // and one stray closer or separator may go: a fix does not rename, drop, invent or negate code.
  bool conserve_words = true;
  size_t max_new_words = 1;
  // A document without syntax errors (the diagnostic is another server's, e.g. a type error):
  // offer fixes that keep it error-free. Off: such diagnostics get no fix.
  bool semantic_fixes = true;
};

// ---- Holes and spans ----

enum class HoleLevel { Line, Lines, Statement, Block, Function };
const char* hole_level_name(HoleLevel level);

// Whole lines [start, end) of the document that a fix may change; nothing outside may change.
struct Hole {
  size_t start = 0, end = 0;
  HoleLevel level = HoleLevel::Line;
  std::string node_type;            // the syntax node it was taken from (empty for line holes)
};

// The part of a hole the model writes: bytes [start, end) replaced by the generation.
enum class SpanKind {
  Word,        // a word found nowhere else in the file (a misspelled keyword): the answer starts
               // with the word's first letter, and its first word replaces it
  NewLine,     // a new line before a line where the indentation says a bracket block had ended
  Insert,      // an empty span at a missing token inside a line
  Token,       // the erroneous token(s) on one line; the rest of the line stays as the suffix
  AppendLine,  // the end of a line (an empty span): a missing ':' / ';' / ')'
  Indent,      // a whole line (Python), the answer starting at a proposed indentation
  RestOfLine,  // from the error to the end of its line
  WholeLine,   // one line, indentation included
  WholeHole,   // every line of the hole
};
const char* span_kind_name(SpanKind kind);

struct FixSpan {
  size_t start = 0, end = 0;
  SpanKind kind = SpanKind::WholeHole;
  Hole hole;                        // start <= span.start <= span.end <= end
  // Text the replacement starts with, given to the model at the end of the prefix (NewLine: the
  // indentation of the block being closed).
  std::string lead;
  // Bytes the generation must begin with (engine token healing: GenerationRequest::
  // required_prefix); they are part of the answer. Word: the word's first letter; RestOfLine,
  // WholeLine: the old text's indentation and first character; Indent: the proposed indentation
  // and the first character.
  std::string required;
  bool single_line() const { return kind != SpanKind::WholeHole; }
};

// How broken a parse is: errors (ERROR and MISSING nodes, plus Python indentation errors) and
// the bytes they cover (an ERROR node's extent, an indentation error's line). Counting nodes alone
// can be gamed: one edit can merge several errors into a single ERROR swallowing the file.
struct SyntaxErrors {
  size_t count = 0;
  size_t bytes = 0;
};
SyntaxErrors measure_syntax_errors(const Snapshot& snapshot);

struct FixPlan {
  size_t focus = 0;                 // the first innermost syntax error inside the diagnostic, else its start
  size_t errors_before = 0;         // count_fix_errors of the document
  size_t error_bytes_before = 0;
  std::vector<Hole> holes;          // smallest first, within the size limits
  std::vector<FixSpan> spans;       // in the order the search tries them
};

// Errors: InvalidArgument for a reversed range or one past the end of the text; Unsupported for
// a document without a syntax tree (plain text).
Expected<FixPlan> plan_fix(const Snapshot& snapshot, const Diagnostic& diagnostic, const FixOptions& options = {});

// ---- Prompt ----

struct FixPrompt {
  std::string prompt;               // the rendered FIM prompt (the BOS is added by encode_prompt)
  std::string prefix, suffix;       // what the template was given
  std::vector<std::string> stop;
  int max_tokens = 0;
  std::string required_prefix;      // the span's `required`
};

// "<indentation><comment leader> error: <message>\n", the message cut to its first line and
// 120 bytes (on a UTF-8 boundary), control characters dropped.
std::string hint_line(Language language, std::string_view indentation, std::string_view message);

FixPrompt build_fix_prompt(const Snapshot& snapshot, const FixSpan& span, const Diagnostic& diagnostic,
                           const FimTemplate& fim, const TokenCounter& count_tokens, const FixOptions& options = {});

// The hole's new text for a generation: a word span takes the answer's first word; other
// single-line spans are cut at the first line break and lose what repeats the rest of the line
// (a new line gets its lead and line break); hole rewrites
// lose the lines that repeat what surrounds the hole and end with a line break when the hole did.
std::string hole_text_from_generation(const Snapshot& snapshot, const FixSpan& span, std::string_view generated);

// ---- Checks ----

// The smallest replacement of whole lines that turns old_text into new_text; nullopt when equal.
std::optional<DocumentEdit> minimal_line_edit(std::string_view old_text, std::string_view new_text);

struct FixCheck {
  bool ok = false;
  size_t errors_before = 0, errors_after = 0;
  size_t error_bytes_before = 0, error_bytes_after = 0;
  double similarity = 0;
  std::string reason;               // why not, when !ok
};

// Applies `edits` (all against the snapshot's text, non-overlapping) to a copy, re-parses it and
// accepts when: every edit lies inside the hole, something changed, the changed lines still look
// like the old ones (min_similarity, conserve_words; no new comment markers: commenting code out
// is no fix), and the copy has fewer errors than the snapshot, covering no more bytes
// (measure_syntax_errors) — or, for a snapshot without errors and semantic_fixes, still none.
FixCheck check_fix(const Snapshot& snapshot, const Hole& hole, const std::vector<DocumentEdit>& edits,
                   const FixOptions& options = {});
// The same with the snapshot's errors already measured (the search does it once).
FixCheck check_fix(const Snapshot& snapshot, const SyntaxErrors& before, const Hole& hole,
                   const std::vector<DocumentEdit>& edits, const FixOptions& options = {});

// Syntax errors (ERROR and MISSING nodes, count_syntax_errors) plus, for Python, the indentation
// errors tree-sitter accepts silently (indentation_diagnostics).
size_t count_fix_errors(const Snapshot& snapshot);

// Python only (empty for other languages): a compound statement with an empty body ("expected an
// indented block"), statements of one block at different indentations ("unexpected indent",
// "unindent does not match any outer indentation level"), top-level code indented.
std::vector<Diagnostic> indentation_diagnostics(const Snapshot& snapshot);

// syntax_diagnostics followed by indentation_diagnostics, ordered by position.
std::vector<Diagnostic> fix_diagnostics(const Snapshot& snapshot, size_t max_count = 100);

// ---- Search ----

struct FixSampling {
  float temperature = 0;            // 0 = greedy
  float top_p = 1;
  uint64_t seed = 0;
};

struct FixCandidate {
  std::string text;                 // the generated text (before hole_text_from_generation)
  double mean_logprob = 0;          // per generated token; 0 when there were none
  int tokens = 0;
};

// One generation for a prompt. Errors other than Cancelled are recorded and the search goes on.
using FixGenerator = std::function<Expected<FixCandidate>(const FixPrompt&, const FixSpan&, const FixSampling&)>;

struct FixAttempt {
  FixSpan span;
  FixSampling sampling;
  std::string generated;
  std::optional<DocumentEdit> edit;
  FixCheck check;
  double mean_logprob = 0;
  double ms = 0;
};

struct FixReport {
  FixPlan plan;
  std::vector<FixAttempt> attempts; // in the order they ran
  double total_ms = 0;
};

// Plans, generates (greedy over every span in order, then — when none validated — rounds of
// samples over the first `sampled_spans` spans), checks each candidate and returns the best
// `max_fixes` (fewest errors left, then highest mean log-probability), deduplicated; empty when
// none validates. `report`, when given, receives every attempt.
Expected<std::vector<Fix>> search_fixes(const Snapshot& snapshot, const Diagnostic& diagnostic, const FimTemplate& fim,
                                        const TokenCounter& count_tokens, const FixGenerator& generate,
                                        const CancelToken& cancel, const FixOptions& options = {},
                                        FixReport* report = nullptr);

// search_fixes with the model's engine as the generator (run_generation, with logprobs).
Expected<std::vector<Fix>> compute_fixes(const LoadedModel& model, const Snapshot& snapshot, const Diagnostic& diagnostic,
                                         const CancelToken& cancel, const FixOptions& options = {},
                                         FixReport* report = nullptr);

// "Fix with Ghostline: <message>" (the code action's title).
std::string fix_title(std::string_view message);

}  // namespace ghostline::completion
