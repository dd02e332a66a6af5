// The completion service: documents parsed with tree-sitter, FIM context, the engine, and the
// memories (typing-through, suggestion cache) that answer most keystrokes without the model.
//
// Threads:
//  - the caller (the LSP reader, the CLI): open/change/close update documents under mu_ (an
//    incremental reparse, well under a millisecond); complete() answers typing-through at once,
//    everything else is posted;
//  - worker_: model loading, context, tokenization, one generation at a time (a newer request
//    cancels an older one through its CancelToken, so the queue never holds stale work for long),
//    post-processing;
//  - fixes_: quick fixes, so a slow fix never delays a completion;
//  - side_: syntax diagnostics of the newest version, and the early first-line answers of
//    multi-line suggestions (the engine thread hands them over, it never post-processes);
//  - the engine's own thread (inside engine::Engine).
// Callbacks to the caller are made without holding any lock of the service.
#include <atomic>
#include <cctype>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "completion/context.h"
#include "completion/document.h"
#include "completion/fim.h"
#include "completion/fix.h"
#include "completion/loaded_model.h"
#include "completion/postprocess.h"
#include "completion/service.h"
#include "completion/suggestion_memory.h"
#include "completion/task_queue.h"
#include "engine/tokenizer/tokenizer.h"

namespace ghostline::completion {
namespace {

using Clock = std::chrono::steady_clock;

// No new quick-fix candidate is generated after this long (the one running finishes).
constexpr double kFixBudgetMs = 8000;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// The path a document's context names (file URIs become paths; others stay as they are).
std::string path_of(const std::string& uri) {
  const std::string scheme = "file://";
  return uri.rfind(scheme, 0) == 0 ? uri.substr(scheme.size()) : uri;
}

// Token healing: the end of the line before the cursor that the prompt leaves out and the model
// must generate first — a partial word ("retu|") or the spaces after a word ("return |"). A BPE
// model has seen such text only as part of longer tokens ("return", " x"), so a prompt that
// stops inside one makes it end the answer at once. Empty when the line ends otherwise.
std::string healing_fragment(const std::string& line_prefix) {
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || (c & 0x80); };
  size_t i = line_prefix.size();
  while (i > 0 && line_prefix.size() - i < 24 && word(line_prefix[i - 1])) --i;
  if (i == line_prefix.size()) {
    while (i > 0 && line_prefix.size() - i < 16 && (line_prefix[i - 1] == ' ' || line_prefix[i - 1] == '\t')) --i;
    // Indentation alone is left as it is: healing it gave more answers but no more exact ones
    // (80 held-out indented lines: 5.0% exact without, 3.8% with).
    if (line_prefix.find_first_not_of(" \t") == std::string::npos) return {};
  }
  // Do not cut a UTF-8 character.
  while (i < line_prefix.size() && (static_cast<unsigned char>(line_prefix[i]) & 0xC0) == 0x80) ++i;
  return line_prefix.substr(i);
}

// Where a small model's loop begins: the first complete line that starts a repeat of the 1-4
// lines just before it ("a\nb\nb\n", "a\nb\na\nb\n"); nullopt when there is none. Real code
// seldom repeats a block verbatim right after itself; a 10M-parameter model often does.
std::optional<size_t> repetition_start(std::string_view text) {
  std::vector<std::pair<size_t, std::string_view>> lines;  // complete lines: start, trimmed text
  size_t start = 0;
  for (size_t nl = text.find('\n'); nl != std::string_view::npos; start = nl + 1, nl = text.find('\n', start)) {
    std::string_view l = text.substr(start, nl - start);
    while (!l.empty() && (l.front() == ' ' || l.front() == '\t')) l.remove_prefix(1);
    while (!l.empty() && (l.back() == ' ' || l.back() == '\t' || l.back() == '\r')) l.remove_suffix(1);
    lines.emplace_back(start, l);
  }
  for (size_t end = 2; end <= lines.size(); ++end) {
    for (size_t span = 1; span <= 4 && 2 * span <= end; ++span) {
      bool same = true, content = false;
      for (size_t k = 0; k < span && same; ++k) {
        const auto& a = lines[end - 2 * span + k].second;
        const auto& b = lines[end - span + k].second;
        same = a == b;
        content = content || a.size() >= 3;
      }
      if (same && content) return lines[end - span].first;
    }
  }
  return std::nullopt;
}

bool language_enabled(const Settings& s, const std::string& language_id, Language language) {
  if (s.enabled_languages.empty()) return true;
  for (const auto& l : s.enabled_languages)
    if (l == language_id || l == language_name(language)) return true;
  return false;
}

// Answers a request exactly once, whichever of the early answer and the final one comes first.
class OnceReply {
 public:
  using Record = std::function<void(const Expected<CompletionResult>&)>;
  OnceReply(Callback<CompletionResult> done, Record record) : done_(std::move(done)), record_(std::move(record)) {}
  bool answered() const { return answered_.load(std::memory_order_acquire); }
  void operator()(Expected<CompletionResult> r) {
    answer_with(std::move(r), {});
  }
  // Runs remember(first) under the reply's lock — first is true when `r` is the answer, false when
  // an answer was given already (r is then a later, fuller result and is not sent) — and answers.
  // The lock orders the early first line's memory before the whole suggestion's.
  void answer_with(Expected<CompletionResult> r, const std::function<void(bool first)>& remember) {
    bool first;
    {
      std::lock_guard lock(mu_);
      first = !answered_.exchange(true, std::memory_order_acq_rel);
      if (remember) remember(first);
    }
    if (!first) return;
    if (record_) record_(r);
    done_(std::move(r));
  }

