// Sampling and text streaming: greedy, seeded draws, top-k / top-p supports, the empirical
// distribution against the computed one, stop strings held back and cut.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "engine/runtime/drafter.h"
#include "engine/runtime/sampler.h"
#include "engine/runtime/text_stream.h"

using namespace ghostline::engine;
using namespace ghostline::engine::runtime;

TEST_CASE("greedy picks the argmax, lowest id on ties") {
  std::vector<float> l = {0.1f, 2.0f, -1.0f, 2.0f};
  Sampler s(SamplingParams{});
  CHECK(s.sample(l) == 1);
}

TEST_CASE("argmax: the first index of the largest value, any length, ties and NaNs as a plain scan") {
  std::mt19937 rng(5);
  for (size_t n : {1, 3, 15, 16, 17, 31, 33, 100, 16384}) {
    for (int rep = 0; rep < 20; ++rep) {
      std::vector<float> l(n);
      // Few distinct values, so that the largest one repeats; now and then a NaN.
      for (auto& x : l) x = static_cast<float>(static_cast<int>(rng() % 7)) - 3.0f;
      if (rep % 3 == 1) l[rng() % n] = std::nanf("");
      if (rep % 5 == 2) l[rng() % n] = 1e30f;
      int32_t ref = 0;
      for (size_t i = 1; i < n; ++i)
        if (l[i] > l[ref]) ref = static_cast<int32_t>(i);
      INFO("n=" << n << " rep=" << rep);
      CHECK(argmax(l) == ref);
    }
  }
}

TEST_CASE("temperature sampling: same seed same tokens; frequencies follow softmax") {
  std::vector<float> l = {1.0f, 2.0f, 0.5f, 3.0f, -2.0f};
  SamplingParams p;
  p.temperature = 0.7f;
  p.seed = 99;
  Sampler a(p), b(p);
  for (int i = 0; i < 50; ++i) CHECK(a.sample(l) == b.sample(l));
  // Reference softmax computed here in double, independently of the sampler.
  std::vector<double> ref(l.size());
  double z = 0;
  for (size_t i = 0; i < l.size(); ++i) z += ref[i] = std::exp(l[i] / 0.7);
  for (auto& r : ref) r /= z;
  auto probs = a.probabilities(l);
  for (size_t i = 0; i < l.size(); ++i) CHECK(probs[i] == doctest::Approx(ref[i]).epsilon(1e-5));
  const int N = 40000;
  std::map<int, int> count;
  for (int i = 0; i < N; ++i) ++count[a.sample(l)];
  double chi2 = 0;
  for (size_t i = 0; i < l.size(); ++i) {
    double e = ref[i] * N;
    chi2 += (count[i] - e) * (count[i] - e) / e;
  }
  CHECK(chi2 < 25.0);  // 4 degrees of freedom: p < 1e-4 by chance
}

TEST_CASE("top-k and top-p restrict the support") {
  std::vector<float> l = {1.0f, 4.0f, 3.0f, 2.0f, 0.0f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 2;
  Sampler k(p);
  auto pk = k.probabilities(l);
  CHECK(pk[1] > 0);
  CHECK(pk[2] > 0);
  CHECK(pk[0] == 0);
  CHECK(pk[3] == 0);
  CHECK(pk[1] + pk[2] == doctest::Approx(1.0));
  for (int i = 0; i < 200; ++i) {
    int t = k.sample(l);
    CHECK((t == 1 || t == 2));
  }
  p.top_k = 0;
  p.top_p = 0.5f;  // the top token alone has mass e^4 / sum ≈ 0.64 >= 0.5
  Sampler tp(p);
  auto pp = tp.probabilities(l);
  CHECK(pp[1] == doctest::Approx(1.0));
  p.top_p = 0.9f;  // needs the top three: 0.64, 0.87, 0.95
  auto p3 = Sampler(p).probabilities(l);
  CHECK(p3[3] > 0);
  CHECK(p3[0] == 0);
}

TEST_CASE("stop strings: held back while undecided, cut when matched") {
  CHECK(held_back_for_stop("abc\n", {"\n\n"}) == 1);
  CHECK(held_back_for_stop("abc", {"\n\n"}) == 0);
  CHECK(held_back_for_stop("x</", {"</s>", "<|end"}) == 2);
  CHECK(held_back_for_stop("", {"ab"}) == 0);
}

TEST_CASE("prompt lookup proposes what followed the last earlier occurrence") {
  std::vector<int32_t> t = {1, 2, 3, 9, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3};
  CHECK(prompt_lookup(t, 3, 2) == std::vector<int32_t>{7, 8});
  CHECK(prompt_lookup(t, 3, 10) == std::vector<int32_t>{7, 8, 5, 1, 2, 3});
  CHECK(prompt_lookup(std::vector<int32_t>{4, 5, 6}, 2, 3).empty());
}

TEST_CASE("draft policy: the cost curve decides the draft length") {
  // Verification nearly free (9 tokens cost 1.3 steps): a source right 80% of the time drafts long.
  DraftPolicy cheap;
  for (int i = 0; i < 5; ++i) {
    cheap.record_step(1, 1.0);
    cheap.record_step(9, 1.3);
  }
  for (int i = 0; i < 20; ++i) cheap.record_verification(DraftSource::Hint, 5, 4);
  CHECK(cheap.cost_ms(1) == doctest::Approx(1.0));
  CHECK(cheap.cost_ms(5) == doctest::Approx(0.9 * 1.15));  // interpolated, a little optimistic
  CHECK(cheap.length(DraftSource::Hint) >= 6);
  // Verification as dear as decoding token by token: nothing pays, apart from a probe now and then.
  DraftPolicy linear;
  for (int n = 1; n <= 9; ++n) linear.record_step(n, 1.0 * n);
  for (int i = 0; i < 20; ++i) linear.record_verification(DraftSource::Lookup, 4, 2);
  int drafted = 0;
  for (int i = 0; i < 32; ++i) drafted += linear.length(DraftSource::Lookup) > 0;
  CHECK(drafted == 2);
  // A step curve (4 tokens as cheap as 2, 5 much dearer): stops at 4 tokens, i.e. 3 drafted.
  DraftPolicy steps;
  const double ms[] = {0, 1.0, 1.2, 1.25, 1.3, 2.6, 2.7, 2.8, 2.9, 3.0};
  for (int n = 1; n <= 9; ++n) steps.record_step(n, ms[n]);
  for (int i = 0; i < 20; ++i) steps.record_verification(DraftSource::LookupLong, 4, 3);
  CHECK(steps.length(DraftSource::LookupLong) == 3);
  // A step slowed down by another process (descheduled for 40 ms) does not move the estimate.
  for (int i = 0; i < 4; ++i) steps.record_step(9, i == 2 ? 40.0 : 3.0);
  CHECK(steps.cost_ms(9) == doctest::Approx(3.0));
}
