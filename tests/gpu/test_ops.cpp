// One case per CUDA op against the CPU backend's kernels (engine/cpu) or plain loops built on
// them, with fresh random inputs: embedding, the fused residual + RMSNorm, skinny products
// (bf16 / f32, batched, odd shapes), cuBLAS products, MLA and GQA preparation (RoPE, norms, the
// KV write), decode attention (MLA absorbed, GQA, MHA), the causal softmax, MoE routing (greedy,
// group-limited, renormalised) with the pair sort, and the grouped expert products.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>

#include "engine/cpu/kernels.h"
#include "engine/cpu/thread_pool.h"
#include "engine/model/rope.h"
#include "kernels/blas.h"
#include "kernels/kernels.h"
#include "kernels/prefill.h"
#include "kernels/decode_fused.h"
#include "kernels/mla_decode.h"
#include "kernels/skinny_mma.h"
#include "tests/gpu/gpu_check.h"

namespace ghostline::gpu_test {

using kernels::DType;
namespace model = engine::model;

namespace {

cpu::ThreadPool& pool() {
  static cpu::ThreadPool p(0);
  return p;
}

// A weight matrix in both forms: the host view the CPU kernels read and the device copy.
struct Weights {
  std::vector<uint16_t> bits;
  std::vector<float> vals;  // exactly what the device holds, in float32
  Dev<uint16_t> d16;
  Dev<float> d32;
  DType dt;
  int64_t rows, cols;
  Weights(Rng& rng, int64_t r, int64_t c, DType t) : dt(t), rows(r), cols(c) {
    auto v = rng.normal(static_cast<size_t>(r * c), 1.0f / std::sqrt(static_cast<float>(c)));
    if (t == DType::BF16) {
      round_bf16(v, bits, vals);
      d16.upload(bits);
    } else {
      vals = v;
      d32.upload(vals);
    }
  }
  const void* dev() const { return dt == DType::BF16 ? static_cast<const void*>(d16.p) : d32.p; }
  cpu::WeightView view() const { return {vals.data(), cpu::WType::F32, rows, cols}; }
};

void embed_case(Report& rep, Rng& rng, DType dt) {
  const int V = 1000, D = 264, T = 7;
  Weights table(rng, V, D, dt);
  std::vector<int32_t> ids(T);
  for (auto& i : ids) i = rng.uniform_int(0, V - 1);
  Dev<int32_t> d_ids(ids);
  Dev<float> out(static_cast<size_t>(T) * D);
  kernels::embed_rows(table.dev(), dt, D, d_ids.p, T, out.p, nullptr);
  std::vector<float> ref(static_cast<size_t>(T) * D);
  for (int t = 0; t < T; ++t) std::copy_n(table.vals.data() + static_cast<int64_t>(ids[t]) * D, D, ref.data() + t * D);
  const auto err = device_error();
  rep.check(std::string("embed_rows ") + (dt == DType::BF16 ? "bf16" : "f32"), rel_err(out.download(), ref), 0.0, err);
}

void residual_rmsnorm_case(Report& rep, Rng& rng) {
  const int T = 5, D = 2048, KP = 3, P = T * KP;
  auto x = rng.normal(T * D), delta = rng.normal(T * D), pair_out = rng.normal(P * D), w = rng.normal(D);
  auto pw = rng.normal(P);
  std::vector<int32_t> slot(P);
  std::vector<int32_t> perm(P);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng.g);
  for (int i = 0; i < P; ++i) slot[i] = (i % 4 == 3) ? -1 : perm[i];
  Dev<float> dx(x), dd(delta), dpo(pair_out), dw(w), dpw(pw), dh(T * D);
  Dev<int32_t> dslot(slot);
  Dev<uint16_t> dhb(T * D);
  kernels::MoeSum sum{dpo.p, dpw.p, dslot.p, KP};
  kernels::residual_rmsnorm(dx.p, dd.p, sum, dw.p, 1e-6f, dh.p, T, D, nullptr, dhb.p);
  std::vector<float> rx = x, rh(T * D);
  for (int t = 0; t < T; ++t) {
    for (int i = 0; i < D; ++i) {
      float m = 0;
      for (int k = 0; k < KP; ++k)
        if (slot[t * KP + k] >= 0) m += pw[t * KP + k] * pair_out[static_cast<int64_t>(slot[t * KP + k]) * D + i];
      rx[t * D + i] += delta[t * D + i] + m;
    }
    cpu::rmsnorm(rx.data() + t * D, w.data(), D, 1e-6f, rh.data() + t * D);
  }
  const auto err = device_error();
  rep.check("residual_rmsnorm: x += delta + MoE sum", rel_err(dx.download(), rx), 1e-6, err);
  const auto gh = dh.download();
  rep.check("residual_rmsnorm: h = rmsnorm(x) * w", rel_err(gh, rh), 1e-5, err);
  const auto ghb = dhb.download();
  int wrong = 0;  // the bf16 copy: h rounded to nearest even, bit for bit
  for (size_t i = 0; i < gh.size(); ++i) wrong += ghb[i] != to_bf16(gh[i]);
  rep.check("residual_rmsnorm: h in bf16 beside it", wrong, 0.0, err);

  // The MoE sum over bf16 pair outputs (MoeSum::pair_bf16): the reference reads the same bf16 values.
  std::vector<uint16_t> pbits;
  std::vector<float> pvals;
  round_bf16(pair_out, pbits, pvals);
  Dev<float> dx2(x);
  Dev<uint16_t> dpo16(pbits);
  kernels::MoeSum sum16{reinterpret_cast<const float*>(dpo16.p), dpw.p, dslot.p, KP, true};
  kernels::residual_rmsnorm(dx2.p, dd.p, sum16, dw.p, 1e-6f, dh.p, T, D, nullptr);
  std::vector<float> rx2 = x;
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < D; ++i) {
      float m = 0;
      for (int k = 0; k < KP; ++k)
        if (slot[t * KP + k] >= 0) m += pw[t * KP + k] * pvals[static_cast<int64_t>(slot[t * KP + k]) * D + i];
      rx2[t * D + i] += delta[t * D + i] + m;
    }
  const auto err2 = device_error();
  rep.check("residual_rmsnorm: x += delta + MoE sum of bf16 pair outputs", rel_err(dx2.download(), rx2), 1e-6, err2);
}

// SiLU(gate) * up from float32 and from bf16 gate/up sums (silu_mul_rows, silu_mul_rows_bf16),
// against the CPU's silu_mul over the same values; the vector kernel (I % 4 == 0) and the scalar one.
void silu_mul_case(Report& rep, Rng& rng, int rows, int I) {
  std::vector<uint16_t> bits;
  std::vector<float> gu;
  round_bf16(rng.normal(static_cast<size_t>(rows) * 2 * I), bits, gu);
  Dev<float> dgu(gu);
  Dev<uint16_t> dgu16(bits), a32(static_cast<size_t>(rows) * I), a16(static_cast<size_t>(rows) * I);
  kernels::silu_mul_rows(dgu.p, rows, I, a32.p, DType::BF16, I, nullptr);
  kernels::silu_mul_rows_bf16(dgu16.p, rows, I, a16.p, DType::BF16, I, nullptr);
  const auto err = device_error();
  std::vector<float> ref(static_cast<size_t>(rows) * I);
  for (int r = 0; r < rows; ++r) {
    std::vector<float> g(gu.begin() + static_cast<int64_t>(r) * 2 * I, gu.begin() + static_cast<int64_t>(r) * 2 * I + I);
    cpu::silu_mul(g.data(), gu.data() + static_cast<int64_t>(r) * 2 * I + I, I);
    std::copy(g.begin(), g.end(), ref.begin() + static_cast<int64_t>(r) * I);
  }
  auto as_float = [](const std::vector<uint16_t>& v) {
    std::vector<float> f(v.size());
    for (size_t i = 0; i < v.size(); ++i) f[i] = from_bf16(v[i]);
    return f;
  };
  const auto g32 = as_float(a32.download()), g16 = as_float(a16.download());
  int differ = 0;  // the same inputs in two types: the same bf16 results
  for (size_t i = 0; i < g32.size(); ++i) differ += g32[i] != g16[i];
  char name[96];
  std::snprintf(name, sizeof name, "silu_mul_rows bf16 out, rows=%d I=%d: from float32 gate/up", rows, I);
  rep.check(name, rel_err(g32, ref), 1e-2, err);
  std::snprintf(name, sizeof name, "silu_mul_rows bf16 out, rows=%d I=%d: from bf16 gate/up, same as from float32", rows, I);
  rep.check(name, differ, 0.0, err);
}

// The decode step's fused norm + router logits (decode_fused.cu): h and logits against the CPU
// rmsnorm and dot products; x must be left as it was.
void rmsnorm_router_case(Report& rep, Rng& rng, int T, int D, int E) {
  auto x = rng.normal(static_cast<size_t>(T) * D), delta = rng.normal(static_cast<size_t>(T) * D), w = rng.normal(D);
  auto router = rng.normal(static_cast<size_t>(E) * D, 1.0f / std::sqrt(static_cast<float>(D)));
  Dev<float> dx(x), dd(delta), dw(w), dr(router), dh(static_cast<size_t>(T) * D), dl(static_cast<size_t>(T) * E);
  kernels::rmsnorm_router(dx.p, dd.p, dw.p, 1e-6f, dh.p, T, D, dr.p, E, dl.p, nullptr);
  const auto err = device_error();
  std::vector<float> rh(static_cast<size_t>(T) * D), rl(static_cast<size_t>(T) * E);
  for (int t = 0; t < T; ++t) {
    std::vector<float> v(D);
    for (int i = 0; i < D; ++i) v[i] = x[t * D + i] + delta[t * D + i];
    cpu::rmsnorm(v.data(), w.data(), D, 1e-6f, rh.data() + static_cast<int64_t>(t) * D);
    for (int e = 0; e < E; ++e) rl[t * E + e] = cpu::dot_f32(router.data() + static_cast<int64_t>(e) * D, rh.data() + t * D, D);
  }
  const std::string name = "rmsnorm_router T=" + std::to_string(T) + " D=" + std::to_string(D) + " E=" + std::to_string(E);
  rep.check(name + ": h", rel_err(dh.download(), rh), 1e-5, err);  // float32 sums in another order, as residual_rmsnorm
  rep.check(name + ": logits", rel_err(dl.download(), rl), 1e-5, err);
  rep.check(name + ": x unchanged", rel_err(dx.download(), x), 0.0, err);
}

