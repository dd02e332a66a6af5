// The Engine: one thread that owns the Model, the KV pool and the scheduler, and runs
// step() = schedule -> run (one Model::forward over the StepBatch) -> postprocess (sample,
// verify drafts, stop conditions, stream events). submit()/cancel() only enqueue.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <limits>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "engine/engine.h"
#include "engine/runtime/block_manager.h"
#include "engine/runtime/drafter.h"
#include "engine/runtime/radix_cache.h"
#include "engine/runtime/scheduler.h"
#include "engine/runtime/sequence.h"
#include "engine/runtime/text_stream.h"

#ifdef GHOSTLINE_HAVE_TOKENIZER
#include "engine/tokenizer/tokenizer.h"
#endif

namespace ghostline::engine {
namespace runtime {
namespace {

// Bytes of memory the OS reports as available (MemAvailable), or 0 when unknown.
int64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

class EngineImpl final : public Engine {
 public:
  EngineImpl(std::unique_ptr<Model> model, std::shared_ptr<const Tokenizer> tokenizer, const EngineOptions& options,
             int n_blocks)
      : model_(std::move(model)), tokenizer_(std::move(tokenizer)), options_(options), blocks_(n_blocks),
        cache_(blocks_, options.block_size), scheduler_(*model_, blocks_, cache_, options_),
        draft_policy_(options.draft_length) {
    publish_counters();
    eos_.insert(model_->info().eos_token_ids.begin(), model_->info().eos_token_ids.end());
#ifdef GHOSTLINE_HAVE_TOKENIZER
    if (tokenizer_ && tokenizer_->eos_id()) eos_.insert(*tokenizer_->eos_id());
#endif
    thread_ = std::thread([this] { loop(); });
  }

  ~EngineImpl() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  RequestId submit(GenerationRequest request, std::function<void(const StreamEvent&)> on_event) override {
    RequestId id = next_id_.fetch_add(1);
    auto seq = std::make_unique<Sequence>(id, std::move(request), std::move(on_event), tokenizer_);
    {
      std::lock_guard lock(mu_);
      inbox_.push_back(std::move(seq));
    }
    cv_.notify_all();
    return id;
  }

  void cancel(RequestId id) override {
    {
      std::lock_guard lock(mu_);
      cancels_.push_back(id);
    }
    cv_.notify_all();
  }

  const ModelInfo& info() const override { return model_->info(); }
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  int kv_capacity_tokens() const override { return blocks_.n_blocks() * options_.block_size; }
  EngineCounters counters() const override {
    std::lock_guard lock(counters_mu_);
    return counters_;
  }

 private:
  void loop();
  void publish_counters();
  void drain_inbox(bool& stop);
  void step();
  bool plan_picks(const ScheduledStep& step, int rows);
  // Exactly one of logits (rows of V floats) and ids (one picked token per row) is set.
  void postprocess(const ScheduledStep& step, const std::vector<float>* logits, const std::vector<int32_t>* ids);
  void finish(Sequence* seq, FinishReason reason, std::vector<int32_t> tokens, std::string text,
              std::string error = {}, std::vector<float> logprobs = {});
  static void deliver(Sequence& seq, const StreamEvent& ev);

  std::unique_ptr<Model> model_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  EngineOptions options_;
  BlockManager blocks_;
  RadixCache cache_;
  Scheduler scheduler_;
  std::set<int32_t> eos_;
  std::vector<float> constrained_;   // a logits row masked for token healing

  // Leaves finite only the tokens whose bytes begin with `required` or are a non-empty prefix of
  // it (special tokens and EOS excluded). A row with no such token is left as it was.
  void mask_to_required(const std::string& required, std::vector<float>& row) const {
    const float kMasked = -std::numeric_limits<float>::infinity();
    bool any = false;
    std::vector<float> keep(row);
    for (size_t id = 0; id < row.size(); ++id) {
      const auto t = static_cast<int32_t>(id);
      const std::string& b = tokenizer_->token_bytes(t);
      const bool ok = !b.empty() && !eos_.count(t) && !tokenizer_->is_special(t) &&
                      (b.size() <= required.size() ? required.compare(0, b.size(), b) == 0
                                                   : b.compare(0, required.size(), required) == 0);
      if (ok) any = true;
      else row[id] = kMasked;
    }
    if (!any) row.swap(keep);
  }
  DraftPolicy draft_policy_;
  std::vector<float> logits_;
  std::vector<TokenPick> picks_;     // a step's rows when the backend picks the tokens
  std::vector<int32_t> ids_;         // and the tokens it picked

