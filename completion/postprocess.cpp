// Post-processing: block-end truncation, suffix overlap, trailing whitespace, parse check.
#include "completion/postprocess.h"

#include <algorithm>

namespace ghostline::completion {

static size_t indent_width(std::string_view line) {
  size_t w = 0;
  for (char c : line) {
    if (c == ' ') ++w;
    else if (c == '\t') w += 8 - w % 8;
    else break;
  }
  return w;
}
static bool blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }
static std::string_view trim(std::string_view s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string_view::npos) return {};
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

// The first non-blank line of the suffix after the cursor line, trimmed.
static std::string_view next_suffix_line(const Context& c) {
  std::string_view s = c.suffix;
  size_t nl = s.find('\n');
  while (nl != std::string_view::npos) {
    s = s.substr(nl + 1);
    nl = s.find('\n');
    std::string_view line = nl == std::string_view::npos ? s : s.substr(0, nl);
    if (!blank(line)) return trim(line);
  }
  return {};
}

std::optional<size_t> complete_at(const Context& c, std::string_view p) {
  if (c.mode == Mode::None) return 0;
  if (c.mode == Mode::SingleLine) {
    size_t nl = p.find('\n');
    if (nl != std::string_view::npos) return nl;
    return std::nullopt;
  }
  std::string_view repeat = next_suffix_line(c);
  if (uses_indentation(c.language)) {
    // The block of the cursor line: lines indented less than it (or than the cursor column when
    // the line is blank so far) end the suggestion, as does a line equal to the suffix's next line.
    size_t base = indent_width(c.line_prefix);
    if (blank(c.line_prefix)) {  // the first line's own indentation sets the block (cursor at column 0 after "def f():")
      size_t ws = p.find_first_not_of(" \t");
      if (ws != std::string_view::npos && p[ws] != '\n' && p[ws] != '\r')
        base = indent_width(c.line_prefix + std::string(p.substr(0, ws)));
    }
    size_t at = p.find('\n');
    while (at != std::string_view::npos) {
      size_t ls = at + 1;
      size_t le = p.find('\n', ls);
      if (le == std::string_view::npos) {
        std::string_view line = p.substr(ls);
        if (blank(line)) return std::nullopt;  // indentation not known yet
        if (indent_width(line) < base) return ls;
        if (!repeat.empty() && trim(line) == repeat) return ls;
        return std::nullopt;
      }
      std::string_view line = p.substr(ls, le - ls);
      if (!blank(line) && (indent_width(line) < base || (!repeat.empty() && trim(line) == repeat))) return ls;
      at = le;
    }
    return std::nullopt;
  }
  // C-like: bracket balance; closing a bracket opened before the cursor ends the block. Strings and
  // comments are skipped roughly (quotes and // to end of line).
  int depth = 0;
  char quote = 0;
  bool closed_block = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char ch = p[i];
    if (quote) {
      if (ch == '\\') ++i;
      else if (ch == quote || ch == '\n') quote = 0;
      continue;
    }
    if (ch == '"' || ch == '\'' || ch == '`') { quote = ch; continue; }
    if (ch == '/' && i + 1 < p.size() && p[i + 1] == '/') {
      while (i < p.size() && p[i] != '\n') ++i;
      --i;
      continue;
    }
    if (ch == '(' || ch == '[' || ch == '{') ++depth;
    else if (ch == ')' || ch == ']' || ch == '}') {
      if (--depth < 0) {
        // Leaving the cursor's block: cut before the closing line (or the bracket).
        size_t ls = i;
        while (ls > 0 && p[ls - 1] != '\n') --ls;
        return blank(p.substr(ls, i - ls)) ? (ls > 0 ? ls - 1 : 0) : i;
      }
      if (ch == '}' && depth == 0) closed_block = true;
    } else if (ch == '\n') {
      size_t ls = i + 1;
      size_t le = p.find('\n', ls);
      if (le != std::string_view::npos && depth == 0 && !repeat.empty() && trim(p.substr(ls, le - ls)) == repeat) return i;
      // A block opened and closed by the suggestion at the cursor's level, followed by a new line:
      // the construct is complete.
      if (closed_block && depth == 0 && blank(c.line_prefix) == false && c.line_prefix.find('{') == std::string::npos) return i;
    }
  }
  return std::nullopt;
}

// Removes the longest end of `s` that the suffix starts with (ignoring the suffix's leading
// whitespace), e.g. a model repeating the ')' already after the cursor.
static void drop_suffix_overlap(std::string& s, std::string_view suffix_line) {
  std::string_view want = suffix_line;
  while (!want.empty() && (want.front() == ' ' || want.front() == '\t')) want.remove_prefix(1);
  for (size_t k = std::min(want.size(), s.size()); k > 0; --k) {
    if (std::string_view(s).substr(s.size() - k) == want.substr(0, k)) {
      s.resize(s.size() - k);
      return;
    }
  }
}

std::string postprocess(const Snapshot& snapshot, const Context& c, std::string_view raw) {
  if (c.mode == Mode::None) return {};
  std::string s(raw);
  if (auto at = complete_at(c, s)) s.resize(*at);
  if (c.mode == Mode::SingleLine || s.find('\n') == std::string::npos) drop_suffix_overlap(s, c.line_suffix);
  // Trailing whitespace (and a trailing line that is only whitespace).
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (s.empty()) return s;
  // Reject what makes the parse worse.
  if (snapshot.has_tree() && c.cursor <= snapshot.text().size()) {
    size_t before = count_syntax_errors(snapshot.root());
    std::string text = snapshot.text();
    text.insert(c.cursor, s);
    Snapshot after = parse_snapshot(snapshot.path(), snapshot.language(), std::move(text));
    if (after.has_tree() && count_syntax_errors(after.root()) > before) return {};
  }
  return s;
}

}  // namespace ghostline::completion
