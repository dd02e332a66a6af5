// Token picking on the device (kernels/sample.cu) against the host sampler of the engine
// (engine/runtime/sampler.h), on fresh random logits:
// - greedy: the argmax of every row, the lowest id among equal maxima;
// - sampling (temperature, top-k, top-p and their mix): one row repeated N times with the
//   uniform numbers (j + 0.5) / N, j = 0 .. N-1, so that token i must be picked in
//   N × p_i ± 1 of the rows, p being the host sampler's distribution — the whole distribution
//   checked, and nothing outside the host's kept set ever picked.
#include <algorithm>
#include <cmath>

#include "engine/runtime/sampler.h"
#include "kernels/kernels.h"
#include "tests/gpu/gpu_check.h"

namespace ghostline::gpu_test {

namespace {

namespace runtime = engine::runtime;

void greedy_case(Report& rep, Rng& rng, int R, int V) {
  auto logits = rng.normal(static_cast<size_t>(R) * V, 3.0f);
  // Planted ties: row r's maximum twice, at a lower and a higher id.
  for (int r = 0; r < R; ++r) {
    float* row = logits.data() + static_cast<size_t>(r) * V;
    const int a = rng.uniform_int(0, V / 2), b = rng.uniform_int(V / 2 + 1, V - 1);
    row[a] = row[b] = 100.0f + r;
  }
  std::vector<kernels::RowPick> picks(R);
  Dev<float> d_logits(logits);
  Dev<kernels::RowPick> d_picks(picks);
  Dev<int32_t> d_ids(static_cast<size_t>(R));
  kernels::pick_tokens(d_logits.p, R, V, d_picks.p, d_ids.p, nullptr);
  const auto err = device_error();
  const auto ids = d_ids.download();
  int wrong = 0;
  for (int r = 0; r < R; ++r)
    wrong += ids[r] != runtime::argmax(std::span<const float>(logits.data() + static_cast<size_t>(r) * V, V));
  rep.check("pick_tokens greedy, " + std::to_string(R) + " rows of " + std::to_string(V) + " with tied maxima: rows wrong",
            wrong, 0.0, err);
}

void sampling_case(Report& rep, Rng& rng, int V, float temperature, int top_k, float top_p, int N = 4096) {
  const auto row = rng.normal(static_cast<size_t>(V), 2.5f);
  engine::SamplingParams sp;
  sp.temperature = temperature;
  sp.top_k = top_k;
  sp.top_p = top_p;
  const std::vector<float> p = runtime::Sampler(sp).probabilities(row);
  std::vector<float> logits(static_cast<size_t>(N) * V);
  std::vector<kernels::RowPick> picks(N);
  for (int j = 0; j < N; ++j) {
    std::copy(row.begin(), row.end(), logits.begin() + static_cast<size_t>(j) * V);
    picks[j] = {temperature, top_p, top_k, (j + 0.5f) / N};
  }
  Dev<float> d_logits(logits);
  Dev<kernels::RowPick> d_picks(picks);
  Dev<int32_t> d_ids(static_cast<size_t>(N));
  kernels::pick_tokens(d_logits.p, N, V, d_picks.p, d_ids.p, nullptr);
  const auto err = device_error();
  std::vector<int> count(V, 0);
  int outside = 0;
  for (int32_t id : d_ids.download()) {
    if (id < 0 || id >= V || p[id] <= 0) ++outside;
    else ++count[id];
  }
  double worst = 0;  // in picks: |count_i - N p_i|
  for (int i = 0; i < V; ++i) worst = std::max(worst, std::abs(count[i] - static_cast<double>(N) * p[i]));
  char name[160];
  std::snprintf(name, sizeof name, "pick_tokens T=%.2f top-k %d top-p %.2f over %d tokens, %d stratified draws: ", temperature,
                top_k, top_p, V, N);
  rep.check(std::string(name) + "picks outside the host's kept set", outside, 0.0, err);
  rep.check(std::string(name) + "worst |count - N p| (at most 1 + rounding)", worst, 1.5, err);
}

}  // namespace

void run_pick_checks(Report& rep, uint64_t seed) {
  Rng rng(seed ^ 0x5a5a);
  greedy_case(rep, rng, 7, 5000);
  greedy_case(rep, rng, 2, 102400);
  sampling_case(rep, rng, 3000, 1.0f, 0, 1.0f);
  sampling_case(rep, rng, 3000, 0.7f, 0, 0.9f);
  sampling_case(rep, rng, 3000, 1.0f, 40, 1.0f);
  sampling_case(rep, rng, 3000, 1.3f, 100, 0.8f);
  sampling_case(rep, rng, 102400, 0.8f, 0, 0.95f, 1024);
}

}  // namespace ghostline::gpu_test
