// Added-token matching: a byte trie walked from each position; the longest token at the leftmost
// position wins, then the lstrip/rstrip/single_word rules adjust or reject the match.
#include "engine/tokenizer/added_tokens.h"

#include "engine/tokenizer/unicode_text.h"

namespace ghostline::engine::tokenizer_detail {

int32_t AddedTokenMatcher::child(int32_t node, unsigned char b) const {
  for (int32_t c = nodes_[node].first_child; c >= 0; c = nodes_[c].next_sibling)
    if (nodes_[c].byte == b) return c;
  return -1;
}

void AddedTokenMatcher::add(const AddedToken& token) {
  if (token.content.empty()) return;
  int32_t node = 0;
  for (unsigned char b : token.content) {
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
  if (nodes_[node].token >= 0) return;  // the same content twice: the first one wins
  nodes_[node].token = static_cast<int32_t>(tokens_.size());
  tokens_.push_back(token);
  first_byte_[static_cast<unsigned char>(token.content[0])] = true;
}

// Word characters for single_word: alphanumerics and '_'.
static bool is_word_char(char32_t c) { return c == '_' || is_alphanumeric(c); }

static char32_t last_char(std::string_view s) {
  size_t k = s.size() - 1;
  while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
  size_t n;
  return decode_at(s, k, &n);
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>* out) const {
  size_t start_offset = 0;
  size_t pos = 0;
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
      if (nodes_[node].token >= 0) {
        best = nodes_[node].token;
        best_end = k + 1;
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    const AddedToken& t = tokens_[best];
    size_t start = pos, stop = best_end;
    if (t.single_word) {
      size_t n;
      bool start_ok = start == 0 || !is_word_char(last_char(text.substr(0, start)));
      bool stop_ok = stop == text.size() || !is_word_char(decode_at(text, stop, &n));
      if (!start_ok || !stop_ok) {
        ++pos;  // the automaton would resume after this match; a rejected match is skipped
        pos = best_end;
        continue;
      }
    }
    if (t.lstrip) {
      size_t s = start;
      while (s > start_offset) {
        size_t k = s - 1;
        while (k > 0 && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
        size_t n;
        if (!is_unicode_whitespace(decode_at(text, k, &n))) break;
        s = k;
      }
      start = s;
    }
    if (t.rstrip) {
      while (stop < text.size()) {
        size_t n;
        if (!is_unicode_whitespace(decode_at(text, stop, &n))) break;
        stop += n;
      }
    }
    if (start_offset < start) out->push_back({-1, start_offset, start});
    out->push_back({t.id, start, stop});
    start_offset = stop;
    pos = stop;
  }
  if (start_offset < text.size()) out->push_back({-1, start_offset, text.size()});
}

}  // namespace ghostline::engine::tokenizer_detail
