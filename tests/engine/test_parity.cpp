// Parity with Hugging Face transformers: for every fixture, logits within 1e-4 relative at every
// position, whether the prompt is prefilled at once, fed token by token, or in chunks beside
// another sequence, through shuffled (non-contiguous) block tables of a small block size; and
// greedy continuations identical.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>

#include "engine/cpu/kernels.h"
#include "engine/model.h"
#include "fixture_reader.h"

using namespace ghostline;
using namespace ghostline::engine;

namespace {

constexpr double kTolerance = 1e-4;
constexpr int kBlock = 4;

// Hands out shuffled block ids from one pool, so sequences span several non-contiguous blocks.
struct Blocks {
  std::vector<int32_t> free;
  explicit Blocks(int n, unsigned seed) {
    free.resize(n);
    std::iota(free.begin(), free.end(), 0);
    std::shuffle(free.begin(), free.end(), std::mt19937(seed));
  }
  std::vector<int32_t> take(int tokens) {
    int n = (tokens + kBlock - 1) / kBlock;
    REQUIRE(n <= static_cast<int>(free.size()));
    std::vector<int32_t> t(free.end() - n, free.end());
    free.resize(free.size() - n);
    return t;
  }
};

int pool_blocks(const test::Fixture& f) {
  int n = 0;
  for (const auto& p : f.prompts) n += static_cast<int>(p.size() + 40) / kBlock + 2;
  return 2 * n;
}

std::unique_ptr<Model> load(const test::Fixture& f) {
  LoadOptions o;
  o.threads = 2;
  auto m = load_model(f.dir, o);
  REQUIRE_MESSAGE(m.has_value(), f.name << ": " << (m ? "" : m.error().message));
  REQUIRE((*m)->allocate_kv(kBlock, pool_blocks(f)).has_value());
  return std::move(*m);
}

void check_rows(const test::Fixture& f, size_t prompt, int first_pos, const std::vector<float>& logits, int rows, const char* mode) {
  const int V = static_cast<int>(f.logits[prompt].size() / f.prompts[prompt].size());
  REQUIRE(static_cast<int>(logits.size()) == rows * V);
  double worst = 0;
  int worst_pos = -1;
  for (int r = 0; r < rows; ++r) {
    double e = test::relative_error(logits.data() + r * V, f.logits[prompt].data() + static_cast<int64_t>(first_pos + r) * V, V);
    if (e > worst) worst = e, worst_pos = first_pos + r;
  }
  INFO(f.name << " prompt " << prompt << " (" << f.prompts[prompt].size() << " tokens), " << mode << ": worst relative error "
              << worst << " at position " << worst_pos);
  CHECK(worst <= kTolerance);
}

// Prompt p prefilled whole in one step, logits of every position checked.
void check_whole_prompt(const test::Fixture& f, Model& m, Blocks& blocks, size_t p, const char* mode) {
  StepBatch b;
  b.tokens = f.prompts[p];
  SequenceStep s;
  s.n_new = static_cast<int>(f.prompts[p].size());
  s.block_table = blocks.take(s.n_new);
  s.all_logits = true;
  b.seqs.push_back(s);
  std::vector<float> logits;
  REQUIRE(m.forward(b, logits).has_value());
  check_rows(f, p, 0, logits, s.n_new, mode);
}

}  // namespace

TEST_CASE("fixtures exist") { CHECK(test::fixture_dirs().size() >= 1); }

TEST_CASE("parity: whole-prompt prefill, every position") {
  for (const auto& dir : test::fixture_dirs()) {
    auto f = test::load_fixture(dir);
    auto m = load(f);
    Blocks blocks(pool_blocks(f), 7);
    for (size_t p = 0; p < f.prompts.size(); ++p) {
      check_whole_prompt(f, *m, blocks, p, "prefill");
    }
  }
}

TEST_CASE("parity: the AVX-512, AVX2 and portable kernels (CPUs without AMX, AVX-512 or AVX2), prefill") {
  for (const char* isa : {"avx512", "avx2", "portable"}) {
    if (!ghostline::cpu::force_kernel_isa(isa)) continue;  // this CPU lacks it
    const std::string mode = std::string("prefill, kernels ") + isa;
    for (const auto& dir : test::fixture_dirs()) {
      auto f = test::load_fixture(dir);
      auto m = load(f);
      Blocks blocks(pool_blocks(f), 23);
      check_whole_prompt(f, *m, blocks, f.prompts.size() - 1, mode.c_str());
    }
  }
  ghostline::cpu::force_kernel_isa("");
}

TEST_CASE("parity: token-by-token decode through the paged KV") {
  for (const auto& dir : test::fixture_dirs()) {
    auto f = test::load_fixture(dir);
    auto m = load(f);
    Blocks blocks(pool_blocks(f), 11);
    for (size_t p = 0; p < f.prompts.size(); ++p) {
      const int n = static_cast<int>(f.prompts[p].size());
      auto table = blocks.take(n);
      std::vector<float> all;
      for (int i = 0; i < n; ++i) {
        StepBatch b;
        b.tokens = {f.prompts[p][i]};
        SequenceStep s;
        s.n_past = i;
        s.n_new = 1;
        s.block_table.assign(table.begin(), table.begin() + (i + kBlock) / kBlock);
        b.seqs.push_back(s);
        std::vector<float> logits;
        REQUIRE(m->forward(b, logits).has_value());
        all.insert(all.end(), logits.begin(), logits.end());
      }
      check_rows(f, p, 0, all, n, "decode");
    }
  }
}

