// Where the embedded default model lives.
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cli/commands.h"

#ifndef GHOSTLINE_SOURCE_DIR
#define GHOSTLINE_SOURCE_DIR ""
#endif
#ifndef GHOSTLINE_DEFAULT_MODEL
#define GHOSTLINE_DEFAULT_MODEL "ghostline-coder-tiny"
#endif

namespace ghostline::cli {

std::string default_model_dir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("GHOSTLINE_MODEL"); env && *env) return env;
  fs::path in_tree = fs::path(GHOSTLINE_SOURCE_DIR) / "models" / GHOSTLINE_DEFAULT_MODEL;
  std::error_code ec;
  if (fs::exists(in_tree / "config.json", ec)) return in_tree.string();
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path installed = self.parent_path().parent_path() / "share" / "ghostline" / "models" / GHOSTLINE_DEFAULT_MODEL;
    if (fs::exists(installed / "config.json", ec)) return installed.string();
  }
  return in_tree.string();
}

}  // namespace ghostline::cli
