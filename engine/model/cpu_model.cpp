// CpuModel::forward and its blocks: embedding -> L x (RMSNorm, attention, RMSNorm, MLP or MoE)
// -> final RMSNorm -> lm_head, over all sequences of a step at once. Attention reads every
// sequence's earlier positions from the paged KV cache, after this step's keys are written.
#include "engine/model/cpu_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <unistd.h>

#include "engine/cpu/kernels.h"

namespace ghostline::engine::model {

using cpu::matmul;

namespace {
}  // namespace

CpuModel::CpuModel(ModelConfig cfg, WeightStorage storage, ModelWeights weights, int threads)
    : cfg_(std::move(cfg)), storage_(std::move(storage)), w_(std::move(weights)), pool_(threads) {
  info_.architecture = cfg_.model_type;
  info_.vocab_size = cfg_.vocab_size;
  info_.n_layers = cfg_.n_layers;
  info_.max_context = cfg_.max_position;
  info_.eos_token_ids = cfg_.eos_token_ids;
  info_.params_total = w_.params_total;
  info_.params_active = w_.params_active;
  info_.weight_bytes = w_.bytes;
  info_.kv_bytes_per_token = static_cast<int64_t>(cfg_.n_layers) * cfg_.kv_dim() * 4;
  info_.weight_dtype = w_.dtype;
  info_.device = Device::Cpu;
  if (cfg_.is_mla()) {
    rope_ = Rope(cfg_.rope, cfg_.qk_rope_head_dim, cfg_.max_position, Rope::Order::Interleaved);
    softmax_scale_ = 1.0f / std::sqrt(static_cast<float>(cfg_.qk_nope_head_dim + cfg_.qk_rope_head_dim));
    // transformers 5.17 (yarn_apply_mscale): with any rope scaling and mscale_all_dim set, the
    // softmax scale gains mscale(factor, mscale_all_dim)^2, on top of the rope attention factor.
    if (cfg_.rope.type != "default" && cfg_.rope.mscale_all_dim != 0) {
      double m = yarn_get_mscale(cfg_.rope.factor, cfg_.rope.mscale_all_dim);
      softmax_scale_ *= static_cast<float>(m * m);
    }
  } else {
    rope_ = Rope(cfg_.rope, cfg_.head_dim, cfg_.max_position, Rope::Order::Half);
    softmax_scale_ = 1.0f / std::sqrt(static_cast<float>(cfg_.head_dim));
  }
}

Expected<void> CpuModel::allocate_kv(int block_size, int n_blocks) {
  if (block_size <= 0 || n_blocks <= 0)
    return Error(ErrorCode::InvalidArgument, "allocate_kv: block_size and n_blocks must be positive (got " +
                                                 std::to_string(block_size) + ", " + std::to_string(n_blocks) + ")");
  const int64_t per_layer = static_cast<int64_t>(n_blocks) * block_size * cfg_.kv_dim();
  const int64_t bytes = per_layer * 4 * cfg_.n_layers;
  const int64_t avail = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  if (avail > 0 && bytes > avail)
    return Error(ErrorCode::ResourceExhausted, "allocate_kv: " + std::to_string(bytes >> 20) + " MiB of KV cache does not fit in " +
                                                   std::to_string(avail >> 20) + " MiB of memory");
  kv_.clear();
  try {
    kv_.assign(cfg_.n_layers, std::vector<float>(per_layer, 0.0f));
  } catch (const std::bad_alloc&) {
    kv_.clear();
    return Error(ErrorCode::ResourceExhausted, "allocate_kv: out of memory for " + std::to_string(bytes >> 20) + " MiB of KV cache");
  }
  block_size_ = block_size;
  n_blocks_ = n_blocks;
  return ok();
}

void CpuModel::copy_kv_block(int src, int dst) {
  if (src < 0 || dst < 0 || src >= n_blocks_ || dst >= n_blocks_ || src == dst) return;
  const int64_t n = static_cast<int64_t>(block_size_) * cfg_.kv_dim();
  for (auto& layer : kv_) std::memcpy(layer.data() + dst * n, layer.data() + src * n, n * sizeof(float));
}

float* CpuModel::kv_slot(int layer, const SequenceStep& s, int pos) {
  const int block = s.block_table[pos / block_size_];
  return kv_[layer].data() + (static_cast<int64_t>(block) * block_size_ + pos % block_size_) * cfg_.kv_dim();
}

// ---- attention -----------------------------------------------------------------------------

void CpuModel::attention_gqa(int l, const StepBatch& b, const std::vector<TokenMeta>& meta, const float* h, float* out) {
  const auto& a = w_.layers[l].attn;
  const int64_t T = static_cast<int64_t>(meta.size()), D = cfg_.hidden_size;
  const int H = cfg_.n_heads, Hkv = cfg_.n_kv_heads, d = cfg_.head_dim, group = H / Hkv;
  std::vector<float> q(T * H * d), k(T * Hkv * d), v(T * Hkv * d), o(T * H * d);
  matmul(pool_, h, T, a.q, a.q_bias.empty() ? nullptr : a.q_bias.data(), q.data());
  matmul(pool_, h, T, a.k, a.k_bias.empty() ? nullptr : a.k_bias.data(), k.data());
  matmul(pool_, h, T, a.v, a.v_bias.empty() ? nullptr : a.v_bias.data(), v.data());
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  for (int64_t t = 0; t < T; ++t) {
    float* qt = q.data() + t * H * d;
    float* kt = k.data() + t * Hkv * d;
    if (cfg_.qk_norm) {
      for (int hh = 0; hh < H; ++hh) cpu::rmsnorm(qt + hh * d, a.q_norm.data(), d, eps, qt + hh * d);
      for (int hh = 0; hh < Hkv; ++hh) cpu::rmsnorm(kt + hh * d, a.k_norm.data(), d, eps, kt + hh * d);
    }
    rope_.apply(qt, H, d, meta[t].pos);
    rope_.apply(kt, Hkv, d, meta[t].pos);
    float* slot = kv_slot(l, b.seqs[meta[t].seq], meta[t].pos);
    std::memcpy(slot, kt, Hkv * d * sizeof(float));
    std::memcpy(slot + Hkv * d, v.data() + t * Hkv * d, Hkv * d * sizeof(float));
  }
  pool_.parallel_for(T * H, [&](int64_t i0, int64_t i1) {
    thread_local std::vector<float> scores;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / H;
      const int hh = static_cast<int>(i % H), kvh = hh / group;
      const SequenceStep& s = b.seqs[meta[t].seq];
      const int n = meta[t].pos + 1;
      scores.resize(n);
      const float* qh = q.data() + (t * H + hh) * d;
      for (int p = 0; p < n; ++p) scores[p] = cpu::dot_f32(qh, kv_slot(l, s, p) + kvh * d, d) * softmax_scale_;
      cpu::softmax(scores.data(), n);
      float* oh = o.data() + (t * H + hh) * d;
      std::fill(oh, oh + d, 0.0f);
      for (int p = 0; p < n; ++p) cpu::axpy(scores[p], kv_slot(l, s, p) + Hkv * d + kvh * d, oh, d);
    }
  });
  matmul(pool_, o.data(), T, a.o, a.o_bias.empty() ? nullptr : a.o_bias.data(), out);
  (void)D;
}

