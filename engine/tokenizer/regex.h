// A compiled PCRE2 pattern (UTF + Unicode properties, JIT when available) that lists the
// non-overlapping matches in a string, as Hugging Face's Split pre-tokenizer walks them.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/expected.h"

namespace ghostline::engine::tokenizer_detail {

class Regex {
 public:
  // Errors: InvalidArgument with PCRE2's message and offset.
  static Expected<std::shared_ptr<const Regex>> compile(const std::string& pattern);
  ~Regex();

  // Appends [start, end) byte ranges of every match in `text` (valid UTF-8), left to right.
  // An empty match advances by one character. Safe to call from many threads at once.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const;

 private:
  Regex() = default;
  void* code_ = nullptr;  // pcre2_code*
};

}  // namespace ghostline::engine::tokenizer_detail