// The CPU reference of `batch` products x[bb] (T x K) . W[bb]^T (N x K) (+ bias[bb]), W's values
// in float32 (as the device reads them).
std::vector<float> batched_ref(const Weights& W, const std::vector<float>& x, const float* bias, int batch, int T, int N, int K) {
  std::vector<float> ref(static_cast<size_t>(batch) * T * N);
  for (int bb = 0; bb < batch; ++bb) {
    cpu::WeightView v{W.vals.data() + static_cast<int64_t>(bb) * N * K, cpu::WType::F32, N, K};
    cpu::matmul(pool(), x.data() + static_cast<int64_t>(bb) * T * K, T, v, bias ? bias + static_cast<int64_t>(bb) * N : nullptr,
                ref.data() + static_cast<int64_t>(bb) * T * N);
  }
  return ref;
}

void skinny_case(Report& rep, Rng& rng, DType dt, int T, int N, int K, int batch, bool bias) {
  Weights W(rng, static_cast<int64_t>(batch) * N, K, dt);
  auto x = rng.normal(static_cast<size_t>(batch) * T * K);
  auto b = rng.normal(static_cast<size_t>(batch) * N);
  Dev<float> dx(x), db(b), dy(static_cast<size_t>(batch) * T * N);
  kernels::Skinny s;
  s.w = W.dev(), s.wt = dt, s.ldw = K, s.w_batch = static_cast<int64_t>(N) * K;
  s.x = dx.p, s.ldx = K, s.x_batch = static_cast<int64_t>(T) * K;
  s.y = dy.p, s.ldy = N, s.y_batch = static_cast<int64_t>(T) * N;
  s.bias = bias ? db.p : nullptr, s.bias_batch = N;
  s.N = N, s.K = K, s.T = T, s.batch = batch;
  kernels::skinny_gemm(s, nullptr);
  const std::vector<float> ref = batched_ref(W, x, bias ? b.data() : nullptr, batch, T, N, K);
  const auto err = device_error();
  char name[160];
  // One bf16 row: the one-row kernel unless GHOSTLINE_SKINNY_STREAM=1 (moe_stream.cu's kernel on
  // an sm_90 device; =3 with bulk copies).
  const char* st = std::getenv("GHOSTLINE_SKINNY_STREAM");
  const char* variant = T != 1 || batch != 1 || dt != DType::BF16 ? ""
                        : st && (st[0] == '1' || st[0] == '2')     ? " (streamed on sm_90)"
                        : st && st[0] == '3'                       ? " (streamed on sm_90, bulk copies)"
                                                                   : " (one-row kernel)";
  std::snprintf(name, sizeof name, "skinny_gemm %s T=%d N=%d K=%d batch=%d%s%s", dt == DType::BF16 ? "bf16" : "f32", T, N, K, batch,
                bias ? " +bias" : "", variant);
  rep.check(name, rel_err(dy.download(), ref), 2e-6, err);
}

// The tensor-core kernel of 2..8 activation rows (kernels/skinny_mma.cu), plain mode, called
// directly so that the case cannot fall back. Activations enter as three bf16 terms and the
// tensor cores accumulate in float32 in their own order: 1e-5 (the float32 kernels: 2e-6).
void skinny_mma_case(Report& rep, Rng& rng, int T, int N, int K, int batch, bool bias, int variant = 0) {
  Weights W(rng, static_cast<int64_t>(batch) * N, K, DType::BF16);
  auto x = rng.normal(static_cast<size_t>(batch) * T * K);
  auto b = rng.normal(static_cast<size_t>(batch) * N);
  Dev<float> dx(x), db(b), dy(static_cast<size_t>(batch) * T * N);
  kernels::FewRows f;
  f.mode = kernels::FewMode::Plain;
  f.w = W.dev(), f.ldw = K, f.w_batch = static_cast<int64_t>(N) * K;
  f.x = dx.p, f.ldx = K, f.x_batch = static_cast<int64_t>(T) * K;
  f.y = dy.p, f.ldy = N, f.y_batch = static_cast<int64_t>(T) * N;
  f.bias = bias ? db.p : nullptr, f.bias_batch = N;
  f.N = N, f.K = K, f.T = T;
  f.variant = variant;
  char name[128];
  std::snprintf(name, sizeof name, "skinny_mma (tensor cores) T=%d N=%d K=%d batch=%d%s%s", T, N, K, batch, bias ? " +bias" : "",
                variant == 1 ? ", one row tile a warp" : variant == 3 ? ", shared-memory ring" : "");
  if (!rep.expect(std::string(name) + ": shape taken", kernels::skinny_mma_fits(f))) return;
  kernels::skinny_mma(f, batch, nullptr);
  const std::vector<float> ref = batched_ref(W, x, bias ? b.data() : nullptr, batch, T, N, K);
  const auto err = device_error();
  rep.check(name, rel_err(dy.download(), ref), 1e-5, err);
}

void blas_case(Report& rep, Rng& rng, DType dt, int M, int N, int K, bool b_is_nk) {
  cublasHandle_t h;
  cublasCreate(&h);
  auto a = rng.normal(static_cast<size_t>(M) * K), bm = rng.normal(static_cast<size_t>(N) * K);
  std::vector<uint16_t> ab, bb;
  std::vector<float> av = a, bv = bm;
  Dev<uint16_t> da16, db16;
  Dev<float> da32, db32;
  if (dt == DType::BF16) {
    round_bf16(a, ab, av);
    round_bf16(bm, bb, bv);
    da16.upload(ab);
    db16.upload(bb);
  } else {
    da32.upload(a);
    db32.upload(bm);
  }
  Dev<float> c(static_cast<size_t>(M) * N);
  const void* A = dt == DType::BF16 ? static_cast<const void*>(da16.p) : da32.p;
  const void* B = dt == DType::BF16 ? static_cast<const void*>(db16.p) : db32.p;
  kernels::gemm(h, M, N, K, A, K, B, b_is_nk ? K : N, b_is_nk, dt, c.p, N, 0.5f);
  std::vector<float> ref(static_cast<size_t>(M) * N, 0.0f);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double s = 0;
      for (int k = 0; k < K; ++k) s += static_cast<double>(av[i * K + k]) * (b_is_nk ? bv[j * K + k] : bv[k * N + j]);
      ref[i * N + j] = static_cast<float>(0.5 * s);
    }
  const auto err = device_error();
  cublasDestroy(h);
  char name[128];
  std::snprintf(name, sizeof name, "gemm (cuBLAS) %s M=%d N=%d K=%d %s", dt == DType::BF16 ? "bf16" : "f32", M, N, K, b_is_nk ? "A·B^T" : "A·B");
  rep.check(name, rel_err(c.download(), ref), 1e-5, err);
}

// A paged cache of one layer: n_blocks blocks of B slots, the sequences' tables shuffled.
struct TestCache {
  int B, kv_dim, n_blocks;
  std::vector<float> data;
  std::vector<int32_t> table, offset;
  Dev<float> d;
  Dev<int32_t> dtable, doffset;
  TestCache(Rng& rng, int block, int dim, const std::vector<int>& lengths) : B(block), kv_dim(dim) {
    int total = 0;
    for (int n : lengths) total += (n + B - 1) / B;
    n_blocks = total + 3;
    std::vector<int32_t> ids(n_blocks);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng.g);
    int next = 0;
    for (int n : lengths) {
      offset.push_back(static_cast<int32_t>(table.size()));
      for (int b = 0; b < (n + B - 1) / B; ++b) table.push_back(ids[next++]);
    }
    data = rng.normal(static_cast<size_t>(n_blocks) * B * kv_dim);
    d.upload(data);
    dtable.upload(table);
    doffset.upload(offset);
  }
  kernels::KvCache view() const {
    return {d.p, static_cast<int64_t>(B) * kv_dim, B, kv_dim, dtable.p, doffset.p};
  }
  const float* slot(const std::vector<float>& from, int seq, int pos) const {
    return from.data() + (static_cast<int64_t>(table[offset[seq] + pos / B]) * B + pos % B) * kv_dim;
  }
};

model::RopeConfig yarn_dsv2() {
  model::RopeConfig r;
  r.type = "yarn";
  r.theta = 10000;
  r.factor = 40;
  r.original_max_position = 4096;
  r.mscale = 0.707;
  r.mscale_all_dim = 0.707;
  return r;
}