 private:
  std::mutex mu_;
  Callback<CompletionResult> done_;
  Record record_;
  std::atomic<bool> answered_{false};
};

class ServiceImpl final : public Service {
 public:
  explicit ServiceImpl(Settings settings) : settings_(std::move(settings)) {
    // Load at once in the background: the first completion should not pay for it.
    if (!settings_.model.empty() && settings_.endpoint.empty()) worker_.post([this] { (void)ensure_model(); });
  }

  ~ServiceImpl() override {
    std::lock_guard lock(mu_);
    for (auto& [uri, d] : docs_) d.continuation.cancel();
  }

  // ---- documents ----

  void open(const std::string& uri, const std::string& language_id, std::string text, int version) override {
    {
      std::lock_guard lock(mu_);
      auto& d = docs_[uri];
      d.continuation.cancel();
      d = DocState{};
      d.doc = std::make_unique<Document>(path_of(uri), language_id, std::move(text));
      d.language_id = language_id;
      d.version = version;
    }
    typing_.forget(uri);
    publish_diagnostics(uri);
  }

  Expected<void> change(const std::string& uri, int version, const std::vector<DocumentEdit>& edits) override {
    {
      std::lock_guard lock(mu_);
      auto it = docs_.find(uri);
      if (it == docs_.end()) return make_error(ErrorCode::NotFound, "document is not open: " + uri);
      if (auto r = it->second.doc->apply(edits); !r) return r;
      it->second.version = version;
    }
    publish_diagnostics(uri);
    return ok();
  }

  void close(const std::string& uri) override {
    {
      std::lock_guard lock(mu_);
      auto it = docs_.find(uri);
      if (it == docs_.end()) return;
      it->second.continuation.cancel();
      docs_.erase(it);
    }
    typing_.forget(uri);
  }

  std::vector<Diagnostic> diagnostics(const std::string& uri) override {
    Snapshot snap;
    {
      std::lock_guard lock(mu_);
      auto it = docs_.find(uri);
      if (it == docs_.end()) return {};
      snap = it->second.doc->snapshot();
    }
    return syntax_diagnostics(snap);
  }

  // ---- settings, observer ----

  void configure(const Settings& settings) override {
    bool reload;
    {
      std::lock_guard lock(mu_);
      reload = settings.model != settings_.model || settings.device != settings_.device ||
               settings.endpoint != settings_.endpoint || settings.threads != settings_.threads;
      settings_ = settings;
    }
    if (reload) {
      {
        std::lock_guard lock(model_mu_);
        load_error_.reset();  // new settings: try again
      }
      // Load now, so that the first completion does not wait for it.
      worker_.post([this] { (void)ensure_model(); });
    }
  }

