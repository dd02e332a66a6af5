// Typing-through and the suggestion cache: the remainder after matching keystrokes, never a
// stale one after a differing keystroke or an edit elsewhere; LRU bounds.
#include <doctest/doctest.h>

#include "completion/suggestion_memory.h"

using namespace ghostline::completion;

TEST_CASE("typing through a suggestion answers with its remainder") {
  TypingThrough tt;
  std::string doc = "def f(x):\n    \n\nprint(f(2))\n";
  size_t cursor = doc.find("    \n") + 4;
  tt.remember("u", doc, cursor, "return x * 2");

  std::string typed = doc;
  typed.insert(cursor, "ret");
  auto rest = tt.remainder("u", typed, cursor + 3);
  REQUIRE(rest);
  CHECK(*rest == "urn x * 2");

  SUBCASE("a differing keystroke gets nothing") {
    std::string other = doc;
    other.insert(cursor, "rex");
    CHECK_FALSE(tt.remainder("u", other, cursor + 3));
  }
  SUBCASE("an edit elsewhere in the document gets nothing") {
    std::string elsewhere = typed;
    elsewhere.replace(elsewhere.find("print"), 5, "PRINT");
    CHECK_FALSE(tt.remainder("u", elsewhere, cursor + 3));
  }
  SUBCASE("the cursor must be right after the typed text") {
    CHECK_FALSE(tt.remainder("u", typed, cursor + 2));
  }
  SUBCASE("fully typed: ask the model again") {
    std::string all = doc;
    all.insert(cursor, "return x * 2");
    CHECK_FALSE(tt.remainder("u", all, cursor + 12));
  }
  SUBCASE("another document or a forgotten one gets nothing") {
    CHECK_FALSE(tt.remainder("v", typed, cursor + 3));
    tt.forget("u");
    CHECK_FALSE(tt.remainder("u", typed, cursor + 3));
  }
}

TEST_CASE("typing through never splits a UTF-8 character") {
  TypingThrough tt;
  std::string doc = "s = \n";
  tt.remember("u", doc, 4, "\"é\"");
  std::string typed = doc;
  typed.insert(4, "\"\xc3");  // half of é
  CHECK_FALSE(tt.remainder("u", typed, 6));
  typed = doc;
  typed.insert(4, "\"é");
  auto rest = tt.remainder("u", typed, 7);
  REQUIRE(rest);
  CHECK(*rest == "\"");
}

TEST_CASE("suggestion cache: exact keys, LRU eviction") {
  SuggestionCache cache(2);
  auto k1 = SuggestionCache::key("m", "prompt one", 64, "single-line");
  auto k2 = SuggestionCache::key("m", "prompt two", 64, "single-line");
  auto k3 = SuggestionCache::key("m", "prompt three", 64, "single-line");
  CHECK(k1 != SuggestionCache::key("m", "prompt one", 32, "single-line"));
  CHECK(k1 != SuggestionCache::key("other", "prompt one", 64, "single-line"));
  cache.put(k1, "a");
  cache.put(k2, "b");
  REQUIRE(cache.get(k1));  // k1 now most recent
  cache.put(k3, "c");      // evicts k2
  CHECK(cache.get(k1) == std::optional<std::string>("a"));
  CHECK_FALSE(cache.get(k2));
  CHECK(cache.get(k3) == std::optional<std::string>("c"));
  CHECK(cache.size() == 2);
}
