// DocumentStore: random incremental edit sequences in every encoding against the reference
// (text as code points), and the byte edits it hands to the service replayed independently.
#include <doctest/doctest.h>

#include <random>

#include "lsp/documents.h"
#include "unicode_reference.h"

using namespace ghostline::lsp;
namespace ref = ghostline::lsp::testref;

namespace {

const char32_t kAlphabet[] = {U'a', U'z', U' ', U'(', U'\n', U'\r', U'\u00e9', U'\u0301', U'\u4e2d', U'\U0001F600', U'\U0001F3FD'};

std::u32string random_text(std::mt19937& rng, int max_len) {
  std::u32string s;
  int n = std::uniform_int_distribution<int>(0, max_len)(rng);
  for (int i = 0; i < n; ++i) s += kAlphabet[std::uniform_int_distribution<size_t>(0, std::size(kAlphabet) - 1)(rng)];
  return s;
}

size_t random_index(std::mt19937& rng, const std::u32string& text) {
  size_t i = std::uniform_int_distribution<size_t>(0, text.size())(rng);
  if (ref::inside_crlf(text, i)) --i;
  return i;
}

}  // namespace

TEST_CASE("random incremental edits match the reference in every encoding") {
  for (auto enc : {PositionEncoding::Utf16, PositionEncoding::Utf8, PositionEncoding::Utf32}) {
    CAPTURE(to_string(enc));
    std::mt19937 rng(1234 + int(enc));
    for (int round = 0; round < 20; ++round) {
      std::u32string reference = random_text(rng, 40);
      DocumentStore store;
      const std::string uri = "file:///r.txt";
      store.open(uri, "plaintext", ref::utf8(reference), 1);
      std::string replayed = ref::utf8(reference);  // what the service would hold
      for (int step = 0; step < 40; ++step) {
        size_t a = random_index(rng, reference), b = random_index(rng, reference);
        if (a > b) std::swap(a, b);
        std::u32string inserted = random_text(rng, 6);
        ContentChange change{Range{ref::position_of(reference, a, enc), ref::position_of(reference, b, enc)},
                             ref::utf8(inserted)};
        // Replacing just after a \r with text starting in \n would glue a new \r\n; both sides
        // follow the same rule, so the reference stays exact.
        reference = reference.substr(0, a) + inserted + reference.substr(b);
        auto edits = store.apply(uri, step + 2, {change}, enc);
        REQUIRE(edits);
        REQUIRE(edits->size() == 1);
        const auto& e = edits->front();
        REQUIRE(e.start <= e.old_end);
        REQUIRE(e.old_end <= replayed.size());
        replayed.replace(e.start, e.old_end - e.start, e.text);
        auto snap = store.get(uri);
        REQUIRE(snap);
        REQUIRE(snap->text == ref::utf8(reference));
        REQUIRE(replayed == snap->text);
        CHECK(snap->version == step + 2);
      }
    }
  }
}

TEST_CASE("several changes in one didChange apply one after another; a full change replaces all") {
  DocumentStore store;
  store.open("u", "python", "hello\r\nworld", 1);
  auto edits = store.apply("u", 2,
                           {ContentChange{Range{{1, 0}, {1, 5}}, "there"},
                            ContentChange{Range{{0, 5}, {0, 5}}, ","},
                            ContentChange{std::nullopt, "x😀y"},
                            ContentChange{Range{{0, 1}, {0, 3}}, ""}},
                           PositionEncoding::Utf16);
  REQUIRE(edits);
  CHECK(edits->size() == 4);
  CHECK(store.get("u")->text == "xy");
  CHECK(edits->at(2).start == 0);
  CHECK(edits->at(2).old_end == std::string("hello,\r\nthere").size());
  CHECK(edits->at(3).start == 1);
  CHECK(edits->at(3).old_end == 5);  // the emoji's 4 bytes
}

TEST_CASE("changes to a document that is not open are refused") {
  DocumentStore store;
  auto r = store.apply("file:///nope", 2, {ContentChange{std::nullopt, "x"}}, PositionEncoding::Utf16);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("file:///nope") != std::string::npos);
  store.open("a", "c", "x", 1);
  store.close("a");
  CHECK_FALSE(store.get("a"));
}
