// Position encodings (see positions.h).
#include "lsp/positions.h"

#include <algorithm>

namespace ghostline::lsp {

const char* to_string(PositionEncoding e) {
  switch (e) {
    case PositionEncoding::Utf8: return "utf-8";
    case PositionEncoding::Utf32: return "utf-32";
    case PositionEncoding::Utf16: break;
  }
  return "utf-16";
}

std::optional<PositionEncoding> parse_encoding(std::string_view s) {
  if (s == "utf-16") return PositionEncoding::Utf16;
  if (s == "utf-8") return PositionEncoding::Utf8;
  if (s == "utf-32") return PositionEncoding::Utf32;
  return std::nullopt;
}

size_t decode_utf8(std::string_view s, size_t i, char32_t* cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  *cp = 0xFFFD;
  if (c < 0x80) { *cp = c; return 1; }
  size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? (c <= 0xEF ? 3 : 0) : c >= 0xC2 ? 2 : 0;
  if (len == 0 || i + len > s.size()) return 1;
  char32_t v = c & (0xFF >> (len + 1));
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 1;
    v = (v << 6) | (b(i + k) & 0x3F);
  }
  // Reject overlong forms, surrogates and values past U+10FFFF.
  if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v <= 0xDFFF)) return 1;
  *cp = v;
  return len;
}

int units_of(char32_t cp, size_t utf8_len, PositionEncoding e) {
  switch (e) {
    case PositionEncoding::Utf8: return static_cast<int>(utf8_len);
    case PositionEncoding::Utf32: return 1;
    case PositionEncoding::Utf16: break;
  }
  return cp >= 0x10000 ? 2 : 1;
}

LineIndex::LineIndex(std::string_view text) : text_(text) {
  starts_.push_back(0);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') {
      starts_.push_back(i + 1);
    } else if (text[i] == '\r') {
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
      starts_.push_back(i + 1);
    }
  }
}

size_t LineIndex::line_content_end(size_t line) const {
  size_t end = line + 1 < starts_.size() ? starts_[line + 1] : text_.size();
  if (line + 1 < starts_.size()) {
    if (end > starts_[line] && text_[end - 1] == '\n') --end;
    if (end > starts_[line] && text_[end - 1] == '\r') --end;
  }
  return end;
}

size_t LineIndex::to_offset(Position p, PositionEncoding e) const {
  if (p.line < 0) return 0;
  if (static_cast<size_t>(p.line) >= starts_.size()) return text_.size();
  size_t i = starts_[p.line];
  size_t end = line_content_end(p.line);
  long remaining = std::max(p.character, 0);
  while (i < end && remaining > 0) {
    char32_t cp;
    size_t len = std::min(decode_utf8(text_, i, &cp), end - i);
    int units = units_of(cp, len, e);
    if (units > remaining) break;  // inside this code point: round down
    remaining -= units;
    i += len;
  }
  return i;
}

Position LineIndex::to_position(size_t offset, PositionEncoding e) const {
  offset = std::min(offset, text_.size());
  size_t line = std::upper_bound(starts_.begin(), starts_.end(), offset) - starts_.begin() - 1;
  size_t end = std::min(line_content_end(line), offset);
  int character = 0;
  for (size_t i = starts_[line]; i < end;) {
    char32_t cp;
    size_t len = decode_utf8(text_, i, &cp);
    if (i + len > end) break;  // offset inside a code point: round down
    character += units_of(cp, len, e);
    i += len;
  }
  return {static_cast<int>(line), character};
}

}  // namespace ghostline::lsp