  Expected<void> preload() override {
    auto m = ensure_model();
    if (!m) return m.error();
    return ok();
  }

  ServiceStatus status() const override {
    ServiceStatus s;
    {
      std::lock_guard lock(mu_);
      s = status_;
      s.model = settings_.model;
    }
    std::lock_guard lock(model_mu_);
    if (model_) {
      s.loaded = true;
      s.model_name = model_->name;
      s.device = model_->device;
      s.kv_capacity_tokens = model_->engine->kv_capacity_tokens();
    }
    if (load_error_) s.load_error = load_error_->message;
    return s;
  }

  void set_observer(Observer observer) override {
    std::lock_guard lock(observer_mu_);
    observer_ = std::move(observer);
  }

  // ---- completions ----

  void complete(const CompletionRequest& request, CancelToken cancel, Callback<CompletionResult> done_raw) override {
    const auto t0 = Clock::now();
    auto reply = std::make_shared<OnceReply>(std::move(done_raw), [this](const Expected<CompletionResult>& r) { record(r); });
    auto done = [reply](Expected<CompletionResult> r) { (*reply)(std::move(r)); };
    if (cancel.cancelled()) return done(make_error(ErrorCode::Cancelled, "cancelled"));
    Job job;
    job.request = request;
    job.t0 = t0;
    std::optional<Error> refused;  // answered after the lock is released (answers take mu_)
    {
      std::lock_guard lock(mu_);
      auto it = docs_.find(request.uri);
      if (it == docs_.end()) {
        refused = Error(ErrorCode::NotFound, "document is not open: " + request.uri);
      } else if (request.version != 0 && request.version < it->second.version) {
        refused = Error(ErrorCode::Cancelled, "superseded: the document is at version " + std::to_string(it->second.version));
      } else {
        const auto& d = it->second;
        job.snapshot = d.doc->snapshot();
        job.language_id = d.language_id;
        job.settings = settings_;
        if (job.settings.max_snippets > 0)
          for (const auto& [uri, other] : docs_)
            if (uri != request.uri) job.others.push_back(other.doc->snapshot());
      }
    }
    if (refused) return done(*refused);
    const std::string& text = job.snapshot.text();
    if (request.cursor > text.size())
      return done(make_error(ErrorCode::InvalidArgument, "cursor at byte " + std::to_string(request.cursor) +
                                                             " is past the end of the document (" +
                                                             std::to_string(text.size()) + " bytes)"));
    if (request.selected_text &&
        (request.selected_start > request.selected_end || request.selected_end > text.size() ||
         request.cursor < request.selected_start || request.cursor > request.selected_end))
      return done(make_error(ErrorCode::InvalidArgument, "selectedCompletionInfo range does not contain the cursor"));
    if (!language_enabled(job.settings, job.language_id, job.snapshot.language())) {
      CompletionResult r;
      r.stats.source = "none";
      return done(std::move(r));
    }
    // Typing-through: the user typed the start of what is shown; the rest needs no model.
    if (!request.selected_text)
      if (auto r = typing_through(request.uri, text, request.cursor, t0)) return done(std::move(*r));
    // Anything but typing the shown text makes the document's background continuation stale;
    // after typing all of the shown first line, the request waits for the continuation instead
    // (it runs on the same worker) and is answered by typing-through there.
    if (request.selected_text || !typing_.typed_all_or_part(request.uri, text, request.cursor)) {
      std::lock_guard lock(mu_);
      if (auto it = docs_.find(request.uri); it != docs_.end()) it->second.continuation.cancel();
    }
    worker_.post([this, job = std::move(job), cancel, reply]() mutable { run_completion(std::move(job), cancel, reply); });
  }

