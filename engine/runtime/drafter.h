// Drafters for speculative decoding: cheap guesses of the tokens that follow, which the model
// verifies in one forward pass (greedy: the longest exactly agreeing run is accepted).
//
// Two sources, tried in order: the request's draft_hint (the rest of the previous suggestion
// for the same document) while the generated tokens still follow it, then prompt lookup (the
// most recent earlier occurrence of the last n tokens, n = 3..1, over prompt and output).
// DraftPolicy picks the draft length where verification pays: it learns what a decode step of
// T tokens costs (base + per_token * (T - 1), from timed steps) and how often each source's
// drafted tokens are accepted (a per-token rate, decaying average), and picks the k in 0..8 that
// maximises expected tokens per millisecond, (1 - a^(k+1)) / (1 - a) / (base + per_token * k).
// Where drafting does not pay (e.g. a CPU whose cost grows linearly in T) it drafts nothing,
// apart from a one-token probe every 16th step that keeps the estimates current.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ghostline::engine::runtime {

struct Sequence;

constexpr int kMaxDraft = 8;

enum class DraftSource { Hint = 0, Lookup = 1 };

class DraftPolicy {
 public:
  // fixed_length >= 0 pins the length (tests, benchmarks); -1 adapts.
  explicit DraftPolicy(int fixed_length = -1);
  // A step in which every sequence was decoding: `tokens` fed in all, `ms` for the forward.
  void record_step(int tokens, double ms);
  void record_verification(DraftSource source, int proposed, int accepted);
  // The draft length for a source now (0: do not draft).
  int length(DraftSource source);
  double acceptance(DraftSource source) const;
  double base_ms() const { return base_ms_; }
  double per_token_ms() const { return per_token_ms_; }

 private:
  double base_ms_ = 0, per_token_ms_ = 0;
  bool have_base_ = false, have_per_token_ = false;
  double accepted_[2], rejected_[2];  // decaying counts per source
  uint64_t calls_ = 0;
  int fixed_length_ = -1;
};

// Tokens following the most recent earlier occurrence of the last `ngram` tokens of `tokens`
// (at most max_len), or nothing.
std::vector<int32_t> prompt_lookup(std::span<const int32_t> tokens, int ngram, int max_len);

// Fills seq.draft (within the request's remaining token budget) and seq.draft_source.
void propose_draft(Sequence& seq, DraftPolicy& policy);

}  // namespace ghostline::engine::runtime
