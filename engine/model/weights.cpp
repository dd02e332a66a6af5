// Weight loading: one Loader walks the architecture's tensor names, reading each from the
// safetensors store (checking shape and dtype) or drawing it at random for dummy models, and
// counts parameters and bytes as it goes.
#include "engine/model/weights.h"

#include <cmath>
#include <cstring>
#include <unistd.h>

namespace ghostline::engine::model {

namespace {

uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(u >> 16);
}

class Loader {
 public:
  Loader(const ModelConfig& c, TensorStore* store, WeightStorage& st, uint64_t seed, bool dummy_bf16)
      : c_(c), store_(store), st_(st), rng_(seed * 0x9E3779B97F4A7C15ull + 1), dummy_bf16_(dummy_bf16) {}

  bool has(const std::string& name) const { return store_ ? store_->find(name) != nullptr : false; }

  // A [rows, cols] matrix kept in its stored dtype.
  Expected<WeightView> matrix(const std::string& name, int64_t rows, int64_t cols) {
    if (!store_) {
      params_ += rows * cols;
      if (count_only_) {
        bytes_ += rows * cols * (dummy_bf16_ ? 2 : 4);
        dtype_ = dummy_bf16_ ? "bf16" : "f32";
        return WeightView{nullptr, cpu::WType::F32, rows, cols};
      }
      return random_matrix(rows, cols);
    }
    auto t = checked(name, {rows, cols});
    if (!t) return t.error();
    params_ += rows * cols;
    bytes_ += (*t)->nbytes;
    return view(**t, rows, cols);
  }

  // A [n_experts, rows, cols] tensor viewed as [n_experts * rows, cols].
  Expected<WeightView> stacked(const std::string& name, int64_t e, int64_t rows, int64_t cols) {
    auto t = checked(name, {e, rows, cols});
    if (!t) return t.error();
    params_ += e * rows * cols;
    bytes_ += (*t)->nbytes;
    return view(**t, e * rows, cols);
  }

  // A small tensor converted to float32; dummy models get `fill` (or random values when fill is NaN).
  Expected<Vec> vec(const std::string& name, std::vector<int64_t> shape, float fill) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    params_ += n;
    if (!store_) {
      bytes_ += n * 4;
      if (count_only_) return Vec();
      Vec v(n, fill);
      if (std::isnan(fill))
        for (auto& x : v) x = uniform() * std::sqrt(3.0f / static_cast<float>(shape.back()));
      return v;
    }
    auto t = checked(name, shape);
    if (!t) return t.error();
    bytes_ += (*t)->nbytes;
    Vec v(n);
    WeightView w = view(**t, 1, n);
    cpu::row_to_f32(w, 0, v.data());
    return v;
  }

  int64_t params() const { return params_; }
  int64_t bytes() const { return bytes_; }
  std::string dtype_seen() const { return dtype_; }

 private:
  Expected<const TensorRef*> checked(const std::string& name, const std::vector<int64_t>& shape) {
    const TensorRef* t = store_->find(name);
    if (!t) return Error(ErrorCode::NotFound, "tensor '" + name + "' is missing from the weights (expected shape " + shape_string(shape) + ")");
    if (t->shape != shape)
      return Error(ErrorCode::InvalidArgument, "tensor '" + name + "' in " + t->file + ": expected shape " + shape_string(shape) +
                                                   ", found " + shape_string(t->shape));
    if (t->dtype != DType::F32 && t->dtype != DType::BF16 && t->dtype != DType::F16)
      return Error(ErrorCode::Unsupported, "tensor '" + name + "' in " + t->file + ": dtype " + dtype_name(t->dtype) +
                                               " is not supported (F32, BF16, F16)");
    return t;
  }

  WeightView view(const TensorRef& t, int64_t rows, int64_t cols) {
    WeightView w;
    w.data = t.data;
    w.rows = rows;
    w.cols = cols;
    w.type = t.dtype == DType::F32 ? cpu::WType::F32 : t.dtype == DType::BF16 ? cpu::WType::BF16 : cpu::WType::F16;
    if (rows * cols > 4096) dtype_ = t.dtype == DType::F32 ? "f32" : t.dtype == DType::BF16 ? "bf16" : "f16";
    return w;
  }

  float uniform() {  // xorshift64*, uniform in [-1, 1)
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    uint64_t r = rng_ * 2685821657736338717ull;
    return static_cast<float>(r >> 40) / static_cast<float>(1ull << 23) - 1.0f;
  }