  void fix(const FixRequest& request, CancelToken cancel, Callback<std::vector<Fix>> done) override {
    Snapshot snap;
    std::optional<Error> refused;
    {
      std::lock_guard lock(mu_);
      auto it = docs_.find(request.uri);
      if (it == docs_.end())
        refused = Error(ErrorCode::NotFound, "document is not open: " + request.uri);
      else if (request.version != 0 && request.version != it->second.version)
        refused = Error(ErrorCode::InvalidArgument, "the diagnostic refers to version " + std::to_string(request.version) +
                                                        ", the document is at " + std::to_string(it->second.version));
      else
        snap = it->second.doc->snapshot();
    }
    if (refused) return done(*refused);
    if (request.diagnostic.start > request.diagnostic.end || request.diagnostic.end > snap.text().size())
      return done(make_error(ErrorCode::InvalidArgument, "diagnostic range is outside the document"));
    fixes_.post([this, snap = std::move(snap), request, cancel, done = std::move(done)] {
      if (cancel.cancelled()) return done(make_error(ErrorCode::Cancelled, "cancelled"));
      auto model = ensure_model();
      if (!model) return done(model.error());
      // Quick fixes (issue 10): holes around the diagnostic, FIM candidates from the model,
      // offered only when a re-parse shows fewer errors and nothing changed outside the hole.
      FixOptions options;
      options.max_total_ms = kFixBudgetMs;
      done(compute_fixes(**model, snap, request.diagnostic, cancel, options));
    });
  }

 private:
  struct DocState {
    std::unique_ptr<Document> doc;
    std::string language_id;
    int version = 0;
    CancelToken continuation;        // the background rest of an early-answered suggestion
    std::optional<int> published_version_seen;  // the version whose diagnostics were published
  };

  struct Job {
    CompletionRequest request;
    Snapshot snapshot;
    std::vector<Snapshot> others;
    std::string language_id;
    Settings settings;
    Clock::time_point t0;
  };

  // ---- the model ----

  // Loads (or reloads after a settings change) the model. Called on worker threads only.
  Expected<std::shared_ptr<const LoadedModel>> ensure_model() {
    Settings s;
    {
      std::lock_guard lock(mu_);
      s = settings_;
    }
    std::lock_guard lock(model_mu_);
    if (!s.endpoint.empty())
      return make_error(ErrorCode::Unsupported, "remote engine endpoints are not supported yet ('" + s.endpoint +
                                                    "'); set a model folder instead");
    if (s.model.empty()) return make_error(ErrorCode::InvalidArgument, "no model configured");
    const std::string key = s.model + "|" + s.device + "|" + std::to_string(s.threads);
    if (model_ && model_key_ == key) return model_;
    if (load_error_ && load_error_key_ == key) return *load_error_;
    progress("Loading model " + s.model, 0, false);
    const auto t0 = Clock::now();
    ModelLoadOptions options;
    options.device = s.device;
    options.threads = s.threads;
    auto loaded = load_model_for_completion(s.model, options);
    if (!loaded) {
      load_error_ = loaded.error();
      load_error_key_ = key;
      progress("Model failed to load: " + loaded.error().message, 100, true);
      log("model load failed: " + loaded.error().message);
      return loaded.error();
    }
    model_ = *loaded;
    model_key_ = key;
    progress("Model " + model_->name + " ready", 100, true);
    log("model " + s.model + " loaded on " + model_->device + " in " + std::to_string(int(ms_since(t0))) + " ms (" +
        fim_family_name(model_->fim.family) + " FIM, " +
        (model_->fim.preferred_order() == FimOrder::SPM ? "SPM" : "PSM") + ", KV for " +
        std::to_string(model_->engine->kv_capacity_tokens()) + " tokens)");
    return model_;
  }

  // The rest of the shown suggestion when the user typed its start, as an answer.
  std::optional<CompletionResult> typing_through(const std::string& uri, const std::string& text, size_t cursor,
                                                 Clock::time_point t0) const {
    auto rest = typing_.remainder(uri, text, cursor);
    if (!rest) return std::nullopt;
    CompletionResult r;
    r.items.push_back(Suggestion{*rest, cursor, cursor, ""});
    r.stats.source = "typing-through";
    r.stats.total_ms = ms_since(t0);
    return r;
  }

  // ---- one completion, on worker_ ----

