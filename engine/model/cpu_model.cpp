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
  pack_weights_for_amx(w_, storage_);
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
  for (int l = 0; l < cfg_.n_layers; ++l) {
    // calloc: zero pages mapped lazily, so a large pool costs nothing until its blocks are used.
    kv_.emplace_back(static_cast<float*>(std::calloc(static_cast<size_t>(per_layer), sizeof(float))));
    if (!kv_.back()) {
      kv_.clear();
      return Error(ErrorCode::ResourceExhausted, "allocate_kv: out of memory for " + std::to_string(bytes >> 20) + " MiB of KV cache");
    }
  }
  block_size_ = block_size;
  n_blocks_ = n_blocks;
  return ok();
}

void CpuModel::copy_kv_block(int src, int dst) {
  if (src < 0 || dst < 0 || src >= n_blocks_ || dst >= n_blocks_ || src == dst) return;
  const int64_t n = static_cast<int64_t>(block_size_) * cfg_.kv_dim();
  for (auto& layer : kv_) std::memcpy(layer.get() + dst * n, layer.get() + src * n, n * sizeof(float));
}

float* CpuModel::kv_slot(int layer, const SequenceStep& s, int pos) {
  const int block = s.block_table[pos / block_size_];
  return kv_[layer].get() + (static_cast<int64_t>(block) * block_size_ + pos % block_size_) * cfg_.kv_dim();
}

// ---- attention -----------------------------------------------------------------------------

namespace {
const float* bias_or_null(const Vec& v) { return v.empty() ? nullptr : v.data(); }
}  // namespace

std::vector<CpuModel::QueryTile> CpuModel::query_tiles(const std::vector<TokenMeta>& meta, int units, int per_unit) const {
  // Tiles of (token range) x (unit range) of one sequence; units are heads (MLA: every head reads
  // the same latent) or KV heads (GQA: a KV head's group). The units are split over the threads
  // first (a few tokens: every thread gets the same share whatever their number, where tiles of
  // whole tokens left one of two threads 2 of 3 tiles at 3, 5, 7 or 9 tokens), then the tokens
  // among threads left over and so that a tile has up to ~32 queries (prefill); the results do
  // not depend on the tiling.
  std::vector<QueryTile> tiles;
  const int64_t T = static_cast<int64_t>(meta.size());
  const int threads = pool_.size();
  const int uu = std::max(1, (units + threads - 1) / threads);
  const int64_t unit_tiles = (units + uu - 1) / uu, token_splits = (threads + unit_tiles - 1) / unit_tiles;
  const int64_t max_tt = std::max(1, 32 / (uu * per_unit));
  for (int64_t t0 = 0; t0 < T;) {
    int64_t t1 = t0;
    while (t1 < T && meta[t1].seq == meta[t0].seq) ++t1;
    // More threads than unit tiles: the tokens split among them as well.
    const int64_t tt = std::clamp<int64_t>((t1 - t0 + token_splits - 1) / token_splits, 1, max_tt);
    for (int64_t a = t0; a < t1; a += tt)
      for (int u = 0; u < units; u += uu)
        tiles.push_back({static_cast<int>(a), static_cast<int>(std::min<int64_t>(t1, a + tt)), u, std::min(units, u + uu)});
    t0 = t1;
  }
  return tiles;
}

