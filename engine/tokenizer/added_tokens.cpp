// Added tokens: their registration (ids and the rules in force for each id) and their matching, a
// byte trie walked from each position; the longest token at the leftmost position wins, then the
// lstrip/rstrip/single_word rules adjust or reject the match.
#include "engine/tokenizer/added_tokens.h"

#include <algorithm>

#include "engine/tokenizer/pipeline.h"
#include "engine/tokenizer/unicode_text.h"

namespace ghostline::engine::tokenizer_detail {

// ---- registration ---------------------------------------------------------------------------

void AddedVocabulary::add(const AddedToken& token, const std::unordered_map<std::string, int32_t>& model_vocab) {
  if (token.content.empty()) return;
  if (token.special && special_contents_.insert(token.content).second) special_order_.push_back(token);
  if (auto seen = stored_under_.find(token.content); seen != stored_under_.end())
    for (int32_t id : seen->second)
      if (tokens_.at(id) == token) return;  // registered already, with the same flags

  int32_t id;
  if (auto f = ids_.find(token.content); f != ids_.end()) {
    id = f->second;
  } else if (auto m = model_vocab.find(token.content); m != model_vocab.end()) {
    id = m->second;
  } else {
    // Counted from the model's number of entries, not from its largest id.
    const auto model_size = static_cast<int32_t>(model_vocab.size());
    id = max_id_ < 0 ? model_size : (max_id_ >= model_size || model_size == 0) ? max_id_ + 1 : model_size;
  }
  ids_[token.content] = id;
  max_id_ = std::max(max_id_, id);
  tokens_[id] = token;
  stored_under_[token.content].push_back(id);
  if (!special_contents_.count(token.content)) other_order_.push_back(token);
}

void AddedVocabulary::build_matchers(const Normalizer& normalizer, AddedTokenMatcher* raw,
                                     AddedTokenMatcher* normalized) const {
  auto add = [&](const AddedToken& entry) {
    int32_t id = ids_.at(entry.content);
    const AddedToken& rules = tokens_.at(id);
    if (!entry.normalized) raw->add(entry.content, id, rules);
    else normalized->add(normalizer.empty() ? entry.content : normalizer.apply(entry.content), id, rules);
  };
  for (const auto& t : special_order_) add(t);
  for (const auto& t : other_order_) add(t);
}

// ---- matching -------------------------------------------------------------------------------

int32_t AddedTokenMatcher::child(int32_t node, unsigned char b) const {
  for (int32_t c = nodes_[node].first_child; c >= 0; c = nodes_[c].next_sibling)
    if (nodes_[c].byte == b) return c;
  return -1;
}

void AddedTokenMatcher::add(std::string_view pattern, int32_t id, const AddedToken& rules) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (unsigned char b : pattern) {
    int32_t c = child(node, b);
    if (c < 0) {
      Node n;
      n.byte = b;
      n.next_sibling = nodes_[node].first_child;
      nodes_.push_back(n);
      c = static_cast<int32_t>(nodes_.size() - 1);
      nodes_[node].first_child = c;
    }
    node = c;
  }
  if (nodes_[node].entry >= 0) return;  // the same pattern twice: the first one is reported
  nodes_[node].entry = static_cast<int32_t>(entries_.size());
  entries_.push_back({id, rules.lstrip, rules.rstrip, rules.single_word});
  first_byte_[static_cast<unsigned char>(pattern[0])] = true;
}

// Start of the character that ends at `end` (> 0).
static size_t char_start_before(std::string_view s, size_t end) {
  size_t k = end - 1;
  while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
  return k;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>* out) const {
  size_t start_offset = 0;  // end of what the segments so far cover
  size_t pos = 0;           // where the search for the next match resumes
  while (pos < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t k = pos; k < text.size(); ++k) {
      node = child(node, static_cast<unsigned char>(text[k]));
      if (node < 0) break;
      if (nodes_[node].entry >= 0) {
        best = nodes_[node].entry;
        best_end = k + 1;
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    const Entry& e = entries_[best];
    size_t start = pos, stop = best_end;
    pos = best_end;
    size_t n;
    if (e.single_word) {
      bool word_before = start > 0 && is_regex_word_char(decode_at(text, char_start_before(text, start), &n));
      bool word_after = stop < text.size() && is_regex_word_char(decode_at(text, stop, &n));
      if (word_before || word_after) continue;
    }
    if (e.lstrip) {
      size_t s = start;
      while (s > 0) {
        size_t k = char_start_before(text, s);
        if (!is_unicode_whitespace(decode_at(text, k, &n))) break;
        s = k;
      }
      start = std::max(s, start_offset);  // whitespace an earlier match took stays with it
    }
    if (e.rstrip) {
      while (stop < text.size() && is_unicode_whitespace(decode_at(text, stop, &n))) stop += n;
    }
    if (start_offset < start) out->push_back({-1, start_offset, start});
    out->push_back({e.id, start, stop});
    start_offset = stop;
  }
  if (start_offset != text.size()) out->push_back({-1, start_offset, text.size()});
}

}  // namespace ghostline::engine::tokenizer_detail