  void run_completion(Job job, const CancelToken& cancel, const std::shared_ptr<OnceReply>& reply) {
    if (cancel.cancelled()) return (*reply)(make_error(ErrorCode::Cancelled, "cancelled"));
    const auto& req = job.request;
    if (!req.selected_text)
      if (auto r = typing_through(req.uri, job.snapshot.text(), req.cursor, job.t0)) return (*reply)(std::move(*r));
    auto loaded = ensure_model();
    if (!loaded) return (*reply)(loaded.error());
    const std::shared_ptr<const LoadedModel> model = *loaded;
    const double queue_ms = ms_since(job.t0);
    const auto context_start = Clock::now();

    // The completion widget's selected item: complete as if it were already inserted.
    Snapshot snap = job.snapshot;
    size_t cursor = req.cursor;
    std::string lead;  // text the suggestion must start with (the selected item)
    if (req.selected_text) {
      const std::string& t = snap.text();
      std::string edited = t.substr(0, req.selected_start) + *req.selected_text + t.substr(req.selected_end);
      cursor = req.selected_start + req.selected_text->size();
      lead = *req.selected_text;
      snap = parse_snapshot(snap.path(), snap.language(), std::move(edited));
    }

    ContextOptions options;
    const int ctx_limit = model->engine->info().max_context;
    const int max_tokens = std::max(1, req.max_tokens.value_or(job.settings.max_tokens));
    size_t suffix_budget = job.settings.max_suffix_tokens, prefix_budget = job.settings.max_prefix_tokens;
    if (ctx_limit > 0) {
      // Leave room for the template's tokens and the answer inside the model's context.
      const size_t room = size_t(std::max(64, ctx_limit - max_tokens - 16 - int(job.settings.max_snippets > 0 ? 256 : 0)));
      suffix_budget = std::min(suffix_budget, room / 4);
      prefix_budget = std::min(prefix_budget, room - suffix_budget);
    }
    options.max_prefix_tokens = prefix_budget;
    options.max_suffix_tokens = suffix_budget;
    options.max_snippets = job.settings.max_snippets;
    options.complete_in_comments = job.settings.complete_in_comments;
    options.complete_mid_line = job.settings.complete_mid_line;
    options.count_tokens = [model](std::string_view t) { return model->count_tokens(t); };
    Context ctx = build_context(snap, cursor, job.others, options);

    CompletionResult result;
    result.stats.source = "none";
    if (ctx.mode == Mode::None || cancel.cancelled()) {
      if (cancel.cancelled()) return (*reply)(make_error(ErrorCode::Cancelled, "cancelled"));
      result.stats.queue_ms = queue_ms;
      result.stats.context_ms = ms_since(context_start);
      result.stats.total_ms = ms_since(job.t0);
      return (*reply)(std::move(result));
    }

    // Token healing (see healing_fragment): the prompt stops before the fragment, the engine
    // makes the answer begin with it, and it is taken off again below.
    const std::string heal = job.settings.token_healing ? healing_fragment(ctx.line_prefix) : std::string();
    std::string prompt;
    if (heal.empty() || ctx.prefix.size() < heal.size()) {
      prompt = model->fim.render(ctx);
    } else {
      Context healed = ctx;
      healed.prefix.resize(healed.prefix.size() - heal.size());
      prompt = model->fim.render(healed);
    }
    // The model's text after the fragment, or nullopt while the fragment is not complete.
    auto after_heal = [&heal](std::string_view text) -> std::optional<std::string_view> {
      if (text.size() < heal.size()) return std::nullopt;
      if (text.compare(0, heal.size(), heal) != 0) return std::string_view();  // cannot happen unless cut
      return text.substr(heal.size());
    };
    // The healed fragment is part of the question: "ret|" and "retu|" share a healed prompt.
    const std::string key = SuggestionCache::key(model->path, prompt + '\x01' + heal, max_tokens, mode_name(ctx.mode));
    auto answer = [&](std::string suggestion, CompletionStats stats) {
      const std::string shown = lead.empty() ? suggestion : lead + suggestion;
      result.stats = std::move(stats);
      result.stats.queue_ms = queue_ms;
      result.stats.total_ms = ms_since(job.t0);
      if (!suggestion.empty() || !lead.empty()) {
        const size_t start = lead.empty() ? req.cursor : req.selected_start;
        const size_t end = lead.empty() ? req.cursor : req.selected_end;
        result.items.push_back(Suggestion{lead + suggestion, start, end, lead.empty() ? "" : lead + suggestion});
      }
      // Remembered whether or not this is the answer: after an early first line it is the rest.
      reply->answer_with(std::move(result), [&](bool) { typing_.remember(req.uri, job.snapshot.text(), req.cursor, shown); });
    };

    if (auto hit = cache_.get(key)) {
      CompletionStats stats;
      stats.source = "cache";
      stats.context_ms = ms_since(context_start);
      return answer(std::move(*hit), std::move(stats));
    }

    engine::GenerationRequest gen;
    gen.prompt = model->encode_prompt(prompt);
    const double context_ms = ms_since(context_start);
    gen.sampling.temperature = job.settings.temperature;
    gen.sampling.max_tokens = max_tokens;
    gen.sampling.stop = model->fim.stop_tokens;
    if (ctx.mode == Mode::SingleLine) gen.sampling.stop.push_back("\n");
    gen.max_prefill_ms = job.settings.max_prefill_ms;
    gen.max_total_ms = job.settings.max_total_ms;
    gen.speculation = job.settings.speculation;
    gen.required_prefix = heal;
    {
      std::lock_guard lock(mu_);
      if (auto it = last_raw_.find(req.uri); it != last_raw_.end() && !it->second.empty())
        gen.draft_hint = model->tokenizer().encode(it->second);
    }

    // Internal token: the request's cancellation reaches the engine until the request has been
    // answered early; after that only a newer request for the document stops the continuation.
    CancelToken internal = CancelToken::make();
    cancel.on_cancel([internal, reply] {
      if (!reply->answered()) internal.cancel();
    });
    {
      std::lock_guard lock(mu_);
      auto it = docs_.find(req.uri);
      if (it == docs_.end() || it->second.version != job.request.version) internal.cancel();
      else it->second.continuation = internal;
    }

    const bool may_answer_early = ctx.mode == Mode::MultiLine && job.settings.early_first_line_ms >= 0 && lead.empty();
    auto early_sent = std::make_shared<std::atomic<bool>>(false);
    auto until = [&, early_sent](std::string_view raw) {
      auto healed_text = after_heal(raw);
      if (!healed_text) return false;
      const std::string_view partial = *healed_text;
      if (complete_at(ctx, partial)) return true;
      if (ctx.mode == Mode::MultiLine && repetition_start(partial)) return true;
      if (may_answer_early && !early_sent->load() && ms_since(job.t0) >= job.settings.early_first_line_ms) {
        const size_t nl = partial.find('\n');
        if (nl != std::string_view::npos && partial.find_first_not_of(" \t\r\n") < nl) {
          early_sent->store(true);
          // On side_: post-process the first line and answer; the generation goes on.
          side_.post([this, snap, ctx, first = std::string(partial.substr(0, nl)), reply, uri = req.uri,
                      text = job.snapshot.text(), cursor = req.cursor, t0 = job.t0, queue_ms, context_ms] {
            std::string line = postprocess(snap, ctx, first);
            if (line.empty()) return;  // let the full answer come
            CompletionResult r;
            r.items.push_back(Suggestion{line, cursor, cursor, ""});
            r.stats.source = "engine-first-line";
            r.stats.queue_ms = queue_ms;
            r.stats.context_ms = context_ms;
            r.stats.total_ms = ms_since(t0);
            reply->answer_with(std::move(r), [&](bool first) {
              if (first) typing_.remember(uri, text, cursor, line);
            });
          });
        }
      }
      return false;
    };

    auto out = run_generation(*model, std::move(gen), internal, until);
    {
      std::lock_guard lock(mu_);
      if (auto it = docs_.find(req.uri); it != docs_.end()) it->second.continuation = CancelToken();
    }
    if (!out) {
      if (out.error().code == ErrorCode::Cancelled) return (*reply)(make_error(ErrorCode::Cancelled, "cancelled"));
      log("completion failed: " + out.error().message);
      return (*reply)(out.error());
    }
    std::string_view generated = after_heal(out->text).value_or(std::string_view());
    if (ctx.mode == Mode::MultiLine) {
      if (auto loop = repetition_start(generated)) generated = generated.substr(0, *loop);
      // Cut by the token limit: a multi-line answer keeps its complete lines only.
      const size_t last_nl = generated.rfind('\n');
      if (out->reason == engine::FinishReason::Length && last_nl != std::string_view::npos &&
          generated.find_first_not_of(" \t\r\n") < last_nl)
        generated = generated.substr(0, last_nl);
    }
    std::string suggestion = postprocess(snap, ctx, generated);
    {
      std::lock_guard lock(mu_);
      last_raw_[req.uri] = suggestion;
    }
    // A complete answer is cacheable; one cut by a time budget is not the model's whole answer.
    if (out->reason != engine::FinishReason::Budget) cache_.put(key, suggestion);
    CompletionStats stats;
    stats.source = "engine";
    stats.prompt_tokens = out->stats.prompt_tokens;
    stats.cached_tokens = out->stats.cached_tokens;
    stats.generated_tokens = out->stats.generated_tokens;
    stats.draft_proposed = out->stats.draft_proposed;
    stats.draft_accepted = out->stats.draft_accepted;
    stats.ttft_ms = ms_since(job.t0) - out->stats.total_ms + out->stats.ttft_ms;
    stats.context_ms = context_ms;
    // After an early first line this only remembers the whole suggestion for the next request.
    answer(std::move(suggestion), std::move(stats));
  }

