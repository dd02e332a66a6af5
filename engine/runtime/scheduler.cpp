// Scheduler: admission with prefix reuse, chunked prefill, on-demand blocks, preemption.
#include "engine/runtime/scheduler.h"

#include <algorithm>

namespace ghostline::engine::runtime {

Scheduler::Scheduler(Model& model, BlockManager& blocks, RadixCache& cache, const EngineOptions& options)
    : model_(model), blocks_(blocks), cache_(cache), options_(options), block_size_(options.block_size) {}

void Scheduler::add(std::unique_ptr<Sequence> seq) { waiting_.push_back(std::move(seq)); }

std::vector<Sequence*> Scheduler::all() const {
  std::vector<Sequence*> out;
  for (auto& s : running_) out.push_back(s.get());
  for (auto& s : waiting_) out.push_back(s.get());
  return out;
}

std::optional<int> Scheduler::allocate_block() {
  if (auto b = blocks_.allocate()) return b;
  if (cache_.evict(1) == 0) return std::nullopt;
  return blocks_.allocate();
}

bool Scheduler::ensure_blocks(Sequence& seq, int n_tokens) {
  const size_t need = (n_tokens + block_size_ - 1) / block_size_;
  while (seq.blocks.size() < need) {
    auto b = allocate_block();
    if (!b) return false;
    seq.blocks.push_back(*b);
  }
  return true;
}

void Scheduler::release_blocks(Sequence& seq, bool cache_prefix) {
  if (cache_prefix && options_.prefix_cache && seq.n_computed > 0)
    cache_.insert(std::span<const int32_t>(seq.tokens.data(), seq.n_computed), seq.blocks);
  for (int b : seq.blocks) blocks_.release(b);
  seq.blocks.clear();
  seq.n_computed = 0;
}

void Scheduler::truncate_blocks(Sequence& seq) {
  const size_t keep = (seq.n_computed + block_size_ - 1) / block_size_;
  while (seq.blocks.size() > keep) {
    blocks_.release(seq.blocks.back());
    seq.blocks.pop_back();
  }
}

bool Scheduler::admit(Sequence& seq) {
  // Reuse the longest cached prefix, leaving at least one token to compute (its logits).
  seq.n_computed = 0;
  if (options_.prefix_cache) {
    const int limit = static_cast<int>(seq.tokens.size()) - 1;
    PrefixMatch m = cache_.match(seq.tokens, limit);
    seq.blocks = std::move(m.blocks);
    seq.n_computed = static_cast<int>(seq.blocks.size()) * block_size_;
    if (m.partial_block >= 0) {
      auto b = allocate_block();
      if (b) {
        model_.copy_kv_block(m.partial_block, *b);
        seq.blocks.push_back(*b);
        seq.n_computed += m.partial_tokens;
      }
      blocks_.release(m.partial_block);
    }
  }
  if (!seq.admitted_once) seq.stats.cached_tokens = seq.n_computed;
  return true;
}

std::unique_ptr<Sequence> Scheduler::remove(Sequence* seq, bool cache_prefix) {
  for (auto* list : {&running_, &waiting_}) {
    auto it = std::find_if(list->begin(), list->end(), [&](auto& p) { return p.get() == seq; });
    if (it == list->end()) continue;
    std::unique_ptr<Sequence> out = std::move(*it);
    list->erase(it);
    release_blocks(*out, cache_prefix);
    return out;
  }
  return nullptr;
}

ScheduledStep Scheduler::schedule(std::vector<std::pair<std::unique_ptr<Sequence>, Error>>& failed) {
  for (;;) {
    ScheduledStep step;
    int budget = std::max(1, options_.max_batch_tokens);
    auto add_to_step = [&](Sequence& s, int n_new) {
      SequenceStep ss;
      ss.n_past = s.n_computed;
      ss.n_new = n_new;
      ss.block_table = s.blocks;
      ss.all_logits = !s.draft.empty();
      for (int i = 0; i < n_new; ++i) {
        int pos = s.n_computed + i;
        step.batch.tokens.push_back(pos < static_cast<int>(s.tokens.size()) ? s.tokens[pos]
                                                                            : s.draft[pos - s.tokens.size()]);
      }
      step.batch.seqs.push_back(std::move(ss));
      s.step_new = n_new;
      step.seqs.push_back(&s);
      budget -= n_new;
    };
    // 1. Decoding sequences: one token each, plus drafts.
    for (auto& p : running_) {
      Sequence& s = *p;
      if (!s.in_decode()) continue;
      int n_new = 1 + static_cast<int>(s.draft.size());
      if (n_new > budget) { s.draft.clear(); n_new = 1; }
      if (n_new > budget) break;
      if (!ensure_blocks(s, s.n_computed + n_new)) {
        s.draft.clear();
        if (!ensure_blocks(s, s.n_computed + 1)) continue;
        n_new = 1;
      }
      add_to_step(s, n_new);
    }
    // 2. Prefill chunks, newest first.
    for (auto it = running_.rbegin(); it != running_.rend() && budget > 0; ++it) {
      Sequence& s = **it;
      if (s.in_decode()) continue;
      s.draft.clear();
      int n_new = std::min<int>(budget, static_cast<int>(s.tokens.size()) - s.n_computed);
      if (!ensure_blocks(s, s.n_computed + n_new)) {
        n_new = std::min<int>(n_new, static_cast<int>(s.blocks.size()) * block_size_ - s.n_computed);
        if (n_new <= 0) continue;
      }
      add_to_step(s, n_new);
    }
    // 3. Admissions, newest first.
    while (!waiting_.empty() && budget > 0 && static_cast<int>(running_.size()) < std::max(1, options_.max_running)) {
      Sequence& s = *waiting_.back();
      s.draft.clear();
      admit(s);
      int n_new = std::min<int>(budget, static_cast<int>(s.tokens.size()) - s.n_computed);
      if (!ensure_blocks(s, s.n_computed + n_new)) {
        n_new = std::min<int>(n_new, static_cast<int>(s.blocks.size()) * block_size_ - s.n_computed);
        if (n_new <= 0) {
          release_blocks(s, false);
          break;
        }
      }
      if (!s.admitted_once) {
        s.admitted_once = true;
        s.stats.queue_ms = ms_between(s.submitted, Clock::now());
      }
      running_.push_back(std::move(waiting_.back()));
      waiting_.pop_back();
      // Keep running_ in arrival order (ids grow with arrival).
      std::sort(running_.begin(), running_.end(), [](auto& a, auto& b) { return a->id < b->id; });
      add_to_step(s, n_new);
    }
    if (!step.empty() || idle()) return step;

    // Nothing could run: the pool is held by running sequences.
    if (running_.size() >= 2 || (!running_.empty() && !waiting_.empty())) {
      Sequence* oldest = running_.front().get();
      auto seq = remove(oldest, /*cache_prefix=*/true);
      seq->draft.clear();
      waiting_.insert(waiting_.begin(), std::move(seq));
      std::sort(waiting_.begin(), waiting_.end(), [](auto& a, auto& b) { return a->id < b->id; });
      continue;
    }
    Sequence* alone = !running_.empty() ? running_.front().get() : waiting_.back().get();
    auto seq = remove(alone, false);
    failed.emplace_back(std::move(seq),
                        make_error(ErrorCode::ResourceExhausted,
                                   "KV pool too small: the request needs more than the pool's " +
                                       std::to_string(blocks_.n_blocks()) + " blocks of " +
                                       std::to_string(block_size_) + " tokens"));
  }
}

}  // namespace ghostline::engine::runtime
