// FILE:LINE:COL resolution: characters not bytes, CRLF, bounds, bad UTF-8, bad specs.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/file_cursor.h"

using namespace ghostline;
using namespace ghostline::cli;

namespace {
std::string write_temp(const std::string& name, const std::string& content) {
  auto path = std::filesystem::temp_directory_path() / ("ghostline_test_" + name);
  std::ofstream(path, std::ios::binary) << content;
  return path.string();
}
}  // namespace

TEST_CASE("columns count Unicode characters") {
  // "é" is 2 bytes, "😀" 4 bytes, "中" 3 bytes.
  std::string text = "x = 1\né😀中abc\nlast";
  auto path = write_temp("chars.txt", text);
  auto c = read_file_cursor(path + ":2:4");
  REQUIRE(c);
  CHECK(c->offset == text.find("abc"));
  auto end_of_line = read_file_cursor(path + ":2:7");
  REQUIRE(end_of_line);
  CHECK(end_of_line->offset == text.find("\nlast"));
  auto first = read_file_cursor(path + ":1:1");
  REQUIRE(first);
  CHECK(first->offset == 0);
}

TEST_CASE("CRLF: the carriage return is not a column") {
  std::string text = "ab\r\ncd\r\n";
  auto path = write_temp("crlf.txt", text);
  auto c = read_file_cursor(path + ":1:3");
  REQUIRE(c);
  CHECK(c->offset == 2);
  CHECK_FALSE(read_file_cursor(path + ":1:4"));
  auto line2 = read_file_cursor(path + ":2:2");
  REQUIRE(line2);
  CHECK(line2->offset == 5);
}

TEST_CASE("out of range and malformed specs fail with clear messages") {
  auto path = write_temp("range.txt", "one\ntwo\n");
  auto past_line = read_file_cursor(path + ":4:1");
  REQUIRE_FALSE(past_line);
  CHECK(past_line.error().message.find("past the end") != std::string::npos);
  auto past_col = read_file_cursor(path + ":1:5");
  REQUIRE_FALSE(past_col);
  CHECK(past_col.error().code == ErrorCode::InvalidArgument);
  CHECK_FALSE(read_file_cursor(path + ":0:1"));
  CHECK_FALSE(read_file_cursor(path + ":1"));
  CHECK_FALSE(read_file_cursor(path + ":a:1"));
  auto missing = read_file_cursor("/nonexistent/file.py:1:1");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::NotFound);
}

TEST_CASE("a file that is not UTF-8 is refused with the byte offset") {
  auto path = write_temp("latin1.txt", std::string("caf\xe9\n", 5));
  auto c = read_file_cursor(path + ":1:1");
  REQUIRE_FALSE(c);
  CHECK(c.error().message.find("not valid UTF-8 (byte offset 3)") != std::string::npos);
  CHECK(first_invalid_utf8("\xed\xa0\x80") == 0);  // a surrogate
  CHECK(first_invalid_utf8("\xc0\xaf") == 0);      // overlong
  CHECK(first_invalid_utf8("ok \xf0\x9f\x98\x80") == std::string::npos);
}

TEST_CASE("paths with colons") {
  auto path = write_temp("a:b.txt", "hello\n");
  auto c = read_file_cursor(path + ":1:3");
  REQUIRE(c);
  CHECK(c->offset == 2);
  CHECK(c->path == path);
}