  void record(const Expected<CompletionResult>& r) {
    std::lock_guard lock(mu_);
    if (!r) {
      ++(r.error().code == ErrorCode::Cancelled ? status_.cancelled : status_.failed);
      return;
    }
    const auto& st = r->stats;
    ++status_.answers[st.source];
    if (st.source == "engine") {
      status_.prompt_tokens += st.prompt_tokens;
      status_.cached_tokens += st.cached_tokens;
      status_.generated_tokens += st.generated_tokens;
    }
    status_.last = st;
  }

  // ---- diagnostics, progress, logs ----

  void publish_diagnostics(const std::string& uri) {
    side_.post([this, uri] {
      Snapshot snap;
      int version;
      {
        std::lock_guard lock(mu_);
        auto it = docs_.find(uri);
        if (it == docs_.end()) return;
        snap = it->second.doc->snapshot();
        version = it->second.version;
        if (it->second.published_version_seen == version) return;  // a burst: only the newest is published
        it->second.published_version_seen = version;
      }
      auto diags = syntax_diagnostics(snap);
      Observer o = observer();
      if (o.on_diagnostics) o.on_diagnostics(uri, version, diags);
    });
  }

  Observer observer() {
    std::lock_guard lock(observer_mu_);
    return observer_;
  }
  void progress(const std::string& message, int percent, bool done) {
    Observer o = observer();
    if (o.on_progress) o.on_progress(message, percent, done);
  }
  void log(const std::string& line) {
    Observer o = observer();
    if (o.on_log) o.on_log(line);
  }

  mutable std::mutex mu_;  // docs_, settings_, last_raw_, status_
  std::map<std::string, DocState> docs_;
  Settings settings_;
  std::map<std::string, std::string> last_raw_;  // the last suggestion per document (a draft hint)
  ServiceStatus status_;                          // counters (model fields filled by status())

  std::mutex observer_mu_;
  Observer observer_;

  mutable std::mutex model_mu_;
  std::shared_ptr<const LoadedModel> model_;
  std::string model_key_;
  std::optional<Error> load_error_;
  std::string load_error_key_;

  TypingThrough typing_;
  SuggestionCache cache_;

  // Last: their threads stop (after running what was posted) before the state above goes away.
  TaskQueue side_;
  TaskQueue fixes_;
  TaskQueue worker_;
};

}  // namespace

std::unique_ptr<Service> make_service(const Settings& settings) { return std::make_unique<ServiceImpl>(settings); }

}  // namespace ghostline::completion