  WeightView random_matrix(int64_t rows, int64_t cols) {
    const float scale = std::sqrt(3.0f / static_cast<float>(cols));  // std 1/sqrt(fan_in)
    WeightView w;
    w.rows = rows;
    w.cols = cols;
    if (dummy_bf16_) {
      auto& b = st_.half_buffers.emplace_back(rows * cols);
      for (auto& x : b) x = f32_to_bf16(uniform() * scale);
      w.data = b.data();
      w.type = cpu::WType::BF16;
      bytes_ += rows * cols * 2;
      dtype_ = "bf16";
    } else {
      auto& b = st_.float_buffers.emplace_back(rows * cols);
      for (auto& x : b) x = uniform() * scale;
      w.data = b.data();
      w.type = cpu::WType::F32;
      bytes_ += rows * cols * 4;
      dtype_ = "f32";
    }
    return w;
  }

  const ModelConfig& c_;
  TensorStore* store_;
  WeightStorage& st_;
  uint64_t rng_;
  bool dummy_bf16_;

 public:
  bool count_only_ = false;  // dummy models: count parameters and bytes, allocate nothing

 private:
  int64_t params_ = 0, bytes_ = 0;
  std::string dtype_ = "f32";
};

#define TRY_ASSIGN(dst, expr)        \
  do {                               \
    auto r_ = (expr);                \
    if (!r_) return r_.error();      \
    dst = std::move(*r_);            \
  } while (0)

constexpr float kRandom = NAN;

Expected<MlpWeights> load_mlp(Loader& L, const std::string& p, int64_t D, int64_t I, bool bias) {
  MlpWeights m;
  TRY_ASSIGN(m.gate, L.matrix(p + "gate_proj.weight", I, D));
  TRY_ASSIGN(m.up, L.matrix(p + "up_proj.weight", I, D));
  TRY_ASSIGN(m.down, L.matrix(p + "down_proj.weight", D, I));
  if (bias) {
    TRY_ASSIGN(m.gate_bias, L.vec(p + "gate_proj.bias", {I}, 0.0f));
    TRY_ASSIGN(m.up_bias, L.vec(p + "up_proj.bias", {I}, 0.0f));
    TRY_ASSIGN(m.down_bias, L.vec(p + "down_proj.bias", {D}, 0.0f));
  }
  return m;
}

// Routed experts, per expert (mlp.experts.N.gate_proj / block_sparse_moe.experts.N.w1, the Hub
// layout) or fused (mlp.experts.gate_up_proj [E, 2I, D] + mlp.experts.down_proj [E, D, I]).
Expected<std::vector<MlpWeights>> load_experts(Loader& L, bool dummy, const std::string& p, int64_t E, int64_t D, int64_t I) {
  std::vector<MlpWeights> ex(E);
  const std::vector<std::string> prefixes = {p + "mlp.experts.", p + "block_sparse_moe.experts."};
  for (const auto& pre : prefixes) {
    bool hub = L.has(pre + "0.gate_proj.weight"), mixtral = L.has(pre + "0.w1.weight");
    if (dummy || hub || mixtral) {
      for (int64_t e = 0; e < E; ++e) {
        std::string q = pre + std::to_string(e) + ".";
        if (mixtral) {
          TRY_ASSIGN(ex[e].gate, L.matrix(q + "w1.weight", I, D));
          TRY_ASSIGN(ex[e].up, L.matrix(q + "w3.weight", I, D));
          TRY_ASSIGN(ex[e].down, L.matrix(q + "w2.weight", D, I));
        } else {
          TRY_ASSIGN(ex[e], load_mlp(L, q, D, I, false));
        }
      }
      return ex;
    }
    if (L.has(pre + "gate_up_proj")) {
      WeightView gu, down;
      TRY_ASSIGN(gu, L.stacked(pre + "gate_up_proj", E, 2 * I, D));
      TRY_ASSIGN(down, L.stacked(pre + "down_proj", E, D, I));
      for (int64_t e = 0; e < E; ++e) {
        ex[e].gate = gu.slice_rows(e * 2 * I, I);
        ex[e].up = gu.slice_rows(e * 2 * I + I, I);
        ex[e].down = down.slice_rows(e * D, D);
      }
      return ex;
    }
  }
  return Error(ErrorCode::NotFound, "tensor '" + p + "mlp.experts.0.gate_proj.weight' is missing from the weights (expected shape [" +
                                        std::to_string(I) + ", " + std::to_string(D) + "]; nor fused '" + p + "mlp.experts.gate_up_proj')");
}

