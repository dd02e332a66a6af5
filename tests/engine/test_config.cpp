// config.json in both spellings real files use: Hub checkpoints (rope_theta + rope_scaling, "type"
// or "rope_type") and transformers 5 (rope_parameters, possibly keyed by layer type) give the
// same model config and the same rotary frequencies.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "engine/model/config.h"
#include "engine/model/rope.h"

using namespace ghostline::engine::model;
using nlohmann::json;

namespace {

json base() {
  return {{"model_type", "llama"}, {"vocab_size", 100}, {"hidden_size", 64}, {"intermediate_size", 96},
          {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
          {"max_position_embeddings", 512}};
}

ModelConfig parse(const json& j) {
  auto c = parse_config(j.dump(), "config.json");
  REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
  return *c;
}

void same_rope(const ModelConfig& a, const ModelConfig& b) {
  CHECK(a.rope.type == b.rope.type);
  CHECK(a.rope.theta == b.rope.theta);
  CHECK(a.rope.factor == b.rope.factor);
  CHECK(a.rope.original_max_position == b.rope.original_max_position);
  Rope ra(a.rope, a.head_dim, a.max_position, Rope::Order::Half), rb(b.rope, b.head_dim, b.max_position, Rope::Order::Half);
  CHECK(ra.inv_freq() == rb.inv_freq());
  CHECK(ra.attention_factor() == rb.attention_factor());
}

}  // namespace

TEST_CASE("Hub rope_scaling and transformers-5 rope_parameters agree") {
  for (json scaling : {json{{"factor", 2.0}, {"type", "linear"}},
                       json{{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 64}},
                       json{{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 128},
                            {"mscale", 1.0}, {"mscale_all_dim", 0.8}}}) {
    json hub = base();
    hub["rope_theta"] = 500000.0;
    hub["rope_scaling"] = scaling;
    json params = scaling;
    if (params.contains("type")) {
      params["rope_type"] = params["type"];
      params.erase("type");
    }
    params["rope_theta"] = 500000.0;
    json t5 = base();
    t5["rope_parameters"] = params;
    json layered = base();
    layered["rope_parameters"] = {{"full_attention", params}};
    INFO(scaling.dump());
    auto a = parse(hub), b = parse(t5), c = parse(layered);
    CHECK(a.rope.type != "default");
    same_rope(a, b);
    same_rope(a, c);
  }
}

TEST_CASE("yarn without a factor takes max_position_embeddings / original_max_position_embeddings") {
  json j = base();
  j["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", 10000.0}, {"original_max_position_embeddings", 128}};
  CHECK(parse(j).rope.factor == 4.0);
}

TEST_CASE("defaults: no rope scaling, kv heads = heads, head_dim = hidden / heads") {
  json j = base();
  j.erase("num_key_value_heads");
  auto c = parse(j);
  CHECK(c.rope.type == "default");
  CHECK(c.rope.theta == 10000.0);
  CHECK(c.n_kv_heads == 4);
  CHECK(c.head_dim == 16);
  CHECK(c.kv_dim() == 2 * 4 * 16);
}

TEST_CASE("layer kinds: deepseek first_k_dense_replace, qwen3_moe mlp_only_layers and decoder_sparse_step") {
  json d = {{"model_type", "deepseek_v2"}, {"vocab_size", 100}, {"hidden_size", 64}, {"intermediate_size", 96},
            {"num_hidden_layers", 4}, {"num_attention_heads", 4}, {"kv_lora_rank", 16}, {"qk_nope_head_dim", 8},
            {"qk_rope_head_dim", 4}, {"v_head_dim", 8}, {"n_routed_experts", 8}, {"num_experts_per_tok", 2},
            {"moe_intermediate_size", 16}, {"first_k_dense_replace", 2}};
  auto c = parse(d);
  CHECK(!c.layer_is_moe(0));
  CHECK(!c.layer_is_moe(1));
  CHECK(c.layer_is_moe(2));
  CHECK(c.kv_dim() == 16 + 4);
  json q = base();
  q["model_type"] = "qwen3_moe";
  q["num_hidden_layers"] = 4;
  q["num_experts"] = 4;
  q["num_experts_per_tok"] = 2;
  q["moe_intermediate_size"] = 16;
  q["decoder_sparse_step"] = 2;
  q["mlp_only_layers"] = {3};
  auto m = parse(q);
  CHECK(!m.layer_is_moe(0));
  CHECK(m.layer_is_moe(1));
  CHECK(!m.layer_is_moe(2));
  CHECK(!m.layer_is_moe(3));
}
