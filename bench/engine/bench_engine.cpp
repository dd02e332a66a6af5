// bench_engine: CPU prefill and decode speed for model shapes given as dummy configs
// (random bf16 weights) or real model directories, beside the decode bound this machine's memory
// bandwidth sets (bytes read per decoded token = active weights + the KV cache read), and the
// cost of verifying k drafted tokens in one forward (k = 1..8, all k rows of logits) relative to
// one decode step. Prints tables and writes JSON to bench/results/engine-cpu-<date>.json.
//   bench_engine [--threads N] [--prompt N] [--decode N] [--reps N] [--out FILE] [--profile K:N] [CONFIG.json | MODEL_DIR ...]
// --profile K:N runs N verify steps of K tokens after the prompt and nothing else (under `perf record`).
// Timings are medians over --reps runs, the k of the verify table interleaved so that load from
// other processes falls on every k alike.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/cpu/kernels.h"
#include "bench/engine/verify_step.h"
#include "engine/model.h"

using namespace ghostline::engine;
using Clock = std::chrono::steady_clock;
using ghostline::bench::median;
using ghostline::bench::verify_ms;

namespace {

// The commit the sources are at (results name it), or "unknown".
std::string git_commit(const std::string& src) {
  std::string out;
  if (FILE* f = popen(("git -C '" + src + "' rev-parse --short=10 HEAD 2>/dev/null").c_str(), "r")) {
    char buf[64];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    pclose(f);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out.empty() ? "unknown" : out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, prompt = 256, decode = 64, reps = 41, profile_k = 0, profile_n = 0;
  std::string out_path;
  std::vector<std::string> configs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--prompt" && i + 1 < argc) prompt = std::atoi(argv[++i]);
    else if (a == "--decode" && i + 1 < argc) decode = std::atoi(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--out" && i + 1 < argc) out_path = argv[++i];
    else if (a == "--profile" && i + 1 < argc && std::sscanf(argv[++i], "%d:%d", &profile_k, &profile_n) == 2) continue;
    else configs.push_back(a);
  }
  const std::string src = GHOSTLINE_SOURCE_DIR;
  if (configs.empty()) configs = {src + "/bench/engine/dsv2_moe_20m.json", src + "/bench/engine/llama_dense_100m.json"};
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());

  ghostline::cpu::ThreadPool pool(threads);
  const double bw = ghostline::cpu::measure_read_bandwidth(pool, 512ll << 20);
  std::printf("machine: %d threads, kernels %s, read bandwidth %.1f GB/s\n", threads, ghostline::cpu::kernel_isa(), bw);

  nlohmann::json results = nlohmann::json::array();
  for (const auto& cfg : configs) {
    LoadOptions o;
    o.threads = threads;
    const bool dir = std::filesystem::is_directory(cfg);
    auto m = load_model(dir ? cfg : "dummy:" + cfg, o);
    if (!m) {
      std::fprintf(stderr, "bench_engine: %s\n", m.error().message.c_str());
      return 1;
    }
    Model& model = **m;
    const auto& info = model.info();
    const int block = 16, n_blocks = (prompt + decode + 8) / block + 2;
    if (auto r = model.allocate_kv(block, n_blocks); !r) {
      std::fprintf(stderr, "bench_engine: %s\n", r.error().message.c_str());
      return 1;
    }
    StepBatch b;
    SequenceStep s;
    s.n_new = prompt;
    for (int i = 0; i < n_blocks; ++i) s.block_table.push_back(i);
    for (int i = 0; i < prompt; ++i) b.tokens.push_back((i * 7919 + 13) % info.vocab_size);
    b.seqs.push_back(s);
    std::vector<float> logits;
    auto t0 = Clock::now();
    if (auto r = model.forward(b, logits); !r) {
      std::fprintf(stderr, "bench_engine: %s\n", r.error().message.c_str());
      return 1;
    }
    double prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (profile_k > 0) {
      double total = 0;
      for (int i = 0; i < profile_n; ++i) total += verify_ms(model, b.seqs[0], prompt, profile_k, logits);
      std::printf("%s: %d verify steps of %d tokens, mean %.3f ms\n", cfg.c_str(), profile_n, profile_k, total / std::max(1, profile_n));
      continue;
    }
    b.seqs[0].n_past = prompt;
    b.seqs[0].n_new = 1;
    std::vector<double> step_ms;
    for (int i = 0; i < decode; ++i) {
      b.tokens = {static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())};
      t0 = Clock::now();
      if (auto r = model.forward(b, logits); !r) return 1;
      step_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      b.seqs[0].n_past++;
    }
    // Median step, so that a moment of load from other processes does not count.
    double decode_s = median(step_ms) * decode / 1e3;
    // Verification: k tokens (all logits) after the context, k = 1..8, interleaved, `reps` rounds.
    const int past = b.seqs[0].n_past;
    std::vector<std::vector<double>> vt(9);
    for (int r = 0; r < reps; ++r)
      for (int k = 1; k <= 8; ++k) vt[k].push_back(verify_ms(model, b.seqs[0], past, k, logits));
    // Medians, and minima (the runs no other process interrupted, on a loaded machine).
    nlohmann::json verify = nlohmann::json::array();
    const double one = median(vt[1]), one_min = *std::min_element(vt[1].begin(), vt[1].end());
    std::printf("  verify k tokens after %d, median ms (x one step):", past);
    for (int k = 1; k <= 8; ++k) {
      const double ms = median(vt[k]), ms_min = *std::min_element(vt[k].begin(), vt[k].end());
      std::printf("  k=%d %.3f (%.2fx)", k, ms, ms / one);
      verify.push_back({{"k", k}, {"ms", ms}, {"relative_to_one", ms / one}, {"ms_min", ms_min}, {"relative_to_one_min", ms_min / one_min}});
    }
    std::printf("\n  verify k tokens after %d, minimum ms (x one step):", past);
    for (const auto& v : verify) std::printf("  k=%d %.3f (%.2fx)", v["k"].get<int>(), v["ms_min"].get<double>(), v["relative_to_one_min"].get<double>());
    std::printf("\n");
    // Bytes per decoded token: active weights in their dtype + the KV cache read at the mean length.
    const double bytes_per_param = static_cast<double>(info.weight_bytes) / static_cast<double>(info.params_total);
    const double kv_read = static_cast<double>(info.kv_bytes_per_token) * (prompt + decode / 2.0);
    const double bytes_per_token = info.params_active * bytes_per_param + kv_read;
    const double bound = bw * 1e9 / bytes_per_token;
    const double prefill_tps = prompt / prefill_s, decode_tps = decode / decode_s;
    std::printf("%-24s %s  params %.1fM (active %.1fM)  prefill %d: %8.1f tok/s   decode: %7.1f tok/s  bound %7.1f tok/s (%4.1f%%)\n",
                cfg.substr(cfg.find_last_of('/') + 1).c_str(), info.architecture.c_str(), info.params_total / 1e6, info.params_active / 1e6,
                prompt, prefill_tps, decode_tps, bound, 100.0 * decode_tps / bound);
    results.push_back({{"config", cfg.substr(cfg.find_last_of('/') + 1)},
                       {"architecture", info.architecture},
                       {"params_total", info.params_total},
                       {"params_active", info.params_active},
                       {"weight_dtype", info.weight_dtype},
                       {"prompt_tokens", prompt},
                       {"prefill_tokens_per_s", prefill_tps},
                       {"decode_tokens", decode},
                       {"decode_tokens_per_s", decode_tps},
                       {"decode_bytes_per_token", bytes_per_token},
                       {"decode_bandwidth_bound_tokens_per_s", bound},
                       {"decode_fraction_of_bound", decode_tps / bound},
                       {"verify", verify}});
  }
  if (profile_k > 0) return 0;  // timings for a profiler, nothing to record
  char date[32];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  nlohmann::json out = {{"benchmark", "engine-cpu"}, {"date", date}, {"commit", git_commit(src)}, {"threads", threads},
                        {"kernels", ghostline::cpu::kernel_isa()}, {"read_bandwidth_gb_s", bw}, {"timing", "median step"},
                        {"results", results}};
  const std::string path = out_path.empty() ? src + "/bench/results/engine-cpu-" + date + ".json" : out_path;
  std::ofstream(path) << out.dump(2) << "\n";
  std::printf("wrote %s\n", path.c_str());
  return 0;
}
