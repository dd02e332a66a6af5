// ToyModel: a small deterministic Model for scheduler and cache tests (no weights).
//
// Its "KV" is the token id written at each position of each block; the logits at position p are
// a hash of every token at positions 0..p, read back through the sequence's block table. So a
// wrong block table, a stale or missing copy-on-write, or a read of a position that was never
// written changes the output or fails the forward — exactly what paging bugs do to a real model.
// reference_logits() computes the same function straight from a token list, without paging.
// Tokens repeat often (logits favour a few ids) so that prompt lookup finds drafts.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <string>
#include <vector>

#include "engine/model.h"

namespace ghostline::engine::testing {

class ToyModel final : public Model {
 public:
  explicit ToyModel(int vocab = 32, int max_context = 4096) {
    info_.architecture = "toy";
    info_.vocab_size = vocab;
    info_.n_layers = 1;
    info_.max_context = max_context;
    info_.kv_bytes_per_token = 4;
  }
  const ModelInfo& info() const override { return info_; }
  ModelInfo& mutable_info() { return info_; }

  Expected<void> allocate_kv(int block_size, int n_blocks) override {
    block_size_ = block_size;
    kv_.assign(static_cast<size_t>(block_size) * n_blocks, -1);
    return {};
  }
  void copy_kv_block(int src, int dst) override {
    ++copies;
    std::copy(kv_.begin() + src * block_size_, kv_.begin() + (src + 1) * block_size_, kv_.begin() + dst * block_size_);
  }

  Expected<void> forward(const StepBatch& batch, std::vector<float>& logits) override {
    ++forwards;
    if (on_forward) on_forward(batch);
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    logits.assign(static_cast<size_t>(batch.logit_rows()) * info_.vocab_size, 0.0f);
    size_t t = 0, row = 0;
    for (const auto& s : batch.seqs) {
      if (s.n_past + s.n_new > info_.max_context)
        return make_error(ErrorCode::InvalidArgument, "position past the model's context");
      if (static_cast<int>(s.block_table.size()) * block_size_ < s.n_past + s.n_new)
        return make_error(ErrorCode::Internal, "block table too short");
      for (int i = 0; i < s.n_new; ++i) slot(s.block_table, s.n_past + i) = batch.tokens[t + i];
      for (int i = 0; i < s.n_new; ++i) {
        if (!s.all_logits && i != s.n_new - 1) continue;
        std::vector<int32_t> history;
        for (int p = 0; p <= s.n_past + i; ++p) {
          int32_t v = slot(s.block_table, p);
          if (v < 0) return make_error(ErrorCode::Internal, "position " + std::to_string(p) + " read before written");
          history.push_back(v);
        }
        fill(history, logits.data() + row * info_.vocab_size);
        ++row;
      }
      t += s.n_new;
      tokens_fed += s.n_new;
    }
    return {};
  }

  // The logits after `history`, computed without any paging.
  std::vector<float> reference_logits(const std::vector<int32_t>& history) const {
    std::vector<float> out(info_.vocab_size);
    fill(history, out.data());
    return out;
  }

  int delay_ms = 0;  // a slow model, for time budgets
  std::function<void(const StepBatch&)> on_forward;  // called first in every forward (engine thread)
  int forwards = 0;
  int copies = 0;
  int64_t tokens_fed = 0;

 private:
  int32_t& slot(const std::vector<int32_t>& table, int pos) {
    return kv_[static_cast<size_t>(table[pos / block_size_]) * block_size_ + pos % block_size_];
  }
  void fill(const std::vector<int32_t>& history, float* out) const {
    uint64_t h = 1469598103934665603ull;
    for (int32_t v : history) h = (h ^ static_cast<uint64_t>(v + 1)) * 1099511628211ull;
    const int32_t last = history.back();
    for (int v = 0; v < info_.vocab_size; ++v) {
      uint64_t x = (h ^ (static_cast<uint64_t>(v) * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
      x ^= x >> 31;
      float noise = static_cast<float>(x % 1000) / 1000.0f;
      // Favour continuing a short cycle so that outputs repeat (prompt lookup has matches).
      float bias = (v == (last + 1) % 8) ? 0.8f : 0.0f;
      out[v] = noise + bias;
    }
  }

  ModelInfo info_;
  int block_size_ = 16;
  std::vector<int32_t> kv_;
};

}  // namespace ghostline::engine::testing
