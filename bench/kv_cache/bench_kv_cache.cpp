// bench_kv_cache: an editing trace through the Engine — a real source file typed character by
// character, one request per keystroke — measuring the fraction of prompt tokens reused from the
// prefix cache and the time to first token, with the cache on and off, for three prompt layouts:
//   above: BOS + the text above the cursor
//   psm:   BOS <fim_begin> above <fim_hole> below <fim_end>   (the suffix sits behind the edit)
//   spm:   BOS <fim_hole> below <fim_begin> above <fim_end>   (only the keystroke is new)
// Prints a table and writes JSON to bench/results/kv_cache-<date>.json (or --out).
//
//   bench_kv_cache [--model DIR|dummy:CONFIG] [--tokenizer FILE] [--source FILE]
//                  [--context TOKENS] [--suffix TOKENS] [--keystrokes N] [--cold-keystrokes N] [--device cpu|cuda]
//                  [--out FILE] [--commit SHA]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "engine/model.h"
#include "engine/tokenizer/tokenizer.h"

using namespace ghostline;
using namespace ghostline::engine;

namespace {

const std::string kRoot = GHOSTLINE_SOURCE_DIR;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return fallback;
}

struct Sample {
  int prompt_tokens = 0, cached_tokens = 0;
  double ttft_ms = 0;
};

