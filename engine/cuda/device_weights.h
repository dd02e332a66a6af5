// The weights of a model on the GPU, laid out for the CUDA kernels, and their upload from the
// host weights (engine/model/weights.h) or random generation on the GPU for dummy models.
//
// Layout choices (why they differ from the checkpoint):
// - the attention input projections of a layer are one matrix (q or q_a rows, then kv_a rows;
//   GQA: q, k, v rows), so a decode step reads them in one pass;
// - the feed-forward is always a set of experts [X = E routed + S always-on]: DeepSeek's shared
//   experts become S slots of moe_intermediate_size each (the shared MLP's hidden units split in
//   S parts, whose outputs add up to the same sum), a dense MLP is one always-on slot; gate and
//   up rows are stacked per expert ([X, 2I, D]) for the fused gate/up kernel;
// - MLA keeps kv_b_proj [H(n+v), r] for prefill and W_vb, plus W_kb transposed per head
//   [H, r, n] for absorbing the query.
// Legend as in weights.h: D model dim, H heads, Hkv KV heads, d head dim, r kv_lora_rank,
// q q_lora_rank, n qk_nope_head_dim, p qk_rope_head_dim, v v_head_dim, E/S/X experts, I hidden.
#pragma once

#include <cuda_runtime_api.h>

#include <vector>

#include "engine/base/expected.h"
#include "engine/cuda/device_buffer.h"
#include "engine/model/config.h"
#include "engine/model/weights.h"
#include "kernels/kernels.h"

namespace ghostline::engine::cuda {

using kernels::DType;

// A row-major device matrix in the model's weight dtype.
struct DMat {
  const void* p = nullptr;
  int64_t rows = 0, cols = 0;
};

struct DeviceLayer {
  const float* input_norm = nullptr;   // [D]
  const float* post_norm = nullptr;    // [D]
  DMat qkv;                            // MLA [q_cols + r + p, D]; GQA [(H + 2 Hkv) d, D]
  const float* qkv_bias = nullptr;     // [rows of qkv] or null
  const float* q_a_norm = nullptr;     // MLA with q_lora_rank: [q]
  DMat q_b;                            // MLA with q_lora_rank: [H (n+p), q]
  const float* kv_a_norm = nullptr;    // MLA [r]
  DMat kv_b;                           // MLA [H (n+v), r]
  DMat w_kbT;                          // MLA [H r, n]
  const float* q_norm = nullptr;       // qwen3_moe [d]
  const float* k_norm = nullptr;       // qwen3_moe [d]
  DMat o;                              // [D, H v] (MLA) / [D, H d]
  const float* o_bias = nullptr;       // [D] or null
  int E = 0, S = 0, K = 0, I = 0;      // routed experts, always-on slots, top-k, hidden size
  const float* router = nullptr;       // [E, D] float32
  DMat gate_up;                        // [X 2I, D]
  const float* gate_up_bias = nullptr; // [X, 2I] or null
  DMat down;                           // [X D, I]
  const float* down_bias = nullptr;    // [X, D] or null
};

struct DeviceWeights {
  DType dt = DType::BF16;
  DMat embed;                          // [V, D]
  DMat lm_head;                        // [V, D] (the embedding when tied)
  const float* final_norm = nullptr;   // [D]
  std::vector<DeviceLayer> layers;
  std::vector<DeviceBuffer> buffers;   // owns every pointer above
  int64_t bytes = 0;                   // device bytes of all weights
};

// The dtype the GPU keeps for a checkpoint whose big matrices are `host_dtype` ("bf16" stays
// bf16; f32 and f16 become float32 so that nothing is rounded).
DType device_dtype(const std::string& host_dtype);

// Uploads `host` (converted to dt), or, with host null, random weights drawn on the GPU (matrices
// uniform with std 1/sqrt(fan_in), norms 1, biases 0), as dummy models have.
Expected<DeviceWeights> upload_weights(const model::ModelConfig& c, const model::ModelWeights* host, DType dt, uint64_t seed,
                                       cudaStream_t stream);

}  // namespace ghostline::engine::cuda
