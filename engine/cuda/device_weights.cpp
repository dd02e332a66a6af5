// upload_weights: converts the host weights to the device layout of device_weights.h, a block of
// rows at a time through a staging buffer (bf16 rows that need no change are copied straight
// from the mapped file), or fills that layout with random values on the GPU.
#include "engine/cuda/device_weights.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstring>

#include "engine/cpu/kernels.h"

namespace ghostline::engine::cuda {

using model::ModelConfig;
using model::Vec;
using model::WeightView;

DType device_dtype(const std::string& host_dtype) { return host_dtype == "bf16" ? DType::BF16 : DType::F32; }

namespace {

uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

class Uploader {
 public:
  Uploader(DeviceWeights& w, cudaStream_t s, uint64_t seed) : w_(w), s_(s), seed_(seed) {}

  int es() const { return kernels::dtype_size(w_.dt); }

  Expected<void*> alloc(int64_t bytes) {
    DeviceBuffer b;
    auto r = b.alloc(bytes);
    if (!r) return r.error();
    void* p = b.get();
    w_.bytes += bytes;
    w_.buffers.push_back(std::move(b));
    return p;
  }

  Expected<DMat> matrix(int64_t rows, int64_t cols) {
    auto p = alloc(rows * cols * es());
    if (!p) return p.error();
    return DMat{*p, rows, cols};
  }

  // Rows [r0, r0+nr) and columns [c0, c0+nc) of `src` into dst (row stride dst_ld elements).
  Expected<void> put(void* dst, int64_t dst_ld, const WeightView& src, int64_t r0, int64_t nr, int64_t c0, int64_t nc) {
    const int e = es();
    if (w_.dt == DType::BF16 && src.type == cpu::WType::BF16 && c0 == 0 && nc == src.cols && dst_ld == nc) {
      CUDA_TRY(cudaMemcpyAsync(dst, src.row_ptr(r0), nr * nc * e, cudaMemcpyHostToDevice, s_));
      return sync();
    }
    const int64_t chunk = std::max<int64_t>(1, (int64_t{32} << 20) / std::max<int64_t>(1, src.cols * 4));
    row_.resize(src.cols);
    for (int64_t b = 0; b < nr; b += chunk) {
      const int64_t n = std::min(chunk, nr - b);
      staging_.resize(static_cast<size_t>(n * nc * e));
      for (int64_t i = 0; i < n; ++i) {
        cpu::row_to_f32(src, r0 + b + i, row_.data());
        convert(row_.data() + c0, nc, staging_.data() + i * nc * e);
      }
      CUDA_TRY(cudaMemcpy2DAsync(static_cast<uint8_t*>(dst) + b * dst_ld * e, dst_ld * e, staging_.data(), nc * e, nc * e, n,
                                 cudaMemcpyHostToDevice, s_));
      auto r = sync();  // the staging buffer is reused
      if (!r) return r;
    }
    return ok();
  }

  // A float32 host array in the weight dtype (e.g. kv_b, stored float32 on the host).
  Expected<void> put_floats(void* dst, const float* src, int64_t n) {
    const int e = es();
    staging_.resize(static_cast<size_t>(n * e));
    convert(src, n, staging_.data());
    CUDA_TRY(cudaMemcpyAsync(dst, staging_.data(), n * e, cudaMemcpyHostToDevice, s_));
    return sync();
  }

  // A small float32 tensor kept float32 on the device; null for an empty vector.
  Expected<const float*> vec(const Vec& v) {
    if (v.empty()) return static_cast<const float*>(nullptr);
    auto p = alloc(static_cast<int64_t>(v.size()) * 4);
    if (!p) return p.error();
    CUDA_TRY(cudaMemcpyAsync(*p, v.data(), v.size() * 4, cudaMemcpyHostToDevice, s_));
    auto r = sync();
    if (!r) return r.error();
    return static_cast<const float*>(*p);
  }

  void random(const DMat& m, float scale) {
    kernels::fill_uniform(const_cast<void*>(m.p), w_.dt, m.rows * m.cols, scale, ++seed_, s_);
  }

  Expected<void> sync() {
    CUDA_TRY(cudaStreamSynchronize(s_));
    std::string e = kernels::take_error();
    if (!e.empty()) return Error(ErrorCode::Internal, "weight upload: " + e);
    return ok();
  }

  // Host random values for small dummy tensors (router, kv_b): uniform with std 1/sqrt(fan_in).
  Vec host_random(int64_t n, int64_t fan_in) {
    Vec v(n);
    const float scale = std::sqrt(3.0f / static_cast<float>(fan_in));
    for (auto& x : v) {
      rng_ ^= rng_ >> 12;
      rng_ ^= rng_ << 25;
      rng_ ^= rng_ >> 27;
      const uint64_t r = rng_ * 2685821657736338717ull;
      x = (static_cast<float>(r >> 40) / static_cast<float>(1ull << 23) - 1.0f) * scale;
    }
    return v;
  }

