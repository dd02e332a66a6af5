// test_engine_gpu: the Engine (scheduler, prefix cache, speculation, sampling) over the CUDA
// backend, where the tokens are picked on the device (Model::forward_pick):
// - every parity fixture's greedy continuation (transformers') reproduced through the Engine for
//   its first 16 tokens: without speculation, with the continuation itself as the draft hint
//   (every drafted token verified from device-picked ids), and again from the prefix cache;
// - sampled requests (temperature, top-k, top-p) finish with tokens inside the vocabulary, and a
//   request that needs the host (logprobs) still runs beside them.
// Exit 0 when every check passes, 1 when one fails, 77 (skipped) without a usable CUDA device.
//   test_engine_gpu [--source DIR]
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "engine/model.h"
#include "tests/gpu/gpu_check.h"

namespace {

using namespace ghostline;
using namespace ghostline::engine;

StreamEvent run(Engine& e, GenerationRequest req, std::vector<int32_t>& tokens) {
  auto done = std::make_shared<std::promise<StreamEvent>>();
  auto fut = done->get_future();
  auto toks = std::make_shared<std::vector<int32_t>>();
  e.submit(std::move(req), [done, toks](const StreamEvent& ev) {
    toks->insert(toks->end(), ev.tokens.begin(), ev.tokens.end());
    if (ev.finished) done->set_value(ev);
  });
  StreamEvent ev = fut.get();
  tokens = *toks;
  return ev;
}

int same_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return static_cast<int>(n);
}

}  // namespace

int main(int argc, char** argv) {
  std::string source = GHOSTLINE_SOURCE_DIR;
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::string(argv[i]) == "--source") source = argv[i + 1];
  if (!cuda_available()) {
    std::printf("test_engine_gpu: no usable CUDA device here: skipped\n");
    return 77;
  }
  gpu_test::Report rep;
  const std::string root = source + "/tests/fixtures/models";
  std::vector<std::string> dirs;
  for (const auto& d : std::filesystem::directory_iterator(root))
    if (std::filesystem::exists(d.path() / "reference.json")) dirs.push_back(d.path().string());
  std::sort(dirs.begin(), dirs.end());
  for (const std::string& dir : dirs) {
    const std::string name = std::filesystem::path(dir).filename().string() + ": ";
    nlohmann::json ref;
    std::ifstream(dir + "/reference.json") >> ref;
    LoadOptions lo;
    lo.device = Device::Cuda;
    EngineOptions eo;
    eo.kv_blocks = 256;
    eo.draft_length = 4;  // fixed, so that the hint is always drafted
    auto engine = open_engine(dir, lo, eo);
    if (!engine) {
      rep.expect(name + "engine on CUDA", false, engine.error().message);
      continue;
    }
    Engine& e = **engine;
    const auto prompts = ref.at("prompts").get<std::vector<std::vector<int32_t>>>();
    for (const auto& g : ref.at("greedy")) {
      const int pi = g.at("prompt").get<int>();
      const auto want = g.at("tokens").get<std::vector<int32_t>>();
      const int n = std::min<int>(16, static_cast<int>(want.size()));
      const std::string tag = name + "prompt " + std::to_string(pi) + ", ";
      for (int mode = 0; mode < 3; ++mode) {
        GenerationRequest req;
        req.prompt = prompts[pi];
        req.sampling.max_tokens = n;
        req.speculation = mode == 1;
        if (mode == 1) req.draft_hint.assign(want.begin(), want.begin() + n);
        std::vector<int32_t> got;
        const StreamEvent ev = run(e, req, got);
        const char* what[3] = {"greedy, no speculation", "greedy, transformers' tokens as the draft",
                               "greedy again (prefix cache)"};
        const int same = same_prefix(got, want);
        std::string note = std::to_string(same) + " of " + std::to_string(n) + " match";
        if (mode == 1) note += ", drafts accepted " + std::to_string(ev.stats.draft_accepted) + "/" + std::to_string(ev.stats.draft_proposed);
        if (mode == 2) note += ", cached prompt tokens " + std::to_string(ev.stats.cached_tokens);
        if (!ev.error.empty()) note += ", error: " + ev.error;
        // An EOS inside the 16 would end early with a shorter but identical prefix.
        const bool ok = ev.error.empty() && same == static_cast<int>(got.size()) && (same >= n || ev.reason == FinishReason::Eos);
        rep.expect(tag + what[mode] + ": tokens identical to transformers'", ok, note);
        if (mode == 1) rep.expect(tag + "drafted tokens were verified on the device", ev.stats.draft_proposed > 0, note);
        if (mode == 2 && req.prompt.size() > 2u * eo.block_size)
          rep.expect(tag + "the prompt came from the prefix cache", ev.stats.cached_tokens > 0, note);
      }
    }
    // Sampling on the device, and a request that needs the logits on the host beside it.
    const int V = e.info().vocab_size;
    for (int k = 0; k < 2; ++k) {
      GenerationRequest req;
      req.prompt = prompts.back();
      req.sampling.max_tokens = 24;
      req.sampling.temperature = 0.8f;
      req.sampling.top_p = 0.9f;
      req.sampling.top_k = k ? 20 : 0;
      req.sampling.seed = 7 + k;
      req.logprobs = k == 1;
      std::vector<int32_t> got;
      const StreamEvent ev = run(e, req, got);
      bool in_vocab = !got.empty();
      for (int32_t t : got) in_vocab = in_vocab && t >= 0 && t < V;
      rep.expect(name + (k ? "sampled with logprobs (host path)" : "sampled T=0.8 top-p 0.9 on the device") +
                     ": tokens inside the vocabulary",
                 ev.error.empty() && in_vocab && (!req.logprobs || ev.logprobs.size() == ev.tokens.size()),
                 std::to_string(got.size()) + " tokens" + (ev.error.empty() ? "" : ", error: " + ev.error));
    }
  }
  std::printf("\ntest_engine_gpu: %zu checks, %d failed\n", rep.size(), rep.failures());
  return rep.failures() == 0 ? 0 : 1;
}
