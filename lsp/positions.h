// Position encodings: converting LSP positions (line, character in UTF-16 code units by
// default, or UTF-8 bytes / UTF-32 code points when negotiated) to and from UTF-8 byte offsets.
//
// Line ends are "\n", "\r\n" and "\r", as the LSP specifies. A character past the end of its
// line clamps to the line end; a line past the last clamps to the end of the text. A position
// inside a code point (half a surrogate pair, the middle of a UTF-8 sequence) rounds down to
// the code point's start. Invalid UTF-8 bytes count as one code point each (U+FFFD, one unit in
// every encoding), so bad input never crashes or loops.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ghostline::lsp {

enum class PositionEncoding { Utf16, Utf8, Utf32 };

const char* to_string(PositionEncoding e);                          // "utf-16", "utf-8", "utf-32"
std::optional<PositionEncoding> parse_encoding(std::string_view s);

struct Position {
  int line = 0;
  int character = 0;
  bool operator==(const Position&) const = default;
};

struct Range {
  Position start, end;
  bool operator==(const Range&) const = default;
};

// Decodes one code point at `i` (i < s.size()); returns its byte length (1 for invalid bytes)
// and stores the scalar value (U+FFFD for invalid bytes).
size_t decode_utf8(std::string_view s, size_t i, char32_t* cp);

// Code units of one code point in the encoding.
int units_of(char32_t cp, size_t utf8_len, PositionEncoding e);

// Byte offsets of line starts over one text snapshot. Cheap to build; rebuild after edits.
class LineIndex {
 public:
  explicit LineIndex(std::string_view text);

  size_t line_count() const { return starts_.size(); }
  size_t to_offset(Position p, PositionEncoding e) const;
  Position to_position(size_t offset, PositionEncoding e) const;

 private:
  size_t line_content_end(size_t line) const;  // byte offset of the line's end, before its break
  std::string_view text_;
  std::vector<size_t> starts_;
};

}  // namespace ghostline::lsp
