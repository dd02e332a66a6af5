// CpuModel: the Model contract (engine/model.h) for every supported architecture on the CPU
// backend: float32 activations, weights in their stored dtype, paged KV in float32.
//
// KV layout: one float32 array per layer of [n_blocks, B, kv_dim]; position p of a sequence is
// block block_table[p / B], slot p % B. GQA stores K then V of every KV head (2 * Hkv * d);
// MLA (deepseek_v2) stores the normalised latent (r) then the rotated rope key (p) — never the
// expanded per-head K and V; attention runs with the absorbed kv_b_proj weights.
#pragma once
#include <cstdlib>

#include <memory>
#include <vector>

#include "engine/cpu/thread_pool.h"
#include "engine/model.h"
#include "engine/model/config.h"
#include "engine/model/rope.h"
#include "engine/model/weights.h"

namespace ghostline::engine::model {

class CpuModel final : public Model {
 public:
  CpuModel(ModelConfig cfg, WeightStorage storage, ModelWeights weights, int threads);

  const ModelInfo& info() const override { return info_; }
  Expected<void> allocate_kv(int block_size, int n_blocks) override;
  void copy_kv_block(int src, int dst) override;
  Expected<void> forward(const StepBatch& batch, std::vector<float>& logits) override;

  const ModelConfig& config() const { return cfg_; }
  int threads() const { return pool_.size(); }

  // Per-token metadata of one step.
  struct TokenMeta {
    int seq = 0;  // index into StepBatch::seqs
    int pos = 0;  // absolute position in its sequence
  };

 private:
  // Attention queries of one sequence run in tiles: tokens [t0, t1) x units [u0, u1) (heads, or
  // KV heads with their groups).
  struct QueryTile {
    int t0, t1, u0, u1;
  };
  std::vector<QueryTile> query_tiles(const std::vector<TokenMeta>& meta, int units, int per_unit) const;
  void attend(int layer, const SequenceStep& s, const float* q, int64_t ldq, int nq, const int* limits, int64_t key_off,
              int64_t K, int64_t val_off, int64_t C, float* out, int64_t ldo);
  float* kv_slot(int layer, const SequenceStep& s, int pos);
  void attention_gqa(int layer, const StepBatch& b, const std::vector<TokenMeta>& meta, const float* h, float* out);
  void attention_mla(int layer, const StepBatch& b, const std::vector<TokenMeta>& meta, const float* h, float* out);
  void mlp(const MlpWeights& w, const float* h, int64_t T, int64_t I, float* out);
  void moe(const LayerWeights& w, const float* h, int64_t T, float* out);
  void route(const LayerWeights& w, const float* h, std::vector<int>& idx, std::vector<float>& weight);

  ModelConfig cfg_;
  WeightStorage storage_;
  ModelWeights w_;
  ModelInfo info_;
  cpu::ThreadPool pool_;
  Rope rope_;
  float softmax_scale_ = 1.0f;
  int block_size_ = 0, n_blocks_ = 0;
  struct FreeDelete { void operator()(float* p) const { std::free(p); } };
  std::vector<std::unique_ptr<float[], FreeDelete>> kv_;  // [L][n_blocks * B * kv_dim]
};

}  // namespace ghostline::engine::model
