// Quick-fix plans: from a diagnostic to the holes a fix may change (whole lines: the error's line,
// the line before it too, the enclosing statement, block, function) and the spans the model is
// asked to write, cheapest and most likely first.
#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>

#include "completion/fix.h"

namespace ghostline::completion {

const char* hole_level_name(HoleLevel level) {
  switch (level) {
    case HoleLevel::Line: return "line";
    case HoleLevel::Lines: return "lines";
    case HoleLevel::Statement: return "statement";
    case HoleLevel::Block: return "block";
    case HoleLevel::Function: break;
  }
  return "function";
}

const char* span_kind_name(SpanKind kind) {
  switch (kind) {
    case SpanKind::Word: return "word";
    case SpanKind::NewLine: return "new-line";
    case SpanKind::Insert: return "insert";
    case SpanKind::Indent: return "indent";
    case SpanKind::Token: return "token";
    case SpanKind::AppendLine: return "append-line";
    case SpanKind::RestOfLine: return "rest-of-line";
    case SpanKind::WholeLine: return "whole-line";
    case SpanKind::WholeHole: break;
  }
  return "whole-hole";
}

namespace {

struct Lines {
  std::string_view text;
  size_t start(size_t pos) const {
    if (pos == 0) return 0;
    size_t nl = text.rfind('\n', std::min(pos, text.size()) - 1);
    return nl == std::string_view::npos ? 0 : nl + 1;
  }
  // End of the line's content (the '\n' or the end of the text).
  size_t end(size_t pos) const {
    size_t nl = text.find('\n', pos);
    return nl == std::string_view::npos ? text.size() : nl;
  }
  // Start of the next line (after the '\n'), or the end of the text.
  size_t next(size_t pos) const {
    size_t e = end(pos);
    return e < text.size() ? e + 1 : e;
  }
  size_t content_start(size_t pos) const {
    size_t i = start(pos);
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    return i;
  }
  bool blank(size_t pos) const { return content_start(pos) >= end(pos); }
  // The start of the nearest non-blank line before the line of `pos`, if any.
  std::optional<size_t> previous_code_line(size_t pos) const {
    size_t ls = start(pos);
    while (ls > 0) {
      ls = start(ls - 1);
      if (!blank(ls)) return ls;
    }
    return std::nullopt;
  }
  size_t count(size_t from, size_t to) const {
    size_t n = 1;
    for (size_t i = from; i < to && i < text.size(); ++i)
      if (text[i] == '\n' && i + 1 < to) ++n;
    return n;
  }
};

bool is_word_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         (static_cast<unsigned char>(c) >= 0x80);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_function_like(std::string_view type) {
  static const std::set<std::string_view> kTypes = {
      "function_definition", "function_declaration", "function_item", "method_definition", "method_declaration",
      "constructor_declaration", "class_definition", "class_declaration", "class_specifier", "struct_specifier",
      "decorated_definition", "arrow_function", "function_expression", "function", "generator_function_declaration",
      "lambda_expression", "impl_item", "namespace_definition"};
  return kTypes.count(type) > 0;
}

bool is_block_like(std::string_view type) {
  static const std::set<std::string_view> kTypes = {
      "block", "compound_statement", "statement_block", "declaration_list", "field_declaration_list", "class_body",
      "switch_body", "enum_body", "interface_body", "object", "initializer_list", "switch_block"};
  return kTypes.count(type) > 0;
}

bool is_statement_like(std::string_view type) {
  if (type == "ERROR") return true;
  static const std::set<std::string_view> kTypes = {"pair", "switch_case", "switch_default", "case_statement",
                                                    "access_specifier", "decorator", "preproc_include"};
  if (kTypes.count(type)) return true;
  return ends_with(type, "_statement") || ends_with(type, "_declaration") || ends_with(type, "_definition") ||
         ends_with(type, "_clause") || ends_with(type, "_declarator_list");
}

// The first (in document order) innermost ERROR or MISSING node intersecting [from, to].
void find_innermost_error(TSNode node, size_t from, size_t to, std::optional<TSNode>& found, int depth) {
  if (found || depth > 500) return;
  const size_t s = ts_node_start_byte(node), e = ts_node_end_byte(node);
  if (e < from || s > to) return;
  if (ts_node_is_missing(node)) {
    found = node;
    return;
  }
  const bool is_error = ts_node_is_error(node);
  if (!is_error && !ts_node_has_error(node)) return;
  const uint32_t n = ts_node_child_count(node);
  for (uint32_t i = 0; i < n && !found; ++i) find_innermost_error(ts_node_child(node, i), from, to, found, depth + 1);
  if (!found && is_error) found = node;
}

size_t utf8_length(char lead) {
  const auto c = static_cast<unsigned char>(lead);
  return c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
}

// The file's indentation step: the smallest increase of indentation from one code line to the
// next ("    " when there is none).
std::string indent_unit(std::string_view text, const Lines& lines) {
  size_t best = 0;
  char fill = ' ';
  size_t prev = 0;
  for (size_t ls = 0; ls < text.size(); ls = lines.next(ls)) {
    if (!lines.blank(ls)) {
      const size_t ind = lines.content_start(ls) - ls;
      if (ind > prev && (best == 0 || ind - prev < best)) {
        best = ind - prev;
        fill = text[ls];
      }
      prev = ind;
    }
    if (lines.next(ls) == ls) break;
  }
  return best == 0 ? std::string("    ") : std::string(best, fill);
}

size_t count_word(std::string_view text, std::string_view word) {
  size_t n = 0;
  for (size_t at = text.find(word); at != std::string_view::npos; at = text.find(word, at + 1)) {
    const bool left = at == 0 || !is_word_byte(text[at - 1]);
    const bool right = at + word.size() >= text.size() || !is_word_byte(text[at + word.size()]);
    n += left && right;
  }
  return n;
}

bool in_string_or_comment(TSNode root, size_t at) {
  TSNode n = ts_node_descendant_for_byte_range(root, static_cast<uint32_t>(at), static_cast<uint32_t>(at));
  for (int depth = 0; !ts_node_is_null(n) && depth < 8; n = ts_node_parent(n), ++depth) {
    const std::string_view type = ts_node_type(n);
    if (type.find("string") != std::string_view::npos || type.find("comment") != std::string_view::npos) return true;
  }
  return false;
}

// Words of the line at `pos` that occur once in the whole text, outside strings and comments, and
// are not keywords the grammar recognised: a misspelled keyword ("retrun", "esle") is such a
// word; a name in use is not.
std::vector<std::pair<size_t, size_t>> lone_words(std::string_view text, TSNode root, const Lines& lines, size_t pos) {
  std::vector<std::pair<size_t, size_t>> out;
  const size_t s = lines.start(pos), e = lines.end(pos);
  for (size_t i = s; i < e;) {
    if (!is_word_byte(text[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < e && is_word_byte(text[j])) ++j;
    const std::string_view w = text.substr(i, j - i);
    const bool number = w[0] >= '0' && w[0] <= '9';
    // A keyword the grammar recognised is an anonymous node spelled like the word: not a typo.
    const TSNode n = ts_node_descendant_for_byte_range(root, static_cast<uint32_t>(i), static_cast<uint32_t>(j));
    const bool keyword = !ts_node_is_null(n) && !ts_node_is_named(n) && std::string_view(ts_node_type(n)) == w;
    if (!number && !keyword && w.size() >= 2 && count_word(text, w) == 1 && !in_string_or_comment(root, i))
      out.push_back({i, j});
    i = j;
  }
  return out;
}

// Bracket languages: where a block opened by a line ending in '{', '(' or '[' should have been
// closed, judged by indentation — before a line at or left of the opener's indentation that is
// not its closer — between `from` and `to`, with the opener's indentation. Where tree-sitter puts
// a missing '}' (often the end of the file) is seldom where it belongs; these are likelier.
struct ClosingPoint {
  size_t at;                 // the start of the line the closer goes before
  std::string indentation;   // the opener line's
};

std::vector<ClosingPoint> suggested_closing_points(std::string_view text, const Lines& lines, size_t from, size_t to) {
  std::vector<ClosingPoint> out;
  std::vector<size_t> open;  // line starts of the lines that opened blocks still open
  auto indentation = [&](size_t ls) { return lines.content_start(ls) - ls; };
  auto is_closer = [](char c) { return c == '}' || c == ')' || c == ']'; };
  auto is_opener = [](char c) { return c == '{' || c == '(' || c == '['; };
  for (size_t ls = lines.start(from); ls < to && ls < text.size() && out.size() < 3; ls = lines.next(ls)) {
    if (!lines.blank(ls)) {
      const size_t cs = lines.content_start(ls), ind = indentation(ls);
      while (!open.empty() && ind <= indentation(open.back())) {
        const size_t opener = open.back();
        open.pop_back();
        if (ind == indentation(opener) && is_closer(text[cs])) break;  // closed where it should be
        out.push_back(ClosingPoint{ls, std::string(text.substr(opener, indentation(opener)))});
      }
      const size_t last = lines.end(ls) - 1;
      if (is_opener(text[last])) open.push_back(ls);
    }
    if (lines.next(ls) == ls) break;
  }
  return out;
}

}  // namespace

Expected<FixPlan> plan_fix(const Snapshot& snapshot, const Diagnostic& diagnostic, const FixOptions& options) {
  const std::string& text = snapshot.text();
  if (diagnostic.start > diagnostic.end || diagnostic.end > text.size())
    return make_error(ErrorCode::InvalidArgument, "diagnostic range [" + std::to_string(diagnostic.start) + ", " +
                                                      std::to_string(diagnostic.end) + ") is outside the document of " +
                                                      std::to_string(text.size()) + " bytes");
  if (!snapshot.has_tree())
    return make_error(ErrorCode::Unsupported, "quick fixes need a parsed language; " + snapshot.path() + " is plain text");
  FixPlan plan;
  const SyntaxErrors before = measure_syntax_errors(snapshot);
  plan.errors_before = before.count;
  plan.error_bytes_before = before.bytes;
  const Lines lines{text};
  const TSNode root = snapshot.root();

  std::optional<TSNode> error;
  find_innermost_error(root, diagnostic.start, diagnostic.end, error, 0);
  plan.focus = error ? std::min<size_t>(ts_node_start_byte(*error), text.size()) : diagnostic.start;
  // A MISSING token placed at the very start of a line belongs to the end of the previous code.
  const size_t focus_line = lines.start(plan.focus);
  const auto previous = lines.previous_code_line(focus_line);

  auto within_limits = [&](size_t s, size_t e) {
    return e - s <= options.max_hole_bytes && lines.count(s, e) <= options.max_hole_lines;
  };
  auto line_hole = [&](size_t pos) { return Hole{lines.start(pos), lines.next(pos), HoleLevel::Line, ""}; };

  // Holes: whole lines, smallest first.
  std::vector<Hole> holes;
  auto add_hole = [&](Hole h) {
    if (h.end < h.start || !within_limits(h.start, h.end)) return;
    for (const auto& o : holes)
      if (o.start == h.start && o.end == h.end) return;
    holes.push_back(std::move(h));
  };
  add_hole(line_hole(plan.focus));
  if (previous) add_hole(line_hole(*previous));
  add_hole(line_hole(diagnostic.start));
  if (previous) add_hole(Hole{*previous, lines.next(plan.focus), HoleLevel::Lines, ""});
  {
    // The diagnostic's own lines (another server's range may span several).
    const size_t last = diagnostic.end > diagnostic.start && lines.start(diagnostic.end) == diagnostic.end
                            ? diagnostic.end - 1
                            : diagnostic.end;
    const size_t s = std::min(lines.start(diagnostic.start), focus_line);
    const size_t e = std::max(lines.next(std::max(last, diagnostic.start)), lines.next(plan.focus));
    add_hole(Hole{s, e, HoleLevel::Lines, ""});
  }
  {
    const uint32_t at = static_cast<uint32_t>(plan.focus);
    TSNode node = ts_node_descendant_for_byte_range(root, at, at);
    bool have_statement = false, have_block = false, have_function = false;
    for (int depth = 0; !ts_node_is_null(node) && depth < 200; node = ts_node_parent(node), ++depth) {
      if (ts_node_eq(node, root)) break;
      const std::string_view type = ts_node_type(node);
      HoleLevel level;
      if (!have_function && is_function_like(type)) {
        level = HoleLevel::Function;
        have_function = have_block = have_statement = true;
      } else if (!have_block && is_block_like(type)) {
        level = HoleLevel::Block;
        have_block = have_statement = true;
      } else if (!have_statement && is_statement_like(type)) {
        level = HoleLevel::Statement;
        have_statement = true;
      } else {
        continue;
      }
      const size_t s = std::min(lines.start(ts_node_start_byte(node)), focus_line);
      const size_t node_end = ts_node_end_byte(node);
      const size_t e = std::max(node_end > 0 && lines.start(node_end) == node_end ? node_end : lines.next(node_end),
                                lines.next(plan.focus));
      add_hole(Hole{s, std::min(e, text.size()), level, std::string(type)});
      if (have_function) break;
    }
  }
  // Lone words (misspelled keywords) on the error's line, the line before, the diagnostic's line.
  std::vector<std::pair<size_t, size_t>> words;
  {
    std::vector<size_t> word_lines = {plan.focus};
    if (previous) word_lines.push_back(*previous);
    word_lines.push_back(diagnostic.start);
    for (size_t at : word_lines)
      for (auto w : lone_words(text, root, lines, at))
        if (words.size() < 3 && std::find(words.begin(), words.end(), w) == words.end()) words.push_back(w);
  }
  // A missing closing bracket: new lines where the indentation says a block had ended.
  std::vector<ClosingPoint> closing_points;
  if (error && ts_node_is_missing(*error) && snapshot.language() != Language::Python) {
    const std::string_view missing = ts_node_type(*error);
    TSNode parent = ts_node_parent(*error);
    if ((missing == "}" || missing == ")" || missing == "]") && !ts_node_is_null(parent)) {
      closing_points = suggested_closing_points(text, lines, ts_node_start_byte(parent), plan.focus);
      for (const auto& c : closing_points) add_hole(line_hole(c.at));
    }
  }
  std::stable_sort(holes.begin(), holes.end(), [](const Hole& a, const Hole& b) { return a.end - a.start < b.end - b.start; });
  plan.holes = holes;

  // Spans, cheapest and most likely first; each in the smallest hole that holds it.
  auto hole_for = [&](size_t s, size_t e) -> std::optional<Hole> {
    for (const auto& h : holes)
      if (h.start <= s && e <= h.end) return h;
    return std::nullopt;
  };
  std::set<std::tuple<size_t, size_t, std::string>> seen;
  auto add_span = [&](size_t s, size_t e, SpanKind kind, std::string lead = {}, std::string required = {}) {
    if (s > e || e > text.size() || !seen.insert({s, e, required}).second) return;
    auto h = hole_for(s, e);
    if (!h) return;
    plan.spans.push_back(FixSpan{s, e, kind, *h, std::move(lead), std::move(required)});
  };
  const size_t focus_end = lines.end(plan.focus);
  // A rewrite of (the rest of) a line starts as the line did: its indentation and first
  // character (the weak model otherwise often ends at once or drifts to another line).
  auto healed_start = [&](size_t from) {
    size_t i = from;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i >= lines.end(from)) return std::string();
    return std::string(text.substr(from, i - from + utf8_length(text[i])));
  };
  for (auto [ws, we] : words) add_span(ws, we, SpanKind::Word, {}, std::string(text.substr(ws, utf8_length(text[ws]))));
  for (const auto& c : closing_points) add_span(c.at, c.at, SpanKind::NewLine, c.indentation);
  if (error && ts_node_is_missing(*error) && plan.focus < focus_end) add_span(plan.focus, plan.focus, SpanKind::Insert);
  if (error && ts_node_is_error(*error)) {
    const size_t s = ts_node_start_byte(*error), e = std::min<size_t>(ts_node_end_byte(*error), focus_end);
    if (e > s && e - s <= 40) add_span(s, e, SpanKind::Token);
  }
  if (!lines.blank(plan.focus)) add_span(focus_end, focus_end, SpanKind::AppendLine);
  {
    size_t anchor = std::max(plan.focus, lines.content_start(plan.focus));
    while (anchor > lines.content_start(plan.focus) && anchor < text.size() && is_word_byte(text[anchor - 1]) &&
           is_word_byte(text[anchor]))
      --anchor;
    if (anchor < focus_end) add_span(anchor, focus_end, SpanKind::RestOfLine, {}, healed_start(anchor));
  }
  if (previous) add_span(lines.end(*previous), lines.end(*previous), SpanKind::AppendLine);
  if (snapshot.language() == Language::Python && !lines.blank(plan.focus)) {
    // Indentations to try: the previous code line's, one level deeper when it opens a block.
    const size_t cs = lines.content_start(plan.focus);
    const std::string_view current = std::string_view(text).substr(focus_line, cs - focus_line);
    const std::string first(text.substr(cs, utf8_length(text[cs])));
    std::vector<std::string> indents;
    if (previous) {
      const std::string_view prev_indent = std::string_view(text).substr(*previous, lines.content_start(*previous) - *previous);
      const std::string_view prev_line = std::string_view(text).substr(*previous, lines.end(*previous) - *previous);
      const size_t last = prev_line.find_last_not_of(" \t\r");
      if (last != std::string_view::npos && prev_line[last] == ':') indents.push_back(std::string(prev_indent) + indent_unit(text, lines));
      indents.push_back(std::string(prev_indent));
    } else {
      indents.push_back("");
    }
    for (const auto& ind : indents)
      if (ind != current) add_span(focus_line, focus_end, SpanKind::Indent, {}, ind + first);
  }
  add_span(focus_line, focus_end, SpanKind::WholeLine, {}, healed_start(focus_line));
  if (lines.start(diagnostic.start) != focus_line) {
    const size_t d = diagnostic.start;
    if (!lines.blank(d)) add_span(lines.end(d), lines.end(d), SpanKind::AppendLine);
    add_span(lines.start(d), lines.end(d), SpanKind::WholeLine, {}, healed_start(lines.start(d)));
  }
  if (previous) add_span(*previous, lines.end(*previous), SpanKind::WholeLine, {}, healed_start(*previous));
  for (const auto& h : holes)
    if (lines.count(h.start, h.end) > 1) add_span(h.start, h.end, SpanKind::WholeHole);
  return plan;
}

}  // namespace ghostline::completion
