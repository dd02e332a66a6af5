// `ghostline complete FILE:LINE:COL [--json]`: one inline completion through the completion
// service — the same code path as the language server (document parse, context, FIM prompt,
// engine, post-processing). Plain output: the suggestion on stdout and one line of numbers on
// stderr; --json: {text, source, token counts, ttft_ms, total_ms (from the request), load_ms}.
#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/file_cursor.h"
#include "completion/service.h"

namespace ghostline::cli {

int cmd_complete(const Argv& argv) {
  const std::string cmd = "complete";
  auto args = Args::parse(argv, {"model", "max-tokens", "device", "threads", "speculation", "temperature", "language"},
                          {"json", "mid-line"});
  if (!args) return fail(cmd, args.error());
  if (args->positional().size() != 1)
    return fail(cmd, make_error(ErrorCode::InvalidArgument, "usage: ghostline complete FILE:LINE:COL [--json] [--model DIR] "
                                                            "[--max-tokens N] [--device auto|cpu|cuda] [--speculation on|off]"));
  auto max_tokens = args->get_int("max-tokens", 64);
  if (!max_tokens) return fail(cmd, max_tokens.error());
  if (*max_tokens < 1) return fail(cmd, make_error(ErrorCode::InvalidArgument, "--max-tokens must be at least 1"));
  auto threads = args->get_int("threads", 0);
  if (!threads) return fail(cmd, threads.error());
  auto temperature = args->get_double("temperature", 0.0);
  if (!temperature) return fail(cmd, temperature.error());
  if (*temperature < 0) return fail(cmd, make_error(ErrorCode::InvalidArgument, "--temperature must be >= 0"));
  const std::string spec = args->get_or("speculation", "on");
  if (spec != "on" && spec != "off")
    return fail(cmd, make_error(ErrorCode::InvalidArgument, "--speculation must be on or off, not '" + spec + "'"));

  auto cursor = read_file_cursor(args->positional().front());
  if (!cursor) return fail(cmd, cursor.error());

  completion::Settings settings;
  settings.model = args->get_or("model", default_model_dir());
  settings.device = args->get_or("device", "auto");
  settings.threads = *threads;
  settings.max_tokens = *max_tokens;
  settings.temperature = static_cast<float>(*temperature);
  settings.speculation = spec == "on";
  settings.early_first_line_ms = -1;  // one answer: the whole suggestion
  settings.complete_mid_line = args->has("mid-line");
  auto service = completion::make_service(settings);
  const auto t_load = std::chrono::steady_clock::now();
  if (auto loaded = service->preload(); !loaded) return fail(cmd, loaded.error());
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_load).count();

  // The service as an editor drives it: open the document, ask at the cursor.
  const std::string uri = "file://" + cursor->path;
  service->open(uri, args->get_or("language", ""), cursor->text, 1);
  completion::CompletionRequest request;
  request.uri = uri;
  request.version = 1;
  request.cursor = cursor->offset;
  request.trigger = completion::Trigger::Invoked;
  std::promise<Expected<completion::CompletionResult>> promise;
  auto future = promise.get_future();
  service->complete(request, CancelToken::make(),
                    [&promise](Expected<completion::CompletionResult> r) { promise.set_value(std::move(r)); });
  auto result = future.get();
  if (!result) return fail(cmd, result.error());

  std::string text = result->items.empty() ? std::string() : result->items.front().insert_text;
  const auto& s = result->stats;
  if (args->has("json")) {
    nlohmann::json j = {{"text", text},
                        {"source", s.source},
                        {"prompt_tokens", s.prompt_tokens},
                        {"cached_tokens", s.cached_tokens},
                        {"generated_tokens", s.generated_tokens},
                        {"draft_proposed", s.draft_proposed},
                        {"draft_accepted", s.draft_accepted},
                        {"ttft_ms", s.ttft_ms},
                        {"total_ms", s.total_ms},
                        {"load_ms", load_ms}};
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << text << (text.empty() || text.back() == '\n' ? "" : "\n");
    std::fprintf(stderr, "ghostline complete: %s, %d prompt tokens (%d cached), %d generated, first token %.1f ms, total %.1f ms (model load %.0f ms)%s\n",
                 s.source.c_str(), s.prompt_tokens, s.cached_tokens, s.generated_tokens, s.ttft_ms, s.total_ms, load_ms,
                 text.empty() ? " (no suggestion at this cursor)" : "");
  }
  return 0;
}

}  // namespace ghostline::cli
