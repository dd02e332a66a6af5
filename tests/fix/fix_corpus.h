// The quick-fix corpus (tests/fixtures/fixes): broken snippets beside their expected fixed
// versions, named <lang>_<category>_<n>.<ext> and <lang>_<category>_<n>.fixed.<ext>.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "completion/document.h"

namespace ghostline::completion::testing {

struct FixCase {
  std::string name;
  std::string path;       // of the broken file
  std::string broken;
  std::string fixed;
};

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<FixCase> fix_corpus() {
  namespace fs = std::filesystem;
  std::vector<FixCase> out;
  const fs::path dir = fs::path(GHOSTLINE_TEST_FIXTURES) / "fixes";
  for (const auto& entry : fs::directory_iterator(dir)) {
    const fs::path p = entry.path();
    const std::string stem = p.stem().string();
    if (stem.find(".fixed") != std::string::npos) continue;
    const fs::path fixed = dir / (stem + ".fixed" + p.extension().string());
    if (!fs::exists(fixed)) continue;
    out.push_back(FixCase{p.filename().string(), p.string(), read_text(p), read_text(fixed)});
  }
  std::sort(out.begin(), out.end(), [](const FixCase& a, const FixCase& b) { return a.name < b.name; });
  return out;
}

inline Snapshot parse_case(const FixCase& c, const std::string& text) {
  return parse_snapshot(c.path, language_from("", c.path), text);
}

}  // namespace ghostline::completion::testing
