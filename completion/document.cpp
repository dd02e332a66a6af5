// Document and Snapshot: text + tree-sitter tree, incremental edits, syntax diagnostics.
#include "completion/document.h"

#include <algorithm>
#include <utility>

namespace ghostline::completion {

struct Snapshot::Data {
  std::string path;
  std::string text;
  Language language = Language::PlainText;
  TSTree* tree = nullptr;
  ~Data() {
    if (tree) ts_tree_delete(tree);
  }
};

static const std::string kEmpty;

const std::string& Snapshot::path() const { return data_ ? data_->path : kEmpty; }
const std::string& Snapshot::text() const { return data_ ? data_->text : kEmpty; }
Language Snapshot::language() const { return data_ ? data_->language : Language::PlainText; }
bool Snapshot::has_tree() const { return data_ && data_->tree; }
TSNode Snapshot::root() const { return ts_tree_root_node(data_->tree); }
const TSTree* Snapshot::tree() const { return data_ ? data_->tree : nullptr; }

static TSTree* parse(TSParser* parser, const std::string& text, TSTree* old) {
  if (!parser) return nullptr;
  return ts_parser_parse_string(parser, old, text.data(), static_cast<uint32_t>(text.size()));
}

static TSParser* make_parser(Language language) {
  const TSLanguage* ts = tree_sitter_language(language);
  if (!ts) return nullptr;
  TSParser* p = ts_parser_new();
  if (!ts_parser_set_language(p, ts)) {
    ts_parser_delete(p);
    return nullptr;
  }
  return p;
}

Document::Document(std::string path, std::string_view language_id, std::string text)
    : path_(std::move(path)), language_(language_from(language_id, path_)), text_(std::move(text)) {
  parser_ = make_parser(language_);
  if (!parser_) language_ = Language::PlainText;
  tree_ = parse(parser_, text_, nullptr);
}

Document::~Document() {
  if (tree_) ts_tree_delete(tree_);
  if (parser_) ts_parser_delete(parser_);
}

Document::Document(Document&& o) noexcept
    : path_(std::move(o.path_)), language_(o.language_), text_(std::move(o.text_)),
      parser_(std::exchange(o.parser_, nullptr)), tree_(std::exchange(o.tree_, nullptr)),
      cached_(std::move(o.cached_)) {}

Document& Document::operator=(Document&& o) noexcept {
  if (this != &o) {
    if (tree_) ts_tree_delete(tree_);
    if (parser_) ts_parser_delete(parser_);
    path_ = std::move(o.path_);
    language_ = o.language_;
    text_ = std::move(o.text_);
    parser_ = std::exchange(o.parser_, nullptr);
    tree_ = std::exchange(o.tree_, nullptr);
    cached_ = std::move(o.cached_);
  }
  return *this;
}

// Row/column (column in bytes) of a byte offset, as tree-sitter's TSPoint.
static TSPoint point_at(std::string_view text, size_t offset) {
  uint32_t row = 0;
  size_t line_start = 0;
  for (size_t i = 0; i < offset; ++i)
    if (text[i] == '\n') ++row, line_start = i + 1;
  return TSPoint{row, static_cast<uint32_t>(offset - line_start)};
}

static TSPoint advance_point(TSPoint p, std::string_view inserted) {
  for (char c : inserted) {
    if (c == '\n') ++p.row, p.column = 0;
    else ++p.column;
  }
  return p;
}

Expected<void> Document::apply(const DocumentEdit& edit) {
  if (edit.start > edit.old_end || edit.old_end > text_.size())
    return make_error(ErrorCode::InvalidArgument,
                      "edit range [" + std::to_string(edit.start) + ", " + std::to_string(edit.old_end) +
                          ") is outside the document " + path_ + " of " + std::to_string(text_.size()) + " bytes");
  cached_ = Snapshot();
  if (tree_) {
    TSPoint start = point_at(text_, edit.start);
    TSPoint old_end = start;
    old_end = advance_point(start, std::string_view(text_).substr(edit.start, edit.old_end - edit.start));
    TSInputEdit e;
    e.start_byte = static_cast<uint32_t>(edit.start);
    e.old_end_byte = static_cast<uint32_t>(edit.old_end);
    e.new_end_byte = static_cast<uint32_t>(edit.start + edit.text.size());
    e.start_point = start;
    e.old_end_point = old_end;
    e.new_end_point = advance_point(start, edit.text);
    ts_tree_edit(tree_, &e);
  }
  text_.replace(edit.start, edit.old_end - edit.start, edit.text);
  if (parser_) {
    TSTree* next = parse(parser_, text_, tree_);
    if (tree_) ts_tree_delete(tree_);
    tree_ = next;
  }
  return ok();
}

Expected<void> Document::apply(const std::vector<DocumentEdit>& edits) {
  for (const auto& e : edits)
    if (auto r = apply(e); !r) return r;
  return ok();
}

Snapshot Document::snapshot() const {
  if (!cached_.data_) {
    auto d = std::make_shared<Snapshot::Data>();
    d->path = path_;
    d->text = text_;
    d->language = language_;
    d->tree = tree_ ? ts_tree_copy(tree_) : nullptr;
    cached_.data_ = std::move(d);
  }
  return cached_;
}

Snapshot parse_snapshot(std::string path, Language language, std::string text) {
  Document doc(std::move(path), language_name(language), std::move(text));
  return doc.snapshot();
}

static void collect(TSNode node, const std::string& text, std::vector<Diagnostic>& out, size_t max_count) {
  if (out.size() >= max_count) return;
  if (ts_node_is_missing(node)) {
    const char* type = ts_node_type(node);
    uint32_t at = ts_node_start_byte(node);
    out.push_back({at, at, std::string("expected '") + type + "'"});
    return;
  }
  if (ts_node_is_error(node)) {
    uint32_t s = ts_node_start_byte(node), e = ts_node_end_byte(node);
    std::string snippet = text.substr(s, std::min<size_t>(e - s, 40));
    auto nl = snippet.find('\n');
    if (nl != std::string::npos) snippet = snippet.substr(0, nl);
    out.push_back({s, e, snippet.empty() ? "syntax error" : "unexpected '" + snippet + "'"});
    return;
  }
  if (!ts_node_has_error(node)) return;
  uint32_t n = ts_node_child_count(node);
  for (uint32_t i = 0; i < n; ++i) collect(ts_node_child(node, i), text, out, max_count);
}

std::vector<Diagnostic> syntax_diagnostics(const Snapshot& snapshot, size_t max_count) {
  std::vector<Diagnostic> out;
  if (!snapshot.has_tree()) return out;
  collect(snapshot.root(), snapshot.text(), out, max_count);
  return out;
}

static void count(TSNode node, size_t& n) {
  if (ts_node_is_missing(node) || ts_node_is_error(node)) {
    ++n;
    return;
  }
  if (!ts_node_has_error(node)) return;
  uint32_t c = ts_node_child_count(node);
  for (uint32_t i = 0; i < c; ++i) count(ts_node_child(node, i), n);
}

size_t count_syntax_errors(const TSNode& root) {
  size_t n = 0;
  count(root, n);
  return n;
}

}  // namespace ghostline::completion
