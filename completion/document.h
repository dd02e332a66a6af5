// Document: a file's text and its tree-sitter tree, edited incrementally (ts_tree_edit + reparse),
// and Snapshot: an immutable, cheaply copyable view of one version for other threads.
//
// Thread-safety: a Document is used by one thread at a time (its owner). Snapshots are immutable
// and may be read from any thread; each owns its own copy of the tree (ts_tree_copy).
// Bad input (edits out of range, invalid UTF-8) never crashes: edits are checked and refused with
// an error naming the range; tree-sitter accepts any bytes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <tree_sitter/api.h>

#include "completion/language.h"
#include "completion/service.h"
#include "engine/base/expected.h"

namespace ghostline::completion {

class Snapshot {
 public:
  Snapshot() = default;
  const std::string& path() const;
  const std::string& text() const;
  Language language() const;
  bool has_tree() const;           // false for plain text (and the empty default snapshot)
  TSNode root() const;             // only when has_tree()
  const TSTree* tree() const;      // nullptr for plain text

 private:
  friend class Document;
  struct Data;
  std::shared_ptr<const Data> data_;
};

class Document {
 public:
  // `language_id` is the editor's languageId (may be empty); the path's extension is the fallback.
  Document(std::string path, std::string_view language_id, std::string text);
  ~Document();
  Document(Document&&) noexcept;
  Document& operator=(Document&&) noexcept;
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  // Replaces bytes [start, old_end) with edit.text and reparses incrementally. Fails (and changes
  // nothing) when the range is outside the text or reversed.
  Expected<void> apply(const DocumentEdit& edit);
  // Applies edits in order, each against the text left by the previous one.
  Expected<void> apply(const std::vector<DocumentEdit>& edits);

  const std::string& text() const { return text_; }
  Language language() const { return language_; }
  Snapshot snapshot() const;       // cached until the next edit

 private:
  std::string path_;
  Language language_;
  std::string text_;
  TSParser* parser_ = nullptr;
  TSTree* tree_ = nullptr;
  mutable Snapshot cached_;
};

// Parses `text` once (no document); the snapshot owns the tree.
Snapshot parse_snapshot(std::string path, Language language, std::string text);

// Syntax errors from ERROR and MISSING nodes, as byte ranges with messages such as "expected ':'"
// or "unexpected 'foo'". Empty for plain text and error-free trees.
std::vector<Diagnostic> syntax_diagnostics(const Snapshot& snapshot, size_t max_count = 100);

// Number of ERROR + MISSING nodes (used to check that a suggestion does not make a parse worse).
size_t count_syntax_errors(const TSNode& root);

}  // namespace ghostline::completion
