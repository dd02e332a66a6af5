// Property tests of the prefix cache: random insert / match / evict sequences checked against a
// plain list of every inserted sequence, and a shadow of each block's contents, so that a match
// can never hand out a block whose tokens differ from the query.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>

#include "engine/runtime/block_manager.h"
#include "engine/runtime/radix_cache.h"

using namespace ghostline::engine::runtime;

namespace {

int lcp(const std::vector<int32_t>& a, const std::vector<int32_t>& b, int limit) {
  int n = std::min<int>({static_cast<int>(a.size()), static_cast<int>(b.size()), limit});
  int i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// Writes a sequence into freshly allocated blocks, recording each block's tokens in `shadow`.
std::vector<int> write_blocks(BlockManager& bm, std::map<int, std::vector<int32_t>>& shadow,
                              const std::vector<int32_t>& seq, int B) {
  std::vector<int> blocks;
  for (size_t pos = 0; pos < seq.size(); pos += B) {
    auto b = bm.allocate();
    REQUIRE(b);
    shadow[*b].assign(seq.begin() + pos, seq.begin() + std::min(seq.size(), pos + B));
    blocks.push_back(*b);
  }
  return blocks;
}

std::vector<int32_t> random_seq(std::mt19937& rng, const std::vector<std::vector<int32_t>>& existing) {
  // Often extend or edit an earlier sequence, so that prefixes are shared.
  std::uniform_int_distribution<int> tok(0, 3), len(1, 40), pick(0, 9);
  std::vector<int32_t> s;
  if (!existing.empty() && pick(rng) < 7) {
    s = existing[rng() % existing.size()];
    s.resize(rng() % (s.size() + 1));
  }
  int extra = len(rng);
  for (int i = 0; i < extra; ++i) s.push_back(tok(rng));
  return s;
}

}  // namespace

TEST_CASE("radix cache matches the longest inserted prefix (random, no eviction)") {
  for (int B : {1, 4, 16}) {
    std::mt19937 rng(42 + B);
    BlockManager bm(100000);
    RadixCache cache(bm, B);
    std::map<int, std::vector<int32_t>> shadow;
    std::vector<std::vector<int32_t>> inserted;
    for (int iter = 0; iter < 400; ++iter) {
      auto seq = random_seq(rng, inserted);
      if (rng() % 2) {
        auto blocks = write_blocks(bm, shadow, seq, B);
        cache.insert(seq, blocks);
        for (int b : blocks) bm.release(b);  // the tree keeps what it took
        inserted.push_back(seq);
      } else {
        int limit = static_cast<int>(seq.size()) - static_cast<int>(rng() % 3);
        PrefixMatch m = cache.match(seq, limit);
        int expect = 0;
        for (auto& s : inserted) expect = std::max(expect, lcp(s, seq, limit));
        CHECK(m.tokens(B) == expect);
        // Every returned block holds exactly the query's tokens at its positions.
        for (size_t i = 0; i < m.blocks.size(); ++i) {
          auto& content = shadow.at(m.blocks[i]);
          REQUIRE(static_cast<int>(content.size()) == B);
          CHECK(std::equal(content.begin(), content.end(), seq.begin() + i * B));
        }
        if (m.partial_block >= 0) {
          auto& content = shadow.at(m.partial_block);
          REQUIRE(static_cast<int>(content.size()) >= m.partial_tokens);
          CHECK(std::equal(content.begin(), content.begin() + m.partial_tokens, seq.begin() + m.blocks.size() * B));
          bm.release(m.partial_block);
        }
        for (int b : m.blocks) bm.release(b);
      }
    }
    // With nobody holding blocks, the tree owns exactly the used ones.
    CHECK(bm.n_free() + cache.cached_blocks() == bm.n_blocks());
    CHECK(cache.evictable_blocks() == cache.cached_blocks());
  }
}

TEST_CASE("radix cache under memory pressure: evicts LRU leaves, never a referenced block") {
  const int B = 4;
  std::mt19937 rng(7);
  BlockManager bm(24);
  RadixCache cache(bm, B);
  std::map<int, std::vector<int32_t>> shadow;
  std::vector<std::vector<int32_t>> inserted;
  for (int iter = 0; iter < 2000; ++iter) {
    auto seq = random_seq(rng, inserted);
    if (seq.size() > 40) seq.resize(40);
    // Hold a match (like a running sequence) while allocating for a new one.
    PrefixMatch held = cache.match(seq, static_cast<int>(seq.size()));
    std::vector<int> fresh;
    bool ok = true;
    for (size_t pos = held.blocks.size() * B; pos < seq.size(); pos += B) {
      auto b = bm.allocate();
      if (!b && cache.evict(1) == 1) b = bm.allocate();
      if (!b) { ok = false; break; }
      shadow[*b].assign(seq.begin() + pos, seq.begin() + std::min(seq.size(), pos + B));
      fresh.push_back(*b);
    }
    // Held blocks were never evicted: still referenced, contents intact.
    for (size_t i = 0; i < held.blocks.size(); ++i) {
      CHECK(bm.refs(held.blocks[i]) >= 2);
      CHECK(std::equal(shadow[held.blocks[i]].begin(), shadow[held.blocks[i]].end(), seq.begin() + i * B));
    }
    if (ok) {
      std::vector<int> table = held.blocks;
      table.insert(table.end(), fresh.begin(), fresh.end());
      cache.insert(seq, table);
      inserted.push_back(seq);
    }
    for (int b : fresh) bm.release(b);
    for (int b : held.blocks) bm.release(b);
    if (held.partial_block >= 0) bm.release(held.partial_block);
    CHECK(bm.n_free() + cache.cached_blocks() == bm.n_blocks());
    // Whatever is still cached is correct.
    for (auto& [toks, blocks] : cache.dump())
      for (size_t i = 0; i < blocks.size(); ++i) {
        auto& content = shadow.at(blocks[i]);
        CHECK(std::equal(content.begin(), content.end(), toks.begin() + i * B));
      }
  }
}

TEST_CASE("radix cache evicts the least recently used leaf first") {
  const int B = 2;
  BlockManager bm(8);
  RadixCache cache(bm, B);
  auto put = [&](std::vector<int32_t> seq) {
    std::vector<int> blocks;
    for (size_t i = 0; i < seq.size(); i += B) blocks.push_back(*bm.allocate());
    cache.insert(seq, blocks);
    for (int b : blocks) bm.release(b);
  };
  put({1, 1, 2, 2});
  put({1, 1, 3, 3});
  put({5, 5});
  // Touch {1,1,2,2}: {1,1,3,3}'s leaf becomes the oldest, then {5,5}.
  PrefixMatch m = cache.match(std::vector<int32_t>{1, 1, 2, 2}, 4);
  for (int b : m.blocks) bm.release(b);
  CHECK(cache.evict(1) == 1);
  CHECK(cache.match(std::vector<int32_t>{1, 1, 3, 3}, 4).tokens(B) == 2);
  CHECK(cache.evict(1) == 1);
  CHECK(cache.match(std::vector<int32_t>{5, 5}, 2).tokens(B) == 0);
}
