// The text stages of tokenizer.json before the model: normalizers and pre-tokenizers, parsed from
// their JSON and applied in Hugging Face `tokenizers` order.
//
// Normalizers: Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace (String pattern),
// Strip. Pre-tokenizers: Sequence, Split (Regex or String pattern; Removed, Isolated,
// MergedWithPrevious, MergedWithNext, Contiguous; invert), ByteLevel (add_prefix_space,
// use_regex; trim_offsets only concerns offsets), Digits (individual_digits). Anything else is
// refused at load time with Unsupported.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/base/expected.h"
#include "engine/tokenizer/regex.h"

namespace ghostline::engine::tokenizer_detail {

class Normalizer {
 public:
  // `j` may be null (no normalizer).
  static Expected<Normalizer> parse(const nlohmann::json& j);
  bool empty() const { return steps_.empty(); }
  std::string apply(std::string text) const;

  struct Step;  // defined in pipeline.cpp

 private:
  std::vector<std::shared_ptr<const Step>> steps_;
};

class PreTokenizer {
 public:
  static Expected<PreTokenizer> parse(const nlohmann::json& j);
  // Splits `text` into pre-token words (appended to *out, which is used as scratch too).
  void apply(const std::string& text, std::vector<std::string>* out) const;
  // True when a ByteLevel step is present: words are then byte strings for a byte-level vocab.
  bool byte_level() const { return byte_level_; }

  struct Step;  // defined in pipeline.cpp

 private:
  std::vector<std::shared_ptr<const Step>> steps_;
  bool byte_level_ = false;
};

}  // namespace ghostline::engine::tokenizer_detail
