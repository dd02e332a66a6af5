// `ghostline generate`: one prompt through the Engine (scheduler, prefix cache, sampling,
// speculation), streaming the text to stdout, or one JSON object with --json. A dummy:CONFIG
// model (or a directory without tokenizer.json) takes the prompt as --ids 1,2,3 instead.
#include <cstdio>
#include <future>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "engine/engine.h"
#include "engine/model.h"
#include "engine/tokenizer/tokenizer.h"

namespace ghostline::cli {

namespace {

Expected<std::vector<int32_t>> parse_id_list(const std::string& text, int vocab) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string item = text.substr(i, j - i);
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 0 || v >= vocab)
      return make_error(ErrorCode::InvalidArgument, "--ids: '" + item + "' is not a token id in [0, " + std::to_string(vocab) + ")");
    ids.push_back(static_cast<int32_t>(v));
    i = j + 1;
  }
  return ids;
}

const char* reason_name(engine::FinishReason r) {
  switch (r) {
    case engine::FinishReason::Length: return "length";
    case engine::FinishReason::Eos: return "eos";
    case engine::FinishReason::Stop: return "stop";
    case engine::FinishReason::Cancelled: return "cancelled";
    case engine::FinishReason::Budget: return "budget";
    case engine::FinishReason::Error: return "error";
    default: return "none";
  }
}

}  // namespace

int cmd_generate(const Argv& argv) {
  const std::string cmd = "generate";
  auto args = Args::parse(argv,
                          {"model", "prompt", "ids", "max-tokens", "temperature", "top-p", "top-k", "seed", "stop",
                           "speculation", "device", "threads", "kv-blocks"},
                          {"json"});
  if (!args) return fail(cmd, args.error());
  auto max_tokens = args->get_int("max-tokens", 64);
  auto temperature = args->get_double("temperature", 0.0);
  auto top_p = args->get_double("top-p", 1.0);
  auto top_k = args->get_int("top-k", 0);
  auto seed = args->get_int("seed", 0);
  auto threads = args->get_int("threads", 0);
  auto kv_blocks = args->get_int("kv-blocks", 0);
  for (auto* e : {&max_tokens, &top_k, &seed, &threads, &kv_blocks})
    if (!*e) return fail(cmd, e->error());
  for (auto* e : {&temperature, &top_p})
    if (!*e) return fail(cmd, e->error());
  if (*max_tokens < 1) return fail(cmd, make_error(ErrorCode::InvalidArgument, "--max-tokens must be at least 1"));
  if (*temperature < 0) return fail(cmd, make_error(ErrorCode::InvalidArgument, "--temperature must be >= 0"));
  if (*top_p <= 0 || *top_p > 1) return fail(cmd, make_error(ErrorCode::InvalidArgument, "--top-p must be in (0, 1]"));
  const std::string spec = args->get_or("speculation", "on");
  if (spec != "on" && spec != "off")
    return fail(cmd, make_error(ErrorCode::InvalidArgument, "--speculation must be on or off, not '" + spec + "'"));
  if (args->get("prompt").has_value() == args->get("ids").has_value())
    return fail(cmd, make_error(ErrorCode::InvalidArgument, "give the prompt as --prompt TEXT or --ids 1,2,3 (one of them)"));

  engine::LoadOptions lo;
  if (auto d = engine::parse_device(args->get_or("device", "auto"), lo); !d) return fail(cmd, d.error());
  lo.threads = *threads;
  const std::string model_path = args->get_or("model", default_model_dir());
  // The tokenizer is needed for --prompt; with --ids it only decodes the output, when present.
  std::shared_ptr<const engine::Tokenizer> tokenizer;
  const bool text_prompt = args->get("prompt").has_value();
  if (model_path.rfind("dummy:", 0) == 0) {
    if (text_prompt)
      return fail(cmd, make_error(ErrorCode::InvalidArgument, "--model " + model_path + " has no tokenizer; use --ids 1,2,3"));
  } else {
    auto tok = engine::Tokenizer::from_model_dir(model_path);
    if (tok) tokenizer = *tok;
    else if (text_prompt) return fail(cmd, tok.error());
  }
  auto model = engine::load_model(model_path, lo);
  if (!model) return fail(cmd, model.error());
  const int vocab = (*model)->info().vocab_size;

  engine::GenerationRequest req;
  if (auto ids = args->get("ids")) {
    auto parsed = parse_id_list(*ids, vocab);
    if (!parsed) return fail(cmd, parsed.error());
    req.prompt = std::move(*parsed);
  } else {
    if (tokenizer->add_bos() && tokenizer->bos_id()) req.prompt.push_back(*tokenizer->bos_id());
    auto encoded = tokenizer->encode(*args->get("prompt"));
    req.prompt.insert(req.prompt.end(), encoded.begin(), encoded.end());
  }
  req.sampling.max_tokens = *max_tokens;
  req.sampling.temperature = static_cast<float>(*temperature);
  req.sampling.top_p = static_cast<float>(*top_p);
  req.sampling.top_k = *top_k;
  req.sampling.seed = static_cast<uint64_t>(*seed);
  if (auto stop = args->get("stop")) req.sampling.stop.push_back(*stop);
  req.speculation = spec == "on";

  engine::EngineOptions eo;
  eo.kv_blocks = *kv_blocks;
  if (eo.kv_blocks == 0) {
    // One request: a pool for its prompt and output is all it needs.
    const int need = static_cast<int>(req.prompt.size()) + *max_tokens + 16;
    eo.kv_blocks = (need + eo.block_size - 1) / eo.block_size + 1;
  }
  eo.max_running = 1;
  auto eng = engine::Engine::create(std::move(*model), tokenizer, eo);
  if (!eng) return fail(cmd, eng.error());

  const bool json = args->has("json");
  std::string text;
  engine::StreamEvent last;
  std::promise<void> done;
  (*eng)->submit(std::move(req), [&](const engine::StreamEvent& ev) {
    text += ev.text;
    if (!json && !ev.text.empty()) {
      std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
      std::fflush(stdout);
    }
    if (ev.finished) {
      last = ev;
      done.set_value();
    }
  });
  done.get_future().wait();
  (*eng).reset();  // joins the engine thread: the callback has returned before its captures go
  if (last.reason == engine::FinishReason::Error) return fail(cmd, make_error(ErrorCode::Internal, last.error));
  const auto& s = last.stats;
  const double decode_ms = s.total_ms - s.ttft_ms;
  const double tps = s.generated_tokens > 1 && decode_ms > 0 ? (s.generated_tokens - 1) * 1000.0 / decode_ms
                     : s.total_ms > 0 ? s.generated_tokens * 1000.0 / s.total_ms : 0.0;
  if (json) {
    nlohmann::json out;
    out["text"] = text;
    out["prompt_tokens"] = s.prompt_tokens;
    out["cached_tokens"] = s.cached_tokens;
    out["generated_tokens"] = s.generated_tokens;
    out["draft_proposed"] = s.draft_proposed;
    out["draft_accepted"] = s.draft_accepted;
    out["ttft_ms"] = s.ttft_ms;
    out["total_ms"] = s.total_ms;
    out["tokens_per_s"] = tps;
    out["finish_reason"] = reason_name(last.reason);
    std::cout << out.dump() << "\n";
  } else {
    std::printf("\n");
  }
  return 0;
}

}  // namespace ghostline::cli
