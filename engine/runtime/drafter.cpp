// Drafters: previous-suggestion remainder and prompt lookup; DraftPolicy: where drafting pays.
#include "engine/runtime/drafter.h"

#include <algorithm>
#include <cmath>

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
  // Priors: a previous suggestion is usually still right; prompt lookup half the time.
  accepted_[0] = 3, rejected_[0] = 1;
  accepted_[1] = 1, rejected_[1] = 1;
}

void DraftPolicy::record_step(int tokens, double ms) {
  constexpr double w = 0.1;
  if (tokens <= 0 || ms <= 0) return;
  if (tokens == 1) {
    base_ms_ = have_base_ ? (1 - w) * base_ms_ + w * ms : ms;
    have_base_ = true;
  } else if (have_base_ && tokens <= 4 * (kMaxDraft + 1)) {
    double per = std::max(0.0, (ms - base_ms_) / (tokens - 1));
    per_token_ms_ = have_per_token_ ? (1 - w) * per_token_ms_ + w * per : per;
    have_per_token_ = true;
  }
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
  const double base = have_base_ ? base_ms_ : 1.0;
  const double per = have_per_token_ ? per_token_ms_ : 0.1 * base;
  int best_k = 0;
  double best = 1.0 / base;
  for (int k = 1; k <= kMaxDraft; ++k) {
    double rate = (1 - std::pow(a, k + 1)) / (1 - a) / (base + per * k);
    if (rate > best * 1.02) best = rate, best_k = k;
  }
  if (best_k == 0 && calls_ % 16 == 0) return 1;  // probe
  return best_k;
}

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
  std::vector<int32_t> found;
  for (int ngram = 3; ngram >= 1 && found.empty(); --ngram) found = prompt_lookup(seq.tokens, ngram, room);
  if (found.empty()) return;
  const int len = std::min<int>(policy.length(DraftSource::Lookup), static_cast<int>(found.size()));
  found.resize(std::max(0, len));
  seq.draft = std::move(found);
  seq.draft_source = DraftSource::Lookup;
}

}  // namespace ghostline::engine::runtime