// Softmax attention of nq queries of one sequence over its cached positions: query i sees
// positions [0, limits[i]); keys are K floats at key_off in each KV slot, values C floats at
// val_off. scores = scale * q . key as one gemm per KV block, softmax per query, out = P . values
// as one gemm per block over the positions every query sees, then each query's own tail.
void CpuModel::attend(int l, const SequenceStep& s, const float* q, int64_t ldq, int nq, const int* limits, int64_t key_off,
                      int64_t K, int64_t val_off, int64_t C, float* out, int64_t ldo) {
  const int64_t kvd = cfg_.kv_dim(), B = block_size_;
  const int max_limit = *std::max_element(limits, limits + nq), min_limit = *std::min_element(limits, limits + nq);
  thread_local std::vector<float> scores;
  const int64_t lds = max_limit;
  scores.resize(static_cast<size_t>(nq) * lds);
  auto block_base = [&](int64_t blk) { return kv_[l].get() + static_cast<int64_t>(s.block_table[blk]) * B * kvd; };
  for (int64_t p0 = 0; p0 < max_limit; p0 += B) {
    const int64_t np = std::min<int64_t>(B, max_limit - p0);
    cpu::gemm_nt_f32(q, ldq, nq, block_base(p0 / B) + key_off, kvd, np, K, scores.data() + p0, lds);
  }
  for (int i = 0; i < nq; ++i) {
    cpu::softmax_scaled(scores.data() + static_cast<int64_t>(i) * lds, limits[i], softmax_scale_);
  }
  for (int i = 0; i < nq; ++i) std::fill(out + i * ldo, out + i * ldo + C, 0.0f);
  // [p0, p1) for queries [i0, i1): block by block, so each value row is read once for them all.
  auto accumulate = [&](int i0, int i1, int64_t p0, int64_t p1) {
    while (p0 < p1) {
      const int64_t blk = p0 / B, np = std::min(p1, (blk + 1) * B) - p0;
      cpu::gemm_nn_acc(scores.data() + i0 * lds + p0, lds, i1 - i0, block_base(blk) + (p0 - blk * B) * kvd + val_off, kvd, np,
                       C, out + i0 * ldo, ldo);
      p0 += np;
    }
  };
  accumulate(0, nq, 0, min_limit);
  for (int i = 0; i < nq; ++i)
    if (limits[i] > min_limit) accumulate(i, i + 1, min_limit, limits[i]);
}