void CpuModel::attention_mla(int l, const StepBatch& b, const std::vector<TokenMeta>& meta, const float* h, float* out) {
  const auto& a = w_.layers[l].attn;
  const int64_t T = static_cast<int64_t>(meta.size());
  const int H = cfg_.n_heads, nope = cfg_.qk_nope_head_dim, rp = cfg_.qk_rope_head_dim, qk = nope + rp;
  const int r = cfg_.kv_lora_rank, vd = cfg_.v_head_dim;
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  std::vector<float> q(T * H * qk), ckv(T * (r + rp)), o(T * H * vd);
  if (cfg_.q_lora_rank > 0) {
    const int64_t qr = cfg_.q_lora_rank;
    std::vector<float> qa(T * qr);
    matmul(pool_, h, T, a.q_a, a.q_a_bias.empty() ? nullptr : a.q_a_bias.data(), qa.data());
    for (int64_t t = 0; t < T; ++t) cpu::rmsnorm(qa.data() + t * qr, a.q_a_norm.data(), qr, eps, qa.data() + t * qr);
    matmul(pool_, qa.data(), T, a.q_b, nullptr, q.data());
  } else {
    matmul(pool_, h, T, a.q, nullptr, q.data());
  }
  matmul(pool_, h, T, a.kv_a, a.kv_a_bias.empty() ? nullptr : a.kv_a_bias.data(), ckv.data());
  for (int64_t t = 0; t < T; ++t) {
    float* c = ckv.data() + t * (r + rp);
    cpu::rmsnorm(c, a.kv_a_norm.data(), r, eps, c);  // the cached latent is the normalised one
    rope_.apply(c + r, 1, rp, meta[t].pos);
    rope_.apply(q.data() + t * H * qk + nope, H, qk, meta[t].pos);
    std::memcpy(kv_slot(l, b.seqs[meta[t].seq], meta[t].pos), c, (r + rp) * sizeof(float));
  }
  // Absorbed attention per (token, head): q_abs = W_kb^T q_nope ([r]); score(p) = q_abs . latent_p
  // + q_pe . kpe_p; o_latent = sum softmax * latent_p; v_h = W_vb o_latent. W_kb / W_vb are the
  // head's rows of kv_b_proj: [n, r] then [v, r].
  const float* kvb = a.kv_b.data();
  pool_.parallel_for(T * H, [&](int64_t i0, int64_t i1) {
    thread_local std::vector<float> scores, qabs, olat;
    qabs.resize(r);
    olat.resize(r);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / H;
      const int hh = static_cast<int>(i % H);
      const SequenceStep& s = b.seqs[meta[t].seq];
      const int n = meta[t].pos + 1;
      const float* qn = q.data() + (t * H + hh) * qk;
      const float* qp = qn + nope;
      const float* wk = kvb + static_cast<int64_t>(hh) * (nope + vd) * r;
      std::fill(qabs.begin(), qabs.end(), 0.0f);
      for (int j = 0; j < nope; ++j) cpu::axpy(qn[j], wk + static_cast<int64_t>(j) * r, qabs.data(), r);
      scores.resize(n);
      for (int p = 0; p < n; ++p) {
        const float* slot = kv_slot(l, s, p);
        scores[p] = (cpu::dot_f32(qabs.data(), slot, r) + cpu::dot_f32(qp, slot + r, rp)) * softmax_scale_;
      }
      cpu::softmax(scores.data(), n);
      std::fill(olat.begin(), olat.end(), 0.0f);
      for (int p = 0; p < n; ++p) cpu::axpy(scores[p], kv_slot(l, s, p), olat.data(), r);
      const float* wv = wk + static_cast<int64_t>(nope) * r;
      float* oh = o.data() + (t * H + hh) * vd;
      for (int j = 0; j < vd; ++j) oh[j] = cpu::dot_f32(wv + static_cast<int64_t>(j) * r, olat.data(), r);
    }
  });
  matmul(pool_, o.data(), T, a.o, a.o_bias.empty() ? nullptr : a.o_bias.data(), out);
}

