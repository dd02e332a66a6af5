// The blocks of a step on the GPU, for both paths (Ctx::decode): embedding -> L x (RMSNorm,
// attention, RMSNorm, experts) -> final RMSNorm -> lm_head. The residual add is fused into the
// next RMSNorm (with the experts' weighted sum), so each layer ends in one row-wise kernel.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>

#include "engine/cuda/cuda_model_impl.h"
#include "kernels/blas.h"
#include "kernels/prefill.h"
#include "kernels/decode_fused.h"
#include "kernels/mla_decode.h"

namespace ghostline::engine::cuda {

namespace {
const uint8_t* byte_at(const void* p, int64_t elems, DType dt) { return static_cast<const uint8_t*>(p) + elems * kernels::dtype_size(dt); }

using kernels::env_on;

// Decode path of a layer with a router: the norm after attention and the router logits in one
// kernel (rmsnorm_router), the residual add of the attention output deferred to the norm after
// the experts. GHOSTLINE_FUSE_ROUTER=0 keeps them apart (for comparisons).
bool fuse_norm_router(bool decode, const DeviceLayer& L, const float* x, const float* delta, int D) {
  static const bool on = env_on("GHOSTLINE_FUSE_ROUTER");
  return on && decode && L.E > 0 && kernels::rmsnorm_router_fits(x, delta, D, L.router);
}

// One sequence decoding: the experts by pair slot (moe_gate_up_one / moe_down_one, weights
// requested before the launch wait). GHOSTLINE_MOE_ONE=0 keeps the sorted-list kernels.
bool moe_one_on() {
  static const bool on = env_on("GHOSTLINE_MOE_ONE");
  return on;
}
}  // namespace

kernels::RouteParams CudaModel::route_params(const DeviceLayer& L) const {
  kernels::RouteParams rp;
  rp.E = L.E;
  rp.K = L.K;
  rp.S = L.S;
  const bool deepseek = cfg_.arch == model::Arch::DeepseekV2;
  rp.n_group = cfg_.n_group;
  rp.topk_group = cfg_.topk_group;
  rp.group_limited = deepseek && cfg_.topk_method == "group_limited_greedy";
  rp.renormalize = !deepseek && cfg_.norm_topk_prob;
  rp.scale = deepseek ? static_cast<float>(cfg_.routed_scaling_factor) : 1.0f;
  return rp;
}

void* CudaModel::h_bf16(const Ctx& c) const {
  return !c.decode && dt_ == DType::BF16 && c.ws->hb && env_on("GHOSTLINE_BF16_ACTS") ? c.ws->hb : nullptr;
}

bool CudaModel::flash_prefill() const {
  const bool mla = cfg_.is_mla();
  return dt_ == DType::BF16 &&
         kernels::prefill_attention_supported(mla ? cfg_.qk_nope_head_dim : cfg_.head_dim,
                                              mla ? cfg_.qk_nope_head_dim + cfg_.qk_rope_head_dim : cfg_.head_dim,
                                              mla ? cfg_.v_head_dim : cfg_.head_dim) &&
         env_on("GHOSTLINE_PREFILL_FLASH");
}

// y[T, N] = x[T, K] · W^T (+ bias): skinny kernel on the decode path, cuBLAS otherwise.
void CudaModel::linear(const Ctx& c, const DMat& w, const float* bias, const float* x, int64_t ldx, int T, float* y, int64_t ldy,
                       const void* xb) {
  const int N = static_cast<int>(w.rows), K = static_cast<int>(w.cols);
  if (c.decode) {
    kernels::Skinny s;
    s.w = w.p, s.wt = dt_, s.ldw = K;
    s.x = x, s.ldx = ldx;
    s.y = y, s.ldy = ldy;
    s.bias = bias;
    s.N = N, s.K = K, s.T = T;
    kernels::skinny_gemm(s, stream_);
    return;
  }
  const void* A = x;
  int64_t lda = ldx;
  if (dt_ == DType::BF16 && xb) {
    A = xb;
    lda = K;
  } else if (dt_ == DType::BF16) {
    kernels::convert_rows(x, ldx, T, K, c.ws->gin, dt_, K, stream_);
    A = c.ws->gin;
    lda = K;
  }
  kernels::gemm(blas_, T, N, K, A, lda, w.p, K, true, dt_, y, ldy);
  if (bias) kernels::add_bias(y, ldy, T, N, bias, stream_);
}

Expected<void> CudaModel::layers(const Ctx& c) {
  Workspace& ws = *c.ws;
  const int D = cfg_.hidden_size, T = c.T;
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  void* hb = h_bf16(c);  // the norms before attention and experts also write h in bf16 (prefill)
  kernels::embed_rows(w_.embed.p, dt_, D, ws.ids(), T, ws.x, stream_);
  kernels::residual_rmsnorm(ws.x, nullptr, {}, w_.layers[0].input_norm, eps, ws.h, T, D, stream_, hb);
  for (int l = 0; l < cfg_.n_layers; ++l) {
    const DeviceLayer& L = w_.layers[l];
    auto a = cfg_.is_mla() ? attention_mla(c, l) : attention_gqa(c, l);
    if (!a) return a;
    const bool fused = fuse_norm_router(c.decode, L, ws.x, ws.delta, D);  // then ffn norms and routes in one kernel
    if (!fused) kernels::residual_rmsnorm(ws.x, ws.delta, {}, L.post_norm, eps, ws.h, T, D, stream_, hb);
    if (auto f = ffn(c, l, fused); !f) return f;
    kernels::MoeSum sum{moe_out_, ws.moe.pair_weight, ws.moe.pair_slot, L.K + L.S, moe_out_bf16_};
    const float* next = l + 1 < cfg_.n_layers ? w_.layers[l + 1].input_norm : w_.final_norm;
    kernels::residual_rmsnorm(ws.x, fused ? ws.delta : nullptr, sum, next, eps, ws.h, T, D, stream_, l + 1 < cfg_.n_layers ? hb : nullptr);
  }
  kernels::gather_rows(ws.h, D, ws.rows(), c.R, D, ws.hfinal, D, stream_);
  Ctx head = c;
  head.decode = c.decode || c.R <= 16;  // a few rows: the skinny kernel reads lm_head once, in float32
  kernels::GemmLabel label("cublas: lm_head");
  linear(head, w_.lm_head, nullptr, ws.hfinal, D, c.R, ws.logits, cfg_.vocab_size);
  return ok();
}

// ---- attention -------------------------------------------------------------------------------

Expected<void> CudaModel::attention_mla(const Ctx& c, int l) {
  kernels::GemmLabel label("cublas: attention projections");
  Workspace& ws = *c.ws;
  const DeviceLayer& L = w_.layers[l];
  const int T = c.T, D = cfg_.hidden_size, H = cfg_.n_heads;
  const int n = cfg_.qk_nope_head_dim, p = cfg_.qk_rope_head_dim, r = cfg_.kv_lora_rank, vd = cfg_.v_head_dim;
  const int Nq = qkv_rows(), q_cols = cfg_.q_lora_rank > 0 ? cfg_.q_lora_rank : H * (n + p);
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  linear(c, L.qkv, L.qkv_bias, ws.h, D, T, ws.qkv, Nq, h_bf16(c));
  float* q = ws.qkv;
  int64_t ld_q = Nq;
  if (cfg_.q_lora_rank > 0) {
    kernels::rmsnorm_rows(ws.qkv, Nq, L.q_a_norm, q_cols, eps, ws.qkv, Nq, T, stream_);
    linear(c, L.q_b, nullptr, ws.qkv, Nq, T, ws.q, H * (n + p));
    q = ws.q;
    ld_q = H * (n + p);
  }
  kernels::mla_prep(ws.qkv + q_cols, Nq, q, ld_q, ws.q_full, H, n, r, p, L.kv_a_norm, eps, rope_params_, kv_view(l, ws), place(ws), T,
                    stream_);
  const bool any_decode = c.decode || !c.host->list.empty();
  if (any_decode) {
    // q_abs[t, h] = W_kb[h]^T q_nope[t, h]  ([r] per head), beside the rope part in q_full.
    if (c.decode) {
      kernels::Skinny s;
      s.w = L.w_kbT.p, s.wt = dt_, s.ldw = n, s.w_batch = static_cast<int64_t>(r) * n;
      s.x = q, s.ldx = ld_q, s.x_batch = n + p;
      s.y = ws.q_full, s.ldy = static_cast<int64_t>(H) * (r + p), s.y_batch = r + p;
      s.N = r, s.K = n, s.T = T, s.batch = H;
      kernels::skinny_gemm(s, stream_);
    } else {
      const void* A = q;
      if (dt_ == DType::BF16) {
        kernels::convert_rows(q, ld_q, T, H * (n + p), ws.gin, dt_, H * (n + p), stream_);
        A = ws.gin;
      }
      kernels::GemmBatch gb{H, n + p, static_cast<int64_t>(r) * n, r + p};
      kernels::gemm(blas_, T, r, n, A, dt_ == DType::BF16 ? H * (n + p) : ld_q, L.w_kbT.p, n, true, dt_, ws.q_full,
                    static_cast<int64_t>(H) * (r + p), 1.0f, 0.0f, gb);
    }
    decode_attention(c, l, c.decode ? T : static_cast<int>(c.host->list.size()));
  }
  // Every row through the flash kernel: its output in bf16 is o_proj's input (ws.gin).
  void* attn_b = h_bf16(c) && !any_decode && flash_prefill() ? ws.gin : nullptr;
  if (!c.decode) {
    for (int s = 0; s < c.host->S; ++s)
      if (c.host->prefill_seq[s])
        if (auto e = prefill_attention(c, l, s, c.host->first_token[s], c.host->n_new[s], c.host->n_past[s], attn_b); !e) return e;
  }
  linear(c, L.o, L.o_bias, ws.attn, static_cast<int64_t>(H) * vd, T, ws.delta, D, attn_b);
  return ok();
}

Expected<void> CudaModel::attention_gqa(const Ctx& c, int l) {
  kernels::GemmLabel label("cublas: attention projections");
  Workspace& ws = *c.ws;
  const DeviceLayer& L = w_.layers[l];
  const int T = c.T, D = cfg_.hidden_size, H = cfg_.n_heads, Hkv = cfg_.n_kv_heads, d = cfg_.head_dim;
  const int Nq = qkv_rows();
  linear(c, L.qkv, L.qkv_bias, ws.h, D, T, ws.qkv, Nq, h_bf16(c));
  kernels::gqa_prep(ws.qkv, Nq, H, Hkv, d, L.q_norm, L.k_norm, static_cast<float>(cfg_.rms_norm_eps), rope_params_, kv_view(l, ws),
                    place(ws), T, stream_);
  const bool any_decode = c.decode || !c.host->list.empty();
  if (any_decode) decode_attention(c, l, c.decode ? T : static_cast<int>(c.host->list.size()));
  void* attn_b = h_bf16(c) && !any_decode && flash_prefill() ? ws.gin : nullptr;  // as in attention_mla
  if (!c.decode) {
    for (int s = 0; s < c.host->S; ++s)
      if (c.host->prefill_seq[s])
        if (auto e = prefill_attention(c, l, s, c.host->first_token[s], c.host->n_new[s], c.host->n_past[s], attn_b); !e) return e;
  }
  linear(c, L.o, L.o_bias, ws.attn, static_cast<int64_t>(H) * d, T, ws.delta, D, attn_b);
  return ok();
}

void CudaModel::decode_attention(const Ctx& c, int l, int n_list) {
  Workspace& ws = *c.ws;
  const DeviceLayer& L = w_.layers[l];
  const int H = cfg_.n_heads;
  kernels::Attention a;
  a.list = ws.list();
  a.n_list = n_list;
  a.scale = softmax_scale_;
  a.part_o = ws.part_o;
  a.part_ml = ws.part_ml;
  if (cfg_.is_mla()) {
    const int n = cfg_.qk_nope_head_dim, p = cfg_.qk_rope_head_dim, r = cfg_.kv_lora_rank, vd = cfg_.v_head_dim;
    a.q = ws.q_full;
    a.q_tok_stride = static_cast<int64_t>(H) * (r + p);
    a.n_kvh = 1, a.G = H, a.dk = r + p, a.dv = r;
    a.n_splits = kernels::attention_splits(n_list, 1, cfg_.max_position);
    a.min_per_split = 32;  // short contexts use fewer splits (less to merge); 2K positions still 64 splits
    // W_vb of head h: rows n .. n+v of its kv_b block.
    kernels::mla_decode(a, kv_view(l, ws), place(ws), byte_at(L.kv_b.p, static_cast<int64_t>(n) * r, dt_), dt_, static_cast<int64_t>(n + vd) * r,
                        r, vd, ws.attn, static_cast<int64_t>(H) * vd, stream_);
  } else {
    const int Hkv = cfg_.n_kv_heads, d = cfg_.head_dim;
    a.q = ws.qkv;
    a.q_tok_stride = qkv_rows();
    a.n_kvh = Hkv, a.G = H / Hkv, a.dk = d, a.dv = d;
    a.k_off = 0, a.k_head_stride = d, a.v_off = Hkv * d, a.v_head_stride = d;
    // One sequence's tokens (a verification): each key and value row read once for all of them.
    a.one_seq = c.decode && c.one_seq;
    a.n_splits = kernels::attn_decode_splits(a, cfg_.max_position);
    a.min_per_split = 32;
    kernels::attn_decode(a, kv_view(l, ws), place(ws), stream_);
    kernels::attn_combine(a, place(ws), nullptr, dt_, 0, 0, d, ws.attn, static_cast<int64_t>(H) * d, stream_);
  }
}

// One sequence's new tokens [t0, t0 + Tn) at positions [P0, P0 + Tn) attend to positions
// [0, P0 + Tn) through cuBLAS: keys and values expanded per head (MLA: from the latent through
// kv_b_proj), scores for a chunk of query rows, causal softmax, values.
Expected<void> CudaModel::prefill_attention(const Ctx& c, int l, int seq, int t0, int Tn, int P0, void* out_bf16) {
  Workspace& ws = *c.ws;
  const DeviceLayer& L = w_.layers[l];
  const int H = cfg_.n_heads, N = P0 + Tn, es = kernels::dtype_size(dt_);
  const kernels::KvCache kv = kv_view(l, ws);
  const int kv_dim = cfg_.kv_dim();
  const bool mla = cfg_.is_mla();
  const int n = cfg_.qk_nope_head_dim, p = cfg_.qk_rope_head_dim, r = cfg_.kv_lora_rank, vd = cfg_.v_head_dim;
  const int Hkv = mla ? 1 : cfg_.n_kv_heads, d = cfg_.head_dim;
  const int dk = mla ? n + p : d, dvh = mla ? vd : d, Hk = mla ? H : Hkv;  // per-head key / value dims, heads of K and V
  // Query rows per chunk: scores (float32) and probabilities of every head within ~1 GiB.
  const int64_t per_row = static_cast<int64_t>(H) * N * (4 + es);
  const int Tc = static_cast<int>(std::clamp<int64_t>((int64_t{1} << 30) / std::max<int64_t>(per_row, 1), 1, Tn));
  // Scratch: cache rows f32 [N, kv_dim] | (MLA) latent [N, r] dt | expanded f32 [N, H (n+v)] |
  //          K [Hk, N, dk] | V [Hk, N, dvh] | Q [H, Tn, dk] | S f32 [H, Tc, N] | P [H, Tc, N]
  int64_t off = 0;
  auto carve = [&](int64_t bytes) {
    const int64_t o = off;
    off += (bytes + 255) / 256 * 256;
    return o;
  };
  const int64_t tok_out = static_cast<int64_t>(H) * dvh;  // row stride of ws.attn
  if (flash_prefill()) {
    // Fused attention (kernels/prefill_attention.cu) over bf16 keys and values: the sequence's
    // cache rows in bf16 [N, kv_dim] | MLA: kv_b_proj of the latent, bf16 [N, H (n+v)].
    const int64_t o_c = carve(static_cast<int64_t>(N) * kv_dim * 2);
    const int64_t o_x = mla ? carve(static_cast<int64_t>(N) * H * (n + vd) * 2) : 0;
    if (off > attn_scratch_.bytes()) {
      CUDA_TRY(cudaStreamSynchronize(stream_));  // the old scratch may still be in use
      if (auto a = attn_scratch_.alloc(off); !a) return a;
    }
    uint8_t* base = attn_scratch_.get<uint8_t>();
    auto* cache = reinterpret_cast<uint16_t*>(base + o_c);
    kernels::gather_cache_bf16(kv, seq, N, cache, stream_);
    kernels::FlashAttention fa;
    if (mla) {
      auto* x = reinterpret_cast<uint16_t*>(base + o_x);
      const int64_t ld_x = static_cast<int64_t>(H) * (n + vd);
      {
        kernels::GemmLabel label("cublas: attention kv_b expansion");
        kernels::gemm_bf16_out(blas_, N, H * (n + vd), r, cache, kv_dim, L.kv_b.p, r, true, x, ld_x);
      }
      const float* q = cfg_.q_lora_rank > 0 ? ws.q : ws.qkv;
      const int64_t ld_q = cfg_.q_lora_rank > 0 ? static_cast<int64_t>(H) * (n + p) : qkv_rows();
      fa.q = q + t0 * ld_q, fa.ldq = ld_q, fa.q_head_stride = n + p;
      fa.k1 = x, fa.ldk1 = ld_x, fa.k1_head_stride = n + vd;
      fa.k2 = cache + r, fa.ldk2 = kv_dim, fa.k2_head_stride = 0;
      fa.v = x + n, fa.ldv = ld_x, fa.v_head_stride = n + vd;
      fa.dk1 = n, fa.dk = n + p, fa.dv = vd, fa.G = 1;
    } else {
      const int64_t ld_q = qkv_rows();
      fa.q = ws.qkv + t0 * ld_q, fa.ldq = ld_q, fa.q_head_stride = d;
      fa.k1 = cache, fa.ldk1 = kv_dim, fa.k1_head_stride = d;
      fa.v = cache + static_cast<int64_t>(Hkv) * d, fa.ldv = kv_dim, fa.v_head_stride = d;
      fa.dk1 = d, fa.dk = d, fa.dv = d, fa.G = H / Hkv;
    }
    fa.out = ws.attn + t0 * tok_out, fa.ldo = tok_out, fa.o_head_stride = dvh;
    if (out_bf16) fa.out_bf16 = static_cast<uint16_t*>(out_bf16) + t0 * tok_out;
    fa.H = H, fa.Tn = Tn, fa.P0 = P0, fa.scale = softmax_scale_;
    kernels::prefill_attention(fa, stream_);
    return ok();
  }
  kernels::GemmLabel label("cublas: attention kv_b, scores, values");
  const int64_t o_rows = carve(static_cast<int64_t>(N) * kv_dim * 4);
  const int64_t o_lat = mla ? carve(static_cast<int64_t>(N) * r * es) : 0;
  const int64_t o_exp = mla ? carve(static_cast<int64_t>(N) * H * (n + vd) * 4) : 0;
  const int64_t o_k = carve(static_cast<int64_t>(Hk) * N * dk * es);
  const int64_t o_v = carve(static_cast<int64_t>(Hk) * N * dvh * es);
  const int64_t o_q = carve(static_cast<int64_t>(H) * Tn * dk * es);
  const int64_t o_s = carve(static_cast<int64_t>(H) * Tc * N * 4);
  const int64_t o_p = carve(static_cast<int64_t>(H) * Tc * N * es);
  if (off > attn_scratch_.bytes()) {
    CUDA_TRY(cudaStreamSynchronize(stream_));  // the old scratch may still be in use
    if (auto a = attn_scratch_.alloc(off); !a) return a;
  }
  uint8_t* base = attn_scratch_.get<uint8_t>();
  float* rows = reinterpret_cast<float*>(base + o_rows);
  void* Kp = base + o_k;
  void* Vp = base + o_v;
  void* Qp = base + o_q;
  float* S = reinterpret_cast<float*>(base + o_s);
  void* P = base + o_p;
  kernels::gather_cache(kv, seq, N, rows, stream_);
  if (mla) {
    void* lat = base + o_lat;
    float* expd = reinterpret_cast<float*>(base + o_exp);
    kernels::convert_rows(rows, kv_dim, N, r, lat, dt_, r, stream_);
    kernels::gemm(blas_, N, H * (n + vd), r, lat, r, L.kv_b.p, r, true, dt_, expd, static_cast<int64_t>(H) * (n + vd));
    kernels::pack_heads(expd, static_cast<int64_t>(H) * (n + vd), 0, n + vd, N, H, n, Kp, dt_, static_cast<int64_t>(N) * dk, dk, 0, stream_);
    kernels::pack_heads(rows, kv_dim, r, 0, N, H, p, Kp, dt_, static_cast<int64_t>(N) * dk, dk, n, stream_);
    kernels::pack_heads(expd, static_cast<int64_t>(H) * (n + vd), n, n + vd, N, H, vd, Vp, dt_, static_cast<int64_t>(N) * dvh, dvh, 0,
                        stream_);
    const float* q = cfg_.q_lora_rank > 0 ? ws.q : ws.qkv;
    const int64_t ld_q = cfg_.q_lora_rank > 0 ? static_cast<int64_t>(H) * (n + p) : qkv_rows();
    kernels::pack_heads(q + t0 * ld_q, ld_q, 0, n + p, Tn, H, dk, Qp, dt_, static_cast<int64_t>(Tn) * dk, dk, 0, stream_);
  } else {
    kernels::pack_heads(rows, kv_dim, 0, d, N, Hkv, d, Kp, dt_, static_cast<int64_t>(N) * d, d, 0, stream_);
    kernels::pack_heads(rows, kv_dim, static_cast<int64_t>(Hkv) * d, d, N, Hkv, d, Vp, dt_, static_cast<int64_t>(N) * d, d, 0, stream_);
    const int64_t ld_q = qkv_rows();
    kernels::pack_heads(ws.qkv + t0 * ld_q, ld_q, 0, d, Tn, H, d, Qp, dt_, static_cast<int64_t>(Tn) * d, d, 0, stream_);
  }
  // Query heads per K/V head. MLA's expanded K/V has every head (G = 1): one batched product over
  // the heads; GQA: one product per K/V head, batched over its G query heads (K/V stride 0).
  const int G = H / Hk;
  const int calls = G == 1 ? 1 : Hk, count = G == 1 ? H : G;
  const int64_t kv_stride = G == 1 ? 1 : 0;  // batch stride factor for K and V
  for (int c0 = 0; c0 < Tn; c0 += Tc) {
    const int rows_c = std::min(Tc, Tn - c0);
    for (int g = 0; g < calls; ++g) {
      kernels::GemmBatch sb{count, static_cast<int64_t>(Tn) * dk, kv_stride * N * dk, static_cast<int64_t>(rows_c) * N};
      kernels::gemm(blas_, rows_c, N, dk, byte_at(Qp, (static_cast<int64_t>(g) * G * Tn + c0) * dk, dt_), dk,
                    byte_at(Kp, static_cast<int64_t>(g) * N * dk, dt_), dk, true, dt_, S + static_cast<int64_t>(g) * G * rows_c * N, N,
                    softmax_scale_, 0.0f, sb);
    }
    kernels::causal_softmax(S, H, rows_c, N, P0 + c0, P, dt_, stream_);
    for (int g = 0; g < calls; ++g) {
      kernels::GemmBatch ob{count, static_cast<int64_t>(rows_c) * N, kv_stride * N * dvh, dvh};
      kernels::gemm(blas_, rows_c, dvh, N, byte_at(P, static_cast<int64_t>(g) * G * rows_c * N, dt_), N,
                    byte_at(Vp, static_cast<int64_t>(g) * N * dvh, dt_), dvh, false, dt_,
                    ws.attn + (t0 + c0) * tok_out + static_cast<int64_t>(g) * G * dvh, tok_out, 1.0f, 0.0f, ob);
    }
  }
  return ok();
}

// ---- feed-forward ----------------------------------------------------------------------------

Expected<void> CudaModel::ffn(const Ctx& c, int l, bool fused_norm) {
  kernels::GemmLabel label("cublas: router, experts");
  Workspace& ws = *c.ws;
  const DeviceLayer& L = w_.layers[l];
  const int T = c.T, D = cfg_.hidden_size, KP = L.K + L.S, X = L.E + L.S, I = L.I;
  const bool one = c.decode && T == 1;  // one token: the routing kernel sorts its pairs too
  moe_out_bf16_ = false;
  const float* logits = nullptr;
  if (L.E > 0) {
    // Router logits [T, E] in float32 over many blocks (the routing kernel then only picks).
    if (fused_norm) {
      kernels::rmsnorm_router(ws.x, ws.delta, L.post_norm, static_cast<float>(cfg_.rms_norm_eps), ws.h, T, D, L.router, L.E,
                              ws.router_logits, stream_);
    } else if (c.decode) {
      kernels::Skinny r;
      r.w = L.router, r.wt = DType::F32, r.ldw = D;
      r.x = ws.h, r.ldx = D;
      r.y = ws.router_logits, r.ldy = L.E;
      r.N = L.E, r.K = D, r.T = T;
      kernels::skinny_gemm(r, stream_);
    } else {
      kernels::gemm(blas_, T, L.E, D, ws.h, D, L.router, D, true, DType::F32, ws.router_logits, L.E);
    }
    logits = ws.router_logits;
  }
  kernels::moe_route(ws.h, D, L.router, logits, route_params(L), ws.seq(), T, ws.moe, one, stream_);
  if (!one) kernels::moe_sort(T, KP, X, ws.moe, stream_);
  if (c.decode) {
    const int max_active = std::min(X, T * KP);
    // Routed experts get a few of the tokens each: the lean kernel. A dense layer (one slot with
    // every token) reads its weights once per 8 tokens instead.
    const bool lean = T == 1 || L.E > 0;
    if (one && moe_one_on() && kernels::moe_one_fits(D, I, L.gate_up.p, L.down.p, ws.h, ws.act)) {
      kernels::moe_gate_up_one(ws.h, D, L.gate_up.p, dt_, L.gate_up_bias, I, route_params(L), ws.moe, ws.act, stream_);
      kernels::moe_down_one(ws.act, I, L.down.p, dt_, L.down_bias, D, route_params(L), ws.moe, ws.pair_out, stream_);
      moe_out_ = ws.pair_out;
      return ok();
    }
    // A dense MLP (one slot, every token): its rows are the tokens in order (padding tokens come
    // last and nothing reads their rows), so the few-token kernel skips the routing lists.
    const bool one_slot = X == 1 && L.E == 0 && env_on("GHOSTLINE_DENSE_FEW");
    kernels::moe_gate_up(ws.h, D, L.gate_up.p, dt_, L.gate_up_bias, I, KP, ws.moe, max_active, lean, ws.act, stream_, T, one_slot);
    kernels::moe_down(ws.act, I, L.down.p, dt_, L.down_bias, D, ws.moe, max_active, lean, ws.pair_out, stream_, T, one_slot);
    moe_out_ = ws.pair_out;
    return ok();
  }
  const int es = kernels::dtype_size(dt_);
  if (dt_ == DType::BF16 && kernels::grouped_gemm_supported(I, D) && kernels::grouped_gemm_supported(D, I) &&
      env_on("GHOSTLINE_GROUPED_GEMM")) {
    // Prefill, grouped (kernels/grouped_gemm.cu): every token of a prefill step is real, so the
    // step has P = T KP pairs, and the always-on slots (shared experts, a dense MLP) come last in
    // expert order with T rows each. The routed experts' tiles are listed on the device and two
    // launches do them all, SiLU(gate) * up fused into the first; the always-on slots are full
    // products of T rows, where cuBLAS runs faster (strided batches, then SiLU * up). No host
    // synchronisation. GHOSTLINE_SHARED_CUBLAS=0 sends the always-on slots to the grouped kernel.
    // With h in bf16 (h_bf16): the always-on slots read it in place (only the routed rows are
    // gathered). Unless GHOSTLINE_BF16_EXPERT_OUT=0 (and without biases), their gate/up sums and
    // every expert's outputs are bf16 too (the residual norm reads half the bytes); the bf16
    // fixtures' prefill errors were a little larger with it on (H200, ed21fe6 with every switch
    // on, against main's runs: dsv2_tiny median 6.58e-3 -> 7.05e-3, llama_yarn 4.95e-3 -> 5.71e-3;
    // limit 1e-2).
    // Scratch: gathered rows bf16 [P, D] | activations bf16 [P, I] | outputs f32 or bf16 [P, D] |
    //          tiles | always-on gate/up f32 or bf16 [S T, 2I].
    const int P = T * KP;
    const bool shared_blas = L.S > 0 && env_on("GHOSTLINE_SHARED_CUBLAS");
    const void* hb = h_bf16(c);
    const bool b16_in = hb != nullptr;
    const bool b16_out = b16_in && !L.gate_up_bias && !L.down_bias && env_on("GHOSTLINE_BF16_EXPERT_OUT");
    const int Xg = shared_blas ? L.E : X, max_tiles = kernels::moe_max_tiles(shared_blas ? T * L.K : P, Xg);
    const int64_t routed_rows = static_cast<int64_t>(T) * L.K, shared_rows = static_cast<int64_t>(T) * L.S;
    auto up = [](int64_t b) { return (b + 255) / 256 * 256; };
    const int64_t in_b = up(static_cast<int64_t>(P) * D * es), act_b = up(static_cast<int64_t>(P) * I * es),
                  out_b = up(static_cast<int64_t>(P) * D * 4), tiles_b = up(static_cast<int64_t>(max_tiles) * 16 + 16),
                  gu_b = shared_blas ? up(shared_rows * 2 * I * 4) : 0;
    const int64_t need = in_b + act_b + out_b + tiles_b + gu_b;
    if (need > moe_scratch_.bytes()) {
      CUDA_TRY(cudaStreamSynchronize(stream_));
      if (auto a = moe_scratch_.alloc(need * 5 / 4); !a) return a;
    }
    uint8_t* base = moe_scratch_.get<uint8_t>();
    void* gin = base;
    void* act = base + in_b;
    float* out = reinterpret_cast<float*>(base + in_b + act_b);
    auto* tiles = reinterpret_cast<int4*>(base + in_b + act_b + out_b);
    auto* n_tiles = reinterpret_cast<int32_t*>(tiles + max_tiles);
    kernels::MoePadding pad;
    pad.packed = true;
    // Sorted rows [T K, P) are the always-on slots' (they come last in expert order).
    kernels::moe_gather(ws.h, D, ws.moe, KP, b16_in && shared_blas ? static_cast<int>(routed_rows) : P, pad, gin, dt_, stream_);
    if (shared_blas) {
      // A: h in bf16 in place (every slot the same rows: batch stride 0), or the gathered copies.
      const void* sa = b16_in ? hb : byte_at(gin, routed_rows * D, dt_);
      void* gu = base + in_b + act_b + out_b + tiles_b;
      auto* gu32 = static_cast<float*>(gu);
      const void* wgu = byte_at(L.gate_up.p, static_cast<int64_t>(L.E) * 2 * I * D, dt_);
      kernels::GemmBatch b{L.S, b16_in ? 0 : static_cast<int64_t>(T) * D, static_cast<int64_t>(2) * I * D, static_cast<int64_t>(T) * 2 * I};
      if (b16_out) kernels::gemm_bf16_out(blas_, T, 2 * I, D, sa, D, wgu, D, true, gu, 2 * I, b);
      else kernels::gemm(blas_, T, 2 * I, D, sa, D, wgu, D, true, dt_, gu32, 2 * I, 1.0f, 0.0f, b);
      for (int sl = 0; sl < L.S && L.gate_up_bias; ++sl)  // (never with b16_out)
        kernels::add_bias(gu32 + static_cast<int64_t>(sl) * T * 2 * I, 2 * I, T, 2 * I, L.gate_up_bias + static_cast<int64_t>(L.E + sl) * 2 * I,
                          stream_);
      void* sact = const_cast<uint8_t*>(byte_at(act, routed_rows * I, dt_));
      if (b16_out) kernels::silu_mul_rows_bf16(gu, static_cast<int>(shared_rows), I, sact, dt_, I, stream_);
      else kernels::silu_mul_rows(gu32, static_cast<int>(shared_rows), I, sact, dt_, I, stream_);
      const void* wd = byte_at(L.down.p, static_cast<int64_t>(L.E) * D * I, dt_);
      kernels::GemmBatch bd{L.S, static_cast<int64_t>(T) * I, static_cast<int64_t>(D) * I, static_cast<int64_t>(T) * D};
      if (b16_out) {
        kernels::gemm_bf16_out(blas_, T, D, I, sact, I, wd, I, true, reinterpret_cast<uint16_t*>(out) + routed_rows * D, D, bd);
      } else {
        kernels::gemm(blas_, T, D, I, sact, I, wd, I, true, dt_, out + routed_rows * D, D, 1.0f, 0.0f, bd);
        for (int sl = 0; sl < L.S && L.down_bias; ++sl)
          kernels::add_bias(out + (routed_rows + static_cast<int64_t>(sl) * T) * D, D, T, D, L.down_bias + static_cast<int64_t>(L.E + sl) * D,
                            stream_);
      }
    }
    ++stats.moe_grouped_layers;
    moe_out_ = out;
    moe_out_bf16_ = b16_out;
    if (Xg == 0) return ok();
    kernels::moe_tiles(ws.moe.expert_offset, Xg, tiles, n_tiles, stream_);
    kernels::GroupedGemm g;
    g.tiles = tiles, g.n_tiles = n_tiles, g.max_tiles = max_tiles;
    g.a_rows = P, g.experts = X;  // bounds of the Hopper kernel's bulk copies (GHOSTLINE_WGMMA)
    g.a = gin, g.lda = D, g.w = L.gate_up.p, g.w_expert_stride = static_cast<int64_t>(2) * I * D, g.bias = L.gate_up_bias;
    g.N = I, g.K = D, g.silu = true, g.out = act, g.ldo = I;
    kernels::grouped_gemm(g, stream_);
    g.a = act, g.lda = I, g.w = L.down.p, g.w_expert_stride = static_cast<int64_t>(D) * I, g.bias = L.down_bias;
    g.N = D, g.K = I, g.silu = false, g.out = out, g.ldo = D, g.out_bf16 = b16_out;
    kernels::grouped_gemm(g, stream_);
    return ok();
  }
  // Prefill: the group sizes come to the host, then per layer the cheaper of two ways:
  // - padded: routed experts padded to the largest group, shared slots with every token, each
  //   matrix two strided-batched cuBLAS products (few launches; the padding is wasted work);
  // - exact: rows packed in expert order, one cuBLAS product per expert and matrix (no waste,
  //   but a launch each, ~15 us when the groups are small).
  // Uneven routing (random routers make it very uneven) favours the second.
  int32_t* off = offsets_.get<int32_t>();
  CUDA_TRY(cudaMemcpyAsync(off, ws.moe.expert_offset, (X + 1) * 4, cudaMemcpyDeviceToHost, stream_));
  CUDA_TRY(cudaStreamSynchronize(stream_));
  const int P = off[X];
  int maxc = 0, groups = 0;
  for (int e = 0; e < X; ++e) {
    if (e < L.E) maxc = std::max(maxc, off[e + 1] - off[e]);
    groups += off[e + 1] > off[e];
  }
  const int64_t padded_rows = static_cast<int64_t>(L.E) * maxc + static_cast<int64_t>(L.S) * T;
  // A launch costs about as much as this many rows of an expert's products at ~300 TFLOP/s.
  const int64_t launch_rows = std::max<int64_t>(64, static_cast<int64_t>(15e-6 * 300e12 / (6.0 * D * I)));
  const bool padded = padded_rows <= P + groups * launch_rows;
  ++(padded ? stats.moe_padded_layers : stats.moe_exact_layers);
  const int64_t rows = padded ? padded_rows : P;
  // Scratch: inputs (gathered rows, then the activations) in dt | gate/up f32 | outputs f32.
  const int64_t gin_b = (rows * std::max(D, I) * es + 255) / 256 * 256, gu_b = (rows * 2 * I * 4 + 255) / 256 * 256,
                out_b = rows * D * 4;
  if (gin_b + gu_b + out_b > moe_scratch_.bytes()) {
    CUDA_TRY(cudaStreamSynchronize(stream_));
    if (auto a = moe_scratch_.alloc((gin_b + gu_b + out_b) * 5 / 4); !a) return a;
    CUDA_TRY(cudaMemsetAsync(moe_scratch_.get(), 0, static_cast<size_t>(moe_scratch_.bytes()), stream_));  // finite padding rows
  }
  uint8_t* base = moe_scratch_.get<uint8_t>();
  void* gin = base;
  float* gu = reinterpret_cast<float*>(base + gin_b);
  float* out = reinterpret_cast<float*>(base + gin_b + gu_b);
  kernels::MoePadding pad;
  pad.E = L.E;
  pad.maxc = maxc;
  pad.T = T;
  pad.packed = !padded;
  kernels::moe_gather(ws.h, D, ws.moe, KP, P, pad, gin, dt_, stream_);
  const int64_t shared_row = static_cast<int64_t>(L.E) * maxc;
  auto products = [&](const void* A, int K, const DMat& W, int N, float* C, const float* bias) {
    if (padded) {
      if (L.E > 0 && maxc > 0) {
        kernels::GemmBatch b{L.E, static_cast<int64_t>(maxc) * K, static_cast<int64_t>(N) * K, static_cast<int64_t>(maxc) * N};
        kernels::gemm(blas_, maxc, N, K, A, K, W.p, K, true, dt_, C, N, 1.0f, 0.0f, b);
      }
      if (L.S > 0) {
        kernels::GemmBatch b{L.S, static_cast<int64_t>(T) * K, static_cast<int64_t>(N) * K, static_cast<int64_t>(T) * N};
        kernels::gemm(blas_, T, N, K, byte_at(A, shared_row * K, dt_), K, byte_at(W.p, static_cast<int64_t>(L.E) * N * K, dt_), K, true,
                      dt_, C + shared_row * N, N, 1.0f, 0.0f, b);
      }
    } else {
      for (int e = 0; e < X; ++e) {
        const int cnt = off[e + 1] - off[e];
        if (cnt > 0)
          kernels::gemm(blas_, cnt, N, K, byte_at(A, static_cast<int64_t>(off[e]) * K, dt_), K,
                        byte_at(W.p, static_cast<int64_t>(e) * N * K, dt_), K, true, dt_, C + static_cast<int64_t>(off[e]) * N, N);
      }
    }
    if (!bias) return;
    for (int e = 0; e < X; ++e) {
      const int64_t first = padded ? (e < L.E ? static_cast<int64_t>(e) * maxc : shared_row + static_cast<int64_t>(e - L.E) * T) : off[e];
      const int n_rows = padded ? (e < L.E ? maxc : T) : off[e + 1] - off[e];
      if (n_rows > 0) kernels::add_bias(C + first * N, N, n_rows, N, bias + static_cast<int64_t>(e) * N, stream_);
    }
  };
  products(gin, D, L.gate_up, 2 * I, gu, L.gate_up_bias);
  // SiLU(gate) * up straight into the weight dtype: the down products' input.
  kernels::silu_mul_rows(gu, static_cast<int>(rows), I, gin, dt_, I, stream_);
  products(gin, I, L.down, D, out, L.down_bias);
  if (padded) kernels::moe_pad_slots(ws.moe, T * KP, pad, stream_);
  moe_out_ = out;
  return ok();
}

}  // namespace ghostline::engine::cuda