Expected<AttentionWeights> load_attention(Loader& L, const ModelConfig& c, const std::string& p) {
  AttentionWeights a;
  const int64_t D = c.hidden_size, H = c.n_heads;
  const std::string s = p + "self_attn.";
  if (c.is_mla()) {
    const int64_t qk = c.qk_nope_head_dim + c.qk_rope_head_dim, r = c.kv_lora_rank, rp = c.qk_rope_head_dim;
    if (c.q_lora_rank > 0) {
      TRY_ASSIGN(a.q_a, L.matrix(s + "q_a_proj.weight", c.q_lora_rank, D));
      if (c.attention_bias) TRY_ASSIGN(a.q_a_bias, L.vec(s + "q_a_proj.bias", {c.q_lora_rank}, 0.0f));
      TRY_ASSIGN(a.q_a_norm, L.vec(s + "q_a_layernorm.weight", {c.q_lora_rank}, 1.0f));
      TRY_ASSIGN(a.q_b, L.matrix(s + "q_b_proj.weight", H * qk, c.q_lora_rank));
    } else {
      TRY_ASSIGN(a.q, L.matrix(s + "q_proj.weight", H * qk, D));
    }
    TRY_ASSIGN(a.kv_a, L.matrix(s + "kv_a_proj_with_mqa.weight", r + rp, D));
    if (c.attention_bias) TRY_ASSIGN(a.kv_a_bias, L.vec(s + "kv_a_proj_with_mqa.bias", {r + rp}, 0.0f));
    TRY_ASSIGN(a.kv_a_norm, L.vec(s + "kv_a_layernorm.weight", {r}, 1.0f));
    TRY_ASSIGN(a.kv_b, L.vec(s + "kv_b_proj.weight", {H * (c.qk_nope_head_dim + c.v_head_dim), r}, kRandom));
    TRY_ASSIGN(a.o, L.matrix(s + "o_proj.weight", D, H * c.v_head_dim));
    if (c.attention_bias) TRY_ASSIGN(a.o_bias, L.vec(s + "o_proj.bias", {D}, 0.0f));
    return a;
  }
  const int64_t d = c.head_dim, Hkv = c.n_kv_heads;
  TRY_ASSIGN(a.q, L.matrix(s + "q_proj.weight", H * d, D));
  TRY_ASSIGN(a.k, L.matrix(s + "k_proj.weight", Hkv * d, D));
  TRY_ASSIGN(a.v, L.matrix(s + "v_proj.weight", Hkv * d, D));
  TRY_ASSIGN(a.o, L.matrix(s + "o_proj.weight", D, H * d));
  if (c.attention_bias || c.qkv_bias) {
    TRY_ASSIGN(a.q_bias, L.vec(s + "q_proj.bias", {H * d}, 0.0f));
    TRY_ASSIGN(a.k_bias, L.vec(s + "k_proj.bias", {Hkv * d}, 0.0f));
    TRY_ASSIGN(a.v_bias, L.vec(s + "v_proj.bias", {Hkv * d}, 0.0f));
  }
  if (c.attention_bias) TRY_ASSIGN(a.o_bias, L.vec(s + "o_proj.bias", {D}, 0.0f));
  if (c.qk_norm) {
    TRY_ASSIGN(a.q_norm, L.vec(s + "q_norm.weight", {d}, 1.0f));
    TRY_ASSIGN(a.k_norm, L.vec(s + "k_norm.weight", {d}, 1.0f));
  }
  return a;
}

