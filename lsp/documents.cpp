// DocumentStore (see documents.h).
#include "lsp/documents.h"

#include <algorithm>

namespace ghostline::lsp {

void DocumentStore::open(const std::string& uri, const std::string& language_id, std::string text, int version) {
  std::lock_guard lock(mu_);
  docs_[uri] = DocumentSnapshot{std::move(text), version, language_id};
}

void DocumentStore::close(const std::string& uri) {
  std::lock_guard lock(mu_);
  docs_.erase(uri);
}

Expected<std::vector<completion::DocumentEdit>> DocumentStore::apply(const std::string& uri, int version,
                                                                     const std::vector<ContentChange>& changes,
                                                                     PositionEncoding encoding) {
  std::lock_guard lock(mu_);
  auto it = docs_.find(uri);
  if (it == docs_.end()) return make_error(ErrorCode::NotFound, "document is not open: " + uri);
  std::string& text = it->second.text;
  std::vector<completion::DocumentEdit> edits;
  edits.reserve(changes.size());
  for (const auto& change : changes) {
    completion::DocumentEdit edit;
    if (change.range) {
      LineIndex index(text);
      size_t a = index.to_offset(change.range->start, encoding);
      size_t b = index.to_offset(change.range->end, encoding);
      edit.start = std::min(a, b);
      edit.old_end = std::max(a, b);
    } else {
      edit.start = 0;
      edit.old_end = text.size();
    }
    edit.text = change.text;
    text.replace(edit.start, edit.old_end - edit.start, edit.text);
    edits.push_back(std::move(edit));
  }
  it->second.version = version;
  return edits;
}

std::optional<DocumentSnapshot> DocumentStore::get(const std::string& uri) const {
  std::lock_guard lock(mu_);
  auto it = docs_.find(uri);
  if (it == docs_.end()) return std::nullopt;
  return it->second;
}

std::optional<size_t> DocumentStore::offset(const std::string& uri, Position p, PositionEncoding e) const {
  std::lock_guard lock(mu_);
  auto it = docs_.find(uri);
  if (it == docs_.end()) return std::nullopt;
  return LineIndex(it->second.text).to_offset(p, e);
}

}  // namespace ghostline::lsp