void mla_prep_case(Report& rep, Rng& rng) {
  const int H = 16, n = 128, p = 64, r = 512, T = 3;
  const std::vector<int> pos = {0, 9, 1500};
  TestCache cache(rng, 16, r + p, {10, 1501});
  const std::vector<int32_t> seq = {0, 0, 1};
  model::Rope rope(yarn_dsv2(), p, 163840, model::Rope::Order::Interleaved);
  Dev<float> inv(rope.inv_freq());
  kernels::RopeParams rp{inv.p, p, rope.attention_factor(), true};
  const int ld_ckv = 2000, ld_q = H * (n + p) + 8;
  auto ckv = rng.normal(static_cast<size_t>(T) * ld_ckv), q = rng.normal(static_cast<size_t>(T) * ld_q), norm = rng.normal(r);
  Dev<float> dckv(ckv), dq(q), dnorm(norm), dqf(static_cast<size_t>(T) * H * (r + p));
  Dev<int32_t> dseq(seq), dpos(std::vector<int32_t>(pos.begin(), pos.end()));
  kernels::mla_prep(dckv.p + 40, ld_ckv, dq.p, ld_q, dqf.p, H, n, r, p, dnorm.p, 1e-6f, rp, cache.view(), {dseq.p, dpos.p}, T, nullptr);
  const auto err = device_error();
  auto got_cache = cache.d.download();
  auto got_q = dq.download();
  auto got_qf = dqf.download();
  double e_lat = 0, e_pe = 0, e_q = 0, e_qf = 0;
  for (int t = 0; t < T; ++t) {
    std::vector<float> c(ckv.begin() + t * ld_ckv + 40, ckv.begin() + t * ld_ckv + 40 + r + p);
    cpu::rmsnorm(c.data(), norm.data(), r, 1e-6f, c.data());
    rope.apply(c.data() + r, 1, p, pos[t]);
    const float* s = cache.slot(got_cache, seq[t], pos[t]);
    e_lat = std::max(e_lat, rel_err(s, c.data(), r));
    e_pe = std::max(e_pe, rel_err(s + r, c.data() + r, p));
    std::vector<float> qr(q.begin() + t * ld_q, q.begin() + (t + 1) * ld_q);
    rope.apply(qr.data() + n, H, n + p, pos[t]);
    e_q = std::max(e_q, rel_err(got_q.data() + t * ld_q, qr.data(), ld_q));
    for (int h = 0; h < H; ++h)
      e_qf = std::max(e_qf, rel_err(got_qf.data() + (static_cast<int64_t>(t) * H + h) * (r + p) + r, qr.data() + h * (n + p) + n, p));
  }
  rep.check("mla_prep: latent RMSNorm into the cache slot", e_lat, 1e-6, err);
  rep.check("mla_prep: rope key (yarn, interleaved) into the slot", e_pe, 1e-6, err);
  rep.check("mla_prep: query rope in place", e_q, 1e-6, err);
  rep.check("mla_prep: query rope copied to q_full", e_qf, 1e-6, err);
}

void gqa_prep_case(Report& rep, Rng& rng, bool qk_norm) {
  const int H = 8, Hkv = 2, d = 128, T = 3, ld = (H + 2 * Hkv) * d;
  const std::vector<int> pos = {0, 33, 700};
  const std::vector<int32_t> seq = {1, 0, 0};
  TestCache cache(rng, 16, 2 * Hkv * d, {701, 40});
  model::RopeConfig rc;
  rc.theta = 1000000;
  model::Rope rope(rc, d, 40960, model::Rope::Order::Half);
  Dev<float> inv(rope.inv_freq());
  kernels::RopeParams rp{inv.p, d, rope.attention_factor(), false};
  auto qkv = rng.normal(static_cast<size_t>(T) * ld), qn = rng.normal(d), kn = rng.normal(d);
  Dev<float> dqkv(qkv), dqn(qn), dkn(kn);
  Dev<int32_t> dseq(seq), dpos(std::vector<int32_t>(pos.begin(), pos.end()));
  kernels::gqa_prep(dqkv.p, ld, H, Hkv, d, qk_norm ? dqn.p : nullptr, qk_norm ? dkn.p : nullptr, 1e-6f, rp, cache.view(),
                    {dseq.p, dpos.p}, T, nullptr);
  const auto err = device_error();
  auto got = dqkv.download();
  auto got_cache = cache.d.download();
  double e_q = 0, e_kv = 0;
  for (int t = 0; t < T; ++t) {
    std::vector<float> row(qkv.begin() + t * ld, qkv.begin() + (t + 1) * ld);
    if (qk_norm) {
      for (int h = 0; h < H; ++h) cpu::rmsnorm(row.data() + h * d, qn.data(), d, 1e-6f, row.data() + h * d);
      for (int h = 0; h < Hkv; ++h) cpu::rmsnorm(row.data() + (H + h) * d, kn.data(), d, 1e-6f, row.data() + (H + h) * d);
    }
    rope.apply(row.data(), H, d, pos[t]);
    rope.apply(row.data() + H * d, Hkv, d, pos[t]);
    e_q = std::max(e_q, rel_err(got.data() + t * ld, row.data(), H * d));
    e_kv = std::max(e_kv, rel_err(cache.slot(got_cache, seq[t], pos[t]), row.data() + H * d, 2 * Hkv * d));
  }
  rep.check(std::string("gqa_prep") + (qk_norm ? " (q/k norm)" : "") + ": queries", e_q, 1e-6, err);
  rep.check(std::string("gqa_prep") + (qk_norm ? " (q/k norm)" : "") + ": keys and values in the slot", e_kv, 1e-6, err);
}

// Decode attention of listed tokens against the CPU loop the CPU model uses.
void attention_case(Report& rep, Rng& rng, const char* label, bool mla, int H, int Hkv, int d_or_r, int p, int vd, DType dt,
                    const std::vector<int>& lengths, const std::vector<int32_t>& tok_seq, const std::vector<int>& tok_pos,
                    const std::vector<int32_t>& list, int min_per_split = 1, bool fused = false, bool one_seq = false) {
  const int T = static_cast<int>(tok_seq.size()), L = static_cast<int>(list.size());
  const int G = mla ? H : H / Hkv, n_kvh = mla ? 1 : Hkv;
  const int dk = mla ? d_or_r + p : d_or_r, dv = mla ? d_or_r : d_or_r;
  const int kv_dim = mla ? d_or_r + p : 2 * Hkv * d_or_r;
  TestCache cache(rng, 16, kv_dim, lengths);
  const int64_t q_stride = static_cast<int64_t>(H) * dk + 4;
  auto q = rng.normal(static_cast<size_t>(T) * q_stride);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dk));
  Weights Wvb(rng, static_cast<int64_t>(H) * vd, dv, dt);  // MLA output projection [H][vd][r]
  Dev<float> dq(q);
  Dev<int32_t> dseq(tok_seq), dpos(std::vector<int32_t>(tok_pos.begin(), tok_pos.end())), dlist(list);
  kernels::Attention a;
  a.q = dq.p, a.q_tok_stride = q_stride, a.n_kvh = n_kvh, a.G = G, a.dk = dk, a.dv = dv;
  if (!mla) a.k_off = 0, a.k_head_stride = d_or_r, a.v_off = Hkv * d_or_r, a.v_head_stride = d_or_r;
  a.scale = scale, a.list = dlist.p, a.n_list = L;
  a.min_per_split = min_per_split;
  int max_len = 0;
  for (int n : lengths) max_len = std::max(max_len, n);
  a.one_seq = one_seq;
  if (one_seq && !rep.expect(std::string(label) + ": one sequence's tokens in one block", kernels::attn_decode_groups(a))) return;
  a.n_splits = mla ? kernels::attention_splits(L, n_kvh, max_len) : kernels::attn_decode_splits(a, max_len);
  Dev<float> part_o(static_cast<size_t>(kernels::attention_partial_floats(L, n_kvh, G, dv)));
  Dev<float> part_ml(part_o.n / dv * 2);
  a.part_o = part_o.p, a.part_ml = part_ml.p;
  const int dout = mla ? vd : dv;
  Dev<float> out(static_cast<size_t>(T) * H * dout);
  const std::string name = std::string(fused ? "mla_decode (fused): " : one_seq ? "attn_decode (one sequence) + attn_combine: " : "attn_decode + attn_combine: ") + label;
  if (fused) {
    // The fused kernels must take this shape (mla_decode would otherwise fall back silently).
    rep.expect(name + ": takes the fused kernels",
               kernels::mla_decode_fused(a, cache.view(), Wvb.dev(), dt, static_cast<int64_t>(vd) * dv, dv));
    kernels::mla_decode(a, cache.view(), {dseq.p, dpos.p}, Wvb.dev(), dt, static_cast<int64_t>(vd) * dv, dv, dout, out.p,
                        static_cast<int64_t>(H) * dout, nullptr);
  } else {
    kernels::attn_decode(a, cache.view(), {dseq.p, dpos.p}, nullptr);
    kernels::attn_combine(a, {dseq.p, dpos.p}, mla ? Wvb.dev() : nullptr, dt, static_cast<int64_t>(vd) * dv, dv, dout, out.p,
                          static_cast<int64_t>(H) * dout, nullptr);
  }
  const auto err = device_error();
  auto got = out.download();
  double worst = 0;
  for (int li = 0; li < L; ++li) {
    const int t = list[li];
    if (tok_seq[t] < 0) continue;  // padding: outputs unspecified
    for (int h = 0; h < H; ++h) {
      const int kvh = h / G, n_pos = tok_pos[t] + 1;
      const float* qh = q.data() + t * q_stride + static_cast<int64_t>(h) * dk;
      std::vector<float> sc(n_pos), o(dv, 0.0f);
      for (int pp = 0; pp < n_pos; ++pp) {
        const float* s = cache.slot(cache.data, tok_seq[t], pp);
        sc[pp] = cpu::dot_f32(qh, s + (mla ? 0 : kvh * d_or_r), dk) * scale;
      }
      cpu::softmax(sc.data(), n_pos);
      for (int pp = 0; pp < n_pos; ++pp) {
        const float* s = cache.slot(cache.data, tok_seq[t], pp);
        cpu::axpy(sc[pp], s + (mla ? 0 : Hkv * d_or_r + kvh * d_or_r), o.data(), dv);
      }
      std::vector<float> ref(dout);
      if (mla) {
        for (int j = 0; j < vd; ++j) ref[j] = cpu::dot_f32(Wvb.vals.data() + (static_cast<int64_t>(h) * vd + j) * dv, o.data(), dv);
      } else {
        ref = o;
      }
      worst = std::max(worst, rel_err(got.data() + (static_cast<int64_t>(t) * H + h) * dout, ref.data(), dout));
    }
  }
  rep.check(name, worst, 2e-5, err);
}