 private:
  void convert(const float* in, int64_t n, uint8_t* out) const {
    if (w_.dt == DType::F32) {
      std::memcpy(out, in, n * 4);
    } else {
      auto* o = reinterpret_cast<uint16_t*>(out);
      for (int64_t i = 0; i < n; ++i) o[i] = f32_to_bf16(in[i]);
    }
  }

  DeviceWeights& w_;
  cudaStream_t s_;
  uint64_t seed_;
  uint64_t rng_ = 0x9E3779B97F4A7C15ull;
  std::vector<uint8_t> staging_;
  std::vector<float> row_;
};

#define TRY_SET(dst, expr)         \
  do {                             \
    auto r_ = (expr);              \
    if (!r_) return r_.error();    \
    dst = *r_;                     \
  } while (0)
#define TRY(expr)                  \
  do {                             \
    auto r_ = (expr);              \
    if (!r_) return r_.error();    \
  } while (0)

uint8_t* at(const DMat& m, int64_t row, int es) { return static_cast<uint8_t*>(const_cast<void*>(m.p)) + row * m.cols * es; }

float fan_scale(int64_t fan_in) { return std::sqrt(3.0f / static_cast<float>(fan_in)); }

}  // namespace

Expected<DeviceWeights> upload_weights(const ModelConfig& c, const model::ModelWeights* host, DType dt, uint64_t seed,
                                       cudaStream_t stream) {
  DeviceWeights w;
  w.dt = dt;
  Uploader U(w, stream, seed);
  const int es = kernels::dtype_size(dt);
  const bool dummy = host == nullptr;
  const int64_t D = c.hidden_size, V = c.vocab_size, H = c.n_heads;
  const Vec ones(static_cast<size_t>(std::max<int64_t>({D, c.kv_lora_rank, c.q_lora_rank, c.head_dim, 1})), 1.0f);
  auto ones_n = [&](int64_t n) { return Vec(ones.begin(), ones.begin() + n); };

  TRY_SET(w.embed, U.matrix(V, D));
  if (dummy) U.random(w.embed, fan_scale(D));
  else TRY(U.put(const_cast<void*>(w.embed.p), D, host->embed, 0, V, 0, D));
  if (c.tie_word_embeddings) {
    w.lm_head = w.embed;
  } else {
    TRY_SET(w.lm_head, U.matrix(V, D));
    if (dummy) U.random(w.lm_head, fan_scale(D));
    else TRY(U.put(const_cast<void*>(w.lm_head.p), D, host->lm_head, 0, V, 0, D));
  }
  TRY_SET(w.final_norm, U.vec(dummy ? ones_n(D) : host->final_norm));

  for (int l = 0; l < c.n_layers; ++l) {
    const model::LayerWeights* hl = dummy ? nullptr : &host->layers[l];
    DeviceLayer L;
    TRY_SET(L.input_norm, U.vec(dummy ? ones_n(D) : hl->input_norm));
    TRY_SET(L.post_norm, U.vec(dummy ? ones_n(D) : hl->post_norm));

    // ---- attention
    if (c.is_mla()) {
      const int64_t n = c.qk_nope_head_dim, p = c.qk_rope_head_dim, r = c.kv_lora_rank, vd = c.v_head_dim;
      const int64_t q_cols = c.q_lora_rank > 0 ? c.q_lora_rank : H * (n + p);
      TRY_SET(L.qkv, U.matrix(q_cols + r + p, D));
      if (dummy) {
        U.random(L.qkv, fan_scale(D));
      } else {
        const auto& a = hl->attn;
        TRY(U.put(const_cast<void*>(L.qkv.p), D, c.q_lora_rank > 0 ? a.q_a : a.q, 0, q_cols, 0, D));
        TRY(U.put(at(L.qkv, q_cols, es), D, a.kv_a, 0, r + p, 0, D));
        if (!a.q_a_bias.empty() || !a.kv_a_bias.empty()) {
          Vec b(q_cols + r + p, 0.0f);
          if (!a.q_a_bias.empty()) std::copy(a.q_a_bias.begin(), a.q_a_bias.end(), b.begin());
          if (!a.kv_a_bias.empty()) std::copy(a.kv_a_bias.begin(), a.kv_a_bias.end(), b.begin() + q_cols);
          TRY_SET(L.qkv_bias, U.vec(b));
        }
      }
      if (c.q_lora_rank > 0) {
        TRY_SET(L.q_a_norm, U.vec(dummy ? ones_n(c.q_lora_rank) : hl->attn.q_a_norm));
        TRY_SET(L.q_b, U.matrix(H * (n + p), c.q_lora_rank));
        if (dummy) U.random(L.q_b, fan_scale(c.q_lora_rank));
        else TRY(U.put(const_cast<void*>(L.q_b.p), c.q_lora_rank, hl->attn.q_b, 0, H * (n + p), 0, c.q_lora_rank));
      }
      TRY_SET(L.kv_a_norm, U.vec(dummy ? ones_n(r) : hl->attn.kv_a_norm));
      const Vec kvb_random = dummy ? U.host_random(H * (n + vd) * r, r) : Vec();
      const Vec& kvb = dummy ? kvb_random : hl->attn.kv_b;  // [H (n+v), r] float32
      TRY_SET(L.kv_b, U.matrix(H * (n + vd), r));
      TRY(U.put_floats(const_cast<void*>(L.kv_b.p), kvb.data(), H * (n + vd) * r));
      Vec kbT(H * r * n);
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < n; ++j)
          for (int64_t i = 0; i < r; ++i) kbT[(h * r + i) * n + j] = kvb[(h * (n + vd) + j) * r + i];
      TRY_SET(L.w_kbT, U.matrix(H * r, n));
      TRY(U.put_floats(const_cast<void*>(L.w_kbT.p), kbT.data(), H * r * n));
      TRY_SET(L.o, U.matrix(D, H * vd));
      if (dummy) U.random(L.o, fan_scale(H * vd));
      else TRY(U.put(const_cast<void*>(L.o.p), H * vd, hl->attn.o, 0, D, 0, H * vd));
    } else {
      const int64_t d = c.head_dim, Hkv = c.n_kv_heads;
      TRY_SET(L.qkv, U.matrix((H + 2 * Hkv) * d, D));
      if (dummy) {
        U.random(L.qkv, fan_scale(D));
      } else {
        const auto& a = hl->attn;
        TRY(U.put(const_cast<void*>(L.qkv.p), D, a.q, 0, H * d, 0, D));
        TRY(U.put(at(L.qkv, H * d, es), D, a.k, 0, Hkv * d, 0, D));
        TRY(U.put(at(L.qkv, (H + Hkv) * d, es), D, a.v, 0, Hkv * d, 0, D));
        if (!a.q_bias.empty()) {
          Vec b;
          b.insert(b.end(), a.q_bias.begin(), a.q_bias.end());
          b.insert(b.end(), a.k_bias.begin(), a.k_bias.end());
          b.insert(b.end(), a.v_bias.begin(), a.v_bias.end());
          TRY_SET(L.qkv_bias, U.vec(b));
        }
      }
      if (c.qk_norm) {
        TRY_SET(L.q_norm, U.vec(dummy ? ones_n(d) : hl->attn.q_norm));
        TRY_SET(L.k_norm, U.vec(dummy ? ones_n(d) : hl->attn.k_norm));
      }
      TRY_SET(L.o, U.matrix(D, H * d));
      if (dummy) U.random(L.o, fan_scale(H * d));
      else TRY(U.put(const_cast<void*>(L.o.p), H * d, hl->attn.o, 0, D, 0, H * d));
    }
    if (!dummy && !hl->attn.o_bias.empty()) TRY_SET(L.o_bias, U.vec(hl->attn.o_bias));

    // ---- feed-forward as experts
    const bool moe = c.layer_is_moe(l);
    if (moe) {
      L.E = c.n_experts;
      L.K = c.n_experts_per_tok;
      L.I = c.moe_intermediate_size;
      L.S = c.arch == model::Arch::DeepseekV2 ? c.n_shared_experts : 0;
      TRY_SET(L.router, U.vec(dummy ? U.host_random(L.E * D, D) : hl->router));
    } else {
      L.E = 0;
      L.K = 0;
      L.S = 1;
      L.I = c.intermediate_size;
    }
    const int64_t X = L.E + L.S, I = L.I;
    TRY_SET(L.gate_up, U.matrix(X * 2 * I, D));
    TRY_SET(L.down, U.matrix(X * D, I));
    if (dummy) {
      U.random(L.gate_up, fan_scale(D));
      U.random(L.down, fan_scale(I));
    } else {
      // Slot x's gate rows, up rows and down matrix from an MLP whose hidden units [j0, j0 + I) it holds.
      auto put_slot = [&](int64_t x, const model::MlpWeights& m, int64_t j0) -> Expected<void> {
        TRY(U.put(at(L.gate_up, x * 2 * I, es), D, m.gate, j0, I, 0, D));
        TRY(U.put(at(L.gate_up, x * 2 * I + I, es), D, m.up, j0, I, 0, D));
        TRY(U.put(at(L.down, x * D, es), I, m.down, 0, D, j0, I));
        return ok();
      };
      if (moe) {
        for (int64_t e = 0; e < L.E; ++e) TRY(put_slot(e, hl->experts[e], 0));
        for (int64_t s = 0; s < L.S; ++s) TRY(put_slot(L.E + s, hl->shared, s * I));
      } else {
        TRY(put_slot(0, hl->mlp, 0));
        if (!hl->mlp.gate_bias.empty()) {
          Vec b(hl->mlp.gate_bias);
          b.insert(b.end(), hl->mlp.up_bias.begin(), hl->mlp.up_bias.end());
          TRY_SET(L.gate_up_bias, U.vec(b));
          TRY_SET(L.down_bias, U.vec(hl->mlp.down_bias));
        }
      }
    }
    w.layers.push_back(L);
  }
  TRY(U.sync());
  return w;
}

}  // namespace ghostline::engine::cuda
