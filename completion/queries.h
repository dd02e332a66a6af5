// Our tree-sitter query files (grammars/queries/<lang>/<kind>.scm: definitions, imports, comments)
// run over a snapshot. Query files are data; tests/completion checks every one compiles against its
// grammar and gives the golden captures.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "completion/document.h"
#include "engine/base/expected.h"

namespace ghostline::completion {

struct Capture {
  std::string name;        // e.g. "definition.function", "name", "import", "comment", "string"
  size_t start = 0, end = 0;
};

// The folder of grammars/queries/ compiled into this build.
std::string default_queries_dir();

// Runs <dir>/<language>/<kind>.scm over the snapshot; captures in document order. Fails when the
// file is missing (NotFound) or does not compile against the grammar (InvalidArgument, with the
// byte offset and the kind of error). Plain text: an empty result.
Expected<std::vector<Capture>> run_query(const Snapshot& snapshot, std::string_view kind,
                                         const std::string& dir = default_queries_dir());

}  // namespace ghostline::completion
