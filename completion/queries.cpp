// Loading, compiling and running our query files.
#include "completion/queries.h"

#include <fstream>
#include <memory>
#include <sstream>

namespace ghostline::completion {

std::string default_queries_dir() { return GHOSTLINE_QUERIES_DIR; }

static const char* query_error_name(TSQueryError e) {
  switch (e) {
    case TSQueryErrorSyntax: return "syntax error";
    case TSQueryErrorNodeType: return "unknown node type";
    case TSQueryErrorField: return "unknown field";
    case TSQueryErrorCapture: return "unknown capture";
    case TSQueryErrorStructure: return "impossible pattern";
    case TSQueryErrorLanguage: return "incompatible language";
    default: break;
  }
  return "error";
}

Expected<std::vector<Capture>> run_query(const Snapshot& s, std::string_view kind, const std::string& dir) {
  std::vector<Capture> out;
  if (!s.has_tree()) return out;
  std::string lang = language_name(s.language());
  if (lang == "typescriptreact") lang = "tsx";
  std::string path = dir + "/" + lang + "/" + std::string(kind) + ".scm";
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::NotFound, "no query file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string source = ss.str();
  uint32_t offset = 0;
  TSQueryError err = TSQueryErrorNone;
  std::unique_ptr<TSQuery, void (*)(TSQuery*)> q(
      ts_query_new(tree_sitter_language(s.language()), source.data(), static_cast<uint32_t>(source.size()), &offset, &err),
      ts_query_delete);
  if (!q)
    return make_error(ErrorCode::InvalidArgument,
                      path + ": " + query_error_name(err) + " at byte " + std::to_string(offset));
  std::unique_ptr<TSQueryCursor, void (*)(TSQueryCursor*)> cur(ts_query_cursor_new(), ts_query_cursor_delete);
  ts_query_cursor_exec(cur.get(), q.get(), s.root());
  TSQueryMatch m;
  uint32_t index = 0;
  while (ts_query_cursor_next_capture(cur.get(), &m, &index)) {
    const TSQueryCapture& c = m.captures[index];
    uint32_t len = 0;
    const char* name = ts_query_capture_name_for_id(q.get(), c.index, &len);
    out.push_back({std::string(name, len), ts_node_start_byte(c.node), ts_node_end_byte(c.node)});
  }
  return out;
}

}  // namespace ghostline::completion