void CpuModel::attention_gqa(int l, const StepBatch& b, const std::vector<TokenMeta>& meta, const float* h, float* out) {
  const auto& a = w_.layers[l].attn;
  const int64_t T = static_cast<int64_t>(meta.size());
  const int H = cfg_.n_heads, Hkv = cfg_.n_kv_heads, d = cfg_.head_dim, group = H / Hkv;
  std::vector<float> q(T * H * d), k(T * Hkv * d), v(T * Hkv * d), o(T * H * d);
  const cpu::MatmulJob proj[] = {{h, T, &a.q, bias_or_null(a.q_bias), q.data()},
                                 {h, T, &a.k, bias_or_null(a.k_bias), k.data()},
                                 {h, T, &a.v, bias_or_null(a.v_bias), v.data()}};
  cpu::matmul_batch(pool_, proj);
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
  // A tile: tokens [t0, t1) x KV heads [u0, u1); its queries are each KV head's group of heads.
  const auto tiles = query_tiles(meta, Hkv, group);
  pool_.run_tasks(static_cast<int64_t>(tiles.size()), [&](int64_t ti) {
    const QueryTile& tile = tiles[ti];
    const int nq = (tile.t1 - tile.t0) * group;
    thread_local std::vector<float> qbuf, obuf;
    thread_local std::vector<int> limits;
    qbuf.resize(static_cast<size_t>(nq) * d);
    obuf.resize(static_cast<size_t>(nq) * d);
    limits.resize(nq);
    for (int kvh = tile.u0; kvh < tile.u1; ++kvh) {
      for (int t = tile.t0; t < tile.t1; ++t) {
        const int i = (t - tile.t0) * group;
        std::memcpy(qbuf.data() + static_cast<int64_t>(i) * d, q.data() + (static_cast<int64_t>(t) * H + kvh * group) * d,
                    static_cast<size_t>(group) * d * sizeof(float));
        std::fill(limits.begin() + i, limits.begin() + i + group, meta[t].pos + 1);
      }
      attend(l, b.seqs[meta[tile.t0].seq], qbuf.data(), d, nq, limits.data(), static_cast<int64_t>(kvh) * d, d,
             static_cast<int64_t>(Hkv + kvh) * d, d, obuf.data(), d);
      for (int t = tile.t0; t < tile.t1; ++t)
        std::memcpy(o.data() + (static_cast<int64_t>(t) * H + kvh * group) * d,
                    obuf.data() + static_cast<int64_t>(t - tile.t0) * group * d, static_cast<size_t>(group) * d * sizeof(float));
    }
  });
  matmul(pool_, o.data(), T, a.o, bias_or_null(a.o_bias), out);
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
    const cpu::MatmulJob proj[] = {{h, T, &a.q_a, bias_or_null(a.q_a_bias), qa.data()},
                                   {h, T, &a.kv_a, bias_or_null(a.kv_a_bias), ckv.data()}};
    cpu::matmul_batch(pool_, proj);
    for (int64_t t = 0; t < T; ++t) cpu::rmsnorm(qa.data() + t * qr, a.q_a_norm.data(), qr, eps, qa.data() + t * qr);
    matmul(pool_, qa.data(), T, a.q_b, nullptr, q.data());
  } else {
    const cpu::MatmulJob proj[] = {{h, T, &a.q, nullptr, q.data()}, {h, T, &a.kv_a, bias_or_null(a.kv_a_bias), ckv.data()}};
    cpu::matmul_batch(pool_, proj);
  }
  for (int64_t t = 0; t < T; ++t) {
    float* c = ckv.data() + t * (r + rp);
    cpu::rmsnorm(c, a.kv_a_norm.data(), r, eps, c);  // the cached latent is the normalised one
    rope_.apply(c + r, 1, rp, meta[t].pos);
    rope_.apply(q.data() + t * H * qk + nope, H, qk, meta[t].pos);
    std::memcpy(kv_slot(l, b.seqs[meta[t].seq], meta[t].pos), c, (r + rp) * sizeof(float));
  }
  // Absorbed attention: per head, q_abs = W_kb^T q_nope ([r]); the query [q_abs | q_pe] against
  // each slot [latent | k_pe] gives the score; o_latent = P . latent; v_h = W_vb o_latent.
  // W_kb / W_vb are the head's rows of kv_b_proj: [n, r] then [v, r]. Every head of every token
  // reads the same latent cache, so a tile takes tokens [t0, t1) x heads [u0, u1) at once.
  const float* kvb = a.kv_b.data();
  const int64_t qd = r + rp;
  const auto tiles = query_tiles(meta, H, 1);
  pool_.run_tasks(static_cast<int64_t>(tiles.size()), [&](int64_t ti) {
    const QueryTile& tile = tiles[ti];
    const int nt = tile.t1 - tile.t0, nh = tile.u1 - tile.u0, nq = nt * nh;
    thread_local std::vector<float> qcat, olat;
    thread_local std::vector<int> limits;
    qcat.assign(static_cast<size_t>(nq) * qd, 0.0f);
    olat.resize(static_cast<size_t>(nq) * r);
    limits.resize(nq);
    // Query i = (t - t0) * nh + (hh - u0).
    for (int hh = tile.u0; hh < tile.u1; ++hh) {
      const float* wk = kvb + static_cast<int64_t>(hh) * (nope + vd) * r;
      float* qi = qcat.data() + static_cast<int64_t>(hh - tile.u0) * qd;
      cpu::gemm_nn_acc(q.data() + (static_cast<int64_t>(tile.t0) * H + hh) * qk, static_cast<int64_t>(H) * qk, nt, wk, r, nope, r,
                       qi, nh * qd);
      for (int t = tile.t0; t < tile.t1; ++t) {
        std::memcpy(qi + static_cast<int64_t>(t - tile.t0) * nh * qd + r, q.data() + (static_cast<int64_t>(t) * H + hh) * qk + nope,
                    rp * sizeof(float));
        limits[(t - tile.t0) * nh + (hh - tile.u0)] = meta[t].pos + 1;
      }
    }
    attend(l, b.seqs[meta[tile.t0].seq], qcat.data(), qd, nq, limits.data(), 0, qd, 0, r, olat.data(), r);
    for (int hh = tile.u0; hh < tile.u1; ++hh) {
      const float* wv = kvb + (static_cast<int64_t>(hh) * (nope + vd) + nope) * r;
      cpu::gemm_nt_f32(olat.data() + static_cast<int64_t>(hh - tile.u0) * r, static_cast<int64_t>(nh) * r, nt, wv, r, vd, r,
                       o.data() + (static_cast<int64_t>(tile.t0) * H + hh) * vd, static_cast<int64_t>(H) * vd);
    }
  });
  matmul(pool_, o.data(), T, a.o, bias_or_null(a.o_bias), out);
}

// ---- feed-forward ----------------------------------------------------------------------------

