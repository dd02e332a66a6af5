// bench_engine: CPU prefill and decode speed for model shapes given as dummy configs
// (random bf16 weights), beside the decode bound this machine's memory bandwidth sets
// (bytes read per decoded token = active weights + the KV cache read). Prints a table and writes
// JSON to bench/results/engine-cpu-<date>.json.
//   bench_engine [--threads N] [--prompt N] [--decode N] [CONFIG.json ...]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/cpu/kernels.h"
#include "engine/model.h"

using namespace ghostline::engine;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  int threads = 0, prompt = 256, decode = 64;
  std::vector<std::string> configs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--prompt" && i + 1 < argc) prompt = std::atoi(argv[++i]);
    else if (a == "--decode" && i + 1 < argc) decode = std::atoi(argv[++i]);
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
    auto m = load_model("dummy:" + cfg, o);
    if (!m) {
      std::fprintf(stderr, "bench_engine: %s\n", m.error().message.c_str());
      return 1;
    }
    Model& model = **m;
    const auto& info = model.info();
    const int block = 16, n_blocks = (prompt + decode) / block + 2;
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
    b.seqs[0].n_past = prompt;
    b.seqs[0].n_new = 1;
    t0 = Clock::now();
    for (int i = 0; i < decode; ++i) {
      b.tokens = {static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())};
      if (auto r = model.forward(b, logits); !r) return 1;
      b.seqs[0].n_past++;
    }
    double decode_s = std::chrono::duration<double>(Clock::now() - t0).count();
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
                       {"decode_fraction_of_bound", decode_tps / bound}});
  }
  char date[32];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  nlohmann::json out = {{"benchmark", "engine-cpu"}, {"date", date}, {"threads", threads}, {"kernels", ghostline::cpu::kernel_isa()},
                        {"read_bandwidth_gb_s", bw}, {"results", results}};
  const std::string path = src + "/bench/results/engine-cpu-" + date + ".json";
  std::ofstream(path) << out.dump(2) << "\n";
  std::printf("wrote %s\n", path.c_str());
  return 0;
}
