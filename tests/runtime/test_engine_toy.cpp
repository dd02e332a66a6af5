// The engine over ToyModel: greedy output equal to a paging-free reference, with and without
// prefix reuse, with chunked and whole prefill, with speculation on and off; concurrency,
// cancellation, memory pressure, budgets and bad input.
#include <doctest/doctest.h>

#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "engine/runtime/sampler.h"
#include "tests/runtime/engine_helpers.h"
#include "tests/runtime/toy_model.h"

using namespace ghostline;
using namespace ghostline::engine;
using namespace ghostline::engine::testing;

namespace {

struct Toy {
  ToyModel* model = nullptr;
  std::unique_ptr<Engine> engine;
};

Toy make_toy(EngineOptions opt, int vocab = 32, int max_context = 4096) {
  auto m = std::make_unique<ToyModel>(vocab, max_context);
  Toy t;
  t.model = m.get();
  auto e = Engine::create(std::move(m), nullptr, opt);
  REQUIRE(e);
  t.engine = std::move(*e);
  return t;
}

// Greedy continuation computed from reference_logits, token by token.
std::vector<int32_t> reference_greedy(const ToyModel& m, std::vector<int32_t> history, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    auto l = m.reference_logits(history);
    int32_t t = engine::runtime::argmax(l);
    out.push_back(t);
    history.push_back(t);
  }
  return out;
}

std::vector<int32_t> random_prompt(std::mt19937& rng, int n, int vocab = 32) {
  std::vector<int32_t> p(n);
  for (auto& t : p) t = static_cast<int32_t>(rng() % vocab);
  return p;
}

