// Synthetic quick-fix cases from clean source files (see corrupt.h).
#include "bench/quickfix/corrupt.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "completion/fix.h"

namespace ghostline::bench {
namespace {

using completion::Language;

struct Line {
  size_t start, end;       // content [start, end) without the '\n'
  std::string_view text;
};

std::vector<Line> split(const std::string& text) {
  std::vector<Line> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    size_t end = nl == std::string::npos ? text.size() : nl;
    out.push_back(Line{at, end, std::string_view(text).substr(at, end - at)});
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  return out;
}

std::string_view trimmed(std::string_view s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t\r");
  return a == std::string_view::npos ? std::string_view() : s.substr(a, b - a + 1);
}

bool has_quote_or_comment(std::string_view s) {
  return s.find('"') != std::string_view::npos || s.find('\'') != std::string_view::npos ||
         s.find('`') != std::string_view::npos || s.find('#') != std::string_view::npos ||
         s.find("//") != std::string_view::npos || s.find("/*") != std::string_view::npos;
}

const std::set<std::string_view> kKeywords = {"return", "for",   "while",  "if",     "else",  "def",    "class",
                                              "import", "from",  "function", "const", "let",  "public", "private",
                                              "struct", "elif",  "try",    "except", "catch", "switch", "case",
                                              "break",  "continue", "static", "with",  "yield", "async", "await",
                                              "namespace", "template", "typename", "auto", "void", "throw", "new"};

void keyword_offsets(TSNode node, std::vector<size_t>& out, int depth) {
  if (depth > 400) return;
  if (!ts_node_is_named(node) && kKeywords.count(ts_node_type(node))) out.push_back(ts_node_start_byte(node));
  const uint32_t n = ts_node_child_count(node);
  for (uint32_t i = 0; i < n; ++i) keyword_offsets(ts_node_child(node, i), out, depth + 1);
}

}  // namespace

std::vector<CorruptedCase> corrupt_file(const std::string& path, const completion::Snapshot& clean, size_t per_category,
                                        std::mt19937& rng) {
  std::vector<CorruptedCase> out;
  if (!clean.has_tree() || completion::count_fix_errors(clean) != 0) return out;
  const std::string& text = clean.text();
  const Language lang = clean.language();
  const std::string lang_name = lang == Language::Python ? "py" : lang == Language::Cpp ? "cpp" : "js";
  const auto lines = split(text);

  // Candidate edits per category: (position, bytes removed, text inserted).
  struct Edit {
    size_t at, remove;
    std::string insert;
    size_t line;
  };
  std::vector<std::pair<std::string, std::vector<Edit>>> categories = {
      {"missing_colon", {}}, {"missing_semicolon", {}}, {"unbalanced_bracket", {}}, {"misspelled_keyword", {}}, {"bad_indentation", {}}};
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string_view t = trimmed(lines[i].text);
    if (t.empty()) continue;
    const size_t last = lines[i].start + lines[i].text.find_last_not_of(" \t\r");
    if (lang == Language::Python && t.back() == ':' && !has_quote_or_comment(t)) categories[0].second.push_back({last, 1, "", i});
    if (lang != Language::Python && t.back() == ';' && t.rfind("for", 0) != 0 && !has_quote_or_comment(t))
      categories[1].second.push_back({last, 1, "", i});
    if (!has_quote_or_comment(t)) {
      const size_t closer = lines[i].text.find_last_of(")]");
      if (closer != std::string_view::npos) categories[2].second.push_back({lines[i].start + closer, 1, "", i});
    }
    if (lang == Language::Python && i > 0 && lines[i].text.size() > t.size() && !has_quote_or_comment(t) &&
        std::isalpha(static_cast<unsigned char>(t[0]))) {
      const std::string_view prev = trimmed(lines[i - 1].text);
      if (!prev.empty() && prev.back() != ':' && prev.back() != ',' && prev.back() != '(' && prev.back() != '\\')
        categories[4].second.push_back({lines[i].start, 0, "  ", i});
    }
  }
  std::vector<size_t> keywords;
  keyword_offsets(clean.root(), keywords, 0);
  for (size_t at : keywords) {
    size_t len = 0;
    while (at + len < text.size() && std::isalpha(static_cast<unsigned char>(text[at + len]))) ++len;
    if (len < 3) continue;
    const size_t k = 1 + rng() % (len - 2);  // swap letters k and k+1, inside the word
    if (text[at + k] == text[at + k + 1]) continue;
    std::string swapped{text[at + k + 1], text[at + k]};
    const size_t line = static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
    categories[3].second.push_back({at + k, 2, swapped, line});
  }

  for (auto& [category, edits] : categories) {
    std::shuffle(edits.begin(), edits.end(), rng);
    size_t taken = 0;
    for (const auto& e : edits) {
      if (taken >= per_category) break;
      std::string broken = text;
      broken.replace(e.at, e.remove, e.insert);
      completion::Snapshot s = completion::parse_snapshot(path, lang, broken);
      if (completion::count_fix_errors(s) == 0) continue;  // still valid code: no syntax error to fix
      out.push_back(CorruptedCase{path + ":" + std::to_string(e.line + 1) + ":" + category, lang_name, category,
                                  std::move(broken), text});
      ++taken;
    }
  }
  return out;
}

}  // namespace ghostline::bench
