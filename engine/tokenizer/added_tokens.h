// Added tokens (special and not): found in text by leftmost-longest matching over a byte trie,
// with the lstrip / rstrip / single_word rules of Hugging Face `tokenizers`, and never split.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ghostline::engine::tokenizer_detail {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false, normalized = false, lstrip = false, rstrip = false, single_word = false;
};

// One piece of a split: an added token's id, or a stretch of plain text (id < 0).
struct Segment {
  int32_t id;  // -1: text
  size_t start, end;
};

class AddedTokenMatcher {
 public:
  void add(const AddedToken& token);
  bool empty() const { return tokens_.empty(); }
  // Cuts `text` into segments covering it left to right (stripped whitespace belongs to no segment).
  void split(std::string_view text, std::vector<Segment>* out) const;

 private:
  struct Node {
    int32_t first_child = -1, next_sibling = -1;
    unsigned char byte = 0;
    int32_t token = -1;  // index into tokens_
  };
  int32_t child(int32_t node, unsigned char b) const;
  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_ = std::vector<Node>(1);
  bool first_byte_[256] = {};
};

}  // namespace ghostline::engine::tokenizer_detail
