// Position conversion in UTF-16 / UTF-8 / UTF-32 with emoji (surrogate pairs), CJK, combining
// marks and all three line ends, checked against the independent reference in unicode_reference.h.
#include <doctest/doctest.h>

#include "lsp/positions.h"
#include "unicode_reference.h"

using namespace ghostline::lsp;
namespace ref = ghostline::lsp::testref;

namespace {

const PositionEncoding kAll[] = {PositionEncoding::Utf16, PositionEncoding::Utf8, PositionEncoding::Utf32};

// 😀 (U+1F600, a surrogate pair), 中文 (CJK), e + U+0301 (combining acute), 👍🏽 (emoji + skin tone),
// and lines ended by \n, \r\n and \r.
const std::u32string kText = U"a😀b\r\n中文=e\u0301;\n👍🏽 x\rlast\u00e9";

}  // namespace

TEST_CASE("every code point boundary converts both ways in every encoding") {
  const std::string text = ref::utf8(kText);
  LineIndex index(text);
  CHECK(index.line_count() == 4);
  for (auto e : kAll) {
    CAPTURE(to_string(e));
    for (size_t i = 0; i <= kText.size(); ++i) {
      if (ref::inside_crlf(kText, i)) continue;
      CAPTURE(i);
      const size_t byte = ref::utf8(kText.substr(0, i)).size();
      const Position p = ref::position_of(kText, i, e);
      // Offsets at a line break's start map to the line's end; those are the same bytes.
      CHECK(index.to_offset(p, e) == byte);
      CHECK(index.to_position(byte, e) == p);
    }
  }
}

TEST_CASE("the widths of one emoji, one CJK character and one combining mark") {
  const std::u32string line = U"😀中\u0301";
  const std::string text = ref::utf8(line);
  LineIndex index(text);
  // Reference widths: the spec's units of each encoding.
  CHECK(index.to_position(text.size(), PositionEncoding::Utf16).character == int(ref::utf16(line).size()));
  CHECK(index.to_position(text.size(), PositionEncoding::Utf8).character == int(text.size()));
  CHECK(index.to_position(text.size(), PositionEncoding::Utf32).character == int(line.size()));
}

TEST_CASE("a UTF-16 position inside a surrogate pair rounds down to the emoji's start") {
  const std::string text = ref::utf8(U"a😀b");
  LineIndex index(text);
  CHECK(index.to_offset({0, 2}, PositionEncoding::Utf16) == 1);  // between the two halves
  CHECK(index.to_offset({0, 3}, PositionEncoding::Utf16) == 5);
  CHECK(index.to_offset({0, 3}, PositionEncoding::Utf8) == 1);   // inside the 4 UTF-8 bytes
}

TEST_CASE("positions past a line's end or past the last line clamp") {
  const std::string text = "ab\r\ncd";
  LineIndex index(text);
  CHECK(index.to_offset({0, 99}, PositionEncoding::Utf16) == 2);  // before \r\n
  CHECK(index.to_offset({1, 99}, PositionEncoding::Utf16) == 6);
  CHECK(index.to_offset({7, 0}, PositionEncoding::Utf16) == 6);
  CHECK(index.to_offset({-1, -1}, PositionEncoding::Utf16) == 0);
  CHECK(index.to_position(999, PositionEncoding::Utf16) == Position{1, 2});
}

TEST_CASE("invalid UTF-8 counts one unit per bad byte and never crashes") {
  const std::string text = "a\xff\xc3(\xe2\x82x\xf0\x9f\x98";  // stray bytes and truncated sequences
  LineIndex index(text);
  for (auto e : kAll) {
    Position end = index.to_position(text.size(), e);
    CHECK(end.line == 0);
    CHECK(index.to_offset(end, e) == text.size());
  }
  CHECK(index.to_position(text.size(), PositionEncoding::Utf32).character == int(text.size()));
}

TEST_CASE("encoding names") {
  for (auto e : kAll) CHECK(parse_encoding(to_string(e)) == e);
  CHECK_FALSE(parse_encoding("utf-7").has_value());
}