  mutable std::mutex counters_mu_;
  EngineCounters counters_;
  uint64_t steps_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Sequence>> inbox_;
  std::vector<RequestId> cancels_;
  bool stop_ = false;
  std::atomic<RequestId> next_id_{1};
  std::thread thread_;
};

void EngineImpl::deliver(Sequence& seq, const StreamEvent& ev) {
  if (!seq.on_event) return;
  try {
    seq.on_event(ev);
  } catch (...) {
    // A callback's exception must not take down the engine thread.
  }
}

void EngineImpl::finish(Sequence* seq, FinishReason reason, std::vector<int32_t> tokens, std::string text,
                        std::string error, std::vector<float> logprobs) {
  const bool keep_kv = reason != FinishReason::Error;
  std::unique_ptr<Sequence> owned = scheduler_.remove(seq, keep_kv);
  if (!owned) return;
  if (reason != FinishReason::Stop && reason != FinishReason::Error) text += owned->text.flush();
  StreamEvent ev;
  ev.tokens = std::move(tokens);
  ev.logprobs = std::move(logprobs);
  ev.text = std::move(text);
  ev.finished = true;
  ev.reason = reason;
  ev.error = std::move(error);
  owned->stats.prompt_tokens = owned->n_prompt;
  owned->stats.total_ms = ms_between(owned->submitted, Clock::now());
  ev.stats = owned->stats;
  deliver(*owned, ev);
}

void EngineImpl::drain_inbox(bool& stop) {
  std::vector<std::unique_ptr<Sequence>> incoming;
  std::vector<RequestId> cancels;
  {
    std::lock_guard lock(mu_);
    incoming.swap(inbox_);
    cancels.swap(cancels_);
    stop = stop_;
  }
  const int max_context = model_->info().max_context;
  for (auto& s : incoming) {
    Sequence* raw = s.get();
    if (s->tokens.empty()) {
      scheduler_.add(std::move(s));
      finish(raw, FinishReason::Error, {}, {}, "empty prompt: a request needs at least one token");
      continue;
    }
    const int vocab = model_->info().vocab_size;
    auto bad = std::find_if(s->tokens.begin(), s->tokens.end(), [&](int32_t t) { return t < 0 || t >= vocab; });
    if (bad != s->tokens.end()) {
      std::string msg = "prompt token id " + std::to_string(*bad) + " is outside the vocabulary (size " +
                        std::to_string(vocab) + ")";
      scheduler_.add(std::move(s));
      finish(raw, FinishReason::Error, {}, {}, msg);
      continue;
    }
    if (max_context > 0 && static_cast<int>(s->tokens.size()) >= max_context) {
      std::string msg = "prompt of " + std::to_string(s->tokens.size()) + " tokens does not fit the model's context of " +
                        std::to_string(max_context);
      scheduler_.add(std::move(s));
      finish(raw, FinishReason::Error, {}, {}, msg);
      continue;
    }
    if (s->request.sampling.max_tokens <= 0) {
      scheduler_.add(std::move(s));
      finish(raw, FinishReason::Length, {}, {});
      continue;
    }
    scheduler_.add(std::move(s));
  }
  if (!cancels.empty()) {
    std::unordered_set<RequestId> ids(cancels.begin(), cancels.end());
    for (Sequence* s : scheduler_.all())
      if (ids.count(s->id)) finish(s, FinishReason::Cancelled, {}, {});
  }
}

void EngineImpl::loop() {
  for (;;) {
    bool stop = false;
    drain_inbox(stop);
    if (stop) break;
    if (scheduler_.idle()) {
      publish_counters();
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !inbox_.empty() || !cancels_.empty(); });
      continue;
    }
    step();
    publish_counters();
  }
  // Shutting down: every request still known gets its final event.
  {
    std::lock_guard lock(mu_);
    for (auto& s : inbox_) scheduler_.add(std::move(s));
    inbox_.clear();
  }
  for (Sequence* s : scheduler_.all()) finish(s, FinishReason::Cancelled, {}, {});
}

void EngineImpl::publish_counters() {
  EngineCounters c;
  c.kv_blocks_total = blocks_.n_blocks();
  c.kv_blocks_free = blocks_.n_free();
  c.kv_blocks_cached = cache_.cached_blocks();
  c.running = scheduler_.n_running();
  c.waiting = scheduler_.n_waiting();
  c.steps = steps_;
  std::lock_guard lock(counters_mu_);
  counters_ = c;
}

void EngineImpl::step() {
  // Time budgets.
  const auto now = Clock::now();
  const auto step_start = now;
  for (Sequence* s : scheduler_.all()) {
    const double age = ms_between(s->submitted, now);
    if ((s->request.max_total_ms > 0 && age > s->request.max_total_ms) ||
        (s->request.max_prefill_ms > 0 && !s->has_first_token && age > s->request.max_prefill_ms))
      finish(s, FinishReason::Budget, {}, {});
  }
  // Drafts for sequences in decode.
  for (Sequence* s : scheduler_.all()) {
    s->draft.clear();
    if (s->request.speculation && s->in_decode() && s->required.empty()) propose_draft(*s, draft_policy_);
    // Drafted positions stay inside the model's context.
    const int max_context = model_->info().max_context;
    if (max_context > 0)
      s->draft.resize(std::min<size_t>(s->draft.size(), std::max<int>(0, max_context - static_cast<int>(s->tokens.size()))));
  }
  std::vector<std::pair<std::unique_ptr<Sequence>, Error>> failed;
  ScheduledStep step = scheduler_.schedule(failed);
  for (auto& [seq, err] : failed) {
    Sequence* raw = seq.get();
    scheduler_.add(std::move(seq));
    finish(raw, FinishReason::Error, {}, {}, err.message);
  }
  if (step.empty()) return;
  int row = 0;
  for (size_t i = 0; i < step.seqs.size(); ++i) {
    step.seqs[i]->logits_row = row;
    const auto& ss = step.batch.seqs[i];
    row += ss.all_logits ? ss.n_new : 1;
  }
  ++steps_;
  bool all_decode = true;
  for (Sequence* s : step.seqs) all_decode = all_decode && s->in_decode();
  const auto t0 = Clock::now();
  // Backends that can pick the tokens where the logits are (the GPU) send back one id per row
  // instead of V floats, whenever no row needs the host: token healing's mask, logprobs, or the
  // probabilities of rejection sampling.
  const bool pick = model_->picks_tokens() && plan_picks(step, row);
  auto r = pick ? model_->forward_pick(step.batch, picks_, ids_) : model_->forward(step.batch, logits_);
  const auto t1 = Clock::now();
  if (all_decode) draft_policy_.record_step(static_cast<int>(step.batch.tokens.size()), ms_between(t0, t1));
  const size_t V = model_->info().vocab_size;
  if (r && pick && ids_.size() < static_cast<size_t>(row))
    r = make_error(ErrorCode::Internal, "model returned " + std::to_string(ids_.size()) + " tokens, expected " + std::to_string(row));
  if (r && !pick && logits_.size() < static_cast<size_t>(row) * V)
    r = make_error(ErrorCode::Internal, "model returned " + std::to_string(logits_.size()) + " logits, expected " +
                                            std::to_string(static_cast<size_t>(row) * V));
  if (!r) {
    for (Sequence* s : step.seqs) finish(s, FinishReason::Error, {}, {}, "model forward failed: " + r.error().message);
    return;
  }
  postprocess(step, pick ? nullptr : &logits_, pick ? &ids_ : nullptr);
  // What a decode step costs besides the forward (drafting, scheduling, sampling, streaming):
  // the draft policy counts it per step, so it weighs against the forward's cost.
  if (all_decode) draft_policy_.record_overhead(ms_between(step_start, t0) + ms_between(t1, Clock::now()));
}

bool EngineImpl::plan_picks(const ScheduledStep& step, int rows) {
  // First whether every sequence that samples in this step can have its tokens picked there;
  // only then the draws, so that a step sampled on the host consumes no random numbers twice.
  auto samples_now = [](const Sequence& s) {
    const int n_real = s.step_new - static_cast<int>(s.draft.size());
    return s.n_computed + n_real >= static_cast<int>(s.tokens.size());
  };
  for (const Sequence* s : step.seqs) {
    if (!samples_now(*s)) continue;  // a prefill chunk: its row is not used
    if (!s->required.empty() || s->request.logprobs || (!s->sampler.greedy() && !s->draft.empty())) return false;
  }
  picks_.assign(static_cast<size_t>(rows), TokenPick{});  // greedy
  for (Sequence* s : step.seqs)
    if (samples_now(*s) && !s->sampler.greedy()) picks_[s->logits_row] = s->sampler.device_pick();
  return true;
}

void EngineImpl::postprocess(const ScheduledStep& step, const std::vector<float>* logits_in,
                             const std::vector<int32_t>* ids) {
  static const std::vector<float> kNone;
  const std::vector<float>& logits = logits_in ? *logits_in : kNone;
  const size_t V = model_->info().vocab_size;
  const int max_context = model_->info().max_context;
  for (Sequence* s : step.seqs) {
    const int n_real = s->step_new - static_cast<int>(s->draft.size());  // tokens of s->tokens fed
    s->n_computed += n_real;
    if (s->n_computed < static_cast<int>(s->tokens.size())) continue;  // prefill chunk, more to come
    // Sample the next token; with a draft, keep sampling while the draft agrees.
    std::vector<int32_t> accepted;
    int row = s->logits_row + (s->draft.empty() ? 0 : n_real - 1);
    const int n_draft = static_cast<int>(s->draft.size());
    int n_draft_ok = 0;
    std::vector<float> accepted_lp;  // with request.logprobs: one per accepted token
    for (int i = 0;; ++i) {
      if (ids) {  // picked by the backend: greedy verification, or one draw without a draft
        const int32_t t = (*ids)[row + i];
        accepted.push_back(t);
        if (i >= n_draft || t != s->draft[i]) break;
        ++n_draft_ok;
        continue;
      }
      std::span<const float> row_logits(logits.data() + static_cast<size_t>(row + i) * V, V);
      const std::span<const float> raw_logits = row_logits;  // logprobs are the model's, unmasked
      if (i >= n_draft) {
        if (!s->required.empty() && tokenizer_) {
          // Token healing: only tokens that agree with the required bytes.
          constrained_.assign(row_logits.begin(), row_logits.end());
          mask_to_required(s->required, constrained_);
          row_logits = std::span<const float>(constrained_);
        }
        accepted.push_back(s->sampler.sample(row_logits));
        if (!s->required.empty()) {
          const std::string& b = tokenizer_ ? tokenizer_->token_bytes(accepted.back()) : s->required;
          s->required = s->required.size() > b.size() && s->required.compare(0, b.size(), b) == 0
                            ? s->required.substr(b.size())
                            : std::string();
        }
        if (s->request.logprobs) accepted_lp.push_back(token_logprob(raw_logits, accepted.back()));
        break;
      }
      auto [t, ok] = s->sampler.verify(row_logits, s->draft[i]);
      accepted.push_back(t);
      if (s->request.logprobs) accepted_lp.push_back(token_logprob(row_logits, t));
      if (!ok) break;
      ++n_draft_ok;
    }
    s->stats.draft_proposed += n_draft;
    draft_policy_.record_verification(s->draft_source, n_draft, n_draft_ok);
    s->stats.draft_accepted += n_draft_ok;
    s->n_computed += n_draft_ok;  // accepted draft tokens' KV is valid; the rest is rolled back
    s->draft.clear();
    scheduler_.truncate_blocks(*s);
    if (!s->has_first_token) {
      // The prompt's full blocks are final: share them now with requests that arrive meanwhile.
      if (options_.prefix_cache) {
        const int full = std::min<int>(s->n_computed / options_.block_size, static_cast<int>(s->blocks.size()));
        cache_.insert(std::span<const int32_t>(s->tokens.data(), static_cast<size_t>(full) * options_.block_size),
                      std::span<const int>(s->blocks.data(), full));
      }
      s->has_first_token = true;
      s->stats.ttft_ms = ms_between(s->submitted, Clock::now());
    }
    // Append accepted tokens one by one, checking stop conditions after each.
    std::vector<int32_t> out;
    std::vector<float> out_lp;
    std::string text;
    FinishReason reason = FinishReason::None;
    for (size_t k = 0; k < accepted.size(); ++k) {
      const int32_t t = accepted[k];
      s->tokens.push_back(t);
      ++s->stats.generated_tokens;
      if (eos_.count(t)) { reason = FinishReason::Eos; break; }
      out.push_back(t);
      if (k < accepted_lp.size()) out_lp.push_back(accepted_lp[k]);
      text += s->text.push(t);
      if (s->text.stopped()) { reason = FinishReason::Stop; break; }
      if (s->n_generated() >= s->request.sampling.max_tokens) { reason = FinishReason::Length; break; }
      if (max_context > 0 && static_cast<int>(s->tokens.size()) >= max_context) { reason = FinishReason::Length; break; }
    }
    // Tokens past a finishing one were never shown: their KV must not enter the cache.
    s->n_computed = std::min<int>(s->n_computed, static_cast<int>(s->tokens.size()) - 1);
    if (reason != FinishReason::None) {
      finish(s, reason, std::move(out), std::move(text), {}, std::move(out_lp));
      continue;
    }
    StreamEvent ev;
    ev.tokens = std::move(out);
    ev.logprobs = std::move(out_lp);
    ev.text = std::move(text);
    deliver(*s, ev);
  }
}

}  // namespace
}  // namespace runtime

