// FILE:LINE:COL as compilers print it (1-based line, column in Unicode characters), resolved to
// a byte offset in the file's UTF-8 text. Used by `complete` and `context`.
#pragma once

#include <cstddef>
#include <string>

#include "engine/base/expected.h"

namespace ghostline::cli {

struct FileCursor {
  std::string path;
  std::string text;   // the whole file, valid UTF-8
  size_t offset = 0;  // byte offset of the cursor in text
  int line = 0;       // 1-based, as given
  int column = 0;     // 1-based, in Unicode characters, as given
};

// Fails with InvalidArgument for a malformed spec, a file that is not UTF-8, or a line or column
// outside the file (the column may be one past the line's last character); NotFound/Io for an
// unreadable file.
Expected<FileCursor> read_file_cursor(const std::string& spec);

// Byte offset of the first invalid UTF-8 sequence in text, or npos when it is all valid.
size_t first_invalid_utf8(const std::string& text);

}  // namespace ghostline::cli
