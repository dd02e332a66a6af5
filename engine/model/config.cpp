// config.json parsing and validation: one clear error naming the file and the field.
#include "engine/model/config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace ghostline::engine::model {

using nlohmann::json;

bool ModelConfig::layer_is_moe(int layer) const {
  if (n_experts <= 0) return false;
  switch (arch) {
    case Arch::DeepseekV2: return layer >= first_k_dense_replace && layer % std::max(1, moe_layer_freq) == 0;
    case Arch::Qwen3Moe:
      return std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) == mlp_only_layers.end() &&
             (layer + 1) % std::max(1, decoder_sparse_step) == 0;
    case Arch::Mixtral: return true;
    default: return false;
  }
}

int ModelConfig::kv_dim() const {
  if (is_mla()) return kv_lora_rank + qk_rope_head_dim;
  return 2 * n_kv_heads * head_dim;
}

namespace {

struct Reader {
  const json& j;
  const std::string& source;
  std::string error;

  bool present(const char* key) const { return j.contains(key) && !j[key].is_null(); }
  int get_int(const char* key, int fallback, bool required = false) {
    if (!present(key)) {
      if (required && error.empty()) error = source + ": missing required field '" + key + "'";
      return fallback;
    }
    if (!j[key].is_number_integer() && !(j[key].is_number() && j[key].get<double>() == static_cast<int64_t>(j[key].get<double>()))) {
      if (error.empty()) error = source + ": field '" + key + "' must be an integer, found " + j[key].dump();
      return fallback;
    }
    return j[key].get<int>();
  }
  double get_num(const json& o, const char* key, double fallback) {
    if (!o.contains(key) || o[key].is_null()) return fallback;
    if (!o[key].is_number()) {
      if (error.empty()) error = source + ": field '" + key + "' must be a number, found " + o[key].dump();
      return fallback;
    }
    return o[key].get<double>();
  }
  bool get_bool(const char* key, bool fallback) {
    if (!present(key)) return fallback;
    if (!j[key].is_boolean()) {
      if (error.empty()) error = source + ": field '" + key + "' must be true or false, found " + j[key].dump();
      return fallback;
    }
    return j[key].get<bool>();
  }
};

Expected<RopeConfig> parse_rope(const json& j, const std::string& source, Reader& r) {
  RopeConfig rope;
  rope.theta = r.get_num(j, "rope_theta", 10000.0);
  const json* params = nullptr;
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    params = &j["rope_parameters"];
    // transformers 5 may key the parameters by layer type; every layer here is full attention.
    if (!params->contains("rope_type") && !params->contains("rope_theta") && params->contains("full_attention") &&
        (*params)["full_attention"].is_object())
      params = &(*params)["full_attention"];
  }
  else if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) params = &j["rope_scaling"];
  else if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    return Error(ErrorCode::InvalidArgument, source + ": 'rope_scaling' must be an object or null");
  if (!params) return rope;
  const json& p = *params;
  rope.theta = r.get_num(p, "rope_theta", rope.theta);
  std::string type = "default";
  if (p.contains("rope_type") && p["rope_type"].is_string()) type = p["rope_type"].get<std::string>();
  else if (p.contains("type") && p["type"].is_string()) type = p["type"].get<std::string>();
  if (type != "default" && type != "linear" && type != "llama3" && type != "yarn")
    return Error(ErrorCode::Unsupported, source + ": rope type '" + type + "' is not supported (default, linear, llama3, yarn)");
  rope.type = type;
  rope.factor = r.get_num(p, "factor", type == "yarn" ? -1.0 : 1.0);  // yarn: derived below when absent
  rope.low_freq_factor = r.get_num(p, "low_freq_factor", 1.0);
  rope.high_freq_factor = r.get_num(p, "high_freq_factor", 4.0);
  rope.original_max_position = static_cast<int>(r.get_num(p, "original_max_position_embeddings", 0));
  rope.attention_factor = r.get_num(p, "attention_factor", -1.0);
  rope.beta_fast = r.get_num(p, "beta_fast", 32.0);
  rope.beta_slow = r.get_num(p, "beta_slow", 1.0);
  rope.mscale = r.get_num(p, "mscale", 0.0);
  rope.mscale_all_dim = r.get_num(p, "mscale_all_dim", 0.0);
  if (p.contains("truncate") && p["truncate"].is_boolean()) rope.truncate = p["truncate"].get<bool>();
  if (type == "yarn" && rope.factor < 0 && rope.original_max_position > 0)
    rope.factor = r.get_num(j, "max_position_embeddings", 0) / rope.original_max_position;
  if ((type == "linear" || type == "llama3" || type == "yarn") && !(rope.factor > 0))
    return Error(ErrorCode::InvalidArgument, source + ": rope scaling '" + type + "' needs a positive 'factor'");
  if (type == "llama3" && rope.original_max_position <= 0)
    return Error(ErrorCode::InvalidArgument, source + ": llama3 rope scaling needs 'original_max_position_embeddings'");
  return rope;
}

}  // namespace

