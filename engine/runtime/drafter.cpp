// Drafters: previous-suggestion remainder and prompt lookup; DraftPolicy: where drafting pays.
#include "engine/runtime/drafter.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "engine/runtime/sequence.h"

namespace ghostline::engine::runtime {

std::vector<int32_t> prompt_lookup(std::span<const int32_t> tokens, int ngram, int max_len) {
  const int n = static_cast<int>(tokens.size());
  if (ngram <= 0 || max_len <= 0 || n <= ngram) return {};
  std::span<const int32_t> tail = tokens.subspan(n - ngram);
  for (int start = n - ngram - 1; start >= 0; --start) {
    if (!std::equal(tail.begin(), tail.end(), tokens.begin() + start)) continue;
    const int from = start + ngram;
    const int len = std::min(max_len, n - from);
    if (len <= 0) continue;
    return std::vector<int32_t>(tokens.begin() + from, tokens.begin() + from + len);
  }
  return {};
}

DraftPolicy::DraftPolicy(int fixed_length) : fixed_length_(std::min(fixed_length, kMaxDraft)) {
  // Priors: a previous suggestion is usually still right; a lookup after a long match most of
  // the time; after a short one, half the time.
  accepted_[0] = 3, rejected_[0] = 1;
  const double lookup_prior[] = {1, 1, 2, 3, 4};  // accepted per rejection, by match length
  for (int i = 1; i < kDraftSources; ++i) accepted_[i] = lookup_prior[i - 1], rejected_[i] = 1;
}

namespace {

// Keeps the last kSamples values in `ring` (count = values ever added) and returns the lower
// quartile of those kept: a step slowed down by another process is an outlier above, never below.
template <size_t N>
double add_sample(std::array<double, N>& ring, int& count, double value) {
  ring[count++ % N] = value;
  const int n = std::min<int>(count, N);
  std::array<double, N> sorted = ring;
  std::nth_element(sorted.begin(), sorted.begin() + n / 4, sorted.begin() + n);
  return sorted[n / 4];
}

}  // namespace

void DraftPolicy::record_step(int tokens, double ms) {
  if (tokens <= 0 || tokens > kMaxStepTokens || ms <= 0) return;
  step_ms_[tokens] = add_sample(samples_[tokens], n_samples_[tokens], ms);
  timed_[tokens] = true;
}

void DraftPolicy::record_overhead(double ms) {
  if (ms < 0) return;
  overhead_ms_ = add_sample(overhead_samples_, n_overhead_, ms);
}

double DraftPolicy::cost_ms(int n) const {
  n = std::clamp(n, 1, kMaxStepTokens);
  if (timed_[n]) return step_ms_[n];
  int lo = n - 1, hi = n + 1;
  while (lo >= 1 && !timed_[lo]) --lo;
  while (hi <= kMaxStepTokens && !timed_[hi]) ++hi;
  if (lo < 1 && hi > kMaxStepTokens) return 0;
  // Untimed lengths look a little cheaper than their neighbours' line, so each gets tried once.
  constexpr double kOptimism = 0.9;
  if (lo >= 1 && hi <= kMaxStepTokens)
    return kOptimism * (step_ms_[lo] + (step_ms_[hi] - step_ms_[lo]) * (n - lo) / (hi - lo));
  if (lo >= 1) {
    // Past the longest timed step: the slope of the timed points, or (only one) 10% per token.
    int lo2 = lo - 1;
    while (lo2 >= 1 && !timed_[lo2]) --lo2;
    const double slope = lo2 >= 1 ? std::max(0.0, (step_ms_[lo] - step_ms_[lo2]) / (lo - lo2)) : 0.1 * step_ms_[lo];
    return kOptimism * (step_ms_[lo] + slope * (n - lo));
  }
  return kOptimism * step_ms_[hi] * n / hi;  // below the shortest timed step: proportional
}

void DraftPolicy::record_verification(DraftSource source, int proposed, int accepted) {
  if (proposed <= 0) return;
  const int i = static_cast<int>(source);
  constexpr double decay = 0.9;
  accepted_[i] = decay * accepted_[i] + accepted;
  rejected_[i] = decay * rejected_[i] + (accepted < proposed ? 1 : 0);
}

double DraftPolicy::acceptance(DraftSource source) const {
  const int i = static_cast<int>(source);
  return accepted_[i] / std::max(1e-9, accepted_[i] + rejected_[i]);
}

int DraftPolicy::length(DraftSource source) {
  if (fixed_length_ >= 0) return fixed_length_;
  ++calls_;
  const double a = std::min(acceptance(source), 0.999);
  // Until steps were timed, assume verification is cheap (so that it gets measured).
  const double base = timed_[1] ? step_ms_[1] : 1.0;
  auto cost = [&](int n) {
    const double c = cost_ms(n);
    return c > 0 ? c : base * (1 + 0.1 * (n - 1));
  };
  int best_k = 0;
  double best = 1.0 / (cost(1) + overhead_ms_);
  for (int k = 1; k <= kMaxDraft; ++k) {
    double rate = (1 - std::pow(a, k + 1)) / (1 - a) / (cost(1 + k) + overhead_ms_);
    if (rate > best * 1.02) best = rate, best_k = k;
  }
  if (best_k == 0 && calls_ % 16 == 0) return 1;  // probe
  return best_k;
}

namespace {

// The most recent earlier occurrence of the longest suffix match (up to kMaxNgram tokens):
// what followed it (at most max_len), and the match length.
std::pair<std::vector<int32_t>, int> longest_lookup(std::span<const int32_t> tokens, int max_len) {
  constexpr int kMaxNgram = 8;
  for (int ngram = kMaxNgram; ngram >= 1; --ngram) {
    auto found = prompt_lookup(tokens, ngram, max_len);
    if (!found.empty()) return {std::move(found), ngram};
  }
  return {{}, 0};
}

// The longest match (up to 8 tokens) of the end of `tokens` inside `text` with something after
// it, at the occurrence nearest to position `near` of text: what follows (at most max_len), and
// the match length.
std::pair<std::vector<int32_t>, int> lookup_in(std::span<const int32_t> tokens, std::span<const int32_t> text, int near,
                                               int max_len) {
  constexpr int kMaxNgram = 8;
  const int n = static_cast<int>(tokens.size()), m = static_cast<int>(text.size());
  for (int ngram = std::min(kMaxNgram, n); ngram >= 1; --ngram) {
    std::span<const int32_t> tail = tokens.subspan(n - ngram);
    int best = -1;
    for (int start = 0; start + ngram < m; ++start)
      if (std::equal(tail.begin(), tail.end(), text.begin() + start) &&
          (best < 0 || std::abs(start + ngram - near) < std::abs(best + ngram - near)))
        best = start;
    if (best < 0) continue;
    const int from = best + ngram, len = std::min(max_len, m - from);
    return {std::vector<int32_t>(text.begin() + from, text.begin() + from + len), ngram};
  }
  return {{}, 0};
}

}  // namespace

void propose_draft(Sequence& seq, DraftPolicy& policy) {
  seq.draft.clear();
  const int room = std::min(seq.request.sampling.max_tokens - seq.n_generated() - 1, kMaxDraft);
  if (room <= 0) return;
  // The rest of the previous suggestion, while the output still follows it.
  const auto& hint = seq.request.draft_hint;
  const int g = seq.n_generated();
  if (!hint.empty() && g < static_cast<int>(hint.size()) &&
      std::equal(seq.tokens.begin() + seq.n_prompt, seq.tokens.end(), hint.begin())) {
    const int len = std::min({policy.length(DraftSource::Hint), room, static_cast<int>(hint.size()) - g});
    seq.draft.assign(hint.begin() + g, hint.begin() + g + std::max(0, len));
    seq.draft_source = DraftSource::Hint;
    return;
  }
  auto [found, match] = longest_lookup(seq.tokens, room);
  // A previous suggestion the output left (the user typed a character it did not predict, or
  // that one it did, which the new output starts after): looked up like the prompt, near where
  // the output has got to, and preferred on an equal match.
  if (!hint.empty()) {
    auto [in_hint, hint_match] = lookup_in(seq.tokens, hint, g, room);
    if (!in_hint.empty() && hint_match >= match) found = std::move(in_hint), match = hint_match;
  }
  if (found.empty()) return;
  const DraftSource source = match >= 8   ? DraftSource::LookupFull
                            : match >= 5 ? DraftSource::LookupLonger
                            : match >= 3 ? DraftSource::LookupLong
                            : match == 2 ? DraftSource::Lookup2
                                         : DraftSource::Lookup;
  const int len = std::min<int>(policy.length(source), static_cast<int>(found.size()));
  found.resize(std::max(0, len));
  seq.draft = std::move(found);
  seq.draft_source = source;
}

}  // namespace ghostline::engine::runtime