Sample run_request(Engine& e, std::vector<int32_t> prompt) {
  GenerationRequest req;
  req.prompt = std::move(prompt);
  req.sampling.max_tokens = 1;
  // Shared with the callback: the engine thread may still be inside set_value when get() returns.
  auto done = std::make_shared<std::promise<StreamEvent>>();
  auto result = done->get_future();
  e.submit(std::move(req), [done](const StreamEvent& ev) {
    if (ev.finished) done->set_value(ev);
  });
  StreamEvent ev = result.get();
  if (ev.reason == FinishReason::Error) {
    std::fprintf(stderr, "bench_kv_cache: request failed: %s\n", ev.error.c_str());
    std::exit(1);
  }
  return {ev.stats.prompt_tokens, ev.stats.cached_tokens, ev.stats.ttft_ms};
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Number of characters (UTF-8 bytes, cut at a character start) whose tokens reach `tokens`.
size_t chars_for_tokens(const Tokenizer& tok, const std::string& text, size_t tokens) {
  size_t lo = 0, hi = text.size();
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (tok.encode(std::string_view(text).substr(0, mid)).size() < tokens) lo = mid + 1;
    else hi = mid;
  }
  while (lo < text.size() && (static_cast<unsigned char>(text[lo]) & 0xC0) == 0x80) ++lo;
  return lo;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string embedded = kRoot + "/models/ghostline-coder-tiny";
  std::string model_path = arg(argc, argv, "model", "");
  if (model_path.empty())
    model_path = std::filesystem::exists(embedded + "/model.safetensors") ? embedded
                                                                           : "dummy:" + kRoot + "/bench/kv_cache/model-config.json";
  const std::string tok_path = arg(argc, argv, "tokenizer", embedded + "/tokenizer.json");
  const std::string source = arg(argc, argv, "source", kRoot + "/engine/runtime/engine.cpp");
  const size_t context = std::stoul(arg(argc, argv, "context", "2048"));
  const size_t suffix_tokens = std::stoul(arg(argc, argv, "suffix", "256"));
  const int keystrokes = std::stoi(arg(argc, argv, "keystrokes", "40"));
  const int cold_keystrokes = std::stoi(arg(argc, argv, "cold-keystrokes", "6"));
  const int threads = std::stoi(arg(argc, argv, "threads", "0"));
  const std::string device = arg(argc, argv, "device", "cpu");

  auto tok = Tokenizer::from_file(tok_path);
  if (!tok) { std::fprintf(stderr, "bench_kv_cache: %s\n", tok.error().message.c_str()); return 1; }
  const Tokenizer& T = **tok;
  std::string text = read_file(source);
  if (text.empty()) { std::fprintf(stderr, "bench_kv_cache: cannot read %s\n", source.c_str()); return 1; }
  // Repeat the file if it is shorter than the context plus the typed text and the suffix.
  while (T.encode(text).size() < context + suffix_tokens + 200) text += "\n" + text;
  const size_t start = chars_for_tokens(T, text, context);
  auto fim = [&](const char* name) { return T.token_id(name).value_or(0); };
  const int32_t bos = T.bos_id().value_or(0);
  const int32_t fim_begin = fim("<｜fim▁begin｜>"), fim_hole = fim("<｜fim▁hole｜>"), fim_end = fim("<｜fim▁end｜>");
  const std::string below_all = text.substr(start + keystrokes);
  const size_t below_chars = chars_for_tokens(T, below_all, suffix_tokens);
  const auto below = T.encode(std::string_view(below_all).substr(0, below_chars));

  auto prompt_for = [&](const std::string& layout, int k) {
    auto above = T.encode(std::string_view(text).substr(0, start + k));
    std::vector<int32_t> p = {bos};
    if (layout == "above") {
      p.insert(p.end(), above.begin(), above.end());
    } else if (layout == "psm") {
      p.push_back(fim_begin);
      p.insert(p.end(), above.begin(), above.end());
      p.push_back(fim_hole);
      p.insert(p.end(), below.begin(), below.end());
      p.push_back(fim_end);
    } else {
      p.push_back(fim_hole);
      p.insert(p.end(), below.begin(), below.end());
      p.push_back(fim_begin);
      p.insert(p.end(), above.begin(), above.end());
      p.push_back(fim_end);
    }
    return p;
  };

  nlohmann::json results = nlohmann::json::array();
  std::printf("model %s, source %s, context %zu tokens, %d keystrokes (cold: %d)\n", model_path.c_str(),
              source.c_str(), context, keystrokes, cold_keystrokes);
  std::printf("%-6s %-5s %10s %10s %12s %12s\n", "layout", "cache", "reused", "prompt", "ttft_med_ms", "ttft_mean_ms");
  std::map<std::string, double> warm_median, cold_median;
  for (std::string layout : {"above", "spm", "psm"})
    for (bool cache : {true, false}) {
      LoadOptions lo;
      lo.threads = threads;
      if (auto d = parse_device(device, lo); !d) {
        std::fprintf(stderr, "bench_kv_cache: %s\n", d.error().message.c_str());
        std::exit(2);
      }
      auto model = load_model(model_path, lo);
      if (!model) { std::fprintf(stderr, "bench_kv_cache: %s\n", model.error().message.c_str()); return 1; }
      EngineOptions eo;
      eo.prefix_cache = cache;
      eo.max_batch_tokens = 4096;
      eo.kv_blocks = 1024;
      auto eng = Engine::create(std::move(*model), *tok, eo);
      if (!eng) { std::fprintf(stderr, "bench_kv_cache: %s\n", eng.error().message.c_str()); return 1; }
      // The file is open before typing starts: its first request is not measured.
      run_request(**eng, prompt_for(layout, 0));
      const int n = cache ? keystrokes : cold_keystrokes;
      std::vector<double> ttft;
      long reused = 0, total = 0;
      for (int k = 1; k <= n; ++k) {
        Sample s = run_request(**eng, prompt_for(layout, k));
        ttft.push_back(s.ttft_ms);
        reused += s.cached_tokens;
        total += s.prompt_tokens;
      }
      double mean = 0;
      for (double t : ttft) mean += t / ttft.size();
      const double frac = total ? double(reused) / total : 0;
      std::printf("%-6s %-5s %9.1f%% %10ld %12.2f %12.2f\n", layout.c_str(), cache ? "on" : "off", 100 * frac,
                  total / std::max(1, n), median(ttft), mean);
      (cache ? warm_median : cold_median)[layout] = median(ttft);
      results.push_back({{"layout", layout}, {"prefix_cache", cache}, {"keystrokes", n},
                         {"reused_fraction", frac}, {"mean_prompt_tokens", double(total) / std::max(1, n)},
                         {"ttft_median_ms", median(ttft)}, {"ttft_mean_ms", mean}, {"ttft_ms", ttft}});
    }
  for (auto& [layout, warm] : warm_median)
    std::printf("%s: ttft cold/warm = %.1fx\n", layout.c_str(), warm > 0 ? cold_median[layout] / warm : 0.0);

  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  const std::string out_path = arg(argc, argv, "out", kRoot + "/bench/results/kv_cache-" + date + ".json");
  nlohmann::json doc = {{"benchmark", "kv_cache"}, {"date", date}, {"model", model_path}, {"tokenizer", tok_path},
                        {"source", source}, {"commit", arg(argc, argv, "commit", "")}, {"context_tokens", context}, {"suffix_tokens", suffix_tokens},
                        {"threads", threads}, {"device", device}, {"hardware_threads", std::thread::hardware_concurrency()},
                        {"results", results}};
  std::ofstream(out_path) << doc.dump(2) << "\n";
  std::printf("wrote %s\n", out_path.c_str());
  return 0;
}