// ---- feed-forward ----------------------------------------------------------------------------

void CpuModel::mlp(const MlpWeights& w, const float* h, int64_t T, int64_t I, float* out) {
  std::vector<float> g(T * I), u(T * I);
  matmul(pool_, h, T, w.gate, w.gate_bias.empty() ? nullptr : w.gate_bias.data(), g.data());
  matmul(pool_, h, T, w.up, w.up_bias.empty() ? nullptr : w.up_bias.data(), u.data());
  cpu::silu_mul(g.data(), u.data(), T * I);
  matmul(pool_, g.data(), T, w.down, w.down_bias.empty() ? nullptr : w.down_bias.data(), out);
}

// Routing for one token: softmax over the router logits (float32), then
//   deepseek_v2: top-k (greedy) or top-k inside the topk_group best groups (group-limited), each
//                weight times routed_scaling_factor. As transformers 5.17 does, norm_topk_prob is
//                not applied (DeepSeek-V2's own checkpoints all set it false);
//   qwen3_moe:   top-k, renormalised when norm_topk_prob;  mixtral: top-k, renormalised.
void CpuModel::route(const LayerWeights& w, const float* h, std::vector<int>& idx, std::vector<float>& weight) {
  const int E = cfg_.n_experts, K = cfg_.n_experts_per_tok, D = cfg_.hidden_size;
  std::vector<float> probs(E);
  for (int e = 0; e < E; ++e) probs[e] = cpu::dot_f32(w.router.data() + static_cast<int64_t>(e) * D, h, D);
  cpu::softmax(probs.data(), E);
  std::vector<float> scores = probs;
  if (cfg_.arch == Arch::DeepseekV2 && cfg_.topk_method == "group_limited_greedy") {
    const int G = cfg_.n_group, per = E / G;
    std::vector<float> gmax(G);
    for (int g = 0; g < G; ++g) gmax[g] = *std::max_element(probs.begin() + g * per, probs.begin() + (g + 1) * per);
    std::vector<int> gorder(G);
    std::iota(gorder.begin(), gorder.end(), 0);
    std::stable_sort(gorder.begin(), gorder.end(), [&](int x, int y) { return gmax[x] > gmax[y]; });
    std::vector<char> keep(G, 0);
    for (int i = 0; i < cfg_.topk_group; ++i) keep[gorder[i]] = 1;
    for (int e = 0; e < E; ++e)
      if (!keep[e / per]) scores[e] = 0.0f;
  }
  std::vector<int> order(E);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + K, order.end(),
                    [&](int x, int y) { return scores[x] > scores[y] || (scores[x] == scores[y] && x < y); });
  idx.assign(order.begin(), order.begin() + K);
  weight.resize(K);
  for (int i = 0; i < K; ++i) weight[i] = scores[idx[i]];
  if (cfg_.arch == Arch::DeepseekV2) {
    for (auto& x : weight) x *= static_cast<float>(cfg_.routed_scaling_factor);
  } else if (cfg_.norm_topk_prob) {
    float sum = 0;
    for (float x : weight) sum += x;
    for (auto& x : weight) x /= sum;
  }
}