Expected<std::unique_ptr<Engine>> Engine::create(std::unique_ptr<Model> model, std::shared_ptr<const Tokenizer> tokenizer,
                                                 const EngineOptions& options) {
  if (!model) return make_error(ErrorCode::InvalidArgument, "Engine::create: no model");
  if (options.block_size <= 0 || options.block_size > 4096)
    return make_error(ErrorCode::InvalidArgument,
                      "EngineOptions.block_size must be in 1..4096, got " + std::to_string(options.block_size));
  if (options.kv_blocks < 0)
    return make_error(ErrorCode::InvalidArgument, "EngineOptions.kv_blocks must be >= 0, got " + std::to_string(options.kv_blocks));
  const ModelInfo& info = model->info();
  if (info.vocab_size <= 0) return make_error(ErrorCode::InvalidArgument, "Engine::create: model reports no vocabulary");
  int n_blocks = options.kv_blocks;
  if (n_blocks == 0) {
    const double fraction = std::clamp(options.kv_memory_fraction, 0.0, 1.0);
    const int64_t per_block = std::max<int64_t>(1, info.kv_bytes_per_token) * options.block_size;
    // A CUDA model reports the GPU memory left for the KV cache; otherwise the host's free memory.
    const int64_t avail = info.kv_memory_bytes > 0 ? info.kv_memory_bytes : runtime::available_memory_bytes();
    int64_t blocks = avail > 0 ? static_cast<int64_t>(avail * fraction) / per_block : 256;
    // More than a few full contexts per running request would only hold memory for nothing.
    const int64_t ctx = info.max_context > 0 ? info.max_context : 4096;
    const int64_t useful = (ctx * std::max(1, options.max_running) * 2 + options.block_size - 1) / options.block_size;
    n_blocks = static_cast<int>(std::clamp<int64_t>(blocks, 0, std::min<int64_t>(useful, 1 << 24)));
    if (n_blocks < 1)
      return make_error(ErrorCode::ResourceExhausted,
                        "not enough free memory for a KV pool: " + std::to_string(avail) + " bytes available, " +
                            std::to_string(per_block) + " bytes per block");
  }
  if (auto r = model->allocate_kv(options.block_size, n_blocks); !r) return r.error();
  return std::unique_ptr<Engine>(
      std::make_unique<runtime::EngineImpl>(std::move(model), std::move(tokenizer), options, n_blocks));
}

}  // namespace ghostline::engine