void causal_softmax_case(Report& rep, Rng& rng) {
  const int heads = 3, rows = 5, cols = 40, first = 30;
  auto S = rng.normal(static_cast<size_t>(heads) * rows * cols, 3.0f);
  Dev<float> dS(S), dP(S.size());
  kernels::causal_softmax(dS.p, heads, rows, cols, first, dP.p, DType::F32, nullptr);
  const auto err = device_error();
  std::vector<float> ref(S.size(), 0.0f);
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < rows; ++i) {
      const int valid = std::min(cols, first + i + 1);
      float* r = ref.data() + (static_cast<int64_t>(h) * rows + i) * cols;
      std::copy_n(S.data() + (static_cast<int64_t>(h) * rows + i) * cols, valid, r);
      cpu::softmax(r, valid);
    }
  rep.check("causal_softmax", rel_err(dP.download(), ref), 1e-6, err);
}

// The CPU model's routing (engine/model/cpu_model.cpp route()), for reference.
void route_ref(const std::vector<float>& router, const float* h, int D, const kernels::RouteParams& rp, std::vector<int>& idx,
               std::vector<float>& wts) {
  const int E = rp.E, K = rp.K;
  std::vector<float> probs(E);
  for (int e = 0; e < E; ++e) probs[e] = cpu::dot_f32(router.data() + static_cast<int64_t>(e) * D, h, D);
  cpu::softmax(probs.data(), E);
  std::vector<float> scores = probs;
  if (rp.group_limited) {
    const int G = rp.n_group, per = E / G;
    std::vector<float> gmax(G);
    for (int g = 0; g < G; ++g) gmax[g] = *std::max_element(probs.begin() + g * per, probs.begin() + (g + 1) * per);
    std::vector<int> order(G);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return gmax[x] > gmax[y]; });
    std::vector<char> keep(G, 0);
    for (int i = 0; i < rp.topk_group; ++i) keep[order[i]] = 1;
    for (int e = 0; e < E; ++e)
      if (!keep[e / per]) scores[e] = 0.0f;
  }
  std::vector<int> order(E);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + K, order.end(),
                    [&](int x, int y) { return scores[x] > scores[y] || (scores[x] == scores[y] && x < y); });
  idx.assign(order.begin(), order.begin() + K);
  wts.resize(K);
  float sum = 0;
  for (int i = 0; i < K; ++i) sum += wts[i] = scores[idx[i]];
  for (auto& w : wts) w = (rp.renormalize ? w / sum : w) * rp.scale;
}

struct MoeBuffers {
  Dev<int32_t> pe, slot, sorted, offset, active, n_active;
  Dev<float> pw;
  kernels::MoeRouting r;
  MoeBuffers(int P, int X) : pe(P), slot(P), sorted(P), offset(X + 1), active(X), n_active(1), pw(P) {
    r = {pe.p, pw.p, slot.p, sorted.p, offset.p, active.p, n_active.p};
  }
};

// with_logits: the router logits come computed (on the host, as route_ref computes them), as the
// prefill path passes cuBLAS's: steps of T >= 128 then take route_warps_kernel.
void route_case(Report& rep, Rng& rng, const char* label, int T, int D, kernels::RouteParams rp, int pad_token, bool fused = false,
                bool with_logits = false) {
  const int KP = rp.K + rp.S, X = rp.E + rp.S, P = T * KP;
  auto h = rng.normal(static_cast<size_t>(T) * D), router = rng.normal(static_cast<size_t>(rp.E) * D, 0.05f);
  std::vector<int32_t> seq(T, 0);
  if (pad_token >= 0) seq[pad_token] = -1;
  std::vector<float> lg(with_logits ? static_cast<size_t>(T) * std::max(rp.E, 1) : 1);
  if (with_logits)
    for (int t = 0; t < T; ++t)
      for (int e = 0; e < rp.E; ++e)
        lg[static_cast<size_t>(t) * rp.E + e] = cpu::dot_f32(router.data() + static_cast<int64_t>(e) * D, h.data() + static_cast<int64_t>(t) * D, D);
  Dev<float> dh(h), drouter(router), dlg(lg);
  Dev<int32_t> dseq(seq);
  MoeBuffers mb(P, X);
  kernels::moe_route(dh.p, D, drouter.p, with_logits ? dlg.p : nullptr, rp, dseq.p, T, mb.r, fused, nullptr);
  if (!fused) kernels::moe_sort(T, KP, X, mb.r, nullptr);
  const auto err = device_error();
  auto pe = mb.pe.download(), slot = mb.slot.download(), sorted = mb.sorted.download(), off = mb.offset.download(),
       active = mb.active.download(), n_act = mb.n_active.download();
  auto pw = mb.pw.download();
  int id_mismatch = 0;
  double w_err = 0;
  std::vector<int> idx;
  std::vector<float> wts;
  for (int t = 0; t < T; ++t) {
    if (seq[t] < 0) {
      for (int k = 0; k < KP; ++k) id_mismatch += pe[t * KP + k] != -1;
      continue;
    }
    if (rp.K > 0) route_ref(router, h.data() + static_cast<int64_t>(t) * D, D, rp, idx, wts);
    for (int k = 0; k < rp.K; ++k) {
      id_mismatch += pe[t * KP + k] != idx[k];
      w_err = std::max(w_err, static_cast<double>(std::fabs(pw[t * KP + k] - wts[k])) / std::max(1e-6f, std::fabs(wts[k])));
    }
    for (int s = 0; s < rp.S; ++s) id_mismatch += pe[t * KP + rp.K + s] != rp.E + s || pw[t * KP + rp.K + s] != 1.0f;
  }
  // The sort: offsets are the counts' prefix sums, every pair sits at its slot, slots are stable.
  std::vector<int> cnt(X, 0);
  for (int q = 0; q < P; ++q)
    if (pe[q] >= 0) ++cnt[pe[q]];
  bool sort_ok = off[0] == 0;
  int n_active = 0;
  for (int e = 0; e < X; ++e) {
    sort_ok = sort_ok && off[e + 1] == off[e] + cnt[e];
    if (cnt[e] > 0) sort_ok = sort_ok && n_active < X && active[n_active++] == e;
  }
  sort_ok = sort_ok && n_act[0] == n_active;
  for (int q = 0; q < P; ++q) {
    if (pe[q] < 0) sort_ok = sort_ok && slot[q] == -1;
    else sort_ok = sort_ok && slot[q] >= off[pe[q]] && slot[q] < off[pe[q] + 1] && sorted[slot[q]] == q;
  }
  if (P <= 1024)
    for (int e = 0; e < X; ++e)
      for (int i = off[e] + 1; i < off[e + 1]; ++i) sort_ok = sort_ok && sorted[i] > sorted[i - 1];
  rep.check(std::string("moe_route ") + label + ": expert ids", id_mismatch, 0.0, err);
  rep.check(std::string("moe_route ") + label + ": weights", w_err, 1e-5, err);
  rep.expect(std::string("moe_sort ") + label + ": offsets, slots, active list", sort_ok, err);
}

// The CPU backend's output of expert e for the activation row x [D]: down_e · (silu(gate_e · x) *
// (up_e · x)), with the biases when given (bgu [X, 2I], bd [X, D]), into y [D].
void expert_ref(const Weights& gu, const Weights& down, const float* x, int e, int D, int I, const float* bgu, const float* bd,
                std::vector<float>& y) {
  std::vector<float> g(I), u(I);
  cpu::WeightView wg{gu.vals.data() + static_cast<int64_t>(e) * 2 * I * D, cpu::WType::F32, I, D};
  cpu::WeightView wu{gu.vals.data() + (static_cast<int64_t>(e) * 2 * I + I) * D, cpu::WType::F32, I, D};
  cpu::WeightView wd{down.vals.data() + static_cast<int64_t>(e) * D * I, cpu::WType::F32, D, I};
  cpu::matmul(pool(), x, 1, wg, bgu ? bgu + static_cast<int64_t>(e) * 2 * I : nullptr, g.data());
  cpu::matmul(pool(), x, 1, wu, bgu ? bgu + static_cast<int64_t>(e) * 2 * I + I : nullptr, u.data());
  cpu::silu_mul(g.data(), u.data(), I);
  y.resize(D);
  cpu::matmul(pool(), g.data(), 1, wd, bd ? bd + static_cast<int64_t>(e) * D : nullptr, y.data());
}

