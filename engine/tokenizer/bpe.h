// The BPE model of tokenizer.json: vocabulary, ranked merges, and the merge loop that turns one
// pre-token word into ids exactly as Hugging Face `tokenizers` does (lowest rank first, leftmost
// on ties), with a per-word cache.
//
// Words arrive as bytes when the pipeline is byte-level (the vocabulary is then keyed by the
// bytes each spelling stands for) and as UTF-8 text otherwise.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/base/expected.h"

namespace ghostline::engine::tokenizer_detail {

class BpeModel {
 public:
  // `model` is tokenizer.json's "model" object (type "BPE"). Errors name the field that is wrong.
  static Expected<std::unique_ptr<BpeModel>> parse(const nlohmann::json& model, bool byte_level);

  // Appends the ids of one word. Thread-safe.
  void encode_word(std::string_view word, std::vector<int32_t>* out) const;

  // Vocabulary spellings, indexed by id ("" for holes).
  const std::vector<std::string>& spellings() const { return spellings_; }
  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }

 private:
  struct MergeResult {
    int32_t rank;
    int32_t id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void merge_word(std::string_view word, std::vector<int32_t>* out) const;
  void initial_symbols(std::string_view word, std::vector<int32_t>* ids) const;

  bool byte_level_ = false;
  bool ignore_merges_ = false;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  std::optional<int32_t> unk_id_;
  std::string prefix_, suffix_;  // continuing_subword_prefix, end_of_word_suffix
  std::unordered_map<std::string, int32_t> vocab_;     // spelling → id
  std::unordered_map<std::string, int32_t> key_vocab_; // word-space key (bytes when byte-level) → id
  std::vector<std::string> spellings_;
  int32_t byte_ids_[256];  // fast path: the id of each single byte (-1: none)
  std::unordered_map<uint64_t, MergeResult> merges_;

  static constexpr size_t kCacheLimit = 200000;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace ghostline::engine::tokenizer_detail
