// build_context: windows at syntax boundaries, kept scope headers and imports, cross-file snippets.
#include "completion/context.h"
#include "completion/queries.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>
#include <unordered_set>

namespace ghostline::completion {

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::None: return "none";
    case Mode::SingleLine: return "single-line";
    case Mode::MultiLine: break;
  }
  return "multi-line";
}

size_t estimate_tokens(std::string_view text) { return (text.size() * 2 + 6) / 7; }

static bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_ident(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }

std::vector<std::string> identifiers(std::string_view text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size();) {
    if (is_ident_start(text[i]) && (i == 0 || !is_ident(text[i - 1]))) {
      size_t j = i;
      while (j < text.size() && is_ident(text[j])) ++j;
      out.emplace_back(text.substr(i, j - i));
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

static bool contains(const char* type, const char* word) { return std::strstr(type, word) != nullptr; }

static bool is_comment(const char* type) { return contains(type, "comment"); }
static bool is_string(const char* type) {
  return contains(type, "string") || contains(type, "char_literal") || !std::strcmp(type, "template_string") ||
         contains(type, "raw_string");
}
static bool is_import(const char* type) {
  return contains(type, "import") || !std::strcmp(type, "preproc_include") || !std::strcmp(type, "use_declaration") ||
         !std::strcmp(type, "package_clause") || !std::strcmp(type, "package_declaration") ||
         !std::strcmp(type, "extern_crate_declaration");
}
// Nodes whose first line is a header worth keeping above a cut (a def, class, fn, namespace...).
static bool is_scope(const char* type) {
  return contains(type, "function") || contains(type, "class") || contains(type, "method") ||
         contains(type, "struct") || contains(type, "impl_item") || contains(type, "trait_item") ||
         contains(type, "namespace") || contains(type, "interface") || contains(type, "mod_item");
}
static bool is_definition(const char* type) {
  return !std::strcmp(type, "function_definition") || !std::strcmp(type, "class_definition") ||
         !std::strcmp(type, "function_declaration") || !std::strcmp(type, "class_declaration") ||
         !std::strcmp(type, "method_definition") || !std::strcmp(type, "method_declaration") ||
         !std::strcmp(type, "function_item") || !std::strcmp(type, "struct_item") ||
         !std::strcmp(type, "enum_item") || !std::strcmp(type, "trait_item") ||
         !std::strcmp(type, "struct_specifier") || !std::strcmp(type, "class_specifier") ||
         !std::strcmp(type, "interface_declaration") || !std::strcmp(type, "type_declaration") ||
         !std::strcmp(type, "type_alias_declaration") || !std::strcmp(type, "enum_declaration") ||
         !std::strcmp(type, "lexical_declaration");
}

static size_t line_start(std::string_view t, size_t at) {
  while (at > 0 && t[at - 1] != '\n') --at;
  return at;
}
static size_t line_end(std::string_view t, size_t at) {
  while (at < t.size() && t[at] != '\n') ++at;
  return at;
}

// Deepest node spanning [cursor-1, cursor) or the cursor itself, for classifying the position.
static TSNode node_at(const Snapshot& s, size_t cursor) {
  uint32_t a = static_cast<uint32_t>(cursor > 0 ? cursor - 1 : 0);
  return ts_node_descendant_for_byte_range(s.root(), a, static_cast<uint32_t>(cursor));
}

static Mode pick_mode(const Snapshot& s, size_t cursor, const Context& c, const ContextOptions& o) {
  if (s.has_tree()) {
    for (TSNode n = node_at(s, cursor); !ts_node_is_null(n); n = ts_node_parent(n)) {
      const char* type = ts_node_type(n);
      bool inside = ts_node_start_byte(n) < cursor && cursor < ts_node_end_byte(n);
      // A line comment runs to the end of its line: the cursor at its end is still inside.
      bool at_comment_end = is_comment(type) && ts_node_start_byte(n) < cursor && cursor == ts_node_end_byte(n) &&
                            !(cursor >= 2 && s.text()[cursor - 1] == '/' && s.text()[cursor - 2] == '*');
      if (is_comment(type) && (inside || at_comment_end)) return o.complete_in_comments ? Mode::SingleLine : Mode::None;
      if (is_string(type) && inside) return o.complete_in_strings ? Mode::SingleLine : Mode::None;
    }
  }
  // More than closing characters after the cursor on its line.
  for (char ch : c.line_suffix)
    if (!std::strchr(" \t\r)]}\"'`;,", ch)) return o.complete_mid_line ? Mode::SingleLine : Mode::None;
  // An empty line, or right after a block opener: a whole block may follow.
  std::string_view lp = c.line_prefix;
  while (!lp.empty() && (lp.back() == ' ' || lp.back() == '\t')) lp.remove_suffix(1);
  bool only_closers = c.line_suffix.find_first_not_of(" \t\r") == std::string::npos;
  if (only_closers && (lp.empty() || lp.back() == ':' || lp.back() == '{')) return Mode::MultiLine;
  return Mode::SingleLine;
}

// Top-level boundaries (starts of the root's children and of children of the scopes around the
// cursor) before the cursor: the candidate places to begin the prefix window.
static void boundaries(const Snapshot& s, size_t cursor, std::vector<size_t>& out) {
  TSNode n = s.root();
  while (!ts_node_is_null(n)) {
    uint32_t count = ts_node_child_count(n);
    TSNode next = {};
    bool found = false;
    for (uint32_t i = 0; i < count; ++i) {
      TSNode ch = ts_node_child(n, i);
      size_t st = ts_node_start_byte(ch);
      if (st <= cursor) out.push_back(line_start(s.text(), st));
      if (st < cursor && cursor <= ts_node_end_byte(ch) && ts_node_child_count(ch) > 0) next = ch, found = true;
    }
    if (!found) break;
    n = next;
  }
}

static std::string first_line(std::string_view t, size_t at) {
  size_t s = line_start(t, at);
  return std::string(t.substr(s, line_end(t, at) - s));
}

// Imports and the headers of the scopes enclosing the cursor that start above `cut`, within
// `budget` tokens, each as one line of text.
static std::string kept_above(const Snapshot& s, size_t cursor, size_t cut, size_t budget, const TokenCounter& count) {
  std::string kept;
  if (!s.has_tree() || cut == 0) return kept;
  const std::string& text = s.text();
  std::vector<std::string> headers;
  TSNode root = s.root();
  uint32_t nc = ts_node_child_count(root);
  for (uint32_t i = 0; i < nc; ++i) {
    TSNode ch = ts_node_child(root, i);
    if (ts_node_end_byte(ch) > cut) break;
    if (is_import(ts_node_type(ch))) {
      std::string h = text.substr(ts_node_start_byte(ch), ts_node_end_byte(ch) - ts_node_start_byte(ch));
      while (!h.empty() && (h.back() == '\n' || h.back() == '\r')) h.pop_back();  // #include keeps its newline
      headers.push_back(h);
    }
  }
  std::vector<std::string> scopes;
  if (uses_indentation(s.language())) {
    // By indentation (robust while the code being typed does not parse): each line above the cut
    // that is indented less than everything below it and opens a block.
    size_t at = line_start(text, cursor);
    size_t min_indent = cursor - at;
    for (size_t k = at; k < cursor; ++k)
      if (text[k] != ' ' && text[k] != '\t') { min_indent = k - at; break; }
    while (at > 0 && min_indent > 0) {
      size_t ps = line_start(text, at - 1);
      std::string_view line = std::string_view(text).substr(ps, at - 1 - ps);
      at = ps;
      size_t ind = line.find_first_not_of(" \t");
      if (ind == std::string_view::npos || ind >= min_indent) continue;
      if (line[ind] == '#') continue;
      min_indent = ind;
      std::string_view body = line;
      while (!body.empty() && (body.back() == ' ' || body.back() == '\r')) body.remove_suffix(1);
      if (ps < cut && !body.empty() && body.back() == ':') scopes.insert(scopes.begin(), std::string(body));
    }
  }
  for (TSNode n = uses_indentation(s.language()) ? TSNode{} : node_at(s, cursor); !ts_node_is_null(n); n = ts_node_parent(n)) {
    if (ts_node_start_byte(n) >= cut || ts_node_is_null(ts_node_parent(n))) continue;
    const char* type = ts_node_type(n);
    if ((is_definition(type) || is_scope(type)) && !contains(type, "body") && !contains(type, "declarator") &&
        !contains(type, "call") && !contains(type, "_list"))
      scopes.insert(scopes.begin(), first_line(text, ts_node_start_byte(n)));
  }
  // Scope headers matter more than imports: reserve them first.
  size_t scope_tokens = 0;
  for (auto& h : scopes) scope_tokens += count(h + "\n");
  for (auto& h : headers) {
    std::string line = h + "\n";
    if (count(kept) + count(line) + scope_tokens > budget) break;
    kept += line;
  }
  for (auto& h : scopes) {
    std::string line = h + "\n";
    if (count(kept) + count(line) > budget) break;
    kept += line;
  }
  return kept;
}

Context build_context(const Snapshot& s, size_t cursor, const std::vector<Snapshot>& others, const ContextOptions& o) {
  const std::string& text = s.text();
  auto count = o.count_tokens ? o.count_tokens : TokenCounter(estimate_tokens);
  cursor = std::min(cursor, text.size());
  while (cursor > 0 && cursor < text.size() && (static_cast<unsigned char>(text[cursor]) & 0xC0) == 0x80) --cursor;

  Context c;
  c.language = s.language();
  c.path = s.path();
  c.cursor = cursor;
  size_t ls = line_start(text, cursor), le = line_end(text, cursor);
  c.line_prefix = text.substr(ls, cursor - ls);
  c.line_suffix = text.substr(cursor, le - cursor);
  c.mode = pick_mode(s, cursor, c, o);

  // Prefix window: the earliest syntax boundary (else line start) whose text fits the budget.
  std::vector<size_t> syntax;
  if (s.has_tree()) boundaries(s, cursor, syntax);
  std::vector<size_t> cand;
  for (size_t at = ls;;) {  // every line start above the cursor
    cand.push_back(at);
    if (at == 0) break;
    at = line_start(text, at - 1);
  }
  std::reverse(cand.begin(), cand.end());
  size_t budget = o.max_prefix_tokens;
  size_t reserve = count(kept_above(s, cursor, ls, budget / 4, count));
  size_t window_budget = budget > reserve ? budget - reserve : 0;
  size_t start = ls;
  {  // binary search: the token count grows as the start moves up
    size_t lo = 0, hi = cand.size();
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (count(std::string_view(text).substr(cand[mid], cursor - cand[mid])) <= window_budget) hi = mid;
      else lo = mid + 1;
    }
    if (lo < cand.size()) start = cand[lo];
  }
  // Cut at a syntax boundary (a statement or definition start) when one keeps most of the window.
  if (start > 0) {
    size_t best = SIZE_MAX;
    for (size_t b : syntax)
      if (b >= start && b <= ls && (cursor - b) * 4 >= (cursor - start) * 3) best = std::min(best, b);
    if (best != SIZE_MAX) start = best;
  }
  c.prefix_start = start;
  std::string window = text.substr(start, cursor - start);
  if (start > 0 && start == ls && count(window) > window_budget) {  // even the cursor line is too long
    size_t keep = std::min(window.size(), window_budget * 3);
    size_t cut = window.size() - keep;
    while (cut < window.size() && (static_cast<unsigned char>(window[cut]) & 0xC0) == 0x80) ++cut;
    window = window.substr(cut);
    c.prefix_start = start + cut;
  }

  std::string kept = kept_above(s, cursor, c.prefix_start, budget / 4, count);
  c.prefix = kept + window;

  // Suffix window: whole lines after the cursor line while they fit.
  size_t end = le;
  size_t suffix_budget = o.max_suffix_tokens;
  if (count(c.line_suffix) > suffix_budget) {
    end = cursor + std::min(c.line_suffix.size(), suffix_budget * 3);
  } else {
    while (end < text.size()) {
      size_t next = line_end(text, end + 1);
      if (count(std::string_view(text).substr(cursor, next - cursor)) > suffix_budget) break;
      end = next;
    }
    if (end < text.size() && text[end] == '\n') ++end;
  }
  c.suffix_end = end;
  c.suffix = text.substr(cursor, end - cursor);

  // Snippets from other documents.
  if (o.max_snippets == 0 || others.empty()) return c;
  size_t near_from = line_start(text, cursor > 2000 ? cursor - 2000 : 0);
  std::vector<std::string> near = identifiers(std::string_view(text).substr(near_from, std::min(text.size(), cursor + 400) - near_from));
  size_t used = 0;
  std::set<std::pair<std::string, size_t>> taken;
  auto add = [&](const std::string& path, std::string body, size_t key) {
    if (c.snippets.size() >= o.max_snippets || taken.count({path, key})) return;
    size_t t = count(body);
    if (used + t > o.max_snippet_tokens) return;
    used += t;
    taken.insert({path, key});
    c.snippets.push_back({path, std::move(body)});
  };
  // 1. Definitions of names used near the cursor, found by our definitions query (each
  // @definition.* capture is followed by the @name capture inside it).
  std::unordered_set<std::string> near_set(near.begin(), near.end());
  for (const auto& other : others) {
    if (!other.has_tree() || other.path() == s.path()) continue;
    auto caps = run_query(other, "definitions");
    if (!caps) continue;
    for (size_t i = 0; i + 1 < caps->size(); ++i) {
      const Capture& def = (*caps)[i];
      const Capture& name = (*caps)[i + 1];
      if (def.name.rfind("definition.", 0) != 0 || name.name != "name" || name.start < def.start || name.end > def.end) continue;
      auto ids = identifiers(std::string_view(other.text()).substr(name.start, name.end - name.start));
      if (ids.empty() || !near_set.count(ids.back())) continue;
      if (def.name == "definition.impl" || def.name == "definition.namespace") continue;  // too large to be a snippet
      add(other.path(), other.text().substr(def.start, def.end - def.start), def.start);
    }
  }
  // 2. The most similar chunks by Jaccard similarity of identifier sets.
  size_t q_from = line_start(text, c.prefix_start);
  std::vector<std::string> q_ids = identifiers(std::string_view(text).substr(q_from, cursor - q_from));
  if (q_ids.size() > 200) q_ids.erase(q_ids.begin(), q_ids.end() - 200);
  std::unordered_set<std::string> query(q_ids.begin(), q_ids.end());
  struct Scored { double score; size_t doc; size_t start; size_t end; };
  std::vector<Scored> scored;
  for (size_t d = 0; d < others.size(); ++d) {
    const std::string& t = others[d].text();
    if (others[d].path() == s.path()) continue;
    std::vector<size_t> starts{0};
    for (size_t i = 0; i < t.size(); ++i)
      if (t[i] == '\n' && i + 1 < t.size()) starts.push_back(i + 1);
    size_t step = std::max<size_t>(1, o.snippet_chunk_lines / 2);
    for (size_t li = 0; li < starts.size(); li += step) {
      size_t a = starts[li];
      size_t b = li + o.snippet_chunk_lines < starts.size() ? starts[li + o.snippet_chunk_lines] : t.size();
      auto ids = identifiers(std::string_view(t).substr(a, b - a));
      std::unordered_set<std::string> set(ids.begin(), ids.end());
      size_t inter = 0;
      for (auto& x : set) inter += query.count(x);
      size_t uni = set.size() + query.size() - inter;
      if (uni && inter) scored.push_back({double(inter) / double(uni), d, a, b});
    }
  }
  std::stable_sort(scored.begin(), scored.end(), [](const Scored& x, const Scored& y) { return x.score > y.score; });
  for (const auto& sc : scored) {
    if (c.snippets.size() >= o.max_snippets) break;
    bool overlaps = false;
    for (auto& [p, k] : taken)
      if (p == others[sc.doc].path() && k >= sc.start && k < sc.end) overlaps = true;
    if (overlaps) continue;
    add(others[sc.doc].path(), others[sc.doc].text().substr(sc.start, sc.end - sc.start), sc.start);
  }
  return c;
}

}  // namespace ghostline::completion
