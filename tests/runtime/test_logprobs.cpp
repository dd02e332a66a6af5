// GenerationRequest::logprobs: every streamed token comes with the model's log-probability of it
// (log softmax of the raw logits), equal to what the reference logits give, whatever the
// speculation, the sampling temperature, a required prefix or the event it arrives in; nothing
// when not asked.
#include <doctest/doctest.h>

#include <cmath>
#include <future>
#include <mutex>
#include <random>

#include "engine/runtime/sampler.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/runtime/toy_model.h"

using namespace ghostline;
using namespace ghostline::engine;
using namespace ghostline::engine::testing;

namespace {

struct WithLogprobs {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  bool sizes_matched_per_event = true;
  FinishReason reason = FinishReason::None;
};

WithLogprobs run(Engine& engine, GenerationRequest req) {
  auto state = std::make_shared<std::pair<std::mutex, WithLogprobs>>();
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  engine.submit(std::move(req), [state, done](const StreamEvent& ev) {
    {
      std::lock_guard lock(state->first);
      auto& r = state->second;
      r.tokens.insert(r.tokens.end(), ev.tokens.begin(), ev.tokens.end());
      r.logprobs.insert(r.logprobs.end(), ev.logprobs.begin(), ev.logprobs.end());
      if (!ev.logprobs.empty() && ev.logprobs.size() != ev.tokens.size()) r.sizes_matched_per_event = false;
      if (ev.finished) r.reason = ev.reason;
    }
    if (ev.finished) done->set_value();
  });
  future.wait();
  std::lock_guard lock(state->first);
  return state->second;
}

// log softmax of the reference logits after `history`, at `token`, computed here independently.
double reference_logprob(const ToyModel& m, const std::vector<int32_t>& history, int32_t token) {
  auto l = m.reference_logits(history);
  double top = l[0];
  for (float x : l) top = std::max<double>(top, x);
  double sum = 0;
  for (float x : l) sum += std::exp(x - top);
  return l[token] - top - std::log(sum);
}

std::unique_ptr<Engine> make_engine(ToyModel*& model, int draft_length) {
  auto m = std::make_unique<ToyModel>(32, 4096);
  model = m.get();
  EngineOptions opt;
  opt.kv_blocks = 128;
  opt.draft_length = draft_length;
  auto e = Engine::create(std::move(m), nullptr, opt);
  REQUIRE(e);
  return std::move(*e);
}

}  // namespace

TEST_CASE("logprobs: one per token, equal to the reference log softmax, with and without speculation") {
  std::mt19937 rng(11);
  std::vector<int32_t> prompt(40);
  for (auto& t : prompt) t = static_cast<int32_t>(rng() % 32);
  for (int draft : {0, 4}) {
    CAPTURE(draft);
    ToyModel* model = nullptr;
    auto engine = make_engine(model, draft);
    GenerationRequest req;
    req.prompt = prompt;
    req.sampling.max_tokens = 30;
    req.logprobs = true;
    WithLogprobs r = run(*engine, req);
    REQUIRE(r.tokens.size() == 30);
    REQUIRE(r.logprobs.size() == r.tokens.size());
    CHECK(r.sizes_matched_per_event);
    std::vector<int32_t> history = prompt;
    for (size_t i = 0; i < r.tokens.size(); ++i) {
      const double want = reference_logprob(*model, history, r.tokens[i]);
      CHECK(r.logprobs[i] <= 0.0f);
      CHECK(std::abs(r.logprobs[i] - want) < 1e-4);
      // Greedy: the chosen token is the most likely one.
      for (int32_t other = 0; other < 32; ++other) CHECK(reference_logprob(*model, history, other) <= want + 1e-6);
      history.push_back(r.tokens[i]);
    }
  }
}

TEST_CASE("logprobs: sampled tokens are scored under the raw model, not the tempered distribution") {
  ToyModel* model = nullptr;
  auto engine = make_engine(model, -1);
  std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7};
  GenerationRequest req;
  req.prompt = prompt;
  req.sampling.max_tokens = 20;
  req.sampling.temperature = 2.0f;
  req.sampling.seed = 5;
  req.logprobs = true;
  WithLogprobs r = run(*engine, req);
  REQUIRE(r.logprobs.size() == r.tokens.size());
  std::vector<int32_t> history = prompt;
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    CHECK(std::abs(r.logprobs[i] - reference_logprob(*model, history, r.tokens[i])) < 1e-4);
    history.push_back(r.tokens[i]);
  }
}

TEST_CASE("logprobs: none unless asked for") {
  ToyModel* model = nullptr;
  auto engine = make_engine(model, 4);
  GenerationRequest req;
  req.prompt = {3, 1, 4, 1, 5};
  req.sampling.max_tokens = 12;
  WithLogprobs r = run(*engine, req);
  CHECK(r.tokens.size() == 12);
  CHECK(r.logprobs.empty());
}

TEST_CASE("token_logprob: log softmax at a token; out-of-range tokens are impossible") {
  std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  const double z = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  CHECK(runtime::token_logprob(logits, 2) == doctest::Approx(3.0 - z));
  CHECK(runtime::token_logprob(logits, 0) == doctest::Approx(1.0 - z));
  CHECK(std::isinf(runtime::token_logprob(logits, 3)));
  CHECK(std::isinf(runtime::token_logprob(logits, -1)));
}

TEST_CASE("logprobs: under a required prefix they stay the model's own, not the masked distribution's") {
  auto e = open_engine(std::string(GHOSTLINE_SOURCE_DIR) + "/models/ghostline-coder-tiny", LoadOptions{.threads = 1},
                       EngineOptions{.kv_blocks = 64});
  REQUIRE_MESSAGE(e, (e ? "" : e.error().message));
  GenerationRequest req;
  req.prompt = (*e)->tokenizer().encode("def add(a, b):\n    return ");
  req.sampling.max_tokens = 6;
  req.logprobs = true;
  WithLogprobs free_run = run(**e, req);
  REQUIRE(!free_run.tokens.empty());
  REQUIRE(free_run.logprobs.size() == free_run.tokens.size());
  // Forcing what greedy picks anyway: the same tokens and the same log-probabilities.
  const std::string first = (*e)->tokenizer().decode({free_run.tokens[0]});
  req.required_prefix = first.substr(0, 1);
  WithLogprobs same = run(**e, req);
  REQUIRE(same.tokens == free_run.tokens);
  for (size_t i = 0; i < same.logprobs.size(); ++i) CHECK(std::abs(same.logprobs[i] - free_run.logprobs[i]) < 1e-5);
  // Forcing an unlikely start: its first token is less likely than greedy's (a masked,
  // renormalised distribution would make it look near certain).
  req.required_prefix = "zq";
  WithLogprobs forced = run(**e, req);
  REQUIRE(!forced.logprobs.empty());
  CHECK(std::isfinite(forced.logprobs[0]));
  CHECK(forced.logprobs[0] < free_run.logprobs[0] - 1.0f);
}