// one: the kernels of one token by pair slot (moe_gate_up_one / moe_down_one), bias when given.
void experts_case(Report& rep, Rng& rng, DType dt, int T, int D, int I, kernels::RouteParams rp, bool lean, bool one = false,
                  bool bias = false, int max_rows = 0, bool one_slot = false) {
  const int KP = rp.K + rp.S, X = rp.E + rp.S, P = T * KP;
  auto h = rng.normal(static_cast<size_t>(T) * D), router = rng.normal(static_cast<size_t>(rp.E) * D, 0.05f);
  Weights gu(rng, static_cast<int64_t>(X) * 2 * I, D, dt), down(rng, static_cast<int64_t>(X) * D, I, dt);
  Dev<float> dh(h), drouter(router), act(static_cast<size_t>(P) * I), pair_out(static_cast<size_t>(P) * D);
  std::vector<int32_t> seq(T, 0);
  Dev<int32_t> dseq(seq);
  MoeBuffers mb(P, X);
  auto bgu = rng.normal(static_cast<size_t>(X) * 2 * I, 0.1f), bd = rng.normal(static_cast<size_t>(X) * D, 0.1f);
  Dev<float> dbgu(bgu), dbd(bd);
  const float* b_gu = bias ? dbgu.p : nullptr;
  const float* b_d = bias ? dbd.p : nullptr;
  kernels::moe_route(dh.p, D, drouter.p, nullptr, rp, dseq.p, T, mb.r, T == 1, nullptr);
  if (T != 1) kernels::moe_sort(T, KP, X, mb.r, nullptr);
  if (one) {
    kernels::moe_gate_up_one(dh.p, D, gu.dev(), dt, b_gu, I, rp, mb.r, act.p, nullptr);
    kernels::moe_down_one(act.p, I, down.dev(), dt, b_d, D, rp, mb.r, pair_out.p, nullptr);
  } else {
    kernels::moe_gate_up(dh.p, D, gu.dev(), dt, b_gu, I, KP, mb.r, std::min(X, P), lean, act.p, nullptr, max_rows, one_slot);
    kernels::moe_down(act.p, I, down.dev(), dt, b_d, D, mb.r, std::min(X, P), lean, pair_out.p, nullptr, max_rows, one_slot);
  }
  const auto err = device_error();
  auto pe = mb.pe.download(), slot = mb.slot.download();
  auto got = pair_out.download();
  double worst = 0;
  std::vector<float> y(D);
  for (int q = 0; q < P; ++q) {
    expert_ref(gu, down, h.data() + static_cast<int64_t>(q / KP) * D, pe[q], D, I, bias ? bgu.data() : nullptr,
               bias ? bd.data() : nullptr, y);
    worst = std::max(worst, rel_err(got.data() + static_cast<int64_t>(slot[q]) * D, y.data(), D));
  }
  char name[192];
  const bool mma = max_rows >= 2 && max_rows <= 8 && (one_slot || max_rows >= 4) && dt == DType::BF16 && kernels::skinny_mma_on();
  // One token, bf16: a block per slot unless GHOSTLINE_MOE_STREAM=1 (the streamed kernels of
  // moe_stream.cu on an sm_90 device); =2 gives down's early requests wrong experts, =3 bulk copies.
  const char* st = std::getenv("GHOSTLINE_MOE_STREAM");
  const char* variant = !one || dt != DType::BF16 ? ""
                        : st && st[0] == '1'     ? " (streamed on sm_90)"
                        : st && st[0] == '2'     ? " (streamed on sm_90, wrong early hints)"
                        : st && st[0] == '3'     ? " (streamed on sm_90, bulk copies)"
                                                 : " (block per slot)";
  std::snprintf(name, sizeof name, "moe_gate_up%s + moe_down%s %s T=%d D=%d I=%d X=%d top-%d%s%s%s%s%s", one ? "_one" : "", one ? "_one" : "",
                dt == DType::BF16 ? "bf16" : "f32", T, D, I, X, rp.K, lean && !one ? " (lean)" : "", bias ? " +bias" : "",
                mma ? " (tensor cores)" : "", one_slot ? " (one slot, rows = tokens)" : "", variant);
  rep.check(name, worst, mma ? 1e-5 : 2e-6, err);  // tensor cores: see skinny_mma_case
}

// ---- tensor-core prefill kernels (kernels/prefill.h) ------------------------------------------

std::vector<uint16_t> bf16_random(Rng& rng, size_t n, std::vector<float>& vals) {
  std::vector<uint16_t> bits;
  round_bf16(rng.normal(n), bits, vals);
  return bits;
}

// Fused causal attention of Tn new rows after P0 cached positions against a float64 loop over
// the same bf16 keys and values (the kernel also rounds the queries and probabilities to bf16).
void prefill_attention_case(Report& rep, Rng& rng, bool mla, int H, int Hkv, int Tn, int P0, const char* tile, bool out_bf16 = false,
                            bool unpaired = false) {
  const int N = P0 + Tn, dk1 = 128, dk = mla ? 192 : 128, dv = 128, G = H / Hkv;
  // MLA: expanded [N, H (128 + 128)] (nope key | value per head) + rope keys in a [N, 576] row at
  // 512; GQA: cache rows [N, 2 Hkv d] (keys | values).
  const int64_t ld_x = mla ? static_cast<int64_t>(H) * (dk1 + dv) : 2 * Hkv * dk, ld_r = 576;
  std::vector<float> xv, rv;
  auto xb = bf16_random(rng, static_cast<size_t>(N) * ld_x, xv);
  auto rb = bf16_random(rng, mla ? static_cast<size_t>(N) * ld_r : 1, rv);
  const int64_t ldq = static_cast<int64_t>(H) * dk + 6, ldo = static_cast<int64_t>(H) * dv;
  auto q = rng.normal(static_cast<size_t>(Tn) * ldq);
  Dev<uint16_t> dx(xb), dr(rb);
  Dev<float> dq(q), out(static_cast<size_t>(Tn) * ldo);
  Dev<uint16_t> outb(out_bf16 ? static_cast<size_t>(Tn) * ldo : 1);
  kernels::FlashAttention fa;
  fa.q = dq.p, fa.ldq = ldq, fa.q_head_stride = dk;
  if (mla) {
    fa.k1 = dx.p, fa.ldk1 = ld_x, fa.k1_head_stride = dk1 + dv;
    fa.k2 = dr.p + 512, fa.ldk2 = ld_r, fa.k2_head_stride = 0;
    fa.v = dx.p + dk1, fa.ldv = ld_x, fa.v_head_stride = dk1 + dv;
  } else {
    fa.k1 = dx.p, fa.ldk1 = ld_x, fa.k1_head_stride = dk;
    fa.v = dx.p + static_cast<int64_t>(Hkv) * dk, fa.ldv = ld_x, fa.v_head_stride = dv;
  }
  fa.out = out.p, fa.ldo = ldo, fa.o_head_stride = dv;
  if (out_bf16) fa.out_bf16 = outb.p;
  fa.dk1 = dk1, fa.dk = dk, fa.dv = dv, fa.H = H, fa.G = G, fa.Tn = Tn, fa.P0 = P0;
  fa.scale = 1.0f / std::sqrt(static_cast<float>(dk));
  if (*tile) setenv("GHOSTLINE_FLASH_TILE", tile, 1);
  if (unpaired) setenv("GHOSTLINE_FLASH_PAIRS", "0", 1);
  kernels::prefill_attention(fa, nullptr);
  unsetenv("GHOSTLINE_FLASH_TILE");
  unsetenv("GHOSTLINE_FLASH_PAIRS");
  const auto err = device_error();
  auto got = out.download();
  if (out_bf16) {
    const auto gb = outb.download();
    for (size_t i = 0; i < got.size(); ++i) got[i] = from_bf16(gb[i]);
  }
  auto key = [&](int j, int hk, int c) -> float {
    if (mla) return c < dk1 ? xv[j * ld_x + hk * (dk1 + dv) + c] : rv[j * ld_r + 512 + c - dk1];
    return xv[j * ld_x + hk * dk + c];
  };
  auto val = [&](int j, int hk, int c) -> float {
    return mla ? xv[j * ld_x + hk * (dk1 + dv) + dk1 + c] : xv[j * ld_x + static_cast<int64_t>(Hkv) * dk + hk * dv + c];
  };
  std::vector<float> ref(got.size());
  std::vector<double> sc(N), o(dv);
  for (int i = 0; i < Tn; ++i)
    for (int h = 0; h < H; ++h) {
      const int hk = h / G, n_vis = P0 + i + 1;
      double mx = -1e300;
      for (int j = 0; j < n_vis; ++j) {
        double s = 0;
        for (int c = 0; c < dk; ++c) s += static_cast<double>(q[i * ldq + h * dk + c]) * key(j, hk, c);
        sc[j] = s * fa.scale;
        mx = std::max(mx, sc[j]);
      }
      double sum = 0;
      std::fill(o.begin(), o.end(), 0.0);
      for (int j = 0; j < n_vis; ++j) {
        const double pj = std::exp(sc[j] - mx);
        sum += pj;
        for (int c = 0; c < dv; ++c) o[c] += pj * val(j, hk, c);
      }
      for (int c = 0; c < dv; ++c) ref[i * ldo + h * dv + c] = static_cast<float>(o[c] / sum);
    }
  char name[128];
  std::snprintf(name, sizeof name, "prefill_attention %s H=%d/%d Tn=%d after %d, tile %s%s%s", mla ? "MLA 192/128" : "GQA 128", H, Hkv,
                Tn, P0, *tile ? tile : "default", out_bf16 ? ", bf16 output" : "", unpaired ? ", a block per query block" : "");
  rep.check(name, rel_err(got, ref), 1e-2, err);
}

void gather_cache_bf16_case(Report& rep, Rng& rng) {
  const int kv_dim = 576;
  TestCache cache(rng, 16, kv_dim, {40, 130});
  Dev<uint16_t> dst(static_cast<size_t>(130) * kv_dim);
  kernels::gather_cache_bf16(cache.view(), 1, 130, dst.p, nullptr);
  const auto err = device_error();
  auto got = dst.download();
  int wrong = 0;
  for (int i = 0; i < 130; ++i)
    for (int c = 0; c < kv_dim; ++c) wrong += got[static_cast<size_t>(i) * kv_dim + c] != to_bf16(cache.slot(cache.data, 1, i)[c]);
  rep.check("gather_cache_bf16: a sequence's slots in bf16", wrong, 0.0, err);
}

