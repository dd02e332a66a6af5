// The engine: requests in, streamed tokens out. LSP-free, editor-free, tree-sitter-free.
//
// One engine thread owns the Model and its KV pool and runs step() = schedule -> run ->
// postprocess. Other threads only call submit() / cancel(); both return at once.
//
// Contract of a request's callback: called on the engine thread, zero or more times with
// finished == false (each carrying the tokens accepted in one step, several at once when
// speculation lands), then exactly once with finished == true (possibly with final tokens).
// After cancel(id) the final event comes within one step, with FinishReason::Cancelled; the
// request's KV blocks are freed (cached prefix blocks stay in the prefix cache).
// A callback may call submit() and cancel(), but must not destroy the Engine. Text in events is
// complete UTF-8; text that might begin a stop string is held back until decided, and the stop
// string itself is never shown. An EOS token ends the request and is not in `tokens` (it is
// counted in stats.generated_tokens). Bad requests (empty prompt, ids outside the vocabulary,
// a prompt that does not fit the context or the pool) finish at once with FinishReason::Error
// and a message. With greedy sampling the tokens are the same with speculation on or off.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/expected.h"
#include "engine/model.h"

namespace ghostline::engine {

class Tokenizer;

struct SamplingParams {
  float temperature = 0.0f;          // 0 = greedy
  float top_p = 1.0f;
  int top_k = 0;                     // 0 = off
  int max_tokens = 64;
  std::vector<std::string> stop;     // stop strings, matched on the decoded text
  uint64_t seed = 0;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  std::vector<int32_t> draft_hint;   // tokens likely to follow (e.g. the previous suggestion)
  double max_prefill_ms = 0;         // 0 = no budget; past it the request finishes (Budget)
  double max_total_ms = 0;           // 0 = no budget
  bool speculation = true;
  bool logprobs = false;             // fill StreamEvent::logprobs (costs one pass over the vocabulary per token)
  // Token healing: the generated text must begin with these bytes (the caller backed its prompt
  // up to a token boundary before a partial word). Tokens that disagree with the rest of it are
  // masked while it is not yet covered; the bytes are part of the output. Needs a tokenizer;
  // speculation waits until it is covered.
  std::string required_prefix;
};

enum class FinishReason { None, Length, Eos, Stop, Cancelled, Budget, Error };

struct GenerationStats {
  int prompt_tokens = 0;
  int cached_tokens = 0;             // prompt tokens reused from the prefix cache
  int generated_tokens = 0;
  int draft_proposed = 0;
  int draft_accepted = 0;
  double queue_ms = 0;               // submit -> first scheduled
  double ttft_ms = 0;                // submit -> first token
  double total_ms = 0;               // submit -> finished
};

struct StreamEvent {
  std::vector<int32_t> tokens;       // newly accepted tokens
  std::string text;                  // their decoded UTF-8 (complete characters only)
  bool finished = false;
  FinishReason reason = FinishReason::None;
  GenerationStats stats;             // filled on the final event
  std::string error;                 // when reason == Error
  // With GenerationRequest::logprobs: one per entry of `tokens`, the natural log of the token's
  // probability under the model (softmax of the raw logits: temperature 1, no top-k/top-p), so
  // candidates sampled with different settings compare on one scale. Empty otherwise.
  std::vector<float> logprobs;
};

using RequestId = uint64_t;

// A snapshot of the engine's state, updated by the engine thread after every step.
struct EngineCounters {
  int kv_blocks_total = 0;
  int kv_blocks_free = 0;            // on the free list
  int kv_blocks_cached = 0;          // held by the prefix cache (shared ones included)
  int running = 0;                   // sequences admitted into the batch
  int waiting = 0;                   // submitted, not yet admitted (or preempted)
  uint64_t steps = 0;                // forward passes so far
};

struct EngineOptions {
  int block_size = 16;
  int kv_blocks = 0;                 // 0 = from kv_memory_fraction of free memory
  double kv_memory_fraction = 0.25;
  int max_batch_tokens = 512;        // chunked prefill: tokens per step over all sequences
  int max_running = 16;
  bool prefix_cache = true;
  int draft_length = -1;             // speculation: -1 = adaptive (where it pays), else fixed (0..8)
};

// create() allocates the KV pool (options.kv_blocks, or kv_memory_fraction of the memory left for
// it: ModelInfo::kv_memory_bytes on a GPU, else what the OS reports free; capped at what
// max_running full contexts could use) and starts the engine
// thread. The tokenizer may be null: then events carry token ids only (no text, no stop
// strings) and tokenizer() must not be called. The destructor stops the thread; every request
// not yet finished gets its final event (Cancelled) before it returns.
class Engine {
 public:
  static Expected<std::unique_ptr<Engine>> create(std::unique_ptr<Model> model,
                                                  std::shared_ptr<const Tokenizer> tokenizer,
                                                  const EngineOptions& options);
  virtual ~Engine() = default;

  virtual RequestId submit(GenerationRequest request, std::function<void(const StreamEvent&)> on_event) = 0;
  virtual void cancel(RequestId id) = 0;

  virtual const ModelInfo& info() const = 0;
  virtual const Tokenizer& tokenizer() const = 0;
  virtual int kv_capacity_tokens() const = 0;
  // Thread-safe; may be a step old.
  virtual EngineCounters counters() const { return {}; }
};

// Loads a model directory (or "dummy:CONFIG.json") with its tokenizer (DIR/tokenizer.json;
// none for dummy models or directories without one) and starts an Engine over them.
Expected<std::unique_ptr<Engine>> open_engine(const std::string& model_path, const LoadOptions& load,
                                              const EngineOptions& options);

}  // namespace ghostline::engine
