// ModelConfig: the fields of a Hugging Face config.json that the engine's architectures use,
// parsed from both spellings real files have: rope_theta + rope_scaling (Hub checkpoints) and
// rope_parameters (transformers 5). Example values in comments are DeepSeek-V2-Lite's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/expected.h"

namespace ghostline::engine::model {

enum class Arch { DeepseekV2, Qwen3Moe, Llama, Qwen2, Mixtral };

struct RopeConfig {
  std::string type = "default";         // default | linear | llama3 | yarn
  double theta = 10000.0;               // rope_theta
  double factor = 1.0;                  // linear / llama3 / yarn scaling factor (yarn: 40)
  double low_freq_factor = 1.0;         // llama3
  double high_freq_factor = 4.0;        // llama3
  int original_max_position = 0;        // llama3 / yarn (4096); 0 = not given
  double attention_factor = -1.0;       // yarn; < 0 = derived from mscale
  double beta_fast = 32.0, beta_slow = 1.0;  // yarn
  double mscale = 0.0, mscale_all_dim = 0.0; // yarn, DeepSeek (0.707, 0.707); 0 = not given
  bool truncate = true;                 // yarn: floor/ceil the correction range
};

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string model_type;               // "deepseek_v2"
  int vocab_size = 0;                   // 102400
  int hidden_size = 0;                  // D: 2048
  int intermediate_size = 0;            // dense FFN: 10944
  int n_layers = 0;                     // 27
  int n_heads = 0;                      // 16
  int n_kv_heads = 0;                   // GQA key/value heads (= n_heads when absent)
  int head_dim = 0;                     // GQA head size (hidden_size / n_heads when absent)
  double rms_norm_eps = 1e-6;
  int max_position = 0;                 // 163840
  bool tie_word_embeddings = false;
  bool attention_bias = false;          // llama / qwen3_moe / deepseek: bias on q,k,v,o
  bool qkv_bias = false;                // qwen2: bias on q,k,v only
  bool mlp_bias = false;                // llama
  bool qk_norm = false;                 // qwen3_moe: RMSNorm on each head of q and k
  std::vector<int32_t> eos_token_ids;
  std::string weight_dtype;             // "bfloat16" / "float32" / "float16" from config (dummy weights)
  RopeConfig rope;

  // MLA (deepseek_v2)
  int q_lora_rank = 0;                  // 0 = q_proj directly (V2-Lite: null)
  int kv_lora_rank = 0;                 // 512
  int qk_nope_head_dim = 0;             // 128
  int qk_rope_head_dim = 0;             // 64
  int v_head_dim = 0;                   // 128

  // MoE
  int n_experts = 0;                    // E routed experts (64); 0 = dense model
  int n_experts_per_tok = 0;            // A: 6
  int moe_intermediate_size = 0;        // 1408
  int n_shared_experts = 0;             // deepseek: 2
  int first_k_dense_replace = 0;        // deepseek: 1
  int moe_layer_freq = 1;               // deepseek
  std::string topk_method = "greedy";   // deepseek: greedy | group_limited_greedy
  int n_group = 1, topk_group = 1;      // deepseek group-limited routing
  bool norm_topk_prob = false;          // renormalise the top-k weights
  double routed_scaling_factor = 1.0;   // deepseek
  std::vector<int> mlp_only_layers;     // qwen3_moe
  int decoder_sparse_step = 1;          // qwen3_moe

  bool is_mla() const { return arch == Arch::DeepseekV2; }
  bool layer_is_moe(int layer) const;
  // Floats of KV cache per token per layer: MLA latent + rope key, or K and V of every KV head.
  int kv_dim() const;
};

// Parses config.json text; `source` names the file in error messages.
Expected<ModelConfig> parse_config(const std::string& json_text, const std::string& source);
Expected<ModelConfig> load_config(const std::string& path);

}  // namespace ghostline::engine::model