Expected<ModelConfig> parse_config(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    return Error(ErrorCode::InvalidArgument, source + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) return Error(ErrorCode::InvalidArgument, source + ": expected a JSON object");
  ModelConfig c;
  if (!j.contains("model_type") || !j["model_type"].is_string())
    return Error(ErrorCode::InvalidArgument, source + ": missing 'model_type' (the architecture)");
  c.model_type = j["model_type"].get<std::string>();
  if (c.model_type == "deepseek_v2") c.arch = Arch::DeepseekV2;
  else if (c.model_type == "qwen3_moe") c.arch = Arch::Qwen3Moe;
  else if (c.model_type == "llama") c.arch = Arch::Llama;
  else if (c.model_type == "qwen2") c.arch = Arch::Qwen2;
  else if (c.model_type == "mixtral") c.arch = Arch::Mixtral;
  else
    return Error(ErrorCode::Unsupported, source + ": unknown architecture '" + c.model_type +
                                             "' (supported: deepseek_v2, qwen3_moe, llama, qwen2, mixtral)");
  Reader r{j, source, {}};
  c.vocab_size = r.get_int("vocab_size", 0, true);
  c.hidden_size = r.get_int("hidden_size", 0, true);
  c.n_layers = r.get_int("num_hidden_layers", 0, true);
  c.n_heads = r.get_int("num_attention_heads", 0, true);
  c.n_kv_heads = r.get_int("num_key_value_heads", c.n_heads);
  c.intermediate_size = r.get_int("intermediate_size", 0);
  c.max_position = r.get_int("max_position_embeddings", 4096);
  c.rms_norm_eps = r.get_num(j, "rms_norm_eps", 1e-6);
  c.tie_word_embeddings = r.get_bool("tie_word_embeddings", false);
  c.attention_bias = r.get_bool("attention_bias", false);
  c.mlp_bias = r.get_bool("mlp_bias", false);
  if (r.present("torch_dtype") && j["torch_dtype"].is_string()) c.weight_dtype = j["torch_dtype"].get<std::string>();
  if (r.present("dtype") && j["dtype"].is_string()) c.weight_dtype = j["dtype"].get<std::string>();
  if (r.present("eos_token_id")) {
    const auto& e = j["eos_token_id"];
    if (e.is_number_integer()) c.eos_token_ids.push_back(e.get<int32_t>());
    else if (e.is_array())
      for (const auto& v : e)
        if (v.is_number_integer()) c.eos_token_ids.push_back(v.get<int32_t>());
  }
  if (r.present("hidden_act") && j["hidden_act"] != "silu")
    return Error(ErrorCode::Unsupported, source + ": hidden_act " + j["hidden_act"].dump() + " is not supported (silu)");

  switch (c.arch) {
    case Arch::DeepseekV2:
      c.q_lora_rank = r.get_int("q_lora_rank", 0);
      c.kv_lora_rank = r.get_int("kv_lora_rank", 0, true);
      c.qk_nope_head_dim = r.get_int("qk_nope_head_dim", 0, true);
      c.qk_rope_head_dim = r.get_int("qk_rope_head_dim", 0, true);
      c.v_head_dim = r.get_int("v_head_dim", 0, true);
      c.n_experts = r.get_int("n_routed_experts", 0);
      c.n_experts_per_tok = r.get_int("num_experts_per_tok", 0);
      c.moe_intermediate_size = r.get_int("moe_intermediate_size", 0);
      c.n_shared_experts = r.get_int("n_shared_experts", 0);
      c.first_k_dense_replace = r.get_int("first_k_dense_replace", 0);
      c.moe_layer_freq = r.get_int("moe_layer_freq", 1);
      if (r.present("topk_method") && j["topk_method"].is_string()) c.topk_method = j["topk_method"].get<std::string>();
      c.n_group = r.get_int("n_group", 1);
      c.topk_group = r.get_int("topk_group", 1);
      c.norm_topk_prob = r.get_bool("norm_topk_prob", false);
      c.routed_scaling_factor = r.get_num(j, "routed_scaling_factor", 1.0);
      c.head_dim = c.qk_nope_head_dim + c.qk_rope_head_dim;
      if (c.topk_method != "greedy" && c.topk_method != "group_limited_greedy")
        return Error(ErrorCode::Unsupported, source + ": topk_method '" + c.topk_method +
                                                 "' is not supported (greedy, group_limited_greedy)");
      break;
    case Arch::Qwen3Moe:
      c.qk_norm = true;
      c.n_experts = r.get_int("num_experts", 0);
      c.n_experts_per_tok = r.get_int("num_experts_per_tok", 0);
      c.moe_intermediate_size = r.get_int("moe_intermediate_size", 0);
      c.norm_topk_prob = r.get_bool("norm_topk_prob", false);
      c.decoder_sparse_step = r.get_int("decoder_sparse_step", 1);
      if (r.present("mlp_only_layers") && j["mlp_only_layers"].is_array())
        for (const auto& v : j["mlp_only_layers"])
          if (v.is_number_integer()) c.mlp_only_layers.push_back(v.get<int>());
      break;
    case Arch::Mixtral:
      c.n_experts = r.get_int("num_local_experts", 0, true);
      c.n_experts_per_tok = r.get_int("num_experts_per_tok", 2);
      c.moe_intermediate_size = c.intermediate_size;
      c.norm_topk_prob = true;
      break;
    case Arch::Qwen2: c.qkv_bias = true; break;
    case Arch::Llama: break;
  }
  if (!c.is_mla()) {
    c.head_dim = r.get_int("head_dim", 0);
    if (c.head_dim <= 0 && c.n_heads > 0) c.head_dim = c.hidden_size / c.n_heads;
  }
  if (!r.error.empty()) return Error(ErrorCode::InvalidArgument, r.error);
  auto rope = parse_rope(j, source, r);
  if (!rope) return rope.error();
  c.rope = *rope;
  if (!r.error.empty()) return Error(ErrorCode::InvalidArgument, r.error);

  auto bad = [&](const std::string& what) { return Error(ErrorCode::InvalidArgument, source + ": " + what); };
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.n_layers <= 0 || c.n_heads <= 0)
    return bad("vocab_size, hidden_size, num_hidden_layers and num_attention_heads must be positive");
  if (c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads != 0)
    return bad("num_attention_heads (" + std::to_string(c.n_heads) + ") must be a multiple of num_key_value_heads (" +
               std::to_string(c.n_kv_heads) + ")");
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) return bad("head_dim must be positive and even");
  if (c.is_mla() && (c.kv_lora_rank <= 0 || c.qk_rope_head_dim <= 0 || c.qk_rope_head_dim % 2 || c.v_head_dim <= 0 ||
                     c.qk_nope_head_dim < 0 || c.q_lora_rank < 0))
    return bad("MLA dimensions (kv_lora_rank, qk_rope_head_dim, qk_nope_head_dim, v_head_dim) must be positive");
  bool any_moe = false;
  for (int l = 0; l < c.n_layers; ++l) any_moe = any_moe || c.layer_is_moe(l);
  if (any_moe) {
    if (c.n_experts_per_tok <= 0 || c.n_experts_per_tok > c.n_experts)
      return bad("num_experts_per_tok must be between 1 and the number of experts (" + std::to_string(c.n_experts) + ")");
    if (c.moe_intermediate_size <= 0) return bad("moe_intermediate_size must be positive");
    if (c.arch == Arch::DeepseekV2 && c.topk_method == "group_limited_greedy") {
      if (c.n_group <= 0 || c.n_experts % c.n_group != 0 || c.topk_group <= 0 || c.topk_group > c.n_group ||
          c.topk_group * (c.n_experts / c.n_group) < c.n_experts_per_tok)
        return bad("group_limited_greedy needs n_group dividing n_routed_experts and topk_group groups holding at least num_experts_per_tok experts");
    }
  }
  for (int l = 0; l < c.n_layers; ++l)
    if (!c.layer_is_moe(l) && c.intermediate_size <= 0) return bad("intermediate_size must be positive");
  return c;
}

Expected<ModelConfig> load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(ErrorCode::NotFound, path + ": cannot open the model config");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace ghostline::engine::model
