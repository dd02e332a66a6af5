// Test sources with inline markers (after clangd's Annotations): `^` marks a point and
// `[[...]]` a range, so cursors are never counted by hand. Positions and byte offsets come from
// the independent reference in unicode_reference.h.
#pragma once

#include <string>
#include <vector>

#include "unicode_reference.h"

namespace ghostline::lsp::testref {

class Annotated {
 public:
  explicit Annotated(const std::u32string& marked) {
    std::vector<size_t> open;
    for (size_t i = 0; i < marked.size(); ++i) {
      if (marked[i] == U'^') {
        points_.push_back(text_.size());
      } else if (marked.compare(i, 2, U"[[") == 0) {
        open.push_back(text_.size());
        ++i;
      } else if (marked.compare(i, 2, U"]]") == 0 && !open.empty()) {
        ranges_.push_back({open.back(), text_.size()});
        open.pop_back();
        ++i;
      } else {
        text_ += marked[i];
      }
    }
  }
  std::string text() const { return utf8(text_); }
  size_t point_byte(size_t i = 0) const { return utf8(text_.substr(0, points_.at(i))).size(); }
  Position point(PositionEncoding e, size_t i = 0) const { return position_of(text_, points_.at(i), e); }
  std::pair<size_t, size_t> range_bytes(size_t i = 0) const {
    return {utf8(text_.substr(0, ranges_.at(i).first)).size(), utf8(text_.substr(0, ranges_.at(i).second)).size()};
  }
  Range range(PositionEncoding e, size_t i = 0) const {
    return {position_of(text_, ranges_.at(i).first, e), position_of(text_, ranges_.at(i).second, e)};
  }

 private:
  std::u32string text_;
  std::vector<size_t> points_;
  std::vector<std::pair<size_t, size_t>> ranges_;
};

}  // namespace ghostline::lsp::testref
