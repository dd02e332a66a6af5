// DocumentStore: the server's copy of each open document (UTF-8 text, version, language), kept
// so that LSP positions can be converted to the byte offsets the completion service speaks.
//
// apply() turns LSP content changes (incremental with a range, or full text) into byte-range
// DocumentEdits against the text as it was before each change, applying them one after
// another as the LSP specifies. Thread-safe: every method takes the store's lock.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "completion/service.h"
#include "engine/base/expected.h"
#include "lsp/positions.h"

namespace ghostline::lsp {

struct ContentChange {
  std::optional<Range> range;  // absent: `text` replaces the whole document
  std::string text;
};

struct DocumentSnapshot {
  std::string text;
  int version = 0;
  std::string language_id;
};

class DocumentStore {
 public:
  void open(const std::string& uri, const std::string& language_id, std::string text, int version);
  void close(const std::string& uri);

  // Applies the changes and returns them as byte edits (each against the result of the
  // previous). NotFound when the document is not open.
  Expected<std::vector<completion::DocumentEdit>> apply(const std::string& uri, int version,
                                                        const std::vector<ContentChange>& changes,
                                                        PositionEncoding encoding);

  std::optional<DocumentSnapshot> get(const std::string& uri) const;

  // Converts a position of the document's current text; nullopt when it is not open.
  std::optional<size_t> offset(const std::string& uri, Position p, PositionEncoding e) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, DocumentSnapshot> docs_;
};

}  // namespace ghostline::lsp
