// The weights of every supported architecture, as views in their stored dtype, with the shape
// on every field, and the loader that fills them from a TensorStore (checking each tensor's
// shape) or with random values (dummy models).
//
// Legend: D model dim, V vocabulary, H query heads, Hkv key/value heads, d head dim,
// E routed experts, I expert (or dense) hidden size, r kv_lora_rank, q q_lora_rank,
// n qk_nope_head_dim, p qk_rope_head_dim, v v_head_dim.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/expected.h"
#include "engine/cpu/kernels.h"
#include "engine/model/config.h"
#include "engine/model/safetensors.h"

namespace ghostline::engine::model {

using cpu::WeightView;
using Vec = std::vector<float>;  // small tensors (norms, biases, routers) kept in float32

struct MlpWeights {
  WeightView gate, up;  // [I, D]
  WeightView down;      // [D, I]
  Vec gate_bias, up_bias, down_bias;  // [I], [I], [D] (llama mlp_bias only)
};

struct AttentionWeights {
  // GQA (llama, qwen2, qwen3_moe, mixtral)
  WeightView q, k, v;       // [H*d, D], [Hkv*d, D], [Hkv*d, D]
  WeightView o;             // [D, H*d]   (MLA: [D, H*v])
  Vec q_bias, k_bias, v_bias, o_bias;
  Vec q_norm, k_norm;       // [d] qwen3_moe
  // MLA (deepseek_v2)
  WeightView q_a;           // [q, D]           (q_lora_rank set)
  Vec q_a_norm;             // [q]
  WeightView q_b;           // [H*(n+p), q]     or q_proj [H*(n+p), D] in `q` when q_lora_rank is null
  WeightView kv_a;          // [r + p, D]       kv_a_proj_with_mqa
  Vec kv_a_norm;            // [r]
  Vec kv_b;                 // [H*(n+v), r]     kv_b_proj, float32 for the absorbed products
  Vec q_a_bias, kv_a_bias;  // attention_bias
};

struct LayerWeights {
  Vec input_norm, post_norm;  // [D]
  AttentionWeights attn;
  bool moe = false;
  MlpWeights mlp;             // dense layers
  Vec router;                 // [E, D] float32 (the reference routes in float32)
  std::vector<MlpWeights> experts;  // [E]
  MlpWeights shared;          // deepseek shared experts, I = moe_intermediate_size * n_shared
  bool has_shared = false;
};

struct ModelWeights {
  WeightView embed;           // [V, D]
  WeightView lm_head;         // [V, D] (the embedding when tied)
  Vec final_norm;             // [D]
  std::vector<LayerWeights> layers;
  int64_t params_total = 0;
  int64_t params_active = 0;
  int64_t bytes = 0;
  std::string dtype;          // dtype of the big matrices
};

// Owns what the weights point into: the mapped files, or the buffers of random weights.
struct WeightStorage {
  std::unique_ptr<TensorStore> store;
  std::vector<std::vector<uint16_t>> half_buffers;
  std::vector<std::vector<float>> float_buffers;
  std::vector<cpu::PackedBuffer> packed;  // copies of the bf16 matrices in the AMX kernels' order
};

// Loads the weights of `cfg` from `store` (kept in `storage`). Errors name the tensor, the
// expected and the found shape.
Expected<ModelWeights> load_weights(const ModelConfig& cfg, std::unique_ptr<TensorStore> store, WeightStorage& storage);
// Random weights of `cfg`'s shapes (bf16 unless the config says float32), norms at 1.
Expected<ModelWeights> dummy_weights(const ModelConfig& cfg, uint64_t seed, WeightStorage& storage);
// Under the AMX kernels (cpu::kernel_isa() == "amx"): every bf16 matrix that the products read
// (not the embedding table the lookup reads, which a tied lm_head keeps as it is) gets a packed
// copy in `storage` (cpu::pack_for_amx), unless the copies would take more than a third of this
// machine's memory. Under any other kernels, nothing.
void pack_weights_for_amx(ModelWeights& w, WeightStorage& storage);
// Only the counts (params_total, params_active, bytes, dtype) of dummy_weights, allocating nothing:
// for backends that draw their random weights themselves.
Expected<ModelWeights> count_weights(const ModelConfig& cfg);

}  // namespace ghostline::engine::model
