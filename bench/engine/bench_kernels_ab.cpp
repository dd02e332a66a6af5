// bench_kernels_ab: the cost of a forward over k = 1..9 new tokens (every row of logits, as a
// verification step) under two CPU kernel sets in one process, interleaved step by step, so that
// load from other processes falls on both alike (a shared 2-core machine spreads separate runs
// by +-20%). Each step is timed three times after one untimed (the two models do not fit in the
// caches together; a decode loop keeps one there). Each set gets its own copy of the model, loaded while that set is selected (the
// AMX set packs its weights then).
//   bench_kernels_ab [--sets amx,avx512] [--prompt 448] [--rounds 61] [--threads N] [--out FILE] [MODEL_DIR]
// Prints per set and k the median and minimum ms and the ratio of medians; --out writes JSON.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/cpu/kernels.h"
#include "bench/engine/verify_step.h"
#include "engine/model.h"

using namespace ghostline::engine;
using ghostline::bench::median;
using ghostline::bench::verify_ms;

namespace {

struct Subject {
  std::string set;
  std::unique_ptr<Model> model;
  SequenceStep seq;
  std::vector<std::vector<double>> ms = std::vector<std::vector<double>>(10);
};

}  // namespace

int main(int argc, char** argv) {
  std::string sets = "amx,avx512", out_path, dir = std::string(GHOSTLINE_SOURCE_DIR) + "/models/ghostline-coder-tiny";
  int prompt = 448, rounds = 61, threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--sets" && i + 1 < argc) sets = argv[++i];
    else if (a == "--prompt" && i + 1 < argc) prompt = std::atoi(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--out" && i + 1 < argc) out_path = argv[++i];
    else dir = a;
  }
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  std::vector<Subject> subjects;
  for (size_t p = 0; p <= sets.size();) {
    const size_t q = std::min(sets.find(',', p), sets.size());
    subjects.push_back({sets.substr(p, q - p), nullptr, {}});
    p = q + 1;
  }
  std::vector<float> logits;
  for (auto& s : subjects) {
    if (!ghostline::cpu::force_kernel_isa(s.set)) {
      std::fprintf(stderr, "bench_kernels_ab: this CPU or build cannot run kernel set '%s'\n", s.set.c_str());
      return 1;
    }
    LoadOptions o;
    o.threads = threads;
    auto m = load_model(dir, o);
    if (!m) {
      std::fprintf(stderr, "bench_kernels_ab: %s\n", m.error().message.c_str());
      return 1;
    }
    s.model = std::move(*m);
    const int block = 16, n_blocks = (prompt + 16) / block + 2;
    if (auto r = s.model->allocate_kv(block, n_blocks); !r) {
      std::fprintf(stderr, "bench_kernels_ab: %s\n", r.error().message.c_str());
      return 1;
    }
    for (int i = 0; i < n_blocks; ++i) s.seq.block_table.push_back(i);
    StepBatch b;
    SequenceStep q = s.seq;
    q.n_new = prompt;
    for (int i = 0; i < prompt; ++i) b.tokens.push_back((i * 7919 + 13) % s.model->info().vocab_size);
    b.seqs.push_back(q);
    if (!s.model->forward(b, logits)) return 1;
  }
  // Round r: k = 1..9, each k under every set back to back (the order alternating by round).
  for (int r = 0; r < rounds; ++r)
    for (int k = 1; k <= 9; ++k)
      for (size_t j = 0; j < subjects.size(); ++j) {
        Subject& s = subjects[(r % 2 ? subjects.size() - 1 - j : j)];
        ghostline::cpu::force_kernel_isa(s.set);
        verify_ms(*s.model, s.seq, prompt, k, logits);  // brings this model's weights back into the caches
        for (int i = 0; i < 3; ++i) s.ms[k].push_back(verify_ms(*s.model, s.seq, prompt, k, logits));
      }
  ghostline::cpu::force_kernel_isa("");
  nlohmann::json out = {{"benchmark", "kernels-ab"}, {"model", dir.substr(dir.find_last_of('/') + 1)}, {"prompt_tokens", prompt},
                        {"rounds", rounds}, {"threads", threads}, {"sets", nlohmann::json::array()}};
  for (auto& s : subjects) {
    std::printf("%-8s median ms k=1..9:", s.set.c_str());
    nlohmann::json ks = nlohmann::json::array();
    for (int k = 1; k <= 9; ++k) {
      const double med = median(s.ms[k]), mn = *std::min_element(s.ms[k].begin(), s.ms[k].end());
      std::printf(" %.3f", med);
      ks.push_back({{"k", k}, {"ms_median", med}, {"ms_min", mn}});
    }
    std::printf("\n%-8s min    ms k=1..9:", s.set.c_str());
    for (int k = 1; k <= 9; ++k) std::printf(" %.3f", *std::min_element(s.ms[k].begin(), s.ms[k].end()));
    std::printf("\n");
    out["sets"].push_back({{"kernels", s.set}, {"verify", ks}});
  }
  if (subjects.size() >= 2) {
    std::printf("median %s / %s:", subjects[0].set.c_str(), subjects[1].set.c_str());
    for (int k = 1; k <= 9; ++k) std::printf(" %.3f", median(subjects[0].ms[k]) / median(subjects[1].ms[k]));
    std::printf("\n");
  }
  if (!out_path.empty()) std::ofstream(out_path) << out.dump(2) << "\n";
  return 0;
}
