// Drafters for speculative decoding: cheap guesses of the tokens that follow, which the model
// verifies in one forward pass (greedy: the longest exactly agreeing run is accepted).
//
// Two sources, tried in order: the request's draft_hint (the rest of the previous suggestion
// for the same document) while the generated tokens still follow it, then prompt lookup (the
// most recent earlier occurrence of the last n tokens, n = 3..1, over prompt and output).
// The draft length adapts to recent acceptance: it grows while drafts are taken whole and
// shrinks when they are rejected.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ghostline::engine::runtime {

struct Sequence;

constexpr int kMaxDraft = 8;

// Tokens following the most recent earlier occurrence of the last `ngram` tokens of `tokens`
// (at most max_len), or nothing.
std::vector<int32_t> prompt_lookup(std::span<const int32_t> tokens, int ngram, int max_len);

// Fills seq.draft (within the request's remaining token budget).
void propose_draft(Sequence& seq);

}  // namespace ghostline::engine::runtime
