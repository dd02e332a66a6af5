// Resolving FILE:LINE:COL; see file_cursor.h.
#include "cli/file_cursor.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ghostline::cli {
namespace {

bool parse_positive(const std::string& s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  out = std::atoi(s.c_str());
  return out >= 1;
}

size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 0;
}

}  // namespace

size_t first_invalid_utf8(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t n = utf8_length(c);
    if (n == 0 || i + n > text.size()) return i;
    uint32_t cp = n == 1 ? c : (c & (0x7F >> n));
    for (size_t k = 1; k < n; ++k) {
      unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += n;
  }
  return std::string::npos;
}

Expected<FileCursor> read_file_cursor(const std::string& spec) {
  auto last = spec.rfind(':');
  auto mid = last == std::string::npos || last == 0 ? std::string::npos : spec.rfind(':', last - 1);
  FileCursor fc;
  if (mid == std::string::npos || mid == 0 || !parse_positive(spec.substr(mid + 1, last - mid - 1), fc.line) ||
      !parse_positive(spec.substr(last + 1), fc.column))
    return make_error(ErrorCode::InvalidArgument, "expected FILE:LINE:COL with 1-based LINE and COL, got '" + spec + "'");
  fc.path = spec.substr(0, mid);

  std::ifstream in(fc.path, std::ios::binary);
  if (!in) return make_error(ErrorCode::NotFound, "cannot open " + fc.path + ": " + std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::Io, "cannot read " + fc.path);
  fc.text = buf.str();
  if (size_t bad = first_invalid_utf8(fc.text); bad != std::string::npos)
    return make_error(ErrorCode::InvalidArgument, fc.path + " is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");

  // Find the line's start.
  size_t pos = 0;
  int lines_total = 1;
  for (char c : fc.text) lines_total += c == '\n';
  if (fc.line > lines_total)
    return make_error(ErrorCode::InvalidArgument, "line " + std::to_string(fc.line) + " is past the end of " + fc.path +
                                                      " (" + std::to_string(lines_total) + " lines)");
  for (int l = 1; l < fc.line; ++l) pos = fc.text.find('\n', pos) + 1;
  size_t line_end = fc.text.find('\n', pos);
  if (line_end == std::string::npos) line_end = fc.text.size();
  if (line_end > pos && fc.text[line_end - 1] == '\r') --line_end;  // CRLF: the \r is not a column

  // Walk `column - 1` characters.
  int chars = 0;
  size_t p = pos;
  while (chars < fc.column - 1 && p < line_end) {
    p += utf8_length(static_cast<unsigned char>(fc.text[p]));
    ++chars;
  }
  if (chars < fc.column - 1)
    return make_error(ErrorCode::InvalidArgument, "column " + std::to_string(fc.column) + " is past the end of line " +
                                                      std::to_string(fc.line) + " of " + fc.path + " (" +
                                                      std::to_string(chars) + " characters)");
  fc.offset = p;
  return fc;
}

}  // namespace ghostline::cli
