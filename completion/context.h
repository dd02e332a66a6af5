// build_context: what the model sees for a cursor — prefix and suffix windows cut at syntax
// boundaries within token budgets, the headers of enclosing scopes and the imports kept above a
// cut, and snippets from other open documents (definitions of names used near the cursor, then the
// chunks most similar to the code before the cursor by identifier Jaccard).
//
// Thread-safety: pure functions over immutable snapshots; callable from any thread.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "completion/document.h"

namespace ghostline::completion {

enum class Mode { None, SingleLine, MultiLine };
const char* mode_name(Mode mode);  // "none", "single-line", "multi-line"

struct Snippet {
  std::string path;
  std::string text;
};

using TokenCounter = std::function<size_t(std::string_view)>;

// About one token per 3.5 bytes of code; used when no tokenizer is supplied.
size_t estimate_tokens(std::string_view text);

struct ContextOptions {
  size_t max_prefix_tokens = 1536;
  size_t max_suffix_tokens = 512;
  size_t max_snippet_tokens = 512;   // all snippets together
  size_t max_snippets = 4;
  size_t snippet_chunk_lines = 16;   // window size for similarity chunks
  bool complete_in_comments = false;  // else mode none inside comments
  bool complete_in_strings = false;   // else mode none inside strings
  bool complete_mid_line = false;     // else mode none when more than closing characters follow
  TokenCounter count_tokens;         // empty → estimate_tokens
};

struct Context {
  Language language = Language::PlainText;
  std::string path;
  Mode mode = Mode::MultiLine;
  std::string prefix;                // text before the cursor (maybe with kept headers/imports on top)
  std::string suffix;                // text after the cursor
  std::vector<Snippet> snippets;
  size_t cursor = 0;                 // byte offset in the document
  size_t prefix_start = 0;           // where the contiguous window before the cursor begins
  size_t suffix_end = 0;             // where the window after the cursor ends
  std::string line_prefix;           // the cursor line up to the cursor
  std::string line_suffix;           // the cursor line after the cursor
};

// The cursor is clamped to the text and moved back to a UTF-8 character boundary.
Context build_context(const Snapshot& snapshot, size_t cursor, const std::vector<Snapshot>& others,
                      const ContextOptions& options = {});

// Identifiers ([A-Za-z_][A-Za-z0-9_]*) of a text, for similarity and name lookup.
std::vector<std::string> identifiers(std::string_view text);

}  // namespace ghostline::completion