// The packed gather of prefill (row j of expert order = token of sorted pair j in bf16), both
// kernels (GHOSTLINE_GATHER_VEC=0: one value a thread): bit-exact against the host's rounding.
void moe_gather_case(Report& rep, Rng& rng, int T, int D, kernels::RouteParams rp, bool vec) {
  const int KP = rp.K + rp.S, X = rp.E + rp.S, P = T * KP;
  auto h = rng.normal(static_cast<size_t>(T) * D), router = rng.normal(static_cast<size_t>(rp.E) * D, 0.05f);
  std::vector<int32_t> seq(T, 0);
  Dev<float> dh(h), drouter(router);
  Dev<int32_t> dseq(seq);
  Dev<uint16_t> gin(static_cast<size_t>(P) * D);
  MoeBuffers mb(P, X);
  kernels::moe_route(dh.p, D, drouter.p, nullptr, rp, dseq.p, T, mb.r, false, nullptr);
  kernels::moe_sort(T, KP, X, mb.r, nullptr);
  kernels::MoePadding pad;
  pad.packed = true;
  if (!vec) setenv("GHOSTLINE_GATHER_VEC", "0", 1);
  kernels::moe_gather(dh.p, D, mb.r, KP, P, pad, gin.p, DType::BF16, nullptr);
  unsetenv("GHOSTLINE_GATHER_VEC");
  const auto err = device_error();
  auto got = gin.download();
  auto sorted = mb.sorted.download();
  int wrong = 0;
  for (int j = 0; j < P; ++j)
    for (int c = 0; c < D; ++c)
      wrong += got[static_cast<size_t>(j) * D + c] != to_bf16(h[static_cast<size_t>(sorted[j] / KP) * D + c]);
  char name[128];
  std::snprintf(name, sizeof name, "moe_gather packed bf16 T=%d D=%d X=%d (%s)", T, D, X, vec ? "8 a thread" : "one a thread");
  rep.check(name, wrong, 0.0, err);
}

// Routing, the packed gather, the device tile list and both grouped products against the CPU
// (per pair, float32 inputs: the kernels round the rows and the activations to bf16).
// wgmma: the Hopper kernel where it is available (else GHOSTLINE_WGMMA=0: the mma.sync kernel).
void grouped_experts_case(Report& rep, Rng& rng, int T, int D, int I, kernels::RouteParams rp, bool bias, bool wide = false,
                          bool wgmma = false) {
  const int KP = rp.K + rp.S, X = rp.E + rp.S, P = T * KP;
  auto h = rng.normal(static_cast<size_t>(T) * D), router = rng.normal(static_cast<size_t>(rp.E) * D, 0.05f);
  Weights gu(rng, static_cast<int64_t>(X) * 2 * I, D, DType::BF16), down(rng, static_cast<int64_t>(X) * D, I, DType::BF16);
  auto bgu = rng.normal(static_cast<size_t>(X) * 2 * I, 0.1f), bd = rng.normal(static_cast<size_t>(X) * D, 0.1f);
  const int max_tiles = kernels::moe_max_tiles(P, X);
  Dev<float> dh(h), drouter(router), dbgu(bgu), dbd(bd), out(static_cast<size_t>(P) * D);
  Dev<uint16_t> gin(static_cast<size_t>(P) * D), act(static_cast<size_t>(P) * I);
  Dev<int32_t> tiles(static_cast<size_t>(max_tiles) * 4), n_tiles(1);
  std::vector<int32_t> seq(T, 0);
  Dev<int32_t> dseq(seq);
  MoeBuffers mb(P, X);
  kernels::moe_route(dh.p, D, drouter.p, nullptr, rp, dseq.p, T, mb.r, false, nullptr);
  kernels::moe_sort(T, KP, X, mb.r, nullptr);
  kernels::MoePadding pad;
  pad.packed = true;
  kernels::moe_gather(dh.p, D, mb.r, KP, P, pad, gin.p, DType::BF16, nullptr);
  auto* tl = reinterpret_cast<int4*>(tiles.p);
  kernels::moe_tiles(mb.offset.p, X, tl, n_tiles.p, nullptr);
  kernels::GroupedGemm g;
  g.tiles = tl, g.n_tiles = n_tiles.p, g.max_tiles = max_tiles;
  g.a_rows = P, g.experts = X;
  g.a = gin.p, g.lda = D, g.w = gu.dev(), g.w_expert_stride = static_cast<int64_t>(2) * I * D, g.bias = bias ? dbgu.p : nullptr;
  g.N = I, g.K = D, g.silu = true, g.out = act.p, g.ldo = I;
  if (wide) setenv("GHOSTLINE_GROUPED_WIDE", "1", 1);  // the 128 x 256 tiles
  if (!wgmma) setenv("GHOSTLINE_WGMMA", "0", 1);
  const bool hopper = wgmma && kernels::grouped_wgmma_available();
  kernels::grouped_gemm(g, nullptr);
  g.a = act.p, g.lda = I, g.w = down.dev(), g.w_expert_stride = static_cast<int64_t>(D) * I, g.bias = bias ? dbd.p : nullptr;
  g.N = D, g.K = I, g.silu = false, g.out = out.p, g.ldo = D;
  kernels::grouped_gemm(g, nullptr);
  unsetenv("GHOSTLINE_GROUPED_WIDE");
  unsetenv("GHOSTLINE_WGMMA");
  const auto err = device_error();
  auto pe = mb.pe.download(), slot = mb.slot.download();
  auto got = out.download();
  double worst = 0;
  std::vector<float> y(D);
  for (int q = 0; q < P; ++q) {
    expert_ref(gu, down, h.data() + static_cast<int64_t>(q / KP) * D, pe[q], D, I, bias ? bgu.data() : nullptr,
               bias ? bd.data() : nullptr, y);
    worst = std::max(worst, slot[q] < 0 ? INFINITY : rel_err(got.data() + static_cast<int64_t>(slot[q]) * D, y.data(), D));
  }
  char name[128];
  std::snprintf(name, sizeof name, "grouped_gemm gate_up (SiLU) + down T=%d D=%d I=%d X=%d top-%d%s%s", T, D, I, X, rp.K, bias ? " +bias" : "",
                hopper ? " (wgmma)" : wide ? " (256-wide)" : "");
  rep.check(name, worst, 1e-2, err);
}

// One grouped product against float64 loops, with groups chosen by hand: empty experts, experts
// of one row, partial and full tiles of 128, a stride of a wider than K, odd N and K. The rows of
// a and the weights are bf16 values; gate/up + SiLU writes bf16, down float32 (+ bias when given).
// wgmma as in grouped_experts_case.
// out_bf16 (down only): the outputs in bf16 (GroupedGemm::out_bf16).
void grouped_gemm_case(Report& rep, Rng& rng, const std::vector<int>& groups, int N, int K, bool silu, bool bias, bool wgmma,
                       bool out_bf16 = false) {
  out_bf16 = out_bf16 && !silu;
  const int X = static_cast<int>(groups.size());
  std::vector<int32_t> off(X + 1, 0);
  for (int e = 0; e < X; ++e) off[e + 1] = off[e] + groups[e];
  const int P = off[X], lda = K + 8, Nw = silu ? 2 * N : N, ldo = N + 2;
  std::vector<uint16_t> abits;
  std::vector<float> a;
  round_bf16(rng.normal(static_cast<size_t>(P) * lda), abits, a);
  Weights w(rng, static_cast<int64_t>(X) * Nw, K, DType::BF16);
  auto b = rng.normal(static_cast<size_t>(X) * Nw, 0.1f);
  const int max_tiles = kernels::moe_max_tiles(P, X);
  const bool o16_used = silu || out_bf16;
  Dev<uint16_t> da(abits), out16(o16_used ? static_cast<size_t>(P) * ldo : 1);
  Dev<float> db(b), out32(o16_used ? 1 : static_cast<size_t>(P) * ldo);
  Dev<int32_t> doff(off), tiles(static_cast<size_t>(max_tiles) * 4), n_tiles(1);
  auto* tl = reinterpret_cast<int4*>(tiles.p);
  kernels::moe_tiles(doff.p, X, tl, n_tiles.p, nullptr);
  kernels::GroupedGemm g;
  g.tiles = tl, g.n_tiles = n_tiles.p, g.max_tiles = max_tiles, g.a_rows = P, g.experts = X;
  g.a = da.p, g.lda = lda, g.w = w.dev(), g.w_expert_stride = static_cast<int64_t>(Nw) * K, g.bias = bias ? db.p : nullptr;
  g.N = N, g.K = K, g.silu = silu, g.ldo = ldo;
  g.out = o16_used ? static_cast<void*>(out16.p) : static_cast<void*>(out32.p);
  g.out_bf16 = out_bf16;
  if (!wgmma) setenv("GHOSTLINE_WGMMA", "0", 1);
  const bool hopper = wgmma && kernels::grouped_wgmma_available();
  kernels::grouped_gemm(g, nullptr);
  unsetenv("GHOSTLINE_WGMMA");
  const auto err = device_error();
  std::vector<float> got(static_cast<size_t>(P) * N), ref(static_cast<size_t>(P) * N);
  const auto o16 = out16.download();
  const auto o32 = out32.download();
  for (int e = 0; e < X; ++e)
    for (int r = off[e]; r < off[e + 1]; ++r) {
      const float* x = a.data() + static_cast<int64_t>(r) * lda;
      auto dot = [&](int wr) {
        const float* wv = w.vals.data() + (static_cast<int64_t>(e) * Nw + wr) * K;
        double acc = bias ? b[static_cast<int64_t>(e) * Nw + wr] : 0.0;
        for (int k = 0; k < K; ++k) acc += static_cast<double>(x[k]) * wv[k];
        return acc;
      };
      for (int n = 0; n < N; ++n) {
        double v;
        if (silu) {
          const double gt = dot(n), up = dot(N + n);
          v = gt / (1.0 + std::exp(-gt)) * up;
        } else {
          v = dot(n);
        }
        ref[static_cast<int64_t>(r) * N + n] = static_cast<float>(v);
        got[static_cast<int64_t>(r) * N + n] = o16_used ? from_bf16(o16[static_cast<int64_t>(r) * ldo + n]) : o32[static_cast<int64_t>(r) * ldo + n];
      }
    }
  std::string sizes;
  for (int e = 0; e < X; ++e) {
    if (e) sizes += ',';
    sizes += std::to_string(groups[e]);
  }
  char name[160];
  const char* per_item = std::getenv("GHOSTLINE_WGMMA_PERSIST");
  const char* both_halves = std::getenv("GHOSTLINE_WGMMA_HALF");
  std::snprintf(name, sizeof name, "grouped_gemm %s N=%d K=%d rows {%s}%s %s", silu ? "gate_up (SiLU)" : out_bf16 ? "down (bf16 out)" : "down", N, K, sizes.c_str(),
                bias ? " +bias" : "",
                !hopper                                  ? "(mma.sync)"
                : per_item && per_item[0] == '0'         ? "(wgmma, block per item)"
                : both_halves && both_halves[0] == '0'   ? "(wgmma, small tiles on both warpgroups)"
                                                         : "(wgmma)");
  rep.check(name, rel_err(got, ref), o16_used ? 1e-2 : 1e-5, err);
}

}  // namespace

