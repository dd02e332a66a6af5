// LoadedModel and run_generation: the service's bridge to the engine.
#include "completion/loaded_model.h"

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "engine/tokenizer/tokenizer.h"

namespace ghostline::completion {

std::vector<int32_t> LoadedModel::encode_prompt(std::string_view prompt) const {
  const auto& tok = tokenizer();
  std::vector<int32_t> ids;
  if (tok.add_bos() && tok.bos_id()) ids.push_back(*tok.bos_id());
  auto body = tok.encode(prompt);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

size_t LoadedModel::count_tokens(std::string_view text) const { return tokenizer().encode(text).size(); }

Expected<std::shared_ptr<const LoadedModel>> load_model_for_completion(const std::string& path,
                                                                       const ModelLoadOptions& options) {
  namespace fs = std::filesystem;
  if (path.rfind("dummy:", 0) == 0)
    return make_error(ErrorCode::InvalidArgument, "completions need a model with a tokenizer; '" + path + "' has none");
  std::error_code ec;
  if (!fs::is_directory(path, ec))
    return make_error(ErrorCode::NotFound, "model folder not found: '" + path + "'");
  if (!fs::exists(fs::path(path) / "tokenizer.json", ec))
    return make_error(ErrorCode::NotFound, "model folder '" + path + "' has no tokenizer.json");
  auto fim = detect_fim_template(path);
  if (!fim) return make_error(fim.error().code, "model '" + path + "': " + fim.error().message);

  engine::LoadOptions load;
  load.threads = options.threads;
  if (auto d = engine::parse_device(options.device, load); !d)
    return make_error(ErrorCode::InvalidArgument, "device must be auto, cpu or cuda[:N], not '" + options.device + "'");
  auto eng = engine::open_engine(path, load, options.engine);
  if (!eng) return make_error(eng.error().code, "model '" + path + "': " + eng.error().message);

  auto model = std::make_shared<LoadedModel>();
  model->path = path;
  model->name = fs::path(path).filename().string();
  if (model->name.empty()) model->name = fs::path(path).parent_path().filename().string();
  model->device = (*eng)->info().device == engine::Device::Cuda ? "cuda" : "cpu";
  model->engine = std::move(*eng);
  model->fim = std::move(*fim);
  return std::shared_ptr<const LoadedModel>(std::move(model));
}

namespace {

// Shared between the waiting thread, the engine thread (events) and a cancelling thread.
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  bool active = true;          // false once run_generation has returned: callbacks must not touch the engine
  bool stopped_early = false;  // `until` said the answer is complete
  Generation gen;
  std::string error;
  engine::Engine* engine = nullptr;
  engine::RequestId id = 0;
  bool submitted = false;
  bool cancel_pending = false;  // cancel arrived before submit() returned the id
};

}  // namespace

Expected<Generation> run_generation(const LoadedModel& model, engine::GenerationRequest request,
                                    const CancelToken& cancel,
                                    const std::function<bool(std::string_view text)>& until) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  if (cancel.cancelled()) return make_error(ErrorCode::Cancelled, "cancelled");
  auto w = std::make_shared<Waiter>();
  w->engine = model.engine.get();

  auto cancel_engine = [w] {
    std::lock_guard lock(w->mu);
    if (!w->active || w->finished) return;
    if (!w->submitted) {
      w->cancel_pending = true;
      return;
    }
    w->engine->cancel(w->id);
  };

  auto on_event = [w, until, t0](const engine::StreamEvent& ev) {
    bool stop_now = false;
    {
      std::lock_guard lock(w->mu);
      if (w->finished) return;
      if (!w->stopped_early) {
        w->gen.tokens.insert(w->gen.tokens.end(), ev.tokens.begin(), ev.tokens.end());
        w->gen.logprobs.insert(w->gen.logprobs.end(), ev.logprobs.begin(), ev.logprobs.end());
        if (!ev.text.empty() && w->gen.text.empty())
          w->gen.first_text_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
        w->gen.text += ev.text;
        if (!ev.finished && until && !ev.text.empty() && until(w->gen.text)) {
          w->stopped_early = true;
          stop_now = w->submitted;
          if (!w->submitted) w->cancel_pending = true;
        }
      }
      if (ev.finished) {
        w->finished = true;
        w->gen.stats = ev.stats;
        w->gen.reason = w->stopped_early ? engine::FinishReason::Stop : ev.reason;
        if (ev.reason == engine::FinishReason::Error) w->error = ev.error.empty() ? "engine error" : ev.error;
      }
    }
    // Callbacks may call cancel() on the engine (engine.h); the id is known once submitted.
    if (stop_now) w->engine->cancel(w->id);
    if (ev.finished) w->cv.notify_all();
  };

  // submit() may deliver events (even the final one) before it returns the id.
  const auto id = model.engine->submit(std::move(request), on_event);
  bool cancel_now = false;
  {
    std::lock_guard lock(w->mu);
    w->id = id;
    w->submitted = true;
    cancel_now = w->cancel_pending && !w->finished;
  }
  if (cancel_now) model.engine->cancel(id);
  cancel.on_cancel(cancel_engine);

  Generation out;
  std::string error;
  {
    std::unique_lock lock(w->mu);
    w->cv.wait(lock, [&] { return w->finished; });
    w->active = false;
    out = std::move(w->gen);
    error = w->error;
  }
  if (!error.empty()) return make_error(ErrorCode::Internal, error);
  if (out.reason == engine::FinishReason::Cancelled || (cancel.cancelled() && out.reason != engine::FinishReason::Stop))
    return make_error(ErrorCode::Cancelled, "cancelled");
  return out;
}

}  // namespace ghostline::completion
