// Drafters: previous-suggestion remainder and prompt lookup, with an adaptive draft length.
#include "engine/runtime/drafter.h"

#include <algorithm>

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

void propose_draft(Sequence& seq) {
  seq.draft.clear();
  int room = seq.request.sampling.max_tokens - seq.n_generated() - 1;
  int len = std::min({seq.draft_len, room, kMaxDraft});
  if (len <= 0) return;
  // The rest of the previous suggestion, while the output still follows it.
  const auto& hint = seq.request.draft_hint;
  const int g = seq.n_generated();
  if (!hint.empty() && g < static_cast<int>(hint.size()) &&
      std::equal(seq.tokens.begin() + seq.n_prompt, seq.tokens.end(), hint.begin())) {
    const int n = std::min<int>(len, static_cast<int>(hint.size()) - g);
    seq.draft.assign(hint.begin() + g, hint.begin() + g + n);
    return;
  }
  for (int ngram = 3; ngram >= 1 && seq.draft.empty(); --ngram) seq.draft = prompt_lookup(seq.tokens, ngram, len);
}

}  // namespace ghostline::engine::runtime