void CpuModel::moe(const LayerWeights& w, const float* h, int64_t T, float* out) {
  const int64_t D = cfg_.hidden_size, I = cfg_.moe_intermediate_size;
  const int E = cfg_.n_experts;
  std::vector<std::vector<int>> tokens(E);
  std::vector<std::vector<float>> gates(E);
  std::vector<int> idx;
  std::vector<float> wt;
  for (int64_t t = 0; t < T; ++t) {
    route(w, h + t * D, idx, wt);
    for (size_t i = 0; i < idx.size(); ++i) {
      tokens[idx[i]].push_back(static_cast<int>(t));
      gates[idx[i]].push_back(wt[i]);
    }
  }
  std::fill(out, out + T * D, 0.0f);
  std::vector<float> x, y;
  for (int e = 0; e < E; ++e) {
    const int64_t n = static_cast<int64_t>(tokens[e].size());
    if (n == 0) continue;
    x.resize(n * D);
    y.resize(n * D);
    for (int64_t i = 0; i < n; ++i) std::memcpy(x.data() + i * D, h + tokens[e][i] * D, D * sizeof(float));
    mlp(w.experts[e], x.data(), n, I, y.data());
    for (int64_t i = 0; i < n; ++i) cpu::axpy(gates[e][i], y.data() + i * D, out + tokens[e][i] * D, D);
  }
  if (w.has_shared) {
    y.resize(T * D);
    mlp(w.shared, h, T, I * cfg_.n_shared_experts, y.data());
    for (int64_t i = 0; i < T * D; ++i) out[i] += y[i];
  }
}

// ---- the step --------------------------------------------------------------------------------

