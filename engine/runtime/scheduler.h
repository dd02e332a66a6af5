// Scheduler: which sequences run in the next step and with how many tokens (continuous batching).
//
// Sequences wait in `waiting` until admitted into `running`; both are ordered by arrival.
// Each step, within max_batch_tokens: every running sequence in decode feeds its next token
// (plus its draft), then sequences still in prefill take chunks, newest first, then waiting
// requests are admitted newest first (while fewer than max_running run). On admission the
// longest cached prefix is reused from the RadixCache (a partially matching block is copied).
// Blocks are taken on demand, evicting cached leaves when the pool is empty; when none can be
// had, a sequence simply waits a step. If nothing at all can run, the oldest running sequence
// is preempted (its computed prefix goes to the cache, its blocks are released, it waits again);
// a request that cannot fit even in an otherwise empty pool fails with ResourceExhausted.
#pragma once

#include <memory>
#include <vector>

#include "engine/base/expected.h"
#include "engine/engine.h"
#include "engine/model.h"
#include "engine/runtime/block_manager.h"
#include "engine/runtime/radix_cache.h"
#include "engine/runtime/sequence.h"

namespace ghostline::engine::runtime {

struct ScheduledStep {
  StepBatch batch;
  std::vector<Sequence*> seqs;       // in batch order
  bool empty() const { return seqs.empty(); }
};

class Scheduler {
 public:
  Scheduler(Model& model, BlockManager& blocks, RadixCache& cache, const EngineOptions& options);

  void add(std::unique_ptr<Sequence> seq);
  // Builds the next step. Sequences that can never run are moved into `failed` with the reason.
  ScheduledStep schedule(std::vector<std::pair<std::unique_ptr<Sequence>, Error>>& failed);

  // Removes a sequence (running or waiting), returns its blocks (after recording its computed
  // prefix in the cache when `cache_prefix`), and hands it back to the caller.
  std::unique_ptr<Sequence> remove(Sequence* seq, bool cache_prefix);
  // Shrinks a sequence's KV to n_computed tokens (rejected draft tokens), freeing blocks past it.
  void truncate_blocks(Sequence& seq);

  int n_running() const { return static_cast<int>(running_.size()); }
  int n_waiting() const { return static_cast<int>(waiting_.size()); }
  bool idle() const { return waiting_.empty() && running_.empty(); }
  std::vector<Sequence*> all() const;
  int block_size() const { return block_size_; }

 private:
  bool admit(Sequence& seq);
  bool ensure_blocks(Sequence& seq, int n_tokens);
  void release_blocks(Sequence& seq, bool cache_prefix);
  std::optional<int> allocate_block();

  Model& model_;
  BlockManager& blocks_;
  RadixCache& cache_;
  EngineOptions options_;
  int block_size_;
  std::vector<std::unique_ptr<Sequence>> waiting_;  // arrival order
  std::vector<std::unique_ptr<Sequence>> running_;  // arrival order
};

}  // namespace ghostline::engine::runtime
