// Added tokens (special and not), as Hugging Face `tokenizers` registers and finds them:
// AddedVocabulary gives each one its id (a content already in the model's vocabulary keeps that
// id; the id written in tokenizer.json is not used) and builds the matchers; AddedTokenMatcher finds
// them in text by leftmost-longest matching over a byte trie, applies the lstrip / rstrip /
// single_word rules, and never splits them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace ghostline::engine::tokenizer_detail {

class Normalizer;

struct AddedToken {
  std::string content;
  bool special = false, normalized = false, lstrip = false, rstrip = false, single_word = false;
  bool operator==(const AddedToken&) const = default;
};

// One piece of a split: an added token's id, or a stretch of plain text (id < 0).
struct Segment {
  int32_t id;  // -1: text
  size_t start, end;
};

class AddedTokenMatcher {
 public:
  // `pattern` is what is searched for (the content, normalized for normalized tokens); `rules`
  // holds the lstrip / rstrip / single_word flags that apply to a match.
  void add(std::string_view pattern, int32_t id, const AddedToken& rules);
  bool empty() const { return entries_.empty(); }
  // Cuts `text` into segments left to right, as `tokenizers` does: the search resumes after each
  // match of the trie (a rejected single_word match included), so whitespace taken by an rstrip
  // can still start the next match; stripped whitespace belongs to the token's segment.
  void split(std::string_view text, std::vector<Segment>* out) const;

 private:
  struct Entry {
    int32_t id;
    bool lstrip, rstrip, single_word;
  };
  struct Node {
    int32_t first_child = -1, next_sibling = -1;
    unsigned char byte = 0;
    int32_t entry = -1;  // index into entries_
  };
  int32_t child(int32_t node, unsigned char b) const;
  std::vector<Entry> entries_;
  std::vector<Node> nodes_ = std::vector<Node>(1);
  bool first_byte_[256] = {};
};

// The added_tokens of tokenizer.json registered one by one, in file order, with the id rules of
// `tokenizers`: an empty content, or a token equal in every field to one already registered, is
// ignored; a content seen before (or in the model's vocabulary) keeps that id, and its latest
// flags are the ones matching uses; a new content gets the model's vocabulary size as id, or one
// past the largest added id when that is not below it.
class AddedVocabulary {
 public:
  // `model_vocab`: the model's spelling → id map (its size is the model's vocabulary size).
  void add(const AddedToken& token, const std::unordered_map<std::string, int32_t>& model_vocab);

  // content → id, and id → the token registered last under it.
  const std::unordered_map<std::string, int32_t>& ids() const { return ids_; }
  const std::unordered_map<int32_t, AddedToken>& tokens() const { return tokens_; }
  // True when some token with this content was registered as special.
  bool is_special(const std::string& content) const { return special_contents_.count(content) > 0; }

  // The two matchers: tokens with normalized == false search the raw text; the others search
  // the normalized text for their content normalized by `normalizer` (may be empty).
  void build_matchers(const Normalizer& normalizer, AddedTokenMatcher* raw, AddedTokenMatcher* normalized) const;

 private:
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<int32_t, AddedToken> tokens_;
  std::unordered_map<std::string, std::vector<int32_t>> stored_under_;  // content → ids it was stored under
  std::unordered_set<std::string> special_contents_;
  // The search patterns in `tokenizers`' order: special tokens first, then the others (each
  // entry with its own normalized flag; the rules come from tokens_ at build time).
  std::vector<AddedToken> special_order_, other_order_;
  int32_t max_id_ = -1;
};

}  // namespace ghostline::engine::tokenizer_detail
