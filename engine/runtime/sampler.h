// Sampler: turns one row of logits into a token id, per a request's SamplingParams.
//
// temperature 0 is greedy (argmax, lowest id on ties). Otherwise softmax(logits / T), then
// top-k (keep the k most likely), then top-p (the smallest set whose mass reaches p), then a
// draw from a generator seeded by SamplingParams::seed: the same seed gives the same tokens.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "engine/model.h"

namespace ghostline::engine::runtime {

int32_t argmax(std::span<const float> logits);
// log softmax(logits)[token]: the model's log-probability of `token` (temperature 1, no filters).
float token_logprob(std::span<const float> logits, int32_t token);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int32_t sample(std::span<const float> logits);
  // Speculative verification of a drafted token d (a draft from a deterministic drafter, i.e. a
  // point mass): accepted with probability p(d); otherwise a token drawn from p with d removed
  // and renormalised. The result is distributed exactly as sample() (rejection sampling).
  // Returns {token, accepted}. Greedy: accepted iff d is the argmax.
  std::pair<int32_t, bool> verify(std::span<const float> logits, int32_t draft);
  bool greedy() const { return params_.temperature <= 0.0f; }
  // The same draw as sample() for a backend that picks on its device (Model::forward_pick):
  // the parameters and the next uniform number of this sampler's generator.
  TokenPick device_pick();
  // The distribution sample() draws from (after temperature, top-k, top-p), for tests.
  std::vector<float> probabilities(std::span<const float> logits) const;

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace ghostline::engine::runtime
