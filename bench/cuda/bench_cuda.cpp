// bench_cuda: the CUDA backend at real model shapes (dummy:CONFIG.json, random bf16 weights):
// prefill tokens/s at 512 / 2,048 / 8,192 tokens (time to first token = one forward of the whole
// prompt, logits of its last token on the host), decode tokens/s at batch 1 / 8 / 32 with 2,048
// tokens of context, and the cost of verifying k = 1..8 drafted tokens in one forward. Each decode
// number is printed beside the memory-bandwidth bound: bytes a step must read (weights of the
// active parameters: dense parts once per step, routed experts as many distinct ones as B tokens
// pick under uniform routing; plus every sequence's KV cache) over the measured read bandwidth.
//   bench_cuda [--out FILE] [--commit SHA] [--reps N] [--variants] [--verify] CONFIG.json ...
//   --verify: no prefill numbers; instead the verification step of one sequence (k = 1, 2, 4, 8
//   query tokens at 2K context) per kernel, and verify k = 1..8 / decode batch 8 with the
//   switches of the few-token kernels off and on (GHOSTLINE_SKINNY_MMA, GHOSTLINE_ATTN_SEQ,
//   GHOSTLINE_DENSE_FEW, GHOSTLINE_ATTN_ROWS, GHOSTLINE_MOE_MMA_MIN).
//   bench_cuda --profile CONFIG.json   (one decode step for ncu --profile-from-start off)
// Timings are wall-clock medians around Model::forward (which returns after the logits are on
// the host), after warm-up steps that also capture the CUDA graphs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include <cuda_profiler_api.h>
#include <cuda_runtime_api.h>
#include <nlohmann/json.hpp>

#include "bench/cuda/bandwidth.h"
#include "engine/cuda/cuda_model.h"
#include "engine/model.h"
#include "engine/model/config.h"
#include "kernels/kernels.h"
#include "kernels/prefill.h"

using namespace ghostline;
using namespace ghostline::engine;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kBlock = 16;
constexpr int kContext = 2048;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

std::string today() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

struct Bench {
  Model& m;
  int V;
  uint32_t rng = 12345;
  int token() {
    rng = rng * 1664525u + 1013904223u;
    return static_cast<int>((rng >> 8) % static_cast<uint32_t>(V));
  }
  // Milliseconds of one forward.
  double run(const StepBatch& b) {
    std::vector<float> logits;
    const auto t0 = Clock::now();
    auto r = m.forward(b, logits);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!r) {
      std::fprintf(stderr, "bench_cuda: forward failed: %s\n", r.error().message.c_str());
      std::exit(1);
    }
    return ms;
  }
  // One sequence's step of n_new random tokens after n_past, over `table`.
  StepBatch sequence(int n_past, int n_new, const std::vector<int32_t>& table, bool all_logits = false) {
    StepBatch sb;
    for (int i = 0; i < n_new; ++i) sb.tokens.push_back(token());
    SequenceStep s;
    s.n_past = n_past;
    s.n_new = n_new;
    s.block_table = table;
    s.all_logits = all_logits;
    sb.seqs.push_back(s);
    return sb;
  }
  // One new token for each of the first B sequences of `tables`, each after n_past tokens.
  StepBatch decode(const std::vector<std::vector<int32_t>>& tables, int B, int n_past) {
    StepBatch sb;
    for (int q = 0; q < B; ++q) {
      StepBatch one = sequence(n_past, 1, tables[q]);
      sb.tokens.push_back(one.tokens[0]);
      sb.seqs.push_back(std::move(one.seqs[0]));
    }
    return sb;
  }
};

std::vector<int32_t> blocks(int first, int tokens) {
  std::vector<int32_t> t((tokens + kBlock - 1) / kBlock);
  std::iota(t.begin(), t.end(), first);
  return t;
}

// Bytes one decode step of B tokens must read (see the file comment).
double step_bytes(const model::ModelConfig& c, const ModelInfo& info, int B, int context) {
  const double wbytes = info.weight_dtype == "bf16" ? 2.0 : 4.0;
  double active = static_cast<double>(info.params_active) * wbytes;
  int moe_layers = 0;
  for (int l = 0; l < c.n_layers; ++l) moe_layers += c.layer_is_moe(l);
  const double expert = 3.0 * c.hidden_size * c.moe_intermediate_size * wbytes;
  if (moe_layers > 0 && c.n_experts > 0) {
    const double E = c.n_experts, K = c.n_experts_per_tok;
    const double distinct = E * (1.0 - std::pow(1.0 - K / E, B));
    active += moe_layers * (distinct - K) * expert;
  }
  return active + static_cast<double>(B) * context * info.kv_bytes_per_token;
}

