// The engine over the real CPU model (the dsv2_tiny fixture, made by transformers): greedy tokens
// equal transformers' greedy reference and a direct token-by-token loop over the model, whatever
// the prefix reuse, prefill chunking, block size and speculation; and the model's logits through a
// reused (shared + copied-on-write) prefix equal those of a whole prefill.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/runtime/sampler.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/runtime/engine_helpers.h"

using namespace ghostline;
using namespace ghostline::engine;
using namespace ghostline::engine::testing;

namespace {

const std::string kModel = std::string(GHOSTLINE_TEST_FIXTURES) + "/models/dsv2_tiny";

nlohmann::json reference() {
  std::ifstream in(kModel + "/reference.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

std::unique_ptr<Model> load() {
  auto m = load_model(kModel, LoadOptions{.threads = 1});
  REQUIRE_MESSAGE(m, (m ? "" : m.error().message));
  return std::move(*m);
}

// Runs `tokens` through `model` as one sequence in pieces of the given sizes, blocks 0.. in order;
// returns the logits of every position.
std::vector<float> forward_pieces(Model& model, const std::vector<int32_t>& tokens, const std::vector<int>& pieces,
                                  int block, std::vector<int32_t> table = {}, int n_past = 0) {
  std::vector<float> all, logits;
  if (table.empty())
    for (int b = 0; b * block < static_cast<int>(tokens.size()); ++b) table.push_back(b);
  int pos = n_past;
  for (int n : pieces) {
    StepBatch batch;
    batch.tokens.assign(tokens.begin() + pos, tokens.begin() + pos + n);
    SequenceStep s;
    s.n_past = pos;
    s.n_new = n;
    s.block_table = table;
    s.all_logits = true;
    batch.seqs.push_back(s);
    auto r = model.forward(batch, logits);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    all.insert(all.end(), logits.begin(), logits.end());
    pos += n;
  }
  return all;
}

double rel_diff(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (a[i] - b[i]) * double(a[i] - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

std::vector<int32_t> direct_greedy(Model& model, std::vector<int32_t> tokens, int n) {
  const int block = 16;
  REQUIRE(model.allocate_kv(block, 64));
  const int V = model.info().vocab_size;
  std::vector<int32_t> out;
  auto logits = forward_pieces(model, tokens, {static_cast<int>(tokens.size())}, block);
  for (int i = 0; i < n; ++i) {
    int32_t t = runtime::argmax(std::span<const float>(logits.data() + logits.size() - V, V));
    out.push_back(t);
    tokens.push_back(t);
    std::vector<int32_t> table;
    for (int b = 0; b * block < static_cast<int>(tokens.size()); ++b) table.push_back(b);
    logits = forward_pieces(model, tokens, {1}, block, table, static_cast<int>(tokens.size()) - 1);
  }
  return out;
}

}  // namespace

TEST_CASE("real model: logits through a reused prefix equal a whole prefill") {
  auto model = load();
  const int V = model->info().vocab_size, B = 16;
  auto prompts = reference()["prompts"].get<std::vector<std::vector<int32_t>>>();
  const auto& p = prompts[2];  // 333 tokens
  const int n = static_cast<int>(p.size());
  REQUIRE(model->allocate_kv(B, 64));
  auto whole = forward_pieces(*model, p, {n}, B);
  // Chunked: uneven pieces.
  auto chunked = forward_pieces(*model, p, {1, 30, 17, 100, n - 148}, B);
  REQUIRE(whole.size() == chunked.size());
  for (int i = 0; i < n; ++i) CHECK(rel_diff(&chunked[i * V], &whole[i * V], V) < 1e-5);
  // Reuse: blocks 0..k-1 hold the prefix; a second sequence shares the first 5 full blocks,
  // copies block 5 (first 7 tokens valid) into block 40, and computes the rest.
  const int shared_full = 5, partial = 7, reused = shared_full * B + partial;
  std::vector<int32_t> table;
  for (int b = 0; b < shared_full; ++b) table.push_back(b);
  model->copy_kv_block(shared_full, 40);
  table.push_back(40);
  for (int b = 41; static_cast<int>(table.size()) * B < n; ++b) table.push_back(b);
  auto rest = forward_pieces(*model, p, {n - reused}, B, table, reused);
  for (int i = reused; i < n; ++i) CHECK(rel_diff(&rest[(i - reused) * V], &whole[i * V], V) < 1e-5);
}

TEST_CASE("real model: engine greedy equals transformers and the direct loop in every configuration") {
  auto ref = reference();
  auto prompts = ref["prompts"].get<std::vector<std::vector<int32_t>>>();
  std::vector<std::vector<int32_t>> expected;
  auto direct_model = load();
  const int N = 24;
  for (size_t i = 0; i < prompts.size(); ++i) expected.push_back(direct_greedy(*direct_model, prompts[i], N));
  // transformers' greedy tokens agree with the direct loop where it has them.
  for (auto& g : ref["greedy"]) {
    auto toks = g["tokens"].get<std::vector<int32_t>>();
    size_t k = g["prompt"].get<size_t>();
    CHECK(std::vector<int32_t>(toks.begin(), toks.begin() + N) == expected[k]);
  }
  for (bool cache : {true, false})
    for (int max_batch : {512, 50})
      for (bool spec : {true, false}) {
        EngineOptions opt;
        opt.draft_length = 4;  // fixed: speculation exercised whatever the timing
        opt.kv_blocks = 96;
        opt.block_size = 16;
        opt.max_batch_tokens = max_batch;
        opt.prefix_cache = cache;
        auto e = Engine::create(load(), nullptr, opt);
        REQUIRE(e);
        // Each prompt twice: the second time a full cache hit.
        std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> cases;
        for (size_t i = 0; i < prompts.size(); ++i) cases.push_back({prompts[i], expected[i]});
        for (size_t i = 0; i < prompts.size(); ++i) cases.push_back({prompts[i], expected[i]});
        for (auto& [prompt, want] : cases) {
          GenerationRequest req;
          req.prompt = prompt;
          req.sampling.max_tokens = N;
          req.speculation = spec;
          Collected c = run_one(**e, req);
          CAPTURE(cache); CAPTURE(max_batch); CAPTURE(spec); CAPTURE(prompt.size());
          REQUIRE(c.error == "");
          CHECK(c.tokens == want);
        }
      }
}

TEST_CASE("real model: concurrent requests sharing a prefix give the same tokens as alone") {
  auto prompts = reference()["prompts"].get<std::vector<std::vector<int32_t>>>();
  auto direct_model = load();
  const auto& base = prompts[2];
  std::vector<std::vector<int32_t>> ps;
  std::vector<std::vector<int32_t>> want;
  for (int k = 0; k < 6; ++k) {
    std::vector<int32_t> p(base.begin(), base.begin() + 100 + 37 * k);
    ps.push_back(p);
    want.push_back(direct_greedy(*direct_model, p, 12));
  }
  EngineOptions opt;
  opt.draft_length = 4;  // fixed: speculation exercised whatever the timing
  opt.kv_blocks = 160;
  opt.max_batch_tokens = 64;
  auto e = Engine::create(load(), nullptr, opt);
  REQUIRE(e);
  std::vector<std::unique_ptr<Collector>> cs;
  for (auto& p : ps) {
    GenerationRequest req;
    req.prompt = p;
    req.sampling.max_tokens = 12;
    cs.push_back(std::make_unique<Collector>());
    (*e)->submit(req, cs.back()->callback());
  }
  for (size_t k = 0; k < ps.size(); ++k) {
    const Collected& c = cs[k]->wait();
    CHECK(c.final_events == 1);
    CHECK(c.tokens == want[k]);
  }
}

TEST_CASE("open_engine: the embedded model with its tokenizer streams text; stop strings end it") {
  auto e = open_engine(std::string(GHOSTLINE_SOURCE_DIR) + "/models/ghostline-coder-tiny", LoadOptions{.threads = 1},
                       EngineOptions{.kv_blocks = 64});
  REQUIRE_MESSAGE(e, (e ? "" : e.error().message));
  const Tokenizer& tok = (*e)->tokenizer();
  GenerationRequest req;
  req.prompt = tok.encode("import os\nimport sys\n\n\ndef main():\n    ");
  req.sampling.max_tokens = 48;
  Collected all = run_one(**e, req);
  CHECK(all.reason == FinishReason::Length);
  CHECK(all.text == tok.decode(all.tokens));
  // The same request with a stop string: the text is cut right before its first occurrence.
  const size_t nl = all.text.find('\n');
  REQUIRE(nl != std::string::npos);
  req.sampling.stop = {"\n"};
  Collected cut = run_one(**e, req);
  CHECK(cut.reason == FinishReason::Stop);
  CHECK(cut.text == all.text.substr(0, nl));
  CHECK(cut.stats.cached_tokens > 0);  // the prompt was cached by the first request
}

TEST_CASE("open_engine: a missing model gives a clear error") {
  auto e = open_engine("/nonexistent/model", LoadOptions{}, EngineOptions{});
  REQUIRE_FALSE(e);
  CHECK(e.error().message.find("/nonexistent/model") != std::string::npos);
}

TEST_CASE("token healing: the output begins with the required bytes, and is the model's own choice after them") {
  auto e = open_engine(std::string(GHOSTLINE_SOURCE_DIR) + "/models/ghostline-coder-tiny", LoadOptions{.threads = 1},
                       EngineOptions{.kv_blocks = 64});
  REQUIRE_MESSAGE(e, (e ? "" : e.error().message));
  const Tokenizer& tok = (*e)->tokenizer();
  const std::string context = "import os\nimport sys\n\n\ndef main():\n    ";
  GenerationRequest req;
  req.prompt = tok.encode(context);
  req.sampling.max_tokens = 16;
  // Unconstrained, the model's first line; then every strict prefix of its first word, required.
  Collected free_run = run_one(**e, req);
  REQUIRE(free_run.text.size() >= 3);
  size_t word = 0;
  while (word < free_run.text.size() && std::isalnum(static_cast<unsigned char>(free_run.text[word]))) ++word;
  for (const std::string& required : {free_run.text.substr(0, 1), free_run.text.substr(0, std::max<size_t>(1, word - 1)),
                                     std::string("zq"), std::string("é")}) {
    CAPTURE(required);
    req.required_prefix = required;
    Collected c = run_one(**e, req);
    CHECK(c.final_events == 1);
    REQUIRE(c.text.size() >= required.size());
    CHECK(c.text.compare(0, required.size(), required) == 0);
    CHECK(c.text == tok.decode(c.tokens));
  }
  // A required prefix the model would produce anyway changes nothing.
  req.required_prefix = free_run.text.substr(0, 1);
  CHECK(run_one(**e, req).tokens == free_run.tokens);
}