Expected<void> CpuModel::forward(const StepBatch& b, std::vector<float>& logits) {
  const int64_t T = static_cast<int64_t>(b.tokens.size()), D = cfg_.hidden_size, V = cfg_.vocab_size;
  if (kv_.empty()) return Error(ErrorCode::InvalidArgument, "forward: no KV storage (call allocate_kv first)");
  std::vector<TokenMeta> meta;
  meta.reserve(T);
  std::vector<int64_t> logit_tokens;
  for (size_t si = 0; si < b.seqs.size(); ++si) {
    const auto& s = b.seqs[si];
    if (s.n_past < 0 || s.n_new < 0) return Error(ErrorCode::InvalidArgument, "forward: negative n_past or n_new");
    const int64_t end = static_cast<int64_t>(s.n_past) + s.n_new;
    if (end > cfg_.max_position)
      return Error(ErrorCode::InvalidArgument, "forward: sequence of " + std::to_string(end) + " tokens exceeds max_position_embeddings (" +
                                                   std::to_string(cfg_.max_position) + ")");
    if (static_cast<int64_t>(s.block_table.size()) * block_size_ < end)
      return Error(ErrorCode::InvalidArgument, "forward: block table of " + std::to_string(s.block_table.size()) + " blocks cannot hold " +
                                                   std::to_string(end) + " positions");
    for (int64_t blk = 0; blk < (end + block_size_ - 1) / block_size_; ++blk)
      if (s.block_table[blk] < 0 || s.block_table[blk] >= n_blocks_)
        return Error(ErrorCode::InvalidArgument, "forward: block id " + std::to_string(s.block_table[blk]) + " outside the " +
                                                     std::to_string(n_blocks_) + " allocated blocks");
    for (int i = 0; i < s.n_new; ++i) {
      if (s.all_logits || i == s.n_new - 1) logit_tokens.push_back(static_cast<int64_t>(meta.size()));
      meta.push_back({static_cast<int>(si), s.n_past + i});
    }
  }
  if (static_cast<int64_t>(meta.size()) != T)
    return Error(ErrorCode::InvalidArgument, "forward: the sequences' n_new add up to " + std::to_string(meta.size()) + " but the batch has " +
                                                 std::to_string(T) + " tokens");
  for (auto tok : b.tokens)
    if (tok < 0 || tok >= V)
      return Error(ErrorCode::InvalidArgument, "forward: token id " + std::to_string(tok) + " outside the vocabulary [0, " + std::to_string(V) + ")");

  std::vector<float> x(T * D), hbuf(T * D), delta(T * D);
  for (int64_t t = 0; t < T; ++t) cpu::row_to_f32(w_.embed, b.tokens[t], x.data() + t * D);
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  for (int l = 0; l < cfg_.n_layers; ++l) {
    const auto& lw = w_.layers[l];
    for (int64_t t = 0; t < T; ++t) cpu::rmsnorm(x.data() + t * D, lw.input_norm.data(), D, eps, hbuf.data() + t * D);
    if (cfg_.is_mla()) attention_mla(l, b, meta, hbuf.data(), delta.data());
    else attention_gqa(l, b, meta, hbuf.data(), delta.data());
    for (int64_t i = 0; i < T * D; ++i) x[i] += delta[i];
    for (int64_t t = 0; t < T; ++t) cpu::rmsnorm(x.data() + t * D, lw.post_norm.data(), D, eps, hbuf.data() + t * D);
    if (lw.moe) moe(lw, hbuf.data(), T, delta.data());
    else mlp(lw.mlp, hbuf.data(), T, cfg_.intermediate_size, delta.data());
    for (int64_t i = 0; i < T * D; ++i) x[i] += delta[i];
  }
  const int64_t R = static_cast<int64_t>(logit_tokens.size());
  std::vector<float> last(R * D);
  for (int64_t i = 0; i < R; ++i) cpu::rmsnorm(x.data() + logit_tokens[i] * D, w_.final_norm.data(), D, eps, last.data() + i * D);
  logits.resize(R * V);
  matmul(pool_, last.data(), R, w_.lm_head, nullptr, logits.data());
  return ok();
}

}  // namespace ghostline::engine::model