void run_op_checks(Report& rep, uint64_t seed) {
  Rng rng(seed);
  embed_case(rep, rng, DType::BF16);
  embed_case(rep, rng, DType::F32);
  residual_rmsnorm_case(rep, rng);
  rmsnorm_router_case(rep, rng, 1, 2048, 64);
  rmsnorm_router_case(rep, rng, 3, 4096, 128);
  rmsnorm_router_case(rep, rng, 2, 8192 - 4, 20);
  for (DType dt : {DType::BF16, DType::F32}) {
    skinny_case(rep, rng, dt, 1, 2048, 2048, 1, false);
    skinny_case(rep, rng, dt, 3, 3648, 2048, 1, true);
    skinny_case(rep, rng, dt, 8, 1000, 1408, 1, false);
    skinny_case(rep, rng, dt, 13, 77, 48, 1, true);
    skinny_case(rep, rng, dt, 5, 512, 128, 16, false);  // per-head absorption shape
    skinny_case(rep, rng, dt, 2, 30, 36, 3, true);      // K % 8 != 0: the scalar path
    skinny_case(rep, rng, dt, 64, 600, 256, 1, false);
    skinny_case(rep, rng, dt, 2, 1000, 1408, 1, true);   // a few rows: plain_few_rows
    skinny_case(rep, rng, dt, 4, 512, 128, 16, false);   // a few rows, batched
  }
  // One bf16 row through the streamed kernel: odd N (a last item of one row), K not a multiple of
  // 256, fewer items than multiprocessors, the DeepSeek-V2-Lite q + kv_a shape; then the one-row
  // kernel, and the streamed one with bulk copies.
  setenv("GHOSTLINE_SKINNY_STREAM", "1", 1);
  skinny_case(rep, rng, DType::BF16, 1, 2048, 2048, 1, false);
  skinny_case(rep, rng, DType::BF16, 1, 3648, 2048, 1, true);
  skinny_case(rep, rng, DType::BF16, 1, 77, 264, 1, true);
  skinny_case(rep, rng, DType::BF16, 1, 5, 48, 1, false);
  setenv("GHOSTLINE_SKINNY_STREAM", "0", 1);
  skinny_case(rep, rng, DType::BF16, 1, 2048, 2048, 1, false);
  skinny_case(rep, rng, DType::BF16, 1, 77, 264, 1, true);
  setenv("GHOSTLINE_SKINNY_STREAM", "3", 1);
  skinny_case(rep, rng, DType::BF16, 1, 77, 264, 1, true);
  unsetenv("GHOSTLINE_SKINNY_STREAM");
  skinny_mma_case(rep, rng, 2, 4096, 4096, 1, false);   // o_proj of DeepSeek-Coder-6.7B, k = 2
  skinny_mma_case(rep, rng, 8, 1000, 1416, 1, true);    // K % 32 != 0: a partial last window
  skinny_mma_case(rep, rng, 5, 77, 264, 1, true);       // N % 16 != 0
  skinny_mma_case(rep, rng, 3, 512, 128, 16, false);    // per-head absorption shape, batched
  skinny_mma_case(rep, rng, 4, 3648, 2048, 1, false);
  skinny_mma_case(rep, rng, 7, 600, 11008, 1, true);    // long K split over the warps
  skinny_mma_case(rep, rng, 8, 1000, 1416, 1, true, 1);
  skinny_mma_case(rep, rng, 3, 4096, 4096, 1, false, 1);
  skinny_mma_case(rep, rng, 6, 40, 136, 3, true, 1);
  skinny_mma_case(rep, rng, 8, 1000, 1416, 1, true, 3);
  skinny_mma_case(rep, rng, 2, 4096, 4096, 1, false, 3);
  skinny_mma_case(rep, rng, 5, 600, 11008, 1, true, 3);
  skinny_mma_case(rep, rng, 6, 40, 136, 3, true, 3);
  skinny_mma_case(rep, rng, 3, 512, 128, 16, false, 3);
  blas_case(rep, rng, DType::BF16, 70, 300, 256, true);
  blas_case(rep, rng, DType::F32, 70, 300, 256, true);
  blas_case(rep, rng, DType::BF16, 33, 128, 200, false);
  mla_prep_case(rep, rng);
  gqa_prep_case(rep, rng, false);
  gqa_prep_case(rep, rng, true);
  attention_case(rep, rng, "MLA r=512 p=64 16 heads, bf16 W_vb", true, 16, 1, 512, 64, 128, DType::BF16, {300, 2049},
                 {0, 0, 1, 1}, {298, 299, 7, 2048}, {0, 1, 2, 3});
  attention_case(rep, rng, "MLA r=32 p=8 4 heads, f32 W_vb, listed subset", true, 4, 1, 32, 8, 16, DType::F32, {40, 5},
                 {0, 1, 0}, {39, 4, 20}, {2, 0});
  attention_case(rep, rng, "MLA r=512, at least 64 positions a split", true, 16, 1, 512, 64, 128, DType::BF16, {1000, 70},
                 {0, 1, 0}, {999, 69, 3}, {0, 1, 2}, 64);
  // The fused MLA kernels (mla_decode.cu): 3xTF32 tensor-core products, float32 tolerance.
  attention_case(rep, rng, "r=512 p=64 16 heads, bf16 W_vb, 2 tiles a split", true, 16, 1, 512, 64, 128, DType::BF16, {300, 2049},
                 {0, 0, 1, 1}, {298, 299, 7, 2048}, {0, 1, 2, 3}, 1, true);
  attention_case(rep, rng, "r=32 p=8 4 heads, f32 W_vb, listed subset", true, 4, 1, 32, 8, 16, DType::F32, {40, 5}, {0, 1, 0},
                 {39, 4, 20}, {2, 0}, 1, true);
  attention_case(rep, rng, "r=512, one token, 17 tiles a split (online softmax)", true, 16, 1, 512, 64, 128, DType::BF16, {3001},
                 {0}, {3000}, {0}, 520, true);
  attention_case(rep, rng, "r=256 p=32 40 heads (3 head groups), 2K, batch 1", true, 40, 1, 256, 32, 64, DType::BF16, {2048},
                 {0}, {2047}, {0}, 32, true);
  attention_case(rep, rng, "GQA 32 heads / 4 KV, at least 32 positions a split", false, 32, 4, 128, 0, 0, DType::F32, {500}, {0},
                 {499}, {0}, 32);
  attention_case(rep, rng, "GQA 32 heads / 4 KV, d=128", false, 32, 4, 128, 0, 0, DType::F32, {1000, 17}, {0, 1}, {999, 16}, {0, 1});
  attention_case(rep, rng, "MHA 8 heads, d=64", false, 8, 8, 64, 0, 0, DType::F32, {333}, {0, 0}, {100, 332}, {0, 1});
  setenv("GHOSTLINE_ATTN_ROWS", "0", 1);  // the previous GQA kernel, still reachable
  attention_case(rep, rng, "GQA 32 heads / 4 KV, d=128, GHOSTLINE_ATTN_ROWS=0", false, 32, 4, 128, 0, 0, DType::F32, {1000, 17}, {0, 1},
                 {999, 16}, {0, 1});
  unsetenv("GHOSTLINE_ATTN_ROWS");
  attention_case(rep, rng, "GQA 6 heads / 3 KV, d=8", false, 6, 3, 8, 0, 0, DType::F32, {70}, {0}, {69}, {0});
  // One sequence's new tokens (verification) in one block per (split, KV head): causal within
  // the tokens, a padding token, splits of the longest token.
  attention_case(rep, rng, "MHA 32 heads d=128, 8 tokens at 2K", false, 32, 32, 128, 0, 0, DType::F32, {2056}, {0, 0, 0, 0, 0, 0, 0, 0},
                 {2048, 2049, 2050, 2051, 2052, 2053, 2054, 2055}, {0, 1, 2, 3, 4, 5, 6, 7}, 32, false, true);
  attention_case(rep, rng, "GQA 8 heads / 4 KV d=64, 3 tokens + padding", false, 8, 4, 64, 0, 0, DType::F32, {300}, {0, 0, 0, -1},
                 {297, 298, 299, 0}, {0, 1, 2, 3}, 1, false, true);
  attention_case(rep, rng, "MHA 4 heads d=128, 2 tokens, short context", false, 4, 4, 128, 0, 0, DType::F32, {35}, {0, 0}, {33, 34},
                 {0, 1}, 32, false, true);
  causal_softmax_case(rep, rng);
  kernels::RouteParams greedy{64, 6, 2, 1, 1, false, false, 1.0f};
  route_case(rep, rng, "greedy E=64 top-6 + 2 shared", 37, 2048, greedy, 5);
  // Past 1,024 pairs the sort loads 16 ids a thread at once: 2,400 pairs, and 16,800 (two rounds).
  route_case(rep, rng, "greedy E=64 top-6 + 2 shared, 300 tokens", 300, 512, greedy, 7);
  route_case(rep, rng, "greedy E=64 top-6 + 2 shared, 2100 tokens", 2100, 256, greedy, -1);
  // Logits given, a warp per token (route_warps_kernel): greedy, group-limited, a padding token.
  route_case(rep, rng, "greedy E=64 top-6 + 2 shared, 300 tokens, logits given", 300, 512, greedy, 7, false, true);
  setenv("GHOSTLINE_SORT_BATCH", "0", 1);  // the sort with one id a thread at a time
  route_case(rep, rng, "greedy E=64 top-6 + 2 shared, 2100 tokens, sort one id at a time", 2100, 256, greedy, -1);
  unsetenv("GHOSTLINE_SORT_BATCH");
  kernels::RouteParams group{160, 6, 2, 8, 3, true, false, 16.0f};
  route_case(rep, rng, "group-limited E=160 8 groups keep 3", 9, 512, group, -1);
  kernels::RouteParams renorm{128, 8, 0, 1, 1, false, true, 1.0f};
  route_case(rep, rng, "renormalised E=128 top-8", 200, 256, renorm, 3);
  route_case(rep, rng, "group-limited E=160 8 groups keep 3, logits given", 150, 256, group, 3, false, true);
  route_case(rep, rng, "group-limited E=160 8 groups keep 3, logits given, 45 tokens (a block per token)", 45, 256, group, 3, false, true);
  route_case(rep, rng, "renormalised E=128 top-8, logits given", 200, 256, renorm, -1, false, true);
  route_case(rep, rng, "one token, sorted by the routing kernel", 1, 2048, greedy, -1, true);
  route_case(rep, rng, "one padding token, sorted by the routing kernel", 1, 2048, greedy, 0, true);
  kernels::RouteParams dense{0, 0, 1, 1, 1, false, false, 1.0f};
  route_case(rep, rng, "dense layer (one always-on slot), one token", 1, 256, dense, -1, true);
  experts_case(rep, rng, DType::BF16, 1, 2048, 1408, greedy, true);
  experts_case(rep, rng, DType::BF16, 11, 2048, 1408, greedy, true);
  experts_case(rep, rng, DType::BF16, 11, 2048, 1408, greedy, false);
  experts_case(rep, rng, DType::F32, 5, 64, 24, kernels::RouteParams{16, 2, 1, 1, 1, false, false, 1.0f}, false);
  // One token's bf16 experts: the streamed kernels (cp.async), the block-per-slot ones (the
  // default), the streamed ones with wrong early hints, with bulk copies. Shapes: DeepSeek-V2-Lite's D, I and
  // 6 + 2 slots (8 routed experts: random weights of 64 take seconds; down: 6 chunks of 256 a
  // lane), no always-on slot + bias, K not a multiple of 256, fewer items than multiprocessors,
  // 32 slots, a dense slot.
  for (const char* v : {"1", "0", "2", "3"}) {
    setenv("GHOSTLINE_MOE_STREAM", v, 1);
    experts_case(rep, rng, DType::BF16, 1, 2048, 1408, kernels::RouteParams{8, 6, 2, 1, 1, false, false, 1.0f}, true, true);
    experts_case(rep, rng, DType::BF16, 1, 1024, 768, kernels::RouteParams{128, 8, 0, 1, 1, false, true, 1.0f}, true, true, true);
    experts_case(rep, rng, DType::BF16, 1, 264, 136, kernels::RouteParams{16, 4, 1, 1, 1, false, false, 1.0f}, true, true, true);
    experts_case(rep, rng, DType::BF16, 1, 64, 24, kernels::RouteParams{16, 2, 1, 1, 1, false, false, 1.0f}, true, true);
    experts_case(rep, rng, DType::BF16, 1, 256, 128, kernels::RouteParams{64, 16, 16, 1, 1, false, false, 1.0f}, true, true, true);
    experts_case(rep, rng, DType::BF16, 1, 520, 1032, kernels::RouteParams{0, 0, 1, 1, 1, false, false, 1.0f}, true, true);
  }
  unsetenv("GHOSTLINE_MOE_STREAM");
  experts_case(rep, rng, DType::F32, 1, 64, 24, kernels::RouteParams{16, 2, 1, 1, 1, false, false, 1.0f}, true, true, true);
  experts_case(rep, rng, DType::F32, 1, 520, 1032, kernels::RouteParams{0, 0, 1, 1, 1, false, false, 1.0f}, true, true);  // dense slot
  // 2..8 tokens: each expert's weights once for all its rows on tensor cores (skinny_mma.cu).
  experts_case(rep, rng, DType::BF16, 8, 2048, 1408, greedy, true, false, false, 8);
  experts_case(rep, rng, DType::BF16, 3, 1024, 768, kernels::RouteParams{128, 8, 0, 1, 1, false, true, 1.0f}, true, false, true, 4);
  experts_case(rep, rng, DType::BF16, 4, 4096, 11008, kernels::RouteParams{0, 0, 1, 1, 1, false, false, 1.0f}, false, false, false, 4);
  experts_case(rep, rng, DType::BF16, 6, 4096, 11008, kernels::RouteParams{0, 0, 1, 1, 1, false, false, 1.0f}, false, false, true, 6, true);
  gather_cache_bf16_case(rep, rng);
  silu_mul_case(rep, rng, 37, 1408);
  silu_mul_case(rep, rng, 5, 30);  // I % 4 != 0: the scalar kernels
  for (bool vec : {true, false}) {
    moe_gather_case(rep, rng, 37, 2048, greedy, vec);
    moe_gather_case(rep, rng, 20, 264, kernels::RouteParams{16, 4, 1, 1, 1, false, true, 1.0f}, vec);  // D not a multiple of 256 threads x 8
  }
  // Every tile shape of the flash kernel (GHOSTLINE_FLASH_TILE; "" = the default).
  for (const char* tile : {"", "64x32", "128x64", "128x32"}) {
    prefill_attention_case(rep, rng, true, 16, 16, 150, 77, tile);
    prefill_attention_case(rep, rng, true, 16, 16, 193, 0, tile);
    prefill_attention_case(rep, rng, false, 8, 2, 100, 30, tile);
    prefill_attention_case(rep, rng, false, 4, 4, 64, 0, tile);
  }
  prefill_attention_case(rep, rng, true, 4, 4, 300, 0, "");  // 3 blocks of 128 rows, the last partial
  prefill_attention_case(rep, rng, true, 16, 16, 150, 77, "", true);
  prefill_attention_case(rep, rng, false, 8, 2, 100, 30, "64x64", true);
  prefill_attention_case(rep, rng, true, 16, 16, 150, 77, "", false, true);
  prefill_attention_case(rep, rng, false, 8, 2, 200, 30, "64x64", false, true);
  prefill_attention_case(rep, rng, false, 8, 2, 330, 0, "", false, false);  // 6 query blocks of 64: three pairs
  grouped_experts_case(rep, rng, 150, 264, 200, kernels::RouteParams{16, 4, 1, 1, 1, false, true, 1.0f}, true);
  grouped_experts_case(rep, rng, 24, 2048, 1408, greedy, false);
  grouped_experts_case(rep, rng, 150, 264, 200, kernels::RouteParams{16, 4, 1, 1, 1, false, true, 1.0f}, true, true);
  grouped_experts_case(rep, rng, 300, 512, 136, kernels::RouteParams{8, 2, 0, 1, 1, false, false, 1.0f}, false, true);
  // The Hopper kernel (grouped_gemm_sm90.cu) where the device has it, the mma.sync one beside it.
  for (bool hopper : {true, false}) {
    grouped_experts_case(rep, rng, 150, 264, 200, kernels::RouteParams{16, 4, 1, 1, 1, false, true, 1.0f}, true, false, hopper);
    // DeepSeek-V2-Lite's D and I with 8 experts (64 of that size take seconds of random numbers).
    grouped_experts_case(rep, rng, 100, 2048, 1408, kernels::RouteParams{8, 2, 1, 1, 1, false, false, 1.0f}, false, false, hopper);
    grouped_experts_case(rep, rng, 300, 512, 136, kernels::RouteParams{8, 2, 0, 1, 1, false, false, 1.0f}, false, false, hopper);
    const std::vector<int> odd = {0, 1, 127, 128, 129, 0, 300, 1, 64, 0, 5, 256};
    grouped_gemm_case(rep, rng, odd, 200, 264, true, true, hopper);    // gate/up: partial weight tile, k tail
    const std::vector<int> few = {0, 1, 127, 129, 0, 64};
    grouped_gemm_case(rep, rng, few, 1408, 2048, true, false, hopper);  // DeepSeek-V2-Lite gate/up
    grouped_gemm_case(rep, rng, few, 2048, 1408, false, false, hopper); // DeepSeek-V2-Lite down
    grouped_gemm_case(rep, rng, odd, 330, 136, false, true, hopper);    // down: 2 blocks, the second partial
    grouped_gemm_case(rep, rng, odd, 330, 136, false, true, hopper, true);       // the same with bf16 outputs
    grouped_gemm_case(rep, rng, few, 2048, 1408, false, false, hopper, true);  // DeepSeek-V2-Lite down, bf16 outputs
    grouped_gemm_case(rep, rng, {1, 0, 0, 1}, 8, 8, false, false, hopper);
    grouped_gemm_case(rep, rng, {0, 3, 1}, 2, 16, true, true, hopper);
  }
  // The Hopper kernel with a block per work item instead of a persistent grid.
  setenv("GHOSTLINE_WGMMA_PERSIST", "0", 1);
  grouped_gemm_case(rep, rng, {0, 1, 127, 128, 129, 0, 300, 1, 64, 0, 5, 256}, 200, 264, true, true, true);
  grouped_gemm_case(rep, rng, {0, 1, 127, 129, 0, 64}, 2048, 1408, false, false, true);
  unsetenv("GHOSTLINE_WGMMA_PERSIST");
  setenv("GHOSTLINE_WGMMA_HALF", "0", 1);
  grouped_gemm_case(rep, rng, {0, 1, 127, 128, 129, 0, 300, 1, 64, 0, 5, 256}, 200, 264, true, true, true);
  unsetenv("GHOSTLINE_WGMMA_HALF");
}

}  // namespace ghostline::gpu_test