TEST_CASE("parity: chunked prefill of one prompt batched with another sequence") {
  for (const auto& dir : test::fixture_dirs()) {
    auto f = test::load_fixture(dir);
    REQUIRE(f.prompts.size() >= 2);
    auto m = load(f);
    Blocks blocks(pool_blocks(f), 13);
    const auto& long_p = f.prompts.back();
    const auto& short_p = f.prompts[1];
    auto t_long = blocks.take(static_cast<int>(long_p.size()));
    auto t_short = blocks.take(static_cast<int>(short_p.size()));
    // Step 1: the short prompt whole (last logits only) + the long prompt's first chunk (all logits).
    // Step 2..: the rest of the long prompt in chunks of 50, all logits.
    const int chunk = 50;
    int done = 0;
    bool first = true;
    while (done < static_cast<int>(long_p.size())) {
      int n = std::min(chunk, static_cast<int>(long_p.size()) - done);
      StepBatch b;
      if (first) {
        SequenceStep s;
        s.n_new = static_cast<int>(short_p.size());
        s.block_table = t_short;
        b.tokens = short_p;
        b.seqs.push_back(s);
      }
      SequenceStep s;
      s.n_past = done;
      s.n_new = n;
      s.block_table = t_long;
      s.all_logits = true;
      b.tokens.insert(b.tokens.end(), long_p.begin() + done, long_p.begin() + done + n);
      b.seqs.push_back(s);
      std::vector<float> logits;
      REQUIRE(m->forward(b, logits).has_value());
      const int V = m->info().vocab_size;
      if (first) {
        std::vector<float> short_last(logits.begin(), logits.begin() + V);
        check_rows(f, 1, static_cast<int>(short_p.size()) - 1, short_last, 1, "batched, last position");
        logits.erase(logits.begin(), logits.begin() + V);
      }
      check_rows(f, f.prompts.size() - 1, done, logits, n, "chunked prefill");
      done += n;
      first = false;
    }
  }
}

TEST_CASE("parity: greedy continuation identical") {
  for (const auto& dir : test::fixture_dirs()) {
    auto f = test::load_fixture(dir);
    auto m = load(f);
    Blocks blocks(pool_blocks(f), 17);
    const int V = m->info().vocab_size;
    for (const auto& g : f.greedy) {
      const auto& prompt = f.prompts[g.prompt];
      auto table = blocks.take(static_cast<int>(prompt.size() + g.tokens.size()) + 1);
      std::vector<int32_t> out;
      StepBatch b;
      b.tokens = prompt;
      SequenceStep s;
      s.n_new = static_cast<int>(prompt.size());
      s.block_table = table;
      b.seqs.push_back(s);
      for (size_t i = 0; i < g.tokens.size(); ++i) {
        std::vector<float> logits;
        REQUIRE(m->forward(b, logits).has_value());
        REQUIRE(static_cast<int>(logits.size()) == V);
        int32_t tok = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        out.push_back(tok);
        b.tokens = {tok};
        b.seqs[0].n_past += b.seqs[0].n_new;
        b.seqs[0].n_new = 1;
      }
      INFO(f.name << " greedy from prompt " << g.prompt);
      CHECK(out == g.tokens);
    }
  }
}

TEST_CASE("copy_kv_block: a sequence continues from a copy of its partial last block") {
  auto f = test::load_fixture(test::fixture_dirs().front());
  auto m = load(f);
  const auto& p = f.prompts[1];
  const int n = static_cast<int>(p.size());
  const int split = (n / kBlock) * kBlock - 2;  // inside a block, so that block is partial
  REQUIRE(split > kBlock);
  Blocks blocks(pool_blocks(f), 19);
  auto table = blocks.take(n);
  StepBatch b;
  b.tokens.assign(p.begin(), p.begin() + split);
  SequenceStep s;
  s.n_new = split;
  s.block_table = table;
  b.seqs.push_back(s);
  std::vector<float> logits;
  REQUIRE(m->forward(b, logits).has_value());
  // Copy-on-write of the partial block: the continuation writes into the copy only.
  const int partial = split / kBlock;
  const int32_t fresh = blocks.take(1).front();
  m->copy_kv_block(table[partial], fresh);
  table[partial] = fresh;
  b.tokens.assign(p.begin() + split, p.end());
  b.seqs[0].n_past = split;
  b.seqs[0].n_new = n - split;
  b.seqs[0].block_table = table;
  b.seqs[0].all_logits = true;
  REQUIRE(m->forward(b, logits).has_value());
  check_rows(f, 1, split, logits, n - split, "after copy_kv_block");
}