// --profile CONFIG: one batch-1 decode step at 2K context between cudaProfilerStart/Stop, for
// `ncu --profile-from-start off` (eager launches, after warm-up steps). --profile-prefill CONFIG:
// one 2,048-token prefill instead (after one warm-up prefill).
int profile_step(const std::string& path, bool prefill = false) {
  LoadOptions o;
  o.device = Device::Cuda;
  auto loaded = load_model("dummy:" + path, o);
  if (!loaded) {
    std::fprintf(stderr, "bench_cuda: %s\n", loaded.error().message.c_str());
    return 1;
  }
  Model& m = **loaded;
  if (auto r = m.allocate_kv(kBlock, (kContext + 64) / kBlock + 4); !r) return 1;
  Bench b{m, m.info().vocab_size};
  const auto table = blocks(0, kContext + 32);
  b.run(b.sequence(0, kContext, table));
  if (prefill) {
    cudaProfilerStart();
    b.run(b.sequence(0, kContext, table));
    cudaProfilerStop();
    return 0;
  }
  cuda::set_cuda_model_options(m, {false, 64});
  for (int i = 0; i < 4; ++i) {
    const StepBatch d = b.sequence(kContext + i, 1, table);
    if (i == 3) cudaProfilerStart();
    b.run(d);
  }
  cudaProfilerStop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path, commit = "unknown";
  int reps = 20;
  bool variants = false, verify = false;
  std::vector<std::string> configs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) out_path = argv[++i];
    else if (a == "--commit" && i + 1 < argc) commit = argv[++i];
    else if (a == "--reps" && i + 1 < argc) reps = std::max(3, std::atoi(argv[++i]));
    else if (a == "--variants") variants = true;
    else if (a == "--verify") verify = true;
    else if (a == "--profile" && i + 1 < argc) return profile_step(argv[++i]);
    else if (a == "--profile-prefill" && i + 1 < argc) return profile_step(argv[++i], true);
    else configs.push_back(a);
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // a log cut by a timeout keeps what was measured
  if (configs.empty()) {
    std::fprintf(stderr, "usage: bench_cuda [--out FILE] [--commit SHA] [--reps N] [--variants] CONFIG.json ...\n");
    return 2;
  }
  if (!cuda_available()) {
    std::fprintf(stderr, "bench_cuda: no usable CUDA device\n");
    return 1;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  const auto bw = bench::measure_bandwidth(int64_t{2} << 30);
  std::printf("bench_cuda on %s: memory bandwidth %.0f GB/s read, %.0f GB/s copy (read + write)\n", prop.name, bw.read_gbs, bw.copy_gbs);
  nlohmann::json J;
  J["date"] = today();
  J["gpu"] = prop.name;
  J["commit"] = commit;
  J["command"] = "bench_cuda --reps " + std::to_string(reps) + (variants ? " --variants" : "") + (verify ? " --verify" : "") + " <configs>";
  J["bandwidth_gbs"] = {{"read", bw.read_gbs}, {"copy", bw.copy_gbs}};

  for (const auto& path : configs) {
    auto cfg = model::load_config(path);
    if (!cfg) {
      std::fprintf(stderr, "bench_cuda: %s\n", cfg.error().message.c_str());
      return 1;
    }
    LoadOptions o;
    o.device = Device::Cuda;
    const auto t_load = Clock::now();
    auto loaded = load_model("dummy:" + path, o);
    if (!loaded) {
      std::fprintf(stderr, "bench_cuda: %s: %s\n", path.c_str(), loaded.error().message.c_str());
      return 1;
    }
    const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
    Model& m = **loaded;
    const ModelInfo& info = m.info();
    Bench b{m, info.vocab_size};
    const std::string name = std::filesystem::path(path).stem().string();
    std::printf("\n%s: %s, %.2fB parameters (%.2fB active), weights %.1f GiB %s, KV %lld bytes/token; loaded in %.1f s\n", name.c_str(),
                info.architecture.c_str(), info.params_total / 1e9, info.params_active / 1e9, info.weight_bytes / 1073741824.0,
                info.weight_dtype.c_str(), static_cast<long long>(info.kv_bytes_per_token), load_s);

    // KV pool: prefill region (8,192 tokens) + 32 decode sequences of 2K context + room to grow.
    const int prefill_max = std::min(8192, info.max_context);
    const int seq_blocks = (kContext + 96) / kBlock;
    const int pool = prefill_max / kBlock + 32 * seq_blocks + 8;
    if (auto r = m.allocate_kv(kBlock, pool); !r) {
      std::fprintf(stderr, "bench_cuda: %s\n", r.error().message.c_str());
      return 1;
    }
    nlohmann::json M;
    M["config"] = path;
    M["architecture"] = info.architecture;
    M["params_total"] = info.params_total;
    M["params_active"] = info.params_active;
    M["weight_bytes"] = info.weight_bytes;
    M["kv_bytes_per_token"] = info.kv_bytes_per_token;
    M["load_s"] = load_s;

    // Prefill (time to first token of a fresh prompt).
    std::printf("  prefill   tokens   ms (TTFT)   tok/s\n");
    for (int L : {512, 2048, 8192}) {
      if (L > prefill_max || verify) continue;
      const StepBatch sb = b.sequence(0, L, blocks(0, L));
      b.run(sb);
      std::vector<double> t;
      for (int r = 0; r < std::max(3, reps / 5); ++r) t.push_back(b.run(sb));
      const double ms = median(t);
      std::printf("            %6d   %9.2f   %9.0f\n", L, ms, L * 1000.0 / ms);
      M["prefill"].push_back({{"tokens", L}, {"ms", ms}, {"tok_s", L * 1000.0 / ms}});
      if (L == 2048) M["ttft_2048_ms"] = ms;
    }

    // Decode at 2K context: one 2,048-token prefill, its blocks copied to the other sequences.
    const int dec_first = prefill_max / kBlock;
    std::vector<std::vector<int32_t>> tables;
    for (int q = 0; q < 32; ++q) tables.push_back(blocks(dec_first + q * seq_blocks, seq_blocks * kBlock));
    {
      b.run(b.sequence(0, kContext, tables[0]));
      for (int q = 1; q < 32; ++q)
        for (int k = 0; k < kContext / kBlock; ++k) m.copy_kv_block(tables[0][k], tables[q][k]);
    }
    auto decode = [&](int B) {
      std::vector<double> t;
      for (int i = 0; i < reps + 3; ++i) {
        const double ms = b.run(b.decode(tables, B, kContext + i));
        if (i >= 3) t.push_back(ms);
      }
      return median(t);
    };
    std::printf("  decode    batch   step ms   tok/s   bound tok/s   of bound\n");
    for (int B : {1, 8, 32}) {
      const double ms = decode(B);
      const double bound = B * bw.read_gbs * 1e9 / step_bytes(*cfg, info, B, kContext);
      const double tps = B * 1000.0 / ms;
      std::printf("            %5d   %7.3f   %7.0f   %11.0f   %7.0f%%\n", B, ms, tps, bound, 100.0 * tps / bound);
      M["decode"].push_back({{"batch", B}, {"context", kContext}, {"step_ms", ms}, {"tok_s", tps}, {"bound_tok_s", bound},
                             {"fraction_of_bound", tps / bound}});
    }
    if (variants) {
      // Batch 1 without programmatic dependent launch, and without CUDA graphs.
      kernels::set_pdl(false);
      cuda::set_cuda_model_options(m, {true, 64});
      const double no_pdl = decode(1);
      kernels::set_pdl(true);
      cuda::set_cuda_model_options(m, {false, 64});
      const double eager = decode(1);
      cuda::set_cuda_model_options(m, {true, 64});
      std::printf("  batch 1 variants: no PDL %.3f ms (%.0f tok/s), no graphs %.3f ms (%.0f tok/s)\n", no_pdl, 1000.0 / no_pdl, eager,
                  1000.0 / eager);
      M["decode_variants_batch1"] = {{"no_pdl_step_ms", no_pdl}, {"no_graphs_step_ms", eager}};
      // The streamed kernels (kernels/moe_stream.cu: one token's experts, plain one-row products;
      // 1 cp.async, 3 bulk copies) against the default kernels (0), each combination twice,
      // interleaved, the graphs captured again for each measurement.
      const std::vector<std::pair<const char*, const char*>> combos = {  // GHOSTLINE_MOE_STREAM, GHOSTLINE_SKINNY_STREAM
          {"1", "1"}, {"1", "0"}, {"0", "1"}, {"0", "0"}, {"3", "3"}};
      std::vector<std::vector<double>> stream_ms(combos.size());
      for (int round = 0; round < 2; ++round)
        for (size_t c = 0; c < combos.size(); ++c) {
          setenv("GHOSTLINE_MOE_STREAM", combos[c].first, 1);
          setenv("GHOSTLINE_SKINNY_STREAM", combos[c].second, 1);
          cuda::set_cuda_model_options(m, {true, 64});
          stream_ms[c].push_back(decode(1));
          unsetenv("GHOSTLINE_MOE_STREAM");
          unsetenv("GHOSTLINE_SKINNY_STREAM");
        }
      cuda::set_cuda_model_options(m, {true, 64});
      for (size_t c = 0; c < combos.size(); ++c) {
        std::printf("  batch 1, GHOSTLINE_MOE_STREAM=%s GHOSTLINE_SKINNY_STREAM=%s: %.3f, %.3f ms (%.0f tok/s)\n", combos[c].first,
                    combos[c].second, stream_ms[c][0], stream_ms[c][1], 2000.0 / (stream_ms[c][0] + stream_ms[c][1]));
        M["decode_batch1_stream_variants"].push_back(
            {{"moe_stream", combos[c].first}, {"skinny_stream", combos[c].second}, {"step_ms", stream_ms[c]}});
      }
    }

    // Where the time goes: a batch-1 decode step (eager launches) and a 2,048-token prefill, with
    // CUDA events around every kernel and cuBLAS call.
    auto table = [&](const char* what, int steps, const std::function<void()>& run, size_t max_rows = 14) {
      kernels::set_kernel_timing(true);
      run();
      auto kt = kernels::kernel_times();
      kernels::set_kernel_timing(false);
      double total = 0;
      for (const auto& k : kt) total += k.ms;
      std::printf("  %s: %.3f ms of kernels per step\n", what, total / steps);
      nlohmann::json rows;
      for (size_t i = 0; i < kt.size(); ++i) {
        if (i < max_rows) std::printf("    %8.3f ms  %5.1f calls  %s\n", kt[i].ms / steps, static_cast<double>(kt[i].calls) / steps, kt[i].name.c_str());
        rows.push_back({{"kernel", kt[i].name}, {"ms_per_step", kt[i].ms / steps}, {"calls_per_step", static_cast<double>(kt[i].calls) / steps}});
      }
      return rows;
    };
    cuda::set_cuda_model_options(m, {false, 64});
    for (int B : {1, 32}) {
      const std::string what = "decode batch " + std::to_string(B) + ", eager, per kernel";
      M["kernels_decode_batch" + std::to_string(B)] = table(what.c_str(), 4, [&] {
        for (int i = 0; i < 4; ++i) b.run(b.decode(tables, B, kContext + i));
      });
    }
    if (variants) {
      setenv("GHOSTLINE_MOE_STREAM", "1", 1);
      setenv("GHOSTLINE_SKINNY_STREAM", "1", 1);
      M["kernels_decode_batch1_streamed"] = table("decode batch 1, eager, per kernel, GHOSTLINE_MOE_STREAM=1 GHOSTLINE_SKINNY_STREAM=1", 4, [&] {
        for (int i = 0; i < 4; ++i) b.run(b.decode(tables, 1, kContext + i));
      }, 8);
      unsetenv("GHOSTLINE_MOE_STREAM");
      unsetenv("GHOSTLINE_SKINNY_STREAM");
    }
    cuda::set_cuda_model_options(m, {true, 64});
    if (prefill_max >= 2048 && !verify) {
      M["kernels_prefill_2048"] = table("prefill 2048, per kernel", 1, [&] { b.run(b.sequence(0, 2048, blocks(0, 2048))); }, 24);
    }
    if (variants && prefill_max >= 2048 && !verify) {
      // Time to first token at 2,048 with each tensor-core prefill kernel turned off (the
      // variables are read at every step): what each one brings, measured in one process.
      auto ttft = [&] {
        const StepBatch sb = b.sequence(0, 2048, blocks(0, 2048));
        b.run(sb);
        std::vector<double> t;
        for (int r = 0; r < std::max(3, reps / 5); ++r) t.push_back(b.run(sb));
        return median(t);
      };
      auto ttft_once = [&] { b.run(b.sequence(0, 2048, blocks(0, 2048))); };
      // TTFT with one switch set for the measurement only.
      auto ttft_with = [&](const char* var, const char* value) {
        setenv(var, value, 1);
        const double ms = ttft();
        unsetenv(var);
        return ms;
      };
      const double both = ttft();
      setenv("GHOSTLINE_PREFILL_FLASH", "0", 1);
      const double no_flash = ttft();
      setenv("GHOSTLINE_GROUPED_GEMM", "0", 1);
      const double neither = ttft();
      M["kernels_prefill_2048_cublas_paths"] = table("prefill 2048, cuBLAS attention and experts, per kernel", 1 + std::max(3, reps / 5), [&] { ttft(); }, 24);
      unsetenv("GHOSTLINE_PREFILL_FLASH");
      const double no_grouped = ttft();
      unsetenv("GHOSTLINE_GROUPED_GEMM");
      const double wide = ttft_with("GHOSTLINE_GROUPED_WIDE", "1");
      const double shared_grouped = ttft_with("GHOSTLINE_SHARED_CUBLAS", "0");
      // The grouped experts on mma.sync (grouped_gemm.cu) instead of wgmma (grouped_gemm_sm90.cu),
      // with its per-kernel table, then wgmma again: both timed in this process.
      const bool wgmma = kernels::grouped_wgmma_available();
      setenv("GHOSTLINE_WGMMA", "0", 1);
      const double no_wgmma = ttft();
      M["kernels_prefill_2048_no_wgmma"] = table("prefill 2048, grouped experts on mma.sync, per kernel", 1, [&] { ttft_once(); }, 8);
      unsetenv("GHOSTLINE_WGMMA");
      const double per_item = ttft_with("GHOSTLINE_WGMMA_PERSIST", "0");
      const double both_halves = ttft_with("GHOSTLINE_WGMMA_HALF", "0");
      const double with_wgmma = ttft();
      std::printf("  TTFT 2048 variants: both %.2f ms, cuBLAS attention %.2f ms, cuBLAS experts %.2f ms, neither %.2f ms, "
                  "256-wide expert tiles %.2f ms, always-on experts in the grouped kernel %.2f ms\n",
                  both, no_flash, no_grouped, neither, wide, shared_grouped);
      std::printf("  TTFT 2048 grouped experts: wgmma %.2f ms (%s; a block per item %.2f ms, small tiles on both warpgroups %.2f ms), "
                  "mma.sync (GHOSTLINE_WGMMA=0) %.2f ms\n",
                  with_wgmma, wgmma ? "sm_90a kernel" : "not available here: same kernel", per_item, both_halves, no_wgmma);
      // This branch's switches, interleaved (two rounds, so that a card that heats up does not
      // favour the first): flash attention's tile shapes, the old row gather, float32 activations
      // converted before each product; then per-kernel tables of the old paths in this process
      // (64x64: every switch of this branch off).
      const char* kTiles[] = {"64x64", "128x32", "128x64", "64x32"};  // 64x64 is the default
      const std::pair<const char*, const char*> kOldPaths[] = {{"GHOSTLINE_FLASH_TILE", "64x64"}, {"GHOSTLINE_FLASH_PAIRS", "0"},
                                                               {"GHOSTLINE_GATHER_VEC", "0"},    {"GHOSTLINE_BF16_ACTS", "0"},
                                                               {"GHOSTLINE_SORT_BATCH", "0"},
                                                               {"GHOSTLINE_ROUTE_WARPS", "0"}};
      nlohmann::json tiles_ms;
      for (int round = 0; round < 2; ++round) {
        for (const char* t : kTiles) tiles_ms[t].push_back(ttft_with("GHOSTLINE_FLASH_TILE", t));
        tiles_ms["default"].push_back(ttft());
        tiles_ms["gather_one_a_thread"].push_back(ttft_with("GHOSTLINE_GATHER_VEC", "0"));
        tiles_ms["float32_activations"].push_back(ttft_with("GHOSTLINE_BF16_ACTS", "0"));
        tiles_ms["flash_unpaired"].push_back(ttft_with("GHOSTLINE_FLASH_PAIRS", "0"));
        tiles_ms["sort_one_load_a_thread"].push_back(ttft_with("GHOSTLINE_SORT_BATCH", "0"));
        tiles_ms["route_block_per_token"].push_back(ttft_with("GHOSTLINE_ROUTE_WARPS", "0"));
        tiles_ms["float32_expert_outputs"].push_back(ttft_with("GHOSTLINE_BF16_EXPERT_OUT", "0"));
        for (auto [var, value] : kOldPaths) setenv(var, value, 1);
        tiles_ms["all_old"].push_back(ttft());  // every switch of this branch off
        for (auto [var, value] : kOldPaths) unsetenv(var);
      }
      std::printf("  TTFT 2048, flash tiles and gather (two rounds):");
      for (auto it = tiles_ms.begin(); it != tiles_ms.end(); ++it)
        std::printf(" %s %.2f/%.2f ms", it.key().c_str(), it.value()[0].get<double>(), it.value()[1].get<double>());
      std::printf("\n");
      M["ttft_2048_flash_tiles_ms"] = tiles_ms;
      for (const char* t : {"64x64", "128x64", "128x32", "64x32"}) {
        const bool old = std::string(t) == "64x64";
        setenv("GHOSTLINE_FLASH_TILE", t, 1);
        if (old)
          for (auto [var, value] : kOldPaths) setenv(var, value, 1);
        const std::string what = std::string("prefill 2048, flash tile ") + t +
                                 (old ? ", every old path of this branch (kOldPaths)" : "") +
                                 ", per kernel";
        M[std::string("kernels_prefill_2048_flash_") + t] = table(what.c_str(), 1, [&] { ttft_once(); }, old ? 16 : 4);
        for (auto [var, value] : kOldPaths) unsetenv(var);
      }
      M["ttft_2048_variants_ms"] = {{"flash_and_grouped", both}, {"no_flash", no_flash}, {"no_grouped", no_grouped}, {"neither", neither},
                                    {"grouped_256_wide", wide}, {"always_on_in_grouped", shared_grouped},
                                    {"wgmma", with_wgmma}, {"wgmma_block_per_item", per_item}, {"wgmma_small_tiles_both_warpgroups", both_halves},
                                    {"no_wgmma", no_wgmma},
                                    {"wgmma_available", wgmma}};
    }

    // Verification of k drafted tokens in one forward (every row of logits), k interleaved.
    auto verify_ms = [&] {
      std::vector<std::vector<double>> vt(9);
      for (int k = 1; k <= 8; ++k) b.run(b.sequence(kContext, k, tables[0], true));  // graph captures
      for (int r = 0; r < std::max(5, reps / 2); ++r)
        for (int k = 1; k <= 8; ++k) vt[k].push_back(b.run(b.sequence(kContext, k, tables[0], true)));
      std::vector<double> ms(9, 0.0);
      for (int k = 1; k <= 8; ++k) ms[k] = median(vt[k]);
      return ms;
    };
    {
      const auto vm = verify_ms();
      std::printf("  verify k:");
      for (int k = 1; k <= 8; ++k) std::printf(" %d=%.2fms", k, vm[k]);
      std::printf("  (k=8 / k=1 = %.2f)\n", vm[8] / vm[1]);
      for (int k = 1; k <= 8; ++k) M["verify"].push_back({{"k", k}, {"ms", vm[k]}, {"ratio_to_k1", vm[k] / vm[1]}});
    }
    if (verify) {
      // The few-token kernels off and on, in this process (the switches are read when a step is
      // built; new options drop the captured graphs): verify k = 1..8 and decode batch 8.
      struct Variant {
        const char* name;
        std::vector<std::pair<const char*, const char*>> env;
      };
      const char* kSwitches[] = {"GHOSTLINE_SKINNY_MMA", "GHOSTLINE_ATTN_SEQ", "GHOSTLINE_DENSE_FEW", "GHOSTLINE_ATTN_ROWS",
                                 "GHOSTLINE_MOE_MMA_MIN"};
      const std::vector<Variant> vs = {
          {"old (MMA=0 SEQ=0 DENSE_FEW=0 ROWS=0)",
           {{"GHOSTLINE_SKINNY_MMA", "0"}, {"GHOSTLINE_ATTN_SEQ", "0"}, {"GHOSTLINE_DENSE_FEW", "0"}, {"GHOSTLINE_ATTN_ROWS", "0"}}},
          {"attention rows kernel only (MMA=0 SEQ=0)", {{"GHOSTLINE_SKINNY_MMA", "0"}, {"GHOSTLINE_ATTN_SEQ", "0"}}},
          {"attention rows + one sequence (MMA=0)", {{"GHOSTLINE_SKINNY_MMA", "0"}}},
          {"new, one row tile a warp (MMA=1)", {{"GHOSTLINE_SKINNY_MMA", "1"}}},
          {"new, weights through a shared-memory ring (MMA=3)", {{"GHOSTLINE_SKINNY_MMA", "3"}}},
          {"new, routed experts from 2 rows (MOE_MMA_MIN=2)", {{"GHOSTLINE_MOE_MMA_MIN", "2"}}},
          {"new (defaults)", {}}};
      for (const auto& v : vs) {
        for (const char* k : kSwitches) unsetenv(k);
        for (const auto& [k, val] : v.env) setenv(k, val, 1);
        cuda::set_cuda_model_options(m, {true, 64});
        const auto vm = verify_ms();
        const double b8 = decode(8);
        const double b1 = decode(1);
        std::printf("  %-48s verify k:", v.name);
        for (int k = 1; k <= 8; ++k) std::printf(" %.2f", vm[k]);
        std::printf(" ms (k=8/k=1 %.2f); batch 1 %.3f ms, batch 8 %.3f ms (%.0f tok/s)\n", vm[8] / vm[1], b1, b8, 8000.0 / b8);
        nlohmann::json V;
        V["variant"] = v.name;
        for (int k = 1; k <= 8; ++k) V["verify_ms"].push_back(vm[k]);
        V["decode_batch1_step_ms"] = b1;
        V["decode_batch8_step_ms"] = b8;
        V["decode_batch8_tok_s"] = 8000.0 / b8;
        M["verify_variants"].push_back(V);
      }
      for (const char* k : kSwitches) unsetenv(k);
      // Where a verification step's time goes, old and new kernels (eager, events per kernel).
      cuda::set_cuda_model_options(m, {false, 64});
      for (const char* flag : {"0", "1"}) {
        for (const auto& [k, val] : vs.front().env) {
          if (flag[0] == '0') setenv(k, val, 1);
          else unsetenv(k);
        }
        const std::string which = flag[0] == '0' ? "old" : "new";
        for (int k : {1, 2, 4, 8}) {
          const std::string what = "verify k=" + std::to_string(k) + " (" + which + " kernels), eager, per kernel";
          M["kernels_verify_" + which + "_k" + std::to_string(k)] = table(what.c_str(), 4, [&] {
            for (int i = 0; i < 4; ++i) b.run(b.sequence(kContext, k, tables[0], true));
          }, 16);
        }
      }
      for (const char* k : kSwitches) unsetenv(k);
      cuda::set_cuda_model_options(m, {true, 64});
    }
    const auto st = cuda::cuda_model_stats(m);
    M["graphs"] = {{"captures", st.graph_captures}, {"replays", st.graph_replays}, {"error", st.graph_error}};
    M["prefill_moe_layers"] = {{"padded", st.moe_padded_layers}, {"exact", st.moe_exact_layers}, {"grouped", st.moe_grouped_layers}};
    std::printf("  prefill expert layers: %lld padded batches, %lld exact per-expert products, %lld grouped kernels\n",
                static_cast<long long>(st.moe_padded_layers), static_cast<long long>(st.moe_exact_layers),
                static_cast<long long>(st.moe_grouped_layers));
    if (!st.graph_error.empty()) std::printf("  CUDA graphs were turned off: %s\n", st.graph_error.c_str());
    J["models"].push_back(M);
    loaded->reset();
  }
  if (!out_path.empty()) {
    std::ofstream(out_path) << J.dump(1) << "\n";
    std::printf("\nwrote %s\n", out_path.c_str());
  }
  return 0;
}
