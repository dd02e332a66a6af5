// What bench_engine and bench_kernels_ab both time: a forward over k new tokens after `past`,
// every row of logits (as a verification step does), and the median of such timings.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

#include "engine/model.h"

namespace ghostline::bench {

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Milliseconds of one forward over k new tokens after `past` tokens of `base`'s sequence (the same
// positions rewritten each time; token ids a fixed function of the position), or -1 on an error.
inline double verify_ms(engine::Model& m, const engine::SequenceStep& base, int past, int k, std::vector<float>& logits) {
  engine::StepBatch b;
  engine::SequenceStep s = base;
  s.n_past = past;
  s.n_new = k;
  s.all_logits = true;
  for (int i = 0; i < k; ++i) b.tokens.push_back((past * 31 + i * 7919 + 5) % m.info().vocab_size);
  b.seqs.push_back(s);
  const auto t0 = std::chrono::steady_clock::now();
  if (!m.forward(b, logits)) return -1;
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace ghostline::bench
