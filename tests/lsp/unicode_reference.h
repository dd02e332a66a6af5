// An independent reference for position tests: text held as code points, encoded to UTF-8 and
// measured in each encoding by the simplest possible loops, with the LSP's line-end rules.
#pragma once

#include <string>
#include <vector>

#include "lsp/positions.h"

namespace ghostline::lsp::testref {

inline std::string utf8(const std::u32string& s) {
  std::string out;
  for (char32_t c : s) {
    if (c < 0x80) {
      out += char(c);
    } else if (c < 0x800) {
      out += char(0xC0 | (c >> 6));
      out += char(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += char(0xE0 | (c >> 12));
      out += char(0x80 | ((c >> 6) & 0x3F));
      out += char(0x80 | (c & 0x3F));
    } else {
      out += char(0xF0 | (c >> 18));
      out += char(0x80 | ((c >> 12) & 0x3F));
      out += char(0x80 | ((c >> 6) & 0x3F));
      out += char(0x80 | (c & 0x3F));
    }
  }
  return out;
}

inline std::u16string utf16(const std::u32string& s) {
  std::u16string out;
  for (char32_t c : s) {
    if (c < 0x10000) {
      out += char16_t(c);
    } else {
      c -= 0x10000;
      out += char16_t(0xD800 + (c >> 10));
      out += char16_t(0xDC00 + (c & 0x3FF));
    }
  }
  return out;
}

inline int measure(const std::u32string& s, PositionEncoding e) {
  switch (e) {
    case PositionEncoding::Utf8: return int(utf8(s).size());
    case PositionEncoding::Utf16: return int(utf16(s).size());
    case PositionEncoding::Utf32: return int(s.size());
  }
  return 0;
}

// Code-point index → (line, character) by walking the text.
inline Position position_of(const std::u32string& text, size_t index, PositionEncoding e) {
  size_t line_start = 0;
  int line = 0;
  for (size_t i = 0; i < index; ++i) {
    if (text[i] == U'\r' && i + 1 < text.size() && text[i + 1] == U'\n') {
      if (i + 1 == index) break;  // between \r and \n: treat as the end of the line
      ++i;
      ++line;
      line_start = i + 1;
    } else if (text[i] == U'\n' || text[i] == U'\r') {
      ++line;
      line_start = i + 1;
    }
  }
  size_t end = index;
  if (end > line_start && text[end - 1] == U'\r' && end < text.size() && text[end] == U'\n') --end;
  return Position{line, measure(text.substr(line_start, end - line_start), e)};
}

// True when `index` sits between the \r and \n of one line break (no position names it).
inline bool inside_crlf(const std::u32string& text, size_t index) {
  return index > 0 && index < text.size() && text[index - 1] == U'\r' && text[index] == U'\n';
}

}  // namespace ghostline::lsp::testref