Expected<ModelWeights> load_all(const ModelConfig& c, TensorStore* store, WeightStorage& st, uint64_t seed,
                                bool count_only = false) {
  bool dummy_bf16 = c.weight_dtype != "float32";
  Loader L(c, store, st, seed, dummy_bf16);
  L.count_only_ = count_only;
  const int64_t D = c.hidden_size, V = c.vocab_size;
  ModelWeights w;
  TRY_ASSIGN(w.embed, L.matrix("model.embed_tokens.weight", V, D));
  if (c.tie_word_embeddings) w.lm_head = w.embed;
  else TRY_ASSIGN(w.lm_head, L.matrix("lm_head.weight", V, D));
  TRY_ASSIGN(w.final_norm, L.vec("model.norm.weight", {D}, 1.0f));
  int64_t inactive = 0;
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights lw;
    TRY_ASSIGN(lw.input_norm, L.vec(p + "input_layernorm.weight", {D}, 1.0f));
    TRY_ASSIGN(lw.post_norm, L.vec(p + "post_attention_layernorm.weight", {D}, 1.0f));
    TRY_ASSIGN(lw.attn, load_attention(L, c, p));
    lw.moe = c.layer_is_moe(l);
    if (lw.moe) {
      const int64_t E = c.n_experts, I = c.moe_intermediate_size;
      std::string router = p + "mlp.gate.weight";
      if (store && !L.has(router) && L.has(p + "block_sparse_moe.gate.weight")) router = p + "block_sparse_moe.gate.weight";
      TRY_ASSIGN(lw.router, L.vec(router, {E, D}, kRandom));
      TRY_ASSIGN(lw.experts, load_experts(L, store == nullptr, p, E, D, I));
      inactive += (E - c.n_experts_per_tok) * 3 * D * I;
      if (c.arch == Arch::DeepseekV2 && c.n_shared_experts > 0) {
        TRY_ASSIGN(lw.shared, load_mlp(L, p + "mlp.shared_experts.", D, I * c.n_shared_experts, false));
        lw.has_shared = true;
      }
    } else {
      TRY_ASSIGN(lw.mlp, load_mlp(L, p + "mlp.", D, c.intermediate_size, c.mlp_bias));
    }
    w.layers.push_back(std::move(lw));
  }
  // Read per token: one embedding row (unless it is also the output matrix), top-k experts.
  if (!c.tie_word_embeddings) inactive += (V - 1) * D;
  w.params_total = L.params();
  w.params_active = L.params() - inactive;
  w.bytes = L.bytes();
  w.dtype = L.dtype_seen();
  return w;
}

}  // namespace

Expected<ModelWeights> load_weights(const ModelConfig& cfg, std::unique_ptr<TensorStore> store, WeightStorage& storage) {
  storage.store = std::move(store);
  return load_all(cfg, storage.store.get(), storage, 0);
}

Expected<ModelWeights> count_weights(const ModelConfig& cfg) {
  WeightStorage none;
  return load_all(cfg, nullptr, none, 0, /*count_only=*/true);
}

void pack_weights_for_amx(ModelWeights& w, WeightStorage& storage) {
  std::vector<WeightView*> all = {&w.lm_head};
  auto mlp = [&](MlpWeights& m) { all.insert(all.end(), {&m.gate, &m.up, &m.down}); };
  for (auto& l : w.layers) {
    all.insert(all.end(), {&l.attn.q, &l.attn.k, &l.attn.v, &l.attn.o, &l.attn.q_a, &l.attn.q_b, &l.attn.kv_a});
    mlp(l.mlp);
    mlp(l.shared);
    for (auto& e : l.experts) mlp(e);
  }
  // One buffer for every copy (huge pages: the weights are streamed every step).
  int64_t values = 0;
  for (const WeightView* v : all)
    if (v->data) values += (cpu::amx_packed_values(*v) + 31) / 32 * 32;  // each copy 64-byte aligned
  const int64_t avail = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  if (values == 0 || (avail > 0 && values * 2 > avail / 3)) return;
  cpu::PackedBuffer buf = cpu::alloc_packed(values);
  if (!buf) return;
  uint16_t* out = buf.get();
  for (WeightView* v : all)
    if (const int64_t n = v->data ? cpu::amx_packed_values(*v) : 0; n > 0) {
      cpu::pack_for_amx(*v, out);
      out += (n + 31) / 32 * 32;
    }
  storage.packed.push_back(std::move(buf));
}

Expected<ModelWeights> dummy_weights(const ModelConfig& cfg, uint64_t seed, WeightStorage& storage) {
  // Random weights live in memory: refuse, with the numbers, what this machine cannot hold.
  auto need = load_all(cfg, nullptr, storage, seed, /*count_only=*/true);
  if (!need) return need.error();
  const int64_t avail = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  if (avail > 0 && need->bytes > avail / 10 * 9)
    return Error(ErrorCode::ResourceExhausted,
                 "dummy weights of " + std::to_string(need->params_total) + " parameters (" + std::to_string(need->params_active) +
                     " active per token) need " + std::to_string(need->bytes >> 20) + " MiB in " + need->dtype + ", more than the " +
                     std::to_string(avail >> 20) + " MiB of memory here");
  return load_all(cfg, nullptr, storage, seed);
}

}  // namespace ghostline::engine::model
