// LoadedModel: what the completion layer holds of a model — its engine (with tokenizer) and its
// FIM template — plus `run_generation`, the blocking form of Engine::submit that the service's
// worker thread uses for completions and quick fixes.
//
// Thread-safety: a LoadedModel is immutable after load_model_for_completion(); its engine is
// thread-safe (submit/cancel from any thread). run_generation blocks the calling thread, which
// must not be the engine thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "completion/fim.h"
#include "engine/base/cancel.h"
#include "engine/base/expected.h"
#include "engine/engine.h"

namespace ghostline::completion {

struct LoadedModel {
  std::string path;                      // model directory (or dummy:...)
  std::string name;                      // its folder name, for logs and the status bar
  std::string device;                    // "cpu" / "cuda"
  std::unique_ptr<engine::Engine> engine;
  FimTemplate fim;

  const engine::Tokenizer& tokenizer() const { return engine->tokenizer(); }
  // BOS (when the tokenizer adds one) followed by the prompt's ids; FIM tokens are special tokens.
  std::vector<int32_t> encode_prompt(std::string_view prompt) const;
  // Token count of a piece of text (no BOS), for context budgets.
  size_t count_tokens(std::string_view text) const;
};

struct ModelLoadOptions {
  std::string device = "auto";           // auto | cpu | cuda
  int threads = 0;                       // CPU threads; 0 = all cores
  engine::EngineOptions engine;
};

// Opens the model directory: engine, tokenizer, FIM template. Errors name the path and the cause.
Expected<std::shared_ptr<const LoadedModel>> load_model_for_completion(const std::string& path,
                                                                       const ModelLoadOptions& options);

struct Generation {
  std::string text;                      // decoded text (cut where `until` said the answer was complete)
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;           // one per token when the request asked for logprobs
  engine::FinishReason reason = engine::FinishReason::None;
  engine::GenerationStats stats;
  double first_text_ms = 0;              // submit -> first non-empty text on this thread's clock
};

// Submits `request` and waits for it. `cancel` cancelling stops it inside the engine within one
// step and the result is a Cancelled error. `until(text_so_far)` is called with the text after
// each step; returning true ends the generation there (the engine request is cancelled; the
// reason is Stop). Engine-side errors come back as errors.
Expected<Generation> run_generation(const LoadedModel& model, engine::GenerationRequest request,
                                    const CancelToken& cancel,
                                    const std::function<bool(std::string_view text)>& until = {});

}  // namespace ghostline::completion