void wait_idle(Engine& e) {
  for (int i = 0; i < 2000; ++i) {
    auto c = e.counters();
    if (c.running == 0 && c.waiting == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

TEST_CASE("greedy output equals the reference: cache on/off, chunked/whole prefill, speculation on/off") {
  std::mt19937 rng(1);
  auto base = random_prompt(rng, 70);
  for (bool prefix_cache : {false, true})
    for (int max_batch : {512, 7})
      for (bool spec : {false, true})
        for (int block : {1, 16}) {
          EngineOptions opt;
          opt.draft_length = 4;  // fixed: speculation exercised whatever the timing
          opt.kv_blocks = 4096 / block;
          opt.block_size = block;
          opt.max_batch_tokens = max_batch;
          opt.prefix_cache = prefix_cache;
          Toy t = make_toy(opt);
          // Several prompts sharing prefixes, so that the cache hits (also mid-block).
          for (int k = 0; k < 4; ++k) {
            std::vector<int32_t> prompt(base.begin(), base.begin() + 40 + 9 * k);
            prompt.push_back(static_cast<int32_t>(k));
            GenerationRequest req;
            req.prompt = prompt;
            req.sampling.max_tokens = 24;
            req.speculation = spec;
            Collected c = run_one(*t.engine, req);
            CAPTURE(prefix_cache); CAPTURE(max_batch); CAPTURE(spec); CAPTURE(block); CAPTURE(k);
            REQUIRE(c.error == "");
            CHECK(c.reason == FinishReason::Length);
            CHECK(c.final_events == 1);
            CHECK(c.tokens == reference_greedy(*t.model, prompt, 24));
            CHECK(c.stats.generated_tokens == 24);
            CHECK(c.stats.prompt_tokens == static_cast<int>(prompt.size()));
            if (prefix_cache && k > 0) CHECK(c.stats.cached_tokens >= 40);
            if (!prefix_cache) CHECK(c.stats.cached_tokens == 0);
            if (!spec) CHECK(c.stats.draft_proposed == 0);
          }
        }
}

TEST_CASE("speculation proposes drafts, accepts some, and a hint that is right is accepted whole") {
  EngineOptions opt;
  opt.draft_length = 4;  // fixed: speculation exercised whatever the timing
  opt.kv_blocks = 256;
  Toy t = make_toy(opt);
  std::mt19937 rng(3);
  auto prompt = random_prompt(rng, 50);
  auto expected = reference_greedy(*t.model, prompt, 40);
  GenerationRequest req;
  req.prompt = prompt;
  req.sampling.max_tokens = 40;
  req.draft_hint = expected;  // the previous suggestion, exactly right
  int before = t.model->forwards;
  Collected c = run_one(*t.engine, req);
  CHECK(c.tokens == expected);
  CHECK(c.stats.draft_accepted == c.stats.draft_proposed);
  CHECK(c.stats.draft_accepted >= 30);
  CHECK(t.model->forwards - before < 15);
  // A wrong hint changes nothing in the output.
  req.draft_hint.assign(40, 5);
  Collected w = run_one(*t.engine, req);
  CHECK(w.tokens == expected);
  CHECK(w.stats.draft_proposed > w.stats.draft_accepted);
}

TEST_CASE("many concurrent requests with cancellations: one final event each, every block returned") {
  EngineOptions opt;
  opt.draft_length = 4;  // fixed: speculation exercised whatever the timing
  opt.kv_blocks = 64;  // 1024 tokens: tight for 40 requests, so requests wait and preempt
  opt.block_size = 16;
  opt.max_batch_tokens = 64;
  opt.max_running = 8;
  Toy t = make_toy(opt);
  std::mt19937 rng(5);
  auto shared = random_prompt(rng, 100);
  const int N = 40;
  std::vector<std::unique_ptr<Collector>> cs;
  std::vector<RequestId> ids;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < N; ++i) {
    std::vector<int32_t> p(shared.begin(), shared.begin() + 20 + rng() % 80);
    auto tail = random_prompt(rng, 1 + rng() % 30);
    p.insert(p.end(), tail.begin(), tail.end());
    prompts.push_back(p);
    GenerationRequest req;
    req.prompt = p;
    req.sampling.max_tokens = 5 + rng() % 30;
    cs.push_back(std::make_unique<Collector>());
    ids.push_back(t.engine->submit(req, cs.back()->callback()));
    if (i % 3 == 2) t.engine->cancel(ids[rng() % ids.size()]);
  }
  for (int i = 0; i < N; ++i) {
    const Collected& c = cs[i]->wait();
    CHECK(c.final_events == 1);
    CHECK(c.error == "");
    if (c.reason == FinishReason::Length) CHECK(c.tokens == reference_greedy(*t.model, prompts[i], c.tokens.size()));
    else CHECK(c.reason == FinishReason::Cancelled);
  }
  wait_idle(*t.engine);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto cnt = t.engine->counters();
  CHECK(cnt.kv_blocks_free + cnt.kv_blocks_cached == cnt.kv_blocks_total);
  // Still exactly one final event each after everything settled.
  for (auto& c : cs) CHECK(c->snapshot().final_events == 1);
}

TEST_CASE("a prompt larger than the whole pool fails with a clear error; the engine goes on") {
  EngineOptions opt;
  opt.draft_length = 4;  // fixed: speculation exercised whatever the timing
  opt.kv_blocks = 4;
  opt.block_size = 4;
  Toy t = make_toy(opt);
  GenerationRequest big;
  big.prompt.assign(40, 1);
  Collected c = run_one(*t.engine, big);
  CHECK(c.reason == FinishReason::Error);
  CHECK(c.error.find("KV pool") != std::string::npos);
  GenerationRequest small;
  small.prompt = {1, 2, 3};
  small.sampling.max_tokens = 5;
  Collected s = run_one(*t.engine, small);
  CHECK(s.reason == FinishReason::Length);
  CHECK(s.tokens == reference_greedy(*t.model, small.prompt, 5));
}

TEST_CASE("bad requests finish with Error and a message naming the problem") {
  EngineOptions opt;
  opt.draft_length = 4;  // fixed: speculation exercised whatever the timing
  opt.kv_blocks = 16;
  Toy t = make_toy(opt, 32, 64);
  GenerationRequest empty;
  Collected e = run_one(*t.engine, empty);
  CHECK(e.reason == FinishReason::Error);
  CHECK(e.error.find("empty prompt") != std::string::npos);
  GenerationRequest oov;
  oov.prompt = {1, 99};
  Collected o = run_one(*t.engine, oov);
  CHECK(o.reason == FinishReason::Error);
  CHECK(o.error.find("99") != std::string::npos);
  GenerationRequest longp;
  longp.prompt.assign(64, 1);
  CHECK(run_one(*t.engine, longp).reason == FinishReason::Error);
  // Generation stops at the context length.
  GenerationRequest near;
  near.prompt.assign(60, 1);
  near.sampling.max_tokens = 100;
  near.draft_hint = reference_greedy(*t.model, near.prompt, 10);  // right drafts that would run past the context
  Collected n = run_one(*t.engine, near);
  CHECK(n.error == "");
  CHECK(n.reason == FinishReason::Length);
  CHECK(n.tokens.size() == 4);
  CHECK_FALSE(Engine::create(std::make_unique<ToyModel>(), nullptr, EngineOptions{.block_size = 0}));
}

TEST_CASE("EOS ends a request without emitting the EOS token") {
  EngineOptions opt;
  opt.draft_length = 4;  // fixed: speculation exercised whatever the timing
  opt.kv_blocks = 64;
  auto m = std::make_unique<ToyModel>();
  std::vector<int32_t> prompt = {3, 1, 4, 1, 5};
  auto ref = m->reference_logits(prompt);
  auto expected = reference_greedy(*m, prompt, 10);
  m->mutable_info().eos_token_ids = {expected[3]};
  auto first = std::find(expected.begin(), expected.end(), expected[3]) - expected.begin();
  auto e = Engine::create(std::move(m), nullptr, opt);
  REQUIRE(e);
  GenerationRequest req;
  req.prompt = prompt;
  req.sampling.max_tokens = 10;
  Collected c = run_one(**e, req);
  CHECK(c.reason == FinishReason::Eos);
  CHECK(c.tokens == std::vector<int32_t>(expected.begin(), expected.begin() + first));
}

TEST_CASE("time budgets finish a request with Budget") {
  EngineOptions opt;
  opt.draft_length = 4;  // fixed: speculation exercised whatever the timing
  opt.kv_blocks = 64;
  auto m = std::make_unique<ToyModel>();
  m->delay_ms = 2;
  auto e = Engine::create(std::move(m), nullptr, opt);
  REQUIRE(e);
  GenerationRequest req;
  req.prompt = {1, 2, 3};
  req.sampling.max_tokens = 100000;  // ~200 s of steps: only the budget can end it
  req.max_total_ms = 30;
  Collected c = run_one(**e, req);
  CHECK(c.reason == FinishReason::Budget);
  CHECK(c.final_events == 1);
  CHECK(c.tokens.size() > 0);
}

TEST_CASE("destroying the engine finishes every pending request with one final event") {
  std::vector<std::unique_ptr<Collector>> cs;
  {
    EngineOptions opt;
    opt.draft_length = 4;  // fixed: speculation exercised whatever the timing
    opt.kv_blocks = 256;
    Toy t = make_toy(opt);
    for (int i = 0; i < 10; ++i) {
      GenerationRequest req;
      req.prompt = {1, 2, 3, static_cast<int32_t>(i)};
      req.sampling.max_tokens = 3000;
      cs.push_back(std::make_unique<Collector>());
      t.engine->submit(req, cs.back()->callback());
    }
  }
  for (auto& c : cs) {
    auto s = c->snapshot();
    CHECK(s.final_events == 1);
    CHECK((s.reason == FinishReason::Cancelled || s.reason == FinishReason::Length));
  }
}

TEST_CASE("speculation with sampling keeps the distribution (rejection sampling)") {
  EngineOptions opt;
  opt.draft_length = 4;  // fixed: speculation exercised whatever the timing
  opt.kv_blocks = 64;
  Toy t = make_toy(opt);
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6};
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 4;
  sp.max_tokens = 2;
  // Exact joint distribution of the first two tokens, from the paging-free reference logits.
  engine::runtime::Sampler dist(sp);
  auto p1 = dist.probabilities(t.model->reference_logits(prompt));
  std::map<std::pair<int, int>, double> exact;
  for (int a = 0; a < 32; ++a) {
    if (p1[a] <= 0) continue;
    auto h = prompt;
    h.push_back(a);
    auto p2 = dist.probabilities(t.model->reference_logits(h));
    for (int b = 0; b < 32; ++b)
      if (p2[b] > 0) exact[{a, b}] = p1[a] * p2[b];
  }
  // Draft: the most likely pair (accepted often, rejected often enough to matter).
  auto best = std::max_element(exact.begin(), exact.end(), [](auto& x, auto& y) { return x.second < y.second; })->first;
  const int N = 3000;
  std::map<std::pair<int, int>, int> count;
  int proposed = 0, accepted = 0;
  for (int i = 0; i < N; ++i) {
    GenerationRequest req;
    req.prompt = prompt;
    req.sampling = sp;
    req.sampling.seed = 1000 + i;
    req.sampling.max_tokens = 3;  // the first token comes from the prefill; the draft covers the second
    req.draft_hint = {best.first, best.second, 0};
    Collected c = run_one(*t.engine, req);
    REQUIRE(c.tokens.size() == 3);
    ++count[{c.tokens[0], c.tokens[1]}];
    proposed += c.stats.draft_proposed;
    accepted += c.stats.draft_accepted;
  }
  CHECK(proposed > 0);
  CHECK(accepted > 0);
  CHECK(accepted < proposed);
  double chi2 = 0;
  for (auto& [k, p] : exact) {
    double e = p * N;
    chi2 += (count[k] - e) * (count[k] - e) / e;
  }
  for (auto& [k, c] : count) CHECK(exact.count(k) == 1);  // nothing outside the support
  // At most 15 degrees of freedom: 45 is exceeded by chance with p < 1e-4.
  CHECK(chi2 < 45.0);
}

TEST_CASE("scheduler: newest request first, chunked prefill within the budget, decoding never stalls") {
  EngineOptions opt;
  opt.draft_length = 0;
  opt.kv_blocks = 256;
  opt.block_size = 4;
  opt.max_batch_tokens = 16;
  auto m = std::make_unique<ToyModel>();
  ToyModel* model = m.get();
  std::mutex mu;
  std::vector<StepBatch> steps;
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  model->on_forward = [&](const StepBatch& b) {
    {
      std::lock_guard lock(mu);
      steps.push_back(b);
    }
    gate.wait();
  };
  auto e = Engine::create(std::move(m), nullptr, opt);
  REQUIRE(e);
  // A decodes for a while; the engine is held inside its first forward while B, C, D arrive.
  Collector a, b, c, d;
  GenerationRequest ra;
  ra.prompt = {1, 2, 3};
  ra.sampling.max_tokens = 30;
  (*e)->submit(ra, a.callback());
  for (int i = 0; i < 1000; ++i) {
    std::lock_guard lock(mu);
    if (!steps.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // waits for the first forward only
  }
  auto long_prompt = [](int32_t fill) { return std::vector<int32_t>(40, fill); };
  GenerationRequest rb, rc, rd;
  rb.prompt = long_prompt(10);
  rc.prompt = long_prompt(11);
  rd.prompt = long_prompt(12);
  for (auto* r : {&rb, &rc, &rd}) r->sampling.max_tokens = 2;
  (*e)->submit(rb, b.callback());
  (*e)->submit(rc, c.callback());
  (*e)->submit(rd, d.callback());
  release.set_value();
  for (auto* col : {&a, &b, &c, &d}) CHECK(col->wait().final_events == 1);
  std::lock_guard lock(mu);
  REQUIRE(steps.size() >= 2);
  // Every step within the token budget.
  for (auto& s : steps) CHECK(s.tokens.size() <= 16);
  // The step after the gate: A decodes one token, and the newest prompt (D, id 12) takes the rest.
  const StepBatch& next = steps[1];
  REQUIRE(next.seqs.size() >= 2);
  CHECK(next.seqs[0].n_new == 1);
  CHECK(next.tokens[1] == 12);
  // While B, C and D prefill in chunks, A gets a token in every step until it finishes.
  int a_steps = 0;
  for (size_t i = 1; i < steps.size() && a_steps < 29; ++i) {
    CHECK(steps[i].seqs[0].n_new == 1);
    ++a_steps;
  }
}

TEST_CASE("a running request's prompt blocks are shared with a request that arrives meanwhile") {
  EngineOptions opt;
  opt.draft_length = 0;
  opt.kv_blocks = 256;
  opt.block_size = 4;
  auto m = std::make_unique<ToyModel>();
  ToyModel* model = m.get();
  std::promise<void> release, second_forward;
  std::shared_future<void> gate = release.get_future().share();
  int calls = 0;
  model->on_forward = [&](const StepBatch&) {
    if (++calls == 2) {  // A's first decode step: hold the engine until B has been submitted
      second_forward.set_value();
      gate.wait();
    }
  };
  auto e = Engine::create(std::move(m), nullptr, opt);
  REQUIRE(e);
  std::mt19937 rng(9);
  auto prompt = random_prompt(rng, 41);
  Collector a, b;
  GenerationRequest ra;
  ra.prompt = prompt;
  ra.sampling.max_tokens = 40;
  (*e)->submit(ra, a.callback());
  second_forward.get_future().wait();
  GenerationRequest rb;
  rb.prompt = prompt;
  rb.prompt.push_back(7);
  rb.sampling.max_tokens = 3;
  (*e)->submit(rb, b.callback());
  release.set_value();
  Collected cb = b.wait();
  // B was admitted while A had 38 tokens to go: the 10 full blocks of A's prompt were shared.
  CHECK(cb.stats.cached_tokens == 40);
  CHECK(cb.tokens == reference_greedy(*model, rb.prompt, 3));
  Collected ca = a.wait();
  CHECK(ca.tokens == reference_greedy(*model, prompt, 40));
}

TEST_CASE("a pool too small for all running requests: preemption, recompute, same tokens") {
  EngineOptions opt;
  opt.draft_length = 2;
  opt.kv_blocks = 12;  // 48 tokens; three requests that each grow to 38 tokens
  opt.block_size = 4;
  opt.max_batch_tokens = 32;
  Toy t = make_toy(opt);
  std::mt19937 rng(11);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::unique_ptr<Collector>> cs;
  for (int i = 0; i < 3; ++i) {
    prompts.push_back(random_prompt(rng, 8));
    GenerationRequest req;
    req.prompt = prompts.back();
    req.sampling.max_tokens = 30;
    cs.push_back(std::make_unique<Collector>());
    t.engine->submit(req, cs.back()->callback());
  }
  for (int i = 0; i < 3; ++i) {
    Collected c = cs[i]->wait();
    CHECK(c.final_events == 1);
    CHECK(c.error == "");
    CHECK(c.reason == FinishReason::Length);
    CHECK(c.tokens == reference_greedy(*t.model, prompts[i], 30));
  }
  wait_idle(*t.engine);
  auto cnt = t.engine->counters();
  CHECK(cnt.kv_blocks_free + cnt.kv_blocks_cached == cnt.kv_blocks_total);
}
