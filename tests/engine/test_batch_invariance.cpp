// A token's logits do not depend on the other tokens of its step: for every fixture, a forward
// over k new tokens (k = 1..8, every row of logits, as speculative verification runs it) gives
// bit for bit the logits of k forwards over one token, and so do a whole-prompt prefill and a
// step shared with another sequence; with the AVX2 and with the portable kernels. Greedy output
// with speculation on and off is then identical by construction, not by luck with ties.
#include <doctest/doctest.h>

#include <cstring>
#include <numeric>
#include <string_view>

#include "engine/cpu/kernels.h"
#include "engine/model.h"
#include "fixture_reader.h"

using namespace ghostline;
using namespace ghostline::engine;

namespace {

constexpr int kBlock = 4;
constexpr int kMaxK = 8;

struct Run {
  std::unique_ptr<Model> model;
  std::vector<int32_t> table;  // enough blocks for the longest prompt (shuffled)
};

Run open(const test::Fixture& f, int threads) {
  LoadOptions o;
  o.threads = threads;
  auto m = load_model(f.dir, o);
  REQUIRE_MESSAGE(m.has_value(), f.name << ": " << (m ? "" : m.error().message));
  int longest = 0;
  for (const auto& p : f.prompts) longest = std::max(longest, static_cast<int>(p.size()));
  const int blocks = 2 * ((longest + kBlock - 1) / kBlock + 1);
  REQUIRE((*m)->allocate_kv(kBlock, blocks).has_value());
  Run r{std::move(*m), {}};
  for (int i = 0; i < blocks / 2; ++i) r.table.push_back(blocks - 1 - 2 * i);  // non-contiguous, descending
  return r;
}

// Forward over prompt[from, from + n) after `from` cached tokens; every row of logits.
std::vector<float> step(Run& r, const std::vector<int32_t>& prompt, int from, int n) {
  StepBatch b;
  b.tokens.assign(prompt.begin() + from, prompt.begin() + from + n);
  SequenceStep s;
  s.n_past = from;
  s.n_new = n;
  s.all_logits = true;
  s.block_table = r.table;
  b.seqs.push_back(s);
  std::vector<float> logits;
  REQUIRE(r.model->forward(b, logits).has_value());
  return logits;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

void check_fixture(const test::Fixture& f, int threads) {
  Run r = open(f, threads);
  const int V = r.model->info().vocab_size;
  const auto& prompt = f.prompts.back();
  const int n = static_cast<int>(prompt.size());
  REQUIRE(n > kMaxK + 1);
  const int past = n - kMaxK;
  // Reference: the context, then one token at a time.
  step(r, prompt, 0, past);
  std::vector<float> one;
  for (int i = 0; i < kMaxK; ++i) {
    auto l = step(r, prompt, past + i, 1);
    one.insert(one.end(), l.begin(), l.end());
  }
  for (int k = 1; k <= kMaxK; ++k) {
    auto l = step(r, prompt, past, k);
    INFO(f.name << ": " << k << " tokens in one forward after " << past << ", kernels " << cpu::kernel_isa() << ", "
                << threads << " threads");
    REQUIRE(l.size() == static_cast<size_t>(k) * V);
    CHECK(same_bits(l.data(), one.data(), l.size()));
  }
  // The whole prompt prefilled at once: its last rows are the same bits too.
  auto whole = step(r, prompt, 0, n);
  INFO(f.name << ": whole-prompt prefill, kernels " << cpu::kernel_isa());
  CHECK(same_bits(whole.data() + static_cast<size_t>(past) * V, one.data(), one.size()));

  // A verification step shared with another sequence's prefill.
  const auto& other = f.prompts.front();
  Run r2 = open(f, threads);
  step(r2, prompt, 0, past);
  StepBatch b;
  SequenceStep o;
  o.n_new = static_cast<int>(other.size());
  o.all_logits = true;
  for (int i = 0; i < (o.n_new + kBlock - 1) / kBlock; ++i) o.block_table.push_back(2 * i);  // the even blocks r.table leaves free
  b.tokens = other;
  b.seqs.push_back(o);
  SequenceStep s;
  s.n_past = past;
  s.n_new = kMaxK;
  s.all_logits = true;
  s.block_table = r2.table;
  b.tokens.insert(b.tokens.end(), prompt.begin() + past, prompt.end());
  b.seqs.push_back(s);
  std::vector<float> logits;
  REQUIRE(r2.model->forward(b, logits).has_value());
  REQUIRE(logits.size() == static_cast<size_t>(o.n_new + kMaxK) * V);
  INFO(f.name << ": verification batched with another sequence's prefill");
  CHECK(same_bits(logits.data() + static_cast<size_t>(o.n_new) * V, one.data(), one.size()));
}

}  // namespace

TEST_CASE("a k-token forward gives the bits of k one-token forwards, for every fixture") {
  for (const char* isa : {"amx", "avx512", "avx2", "portable"}) {
    if (!cpu::force_kernel_isa(isa)) continue;  // this CPU lacks it
    for (const auto& dir : test::fixture_dirs()) {
      auto f = test::load_fixture(dir);
      check_fixture(f, 2);
      if (std::string_view(isa) != "portable") check_fixture(f, 1);
    }
  }
  cpu::force_kernel_isa("");
}
