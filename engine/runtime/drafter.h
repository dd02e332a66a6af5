// Drafters for speculative decoding: cheap guesses of the tokens that follow, which the model
// verifies in one forward pass (greedy: the longest exactly agreeing run is accepted).
//
// Two sources, tried in order: the request's draft_hint (the rest of the previous suggestion
// for the same document) while the generated tokens still follow it, then prompt lookup (the
// most recent earlier occurrence of the longest match of the last n tokens, n = 8..1, over
// prompt and output). A lookup after a long match is right far more often than one after a
// token or two (greedy completions of the 320 held-out FIM cases: of up to 8 drafted tokens,
// 1.25 accepted on average after a 1-token match, 2.4 after 3 tokens, 5.0 after 8), so match
// lengths are separate sources with their own acceptance.
//
// DraftPolicy picks the draft length where verification pays. It keeps what a step of n tokens
// costs (a low quantile of the last few timed steps of n tokens, n = 1 .. kMaxStepTokens: other
// processes only ever slow a step down, so the quantile tracks the step's own cost; an n not
// timed yet is interpolated
// between timed ones, a little optimistically so that it gets tried) and how
// often each source's drafted tokens are accepted (a per-token rate a, decaying average), and
// picks the k in 0..8 that maximises expected tokens per millisecond,
// (1 - a^(k+1)) / (1 - a) / (cost(1 + k) + overhead), overhead being the engine's own time per
// decode step outside the forward. The cost curve of a backend is not a line: on the CPU
// a forward over 4 or 8 tokens fills whole register tiles (engine/cpu/kernels_avx2.cpp).
// Where drafting does not pay it drafts nothing, apart from a one-token probe every 16th step
// that keeps the estimates current.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace ghostline::engine::runtime {

struct Sequence;

constexpr int kMaxDraft = 8;

// Prompt lookup is a source per match length: the longer the match, the likelier its draft is
// right (160 held-out FIM cases, greedy: the first drafted token is accepted 37% of the time
// after a 1-token match, 51% after 2, 65-73% after 3-4, 86% after 5-7, 94% after 8), so each
// length learns its own acceptance and gets its own draft length.
enum class DraftSource {
  Hint = 0,          // the rest of the previous suggestion
  Lookup = 1,        // prompt lookup after a match of the last token
  Lookup2 = 2,       // ... of the last 2 tokens
  LookupLong = 3,    // ... of 3-4
  LookupLonger = 4,  // ... of 5-7
  LookupFull = 5,    // ... of 8 (the longest tried)
};
constexpr int kDraftSources = 6;

class DraftPolicy {
 public:
  // Steps of up to this many tokens are timed (several sequences with drafts).
  static constexpr int kMaxStepTokens = 4 * (kMaxDraft + 1);

  // fixed_length >= 0 pins the length (tests, benchmarks); -1 adapts.
  explicit DraftPolicy(int fixed_length = -1);
  // A step in which every sequence was decoding: `tokens` fed in all, `ms` for the forward.
  void record_step(int tokens, double ms);
  void record_verification(DraftSource source, int proposed, int accepted);
  // The draft length for a source now (0: do not draft).
  int length(DraftSource source);
  double acceptance(DraftSource source) const;
  // Estimated milliseconds of a step of n tokens (n >= 1); 0 before any step was timed.
  double cost_ms(int n) const;
  // The engine's time in a decode step outside the forward.
  void record_overhead(double ms);
  double overhead_ms() const { return overhead_ms_; }

 private:
  static constexpr int kSamples = 25;  // timed steps kept per n
  std::array<std::array<double, kSamples>, kMaxStepTokens + 1> samples_{};
  std::array<int, kMaxStepTokens + 1> n_samples_{};   // total recorded per n
  std::array<double, kMaxStepTokens + 1> step_ms_{};  // low quantile of the kept samples
  std::array<double, kSamples> overhead_samples_{};
  int n_overhead_ = 0;
  double overhead_ms_ = 0;
  std::array<bool, kMaxStepTokens + 1> timed_{};
  double accepted_[kDraftSources], rejected_[kDraftSources];  // decaying counts per source
  uint64_t calls_ = 0;
  int fixed_length_ = -1;
};

// Tokens following the most recent earlier occurrence of the last `ngram` tokens of `tokens`
// (at most max_len), or nothing.
std::vector<int32_t> prompt_lookup(std::span<const int32_t> tokens, int ngram, int max_len);

// Fills seq.draft (within the request's remaining token budget) and seq.draft_source.
void propose_draft(Sequence& seq, DraftPolicy& policy);

}  // namespace ghostline::engine::runtime