void CpuModel::mlp(const MlpWeights& w, const float* h, int64_t T, int64_t I, float* out) {
  std::vector<float> g(T * I), u(T * I);
  const cpu::MatmulJob gate_up[] = {{h, T, &w.gate, bias_or_null(w.gate_bias), g.data()},
                                    {h, T, &w.up, bias_or_null(w.up_bias), u.data()}};
  cpu::matmul_batch(pool_, gate_up);
  cpu::silu_mul(g.data(), u.data(), T * I);
  matmul(pool_, g.data(), T, w.down, bias_or_null(w.down_bias), out);
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

// Routed experts and the shared ones in two dispatches over the pool (gate and up of every
// active expert, then every down projection): each expert's weights are read once for all the
// tokens routed to it. A token's output sums its experts in ascending expert order, then the
// shared experts, as when it runs alone.
void CpuModel::moe(const LayerWeights& w, const float* h, int64_t T, float* out) {
  const int64_t D = cfg_.hidden_size, I = cfg_.moe_intermediate_size, Is = I * cfg_.n_shared_experts;
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
  // Routed expert e's tokens are rows [first[e], first[e] + n_e) of x, g/u and y.
  std::vector<int64_t> first(E + 1, 0);
  for (int e = 0; e < E; ++e) first[e + 1] = first[e] + static_cast<int64_t>(tokens[e].size());
  const int64_t R = first[E];
  std::vector<float> x(R * D), g(R * I + (w.has_shared ? T * Is : 0)), u(g.size()), y(R * D + (w.has_shared ? T * D : 0));
  for (int e = 0; e < E; ++e)
    for (size_t i = 0; i < tokens[e].size(); ++i)
      std::memcpy(x.data() + (first[e] + static_cast<int64_t>(i)) * D, h + tokens[e][i] * D, D * sizeof(float));
  float* gs = g.data() + R * I;
  float* us = u.data() + R * I;
  float* ys = y.data() + R * D;
  std::vector<cpu::MatmulJob> jobs;
  for (int e = 0; e < E; ++e) {
    const int64_t n = first[e + 1] - first[e];
    if (n == 0) continue;
    const MlpWeights& m = w.experts[e];
    jobs.push_back({x.data() + first[e] * D, n, &m.gate, bias_or_null(m.gate_bias), g.data() + first[e] * I});
    jobs.push_back({x.data() + first[e] * D, n, &m.up, bias_or_null(m.up_bias), u.data() + first[e] * I});
  }
  if (w.has_shared) {
    jobs.push_back({h, T, &w.shared.gate, bias_or_null(w.shared.gate_bias), gs});
    jobs.push_back({h, T, &w.shared.up, bias_or_null(w.shared.up_bias), us});
  }
  cpu::matmul_batch(pool_, jobs);
  cpu::silu_mul(g.data(), u.data(), static_cast<int64_t>(g.size()));
  jobs.clear();
  for (int e = 0; e < E; ++e) {
    const int64_t n = first[e + 1] - first[e];
    if (n == 0) continue;
    const MlpWeights& m = w.experts[e];
    jobs.push_back({g.data() + first[e] * I, n, &m.down, bias_or_null(m.down_bias), y.data() + first[e] * D});
  }
  if (w.has_shared) jobs.push_back({gs, T, &w.shared.down, bias_or_null(w.shared.down_bias), ys});
  cpu::matmul_batch(pool_, jobs);
  std::fill(out, out + T * D, 0.0f);
  for (int e = 0; e < E; ++e)
    for (size_t i = 0; i < tokens[e].size(); ++i)
      cpu::axpy(gates[e][i], y.data() + (first[e] + static_cast<int64_t>(i)) * D, out + tokens[e][i] * D, D);
  if (w.has_shared)
    for (int64_t i = 0; i < T * D; ++i) out[i] += ys[i];
}

// ---- the step --------------------------------------------------------------------------------

Expected<void> CpuModel::forward(const StepBatch& b, std::vector<float>& logits) {
  const int64_t T = static_cast<int64_t>(b.tokens.size()), D = cfg_.hidden_size, V = cfg_.vocab_size;
  if (kv_.empty()) return Error(ErrorCode::InvalidArgument, "forward: no KV storage (call allocate_kv first)");
  if (auto r = check_step(b, static_cast<int>(V), cfg_.max_position, block_size_, n_blocks_); !r) return r;
  std::vector<TokenMeta> meta;
  meta.reserve(T);
  std::vector<int64_t> logit_tokens;
  for (size_t si = 0; si < b.seqs.size(); ++si) {
    const auto& s = b.seqs[si];
    for (int i = 0; i < s.n_new; ++i) {
      if (s.all_logits || i == s.n_new - 1) logit_tokens.push_back(static_cast<int64_t>(meta.size()));
      meta.push_back({static_cast<int>(si), s.n_past + i});
    }
  }

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
