// Sequence: one request's state inside the engine — its tokens, KV blocks, sampler, text
// stream and stats. The engine thread owns every Sequence; nothing here is thread-safe.
//
// Invariants: the KV of tokens[0, n_computed) sits in blocks (ceil(n_computed / B) of them at
// least); the last token of `tokens` is the next to feed once the prompt is computed, so a
// sequence in decode has n_computed == tokens.size() - 1.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/engine.h"
#include "engine/runtime/drafter.h"
#include "engine/runtime/sampler.h"
#include "engine/runtime/text_stream.h"

namespace ghostline::engine::runtime {

using Clock = std::chrono::steady_clock;

inline double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Sequence {
  Sequence(RequestId id_, GenerationRequest req, std::function<void(const StreamEvent&)> cb,
           std::shared_ptr<const Tokenizer> tok)
      : id(id_), request(std::move(req)), on_event(std::move(cb)), sampler(request.sampling),
        text(std::move(tok), request.sampling.stop) {
    tokens = request.prompt;
    n_prompt = static_cast<int>(tokens.size());
    required = request.required_prefix;
  }

  RequestId id;
  GenerationRequest request;
  std::function<void(const StreamEvent&)> on_event;
  std::vector<int32_t> tokens;       // prompt, then every accepted generated token
  int n_prompt = 0;
  int n_computed = 0;                // tokens whose KV is written
  std::vector<int> blocks;           // block table
  Sampler sampler;
  TextStream text;
  GenerationStats stats;
  Clock::time_point submitted = Clock::now();
  bool admitted_once = false;
  bool has_first_token = false;
  bool cancel_requested = false;
  std::string required;              // the part of request.required_prefix not generated yet

  // This step (set by the scheduler, read by the runner and postprocess).
  int step_new = 0;                  // tokens fed this step
  std::vector<int32_t> draft;        // speculative tokens fed after the real next token
  int logits_row = 0;                // first logits row of this sequence in the step
  DraftSource draft_source = DraftSource::Lookup;

  int n_generated() const { return static_cast<int>(tokens.size()) - n_prompt; }
  bool in_decode() const { return n_computed + 1 == static_cast<int>(tokens.size()); }
};

}  // namespace ghostline::engine::runtime
