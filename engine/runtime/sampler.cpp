// Sampler: greedy, temperature, top-k, top-p, seeded draws.
#include "engine/runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace ghostline::engine::runtime {

int32_t argmax(std::span<const float> logits) {
  // The first index of the largest value (NaNs never win; a NaN first entry is returned, as by a
  // plain left-to-right scan). Two passes: the maximum over sixteen lanes (SSE2, which every
  // x86-64 has), then the first index holding it. A scan that compares with the best so far is
  // one long dependency chain: ~45 us over a 16k vocabulary, paid for every verified row of a
  // speculative step; this takes ~2.
  const size_t n = logits.size();
  if (n == 0 || std::isnan(logits[0])) return 0;
  const float* x = logits.data();
  float top = x[0];
  size_t i = 0;
#if defined(__SSE2__)
  __m128 m[4];
  for (auto& v : m) v = _mm_set1_ps(top);
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 4; ++j) m[j] = _mm_max_ps(_mm_loadu_ps(x + i + 4 * j), m[j]);  // (x > m) ? x : m
  alignas(16) float lanes[16];
  for (int j = 0; j < 4; ++j) _mm_store_ps(lanes + 4 * j, m[j]);
  for (float v : lanes) top = v > top ? v : top;
#endif
  for (size_t k = i; k < n; ++k) top = x[k] > top ? x[k] : top;
  i = 0;
#if defined(__SSE2__)
  const __m128 t = _mm_set1_ps(top);
  for (; i + 16 <= n; i += 16) {  // the block holding it
    const __m128 eq = _mm_or_ps(_mm_or_ps(_mm_cmpeq_ps(_mm_loadu_ps(x + i), t), _mm_cmpeq_ps(_mm_loadu_ps(x + i + 4), t)),
                                _mm_or_ps(_mm_cmpeq_ps(_mm_loadu_ps(x + i + 8), t), _mm_cmpeq_ps(_mm_loadu_ps(x + i + 12), t)));
    if (_mm_movemask_ps(eq)) break;
  }
#endif
  while (x[i] != top) ++i;
  return static_cast<int32_t>(i);
}

float token_logprob(std::span<const float> logits, int32_t token) {
  if (token < 0 || static_cast<size_t>(token) >= logits.size()) return -INFINITY;
  const float top = logits[argmax(logits)];
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - top);
  return static_cast<float>(static_cast<double>(logits[token]) - top - std::log(sum));
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

std::vector<float> Sampler::probabilities(std::span<const float> logits) const {
  const size_t V = logits.size();
  std::vector<float> p(V, 0.0f);
  if (V == 0) return p;
  if (params_.temperature <= 0.0f) {
    p[argmax(logits)] = 1.0f;
    return p;
  }
  // Candidates sorted by logit, descending (ties: lower id first), cut by top-k.
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  size_t k = (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < V) ? params_.top_k : V;
  auto cmp = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(order.begin(), order.begin() + k, order.end(), cmp);
  order.resize(k);
  const double inv_t = 1.0 / params_.temperature;
  const double top = logits[order[0]];
  std::vector<double> w(k);
  double sum = 0;
  for (size_t i = 0; i < k; ++i) {
    double x = (logits[order[i]] - top) * inv_t;
    w[i] = std::isfinite(x) ? std::exp(x) : 0.0;
    sum += w[i];
  }
  size_t keep = k;
  if (params_.top_p > 0.0f && params_.top_p < 1.0f) {
    double mass = 0;
    for (size_t i = 0; i < k; ++i) {
      mass += w[i] / sum;
      if (mass >= params_.top_p) { keep = i + 1; break; }
    }
  }
  double kept = 0;
  for (size_t i = 0; i < keep; ++i) kept += w[i];
  for (size_t i = 0; i < keep; ++i) p[order[i]] = static_cast<float>(w[i] / kept);
  return p;
}

namespace {
int32_t draw(const std::vector<float>& p, double total, double r) {
  double acc = 0, target = r * total;
  int32_t last = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    acc += p[i];
    last = static_cast<int32_t>(i);
    if (target < acc) return last;
  }
  return last;
}
}  // namespace

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.empty()) return 0;
  if (greedy()) return argmax(logits);
  std::vector<float> p = probabilities(logits);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  int32_t t = draw(p, 1.0, u(rng_));
  return t < 0 ? argmax(logits) : t;
}

TokenPick Sampler::device_pick() {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  // In [0, 1) as a float too: a double just below 1 would round up to 1.
  return {params_.temperature, params_.top_p, params_.top_k, std::min(static_cast<float>(u(rng_)), 0x1.fffffep-1f)};
}

std::pair<int32_t, bool> Sampler::verify(std::span<const float> logits, int32_t draft) {
  if (logits.empty()) return {0, false};
  if (greedy()) {
    int32_t t = argmax(logits);
    return {t, t == draft};
  }
  std::vector<float> p = probabilities(logits);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const bool in_range = draft >= 0 && static_cast<size_t>(draft) < p.size();
  const double pd = in_range ? p[draft] : 0.0;
  if (pd > 0 && u(rng_) < pd) return {draft, true};
  if (pd >= 1.0) return {draft, true};
  if (in_range) p[draft] = 0.0f;
  int32_t t = draw(p, 1.0 - pd, u(rng_));
  return {t < 0 ? argmax(logits) : t, false};
}

}  // namespace ghostline::engine::runtime
