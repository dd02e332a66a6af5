// Quick-fix checks: the minimal whole-line edit, the validation of a candidate against a re-parse
// of the edited copy, and the error count it compares (tree-sitter's ERROR/MISSING nodes plus the
// Python indentation errors that tree-sitter-python parses without complaint).
#include <algorithm>
#include <cstring>

#include "completion/fix.h"

namespace ghostline::completion {
namespace {

size_t line_start_of(std::string_view text, size_t pos) {
  if (pos == 0) return 0;
  size_t nl = text.rfind('\n', pos - 1);
  return nl == std::string_view::npos ? 0 : nl + 1;
}

// Whitespace runs collapsed to one space, leading/trailing whitespace dropped.
std::string collapse_space(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

size_t levenshtein(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

size_t count_occurrences(std::string_view text, std::string_view needle) {
  if (needle.empty()) return 0;
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

size_t non_space_chars(std::string_view s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return c != ' ' && c != '\t' && c != '\n' && c != '\r'; }));
}

bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

// Words: maximal runs of identifier characters (letters, digits, '_', non-ASCII bytes), so
// identifiers, numbers and the words inside strings.
std::vector<std::string_view> words_of(std::string_view s) {
  std::vector<std::string_view> out;
  auto is_word = is_word_char;
  for (size_t i = 0; i < s.size();) {
    if (!is_word(s[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && is_word(s[j])) ++j;
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
size_t osa_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// A misspelling corrected: "retrun" -> "return", "elsif" -> "elif", "fro" -> "for".
bool typo_of(std::string_view a, std::string_view b) {
  const size_t longer = std::max(a.size(), b.size());
  if (longer < 3 || a.size() > 64 || b.size() > 64) return false;
  return osa_distance(a, b) <= (longer >= 5 ? 2u : 1u);
}


size_t count_word(std::string_view text, std::string_view word) {
  size_t n = 0;
  for (size_t at = text.find(word); at != std::string_view::npos; at = text.find(word, at + 1)) {
    const bool left = at == 0 || !is_word_char(text[at - 1]);
    const bool right = at + word.size() >= text.size() || !is_word_char(text[at + word.size()]);
    n += left && right;
  }
  return n;
}

// A keyword of the grammar: an anonymous token spelled like the word ("in", "return").
bool is_keyword(const TSLanguage* language, std::string_view w) {
  return language && ts_language_symbol_for_name(language, w.data(), static_cast<uint32_t>(w.size()), false) != 0;
}

// Why the words of `after` do not conserve those of `before`, or "" when they do: every old word
// survives in order, or is corrected as a typo — a word found nowhere else in the document turned
// into a keyword or a name the document uses ("retrun" -> "return") — and at most `max_new` new
// words appear, each a keyword of the grammar (a missing `in`), never a new name or literal.
std::string words_not_conserved(std::string_view before, std::string_view after, size_t max_new, std::string_view document,
                                const TSLanguage* language) {
  const auto a = words_of(before), b = words_of(after);
  if (a.size() > 400 || b.size() > 400) return "";  // too long to align cheaply; other checks still hold
  std::vector<bool> lone(a.size()), known(b.size());
  for (size_t i = 0; i < a.size(); ++i) lone[i] = count_word(document, a[i]) == 1;
  for (size_t j = 0; j < b.size(); ++j) known[j] = is_keyword(language, b[j]) || count_word(document, b[j]) > 0;
  auto matches = [&](size_t i, size_t j) { return a[i] == b[j] || (lone[i] && known[j] && typo_of(a[i], b[j])); };
  // Longest alignment where a pair matches when equal or a typo fix.
  std::vector<std::vector<size_t>> m(a.size() + 1, std::vector<size_t>(b.size() + 1, 0));
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      m[i][j] = std::max(m[i - 1][j], m[i][j - 1]);
      if (matches(i - 1, j - 1)) m[i][j] = std::max(m[i][j], m[i - 1][j - 1] + 1);
    }
  if (m[a.size()][b.size()] < a.size()) return "the change drops or renames words that were there";
  // Walk back to find b's unmatched words.
  std::vector<std::string_view> added;
  size_t i = a.size(), j = b.size();
  while (j > 0) {
    if (i > 0 && matches(i - 1, j - 1) && m[i][j] == m[i - 1][j - 1] + 1) {
      --i, --j;
    } else if (i > 0 && m[i][j] == m[i - 1][j]) {
      --i;
    } else {
      added.push_back(b[j - 1]);
      --j;
    }
  }
  if (added.size() > max_new) return "the change adds " + std::to_string(added.size()) + " new words";
  for (auto w : added)
    if (!is_keyword(language, w)) return "the change adds the word '" + std::string(w) + "'";
  return "";
}

// Why the punctuation and operators of `before` do not survive in `after`, or "": a syntax fix
// adds a ':' or a ')', or drops one stray closer or separator; it does not turn '<' into '>'.
std::string punctuation_not_conserved(std::string_view before, std::string_view after) {
  auto marks = [](std::string_view s) {
    std::string out;
    for (char c : s)
      if (!is_word_char(c) && c != ' ' && c != '\t' && c != '\n' && c != '\r') out += c;
    return out;
  };
  const std::string a = marks(before), b = marks(after);
  if (a.size() > 2000 || b.size() > 2000) return "";
  std::vector<std::vector<uint16_t>> m(a.size() + 1, std::vector<uint16_t>(b.size() + 1, 0));
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j)
      m[i][j] = a[i - 1] == b[j - 1] ? m[i - 1][j - 1] + 1 : std::max(m[i - 1][j], m[i][j - 1]);
  std::string dropped, added;
  for (size_t i = a.size(), j = b.size(); i > 0 || j > 0;) {
    if (i > 0 && j > 0 && a[i - 1] == b[j - 1] && m[i][j] == m[i - 1][j - 1] + 1) {
      --i, --j;
    } else if (j > 0 && m[i][j] == m[i][j - 1]) {
      added += b[--j];
    } else {
      dropped += a[--i];
    }
  }
  for (char c : added)
    if (std::string_view(";:,()[]{}").find(c) == std::string_view::npos)
      return std::string("the change adds '") + c + "' (only brackets and separators are added by a syntax fix)";
  if (dropped.empty()) return "";
  if (dropped.size() == 1 && std::string_view(")]};,").find(dropped[0]) != std::string_view::npos) return "";
  return "the change drops or alters '" + dropped + "'";
}

// ---- Python indentation ----

// Column (bytes) of `pos` if it is the first non-blank byte of its line, else nullopt.
std::optional<size_t> line_start_column(std::string_view text, size_t pos) {
  size_t ls = line_start_of(text, pos);
  for (size_t i = ls; i < pos; ++i)
    if (text[i] != ' ' && text[i] != '\t') return std::nullopt;
  return pos - ls;
}

size_t indentation_of_line(std::string_view text, size_t pos) {
  size_t ls = line_start_of(text, pos), i = ls;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  return i - ls;
}

// The range of the line's content (no indentation, no line break) at `pos`.
Diagnostic line_diagnostic(std::string_view text, size_t pos, std::string message) {
  size_t ls = line_start_of(text, pos), s = ls;
  while (s < text.size() && (text[s] == ' ' || text[s] == '\t')) ++s;
  size_t e = text.find('\n', s);
  if (e == std::string_view::npos) e = text.size();
  return Diagnostic{s, e, std::move(message), "ghostline"};
}

void check_python_block(TSNode block, std::string_view text, bool is_module, std::vector<Diagnostic>& out) {
  std::vector<TSNode> statements;
  const uint32_t n = ts_node_named_child_count(block);
  for (uint32_t i = 0; i < n; ++i) {
    TSNode c = ts_node_named_child(block, i);
    const char* type = ts_node_type(c);
    if (!std::strcmp(type, "comment") || ts_node_is_error(c) || ts_node_is_missing(c)) continue;
    statements.push_back(c);
  }
  if (statements.empty()) {
    if (is_module) return;
    // The body of the statement that owns this block is missing: report the first code line
    // after its header (the one that should have been indented), else the block's position.
    const size_t at = std::min<size_t>(ts_node_start_byte(block), text.size());
    size_t ls = line_start_of(text, at);
    if (!line_start_column(text, at)) {
      const size_t nl = text.find('\n', at);
      ls = nl == std::string_view::npos ? nl : nl + 1;
    }
    while (ls != std::string_view::npos && ls < text.size()) {
      size_t e = text.find('\n', ls);
      std::string_view line = text.substr(ls, (e == std::string_view::npos ? text.size() : e) - ls);
      const size_t first = line.find_first_not_of(" \t\r");
      if (first != std::string_view::npos && line[first] != '#') {
        out.push_back(line_diagnostic(text, ls, "expected an indented block"));
        return;
      }
      ls = e == std::string_view::npos ? e : e + 1;
    }
    out.push_back(Diagnostic{at, at, "expected an indented block", "ghostline"});
    return;
  }
  std::optional<size_t> expected;
  for (TSNode s : statements) {
    auto col = line_start_column(text, ts_node_start_byte(s));
    if (!col) continue;  // shares a line with the header or a previous statement
    if (!expected) {
      expected = *col;
      if (is_module && *col > 0) {
        out.push_back(line_diagnostic(text, ts_node_start_byte(s), "unexpected indent"));
      } else if (!is_module) {
        TSNode owner = ts_node_parent(block);
        if (!ts_node_is_null(owner) && *col <= indentation_of_line(text, ts_node_start_byte(owner)))
          out.push_back(line_diagnostic(text, ts_node_start_byte(s), "expected an indented block"));
      }
      continue;
    }
    if (*col > *expected)
      out.push_back(line_diagnostic(text, ts_node_start_byte(s), "unexpected indent"));
    else if (*col < *expected)
      out.push_back(line_diagnostic(text, ts_node_start_byte(s), "unindent does not match any outer indentation level"));
  }
}

void walk_python(TSNode node, std::string_view text, std::vector<Diagnostic>& out, int depth) {
  if (depth > 500) return;  // pathological nesting: stop rather than overflow the stack
  const char* type = ts_node_type(node);
  const bool is_module = !std::strcmp(type, "module");
  if (is_module || !std::strcmp(type, "block")) check_python_block(node, text, is_module, out);
  const uint32_t n = ts_node_named_child_count(node);
  for (uint32_t i = 0; i < n; ++i) walk_python(ts_node_named_child(node, i), text, out, depth + 1);
}

}  // namespace

std::vector<Diagnostic> indentation_diagnostics(const Snapshot& snapshot) {
  std::vector<Diagnostic> out;
  if (!snapshot.has_tree() || snapshot.language() != Language::Python) return out;
  walk_python(snapshot.root(), snapshot.text(), out, 0);
  return out;
}

namespace {

void measure_nodes(TSNode node, SyntaxErrors& out, int depth) {
  if (ts_node_is_missing(node)) {
    ++out.count;
    return;
  }
  if (ts_node_is_error(node)) {
    ++out.count;
    out.bytes += ts_node_end_byte(node) - ts_node_start_byte(node);
    return;
  }
  if (!ts_node_has_error(node) || depth > 2000) return;
  const uint32_t n = ts_node_child_count(node);
  for (uint32_t i = 0; i < n; ++i) measure_nodes(ts_node_child(node, i), out, depth + 1);
}

}  // namespace

SyntaxErrors measure_syntax_errors(const Snapshot& snapshot) {
  SyntaxErrors out;
  if (!snapshot.has_tree()) return out;
  measure_nodes(snapshot.root(), out, 0);
  for (const auto& d : indentation_diagnostics(snapshot)) {
    ++out.count;
    out.bytes += d.end - d.start;
  }
  return out;
}

size_t count_fix_errors(const Snapshot& snapshot) { return measure_syntax_errors(snapshot).count; }

std::vector<Diagnostic> fix_diagnostics(const Snapshot& snapshot, size_t max_count) {
  auto out = syntax_diagnostics(snapshot, max_count);
  for (auto& d : indentation_diagnostics(snapshot)) out.push_back(std::move(d));
  std::stable_sort(out.begin(), out.end(), [](const Diagnostic& a, const Diagnostic& b) { return a.start < b.start; });
  if (out.size() > max_count) out.resize(max_count);
  return out;
}

std::optional<DocumentEdit> minimal_line_edit(std::string_view old_text, std::string_view new_text) {
  if (old_text == new_text) return std::nullopt;
  const size_t common = std::min(old_text.size(), new_text.size());
  size_t p = 0;
  while (p < common && old_text[p] == new_text[p]) ++p;
  const size_t start = line_start_of(old_text, p);  // old and new agree before p: same line start
  size_t s = 0;
  const size_t max_s = common - start;
  while (s < max_s && old_text[old_text.size() - 1 - s] == new_text[new_text.size() - 1 - s]) ++s;
  size_t old_end = old_text.size() - s, new_end = new_text.size() - s;
  // Move the end forward to a line start; old and new share that text, so both move alike.
  if (old_end > start && old_end < old_text.size() && old_text[old_end - 1] != '\n') {
    size_t nl = old_text.find('\n', old_end);
    size_t to = nl == std::string_view::npos ? old_text.size() : nl + 1;
    new_end += to - old_end;
    old_end = to;
  }
  return DocumentEdit{start, old_end, std::string(new_text.substr(start, new_end - start))};
}

FixCheck check_fix(const Snapshot& snapshot, const Hole& hole, const std::vector<DocumentEdit>& edits,
                   const FixOptions& options) {
  return check_fix(snapshot, measure_syntax_errors(snapshot), hole, edits, options);
}

FixCheck check_fix(const Snapshot& snapshot, const SyntaxErrors& before, const Hole& hole,
                   const std::vector<DocumentEdit>& edits, const FixOptions& options) {
  FixCheck check;
  check.errors_before = before.count;
  check.error_bytes_before = before.bytes;
  const size_t errors_before = before.count;
  const std::string& text = snapshot.text();
  if (!snapshot.has_tree()) {
    check.reason = "no syntax tree to check against (plain text)";
    return check;
  }
  if (edits.empty()) {
    check.reason = "no change";
    return check;
  }
  std::vector<DocumentEdit> sorted = edits;
  std::stable_sort(sorted.begin(), sorted.end(), [](const DocumentEdit& a, const DocumentEdit& b) { return a.start < b.start; });
  for (size_t i = 0; i < sorted.size(); ++i) {
    const auto& e = sorted[i];
    if (e.start > e.old_end || e.old_end > text.size()) {
      check.reason = "edit [" + std::to_string(e.start) + ", " + std::to_string(e.old_end) + ") is outside the document";
      return check;
    }
    if (e.start < hole.start || e.old_end > hole.end) {
      check.reason = "edit [" + std::to_string(e.start) + ", " + std::to_string(e.old_end) + ") is outside the hole [" +
                     std::to_string(hole.start) + ", " + std::to_string(hole.end) + ")";
      return check;
    }
    if (i > 0 && e.start < sorted[i - 1].old_end) {
      check.reason = "edits overlap";
      return check;
    }
  }
  // Apply (back to front, so earlier offsets hold) and compare the changed text.
  std::string edited = text;
  check.similarity = 1.0;
  bool changed = false;
  const std::string leader = line_comment(snapshot.language());
  for (auto it = sorted.rbegin(); it != sorted.rend(); ++it) {
    std::string_view before = std::string_view(text).substr(it->start, it->old_end - it->start);
    if (before != it->text) changed = true;
    const size_t comments_before = count_occurrences(before, leader) + count_occurrences(before, "/*");
    const size_t comments_after = count_occurrences(it->text, leader) + count_occurrences(it->text, "/*");
    if (comments_after > comments_before) {
      check.reason = "the change adds a comment (commenting code out is no fix)";
      return check;
    }
    if (options.conserve_words) {
      std::string why = words_not_conserved(before, it->text, options.max_new_words, text,
                                            tree_sitter_language(snapshot.language()));
      if (why.empty()) why = punctuation_not_conserved(before, it->text);
      if (!why.empty()) {
        check.reason = why;
        return check;
      }
    }
    const std::string a = collapse_space(before), b = collapse_space(it->text);
    if (a.empty()) {
      if (non_space_chars(it->text) > options.max_inserted_chars) {
        check.similarity = 0;
        check.reason = "inserts " + std::to_string(non_space_chars(it->text)) + " characters where nothing was";
        return check;
      }
    } else {
      // Small edits of short lines ("}" -> "};") are fine whatever their ratio.
      const size_t distance = levenshtein(a, b);
      const double sim = 1.0 - static_cast<double>(distance) / static_cast<double>(std::max(a.size(), b.size()));
      check.similarity = std::min(check.similarity, distance <= 2 ? std::max(sim, options.min_similarity) : sim);
    }
    edited.replace(it->start, it->old_end - it->start, it->text);
  }
  if (!changed || edited == text) {
    check.reason = "no change";
    return check;
  }
  if (check.similarity < options.min_similarity) {
    check.reason = "the changed lines are too unlike the old ones (similarity " + std::to_string(check.similarity) + ")";
    return check;
  }
  Snapshot after = parse_snapshot(snapshot.path(), snapshot.language(), std::move(edited));
  const SyntaxErrors measured = measure_syntax_errors(after);
  check.errors_after = measured.count;
  check.error_bytes_after = measured.bytes;
  if (errors_before > 0) {
    check.ok = check.errors_after < errors_before && check.error_bytes_after <= check.error_bytes_before;
  } else {
    check.ok = options.semantic_fixes && check.errors_after == 0;
    if (!options.semantic_fixes && check.errors_after == 0) {
      check.reason = "the document has no syntax error to fix";
      return check;
    }
  }
  if (!check.ok)
    check.reason = "parses no better: " + std::to_string(errors_before) + " errors (" +
                   std::to_string(check.error_bytes_before) + " bytes) before, " + std::to_string(check.errors_after) +
                   " (" + std::to_string(check.error_bytes_after) + " bytes) after";
  return check;
}

}  // namespace ghostline::completion
