// Portable kernels, the run-time choice between them and the AVX2 ones, and the composite ops
// (matmul, rmsnorm, softmax) built on the inner kernels.
#include "engine/cpu/kernels.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <sys/mman.h>
#include <span>
#include <vector>

#include "engine/cpu/kernels_isa.h"

namespace ghostline::cpu {

float f16_to_f32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400u)) {
        mant <<= 1;
        --exp;
      }
      u = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

namespace isa {
namespace {

// The portable kernels keep the AVX2 kernels' reduction order (kernels_isa.h), with a multiply
// and an add where those fuse them; this file is built without floating-point contraction.
float reduce8(const float* l) { return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])); }

float p_dot_f32(const float* a, const float* b, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
  float r = reduce8(s);
  for (; i < n; ++i) r += a[i] * b[i];
  return r;
}

// One output at a time: eight lane sums over k, the lanes reduced, then the tail.
template <class W, class Load>
void p_gemm_nt(const float* x, int64_t ldx, int64_t T, const W* w, int64_t ldw, int64_t N, int64_t K, float* y, int64_t ldy,
               Load load) {
  const int64_t K8 = K & ~int64_t{7};
  for (int64_t n = 0; n < N; ++n) {
    const W* wn = w + n * ldw;
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = x + t * ldx;
      float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t k = 0; k < K8; k += 8)
        for (int j = 0; j < 8; ++j) l[j] += load(wn + k + j) * xt[k + j];
      float s = reduce8(l);
      for (int64_t k = K8; k < K; ++k) s += xt[k] * load(wn + k);
      y[t * ldy + n] = s;
    }
  }
}
void p_gemm_nt_f32(const float* x, int64_t ldx, int64_t T, const float* w, int64_t ldw, int64_t N, int64_t K, float* y,
                   int64_t ldy) {
  p_gemm_nt(x, ldx, T, w, ldw, N, K, y, ldy, [](const float* p) { return *p; });
}
void p_gemm_nt_bf16(const float* x, int64_t ldx, int64_t T, const uint16_t* w, int64_t ldw, int64_t N, int64_t K, float* y,
                    int64_t ldy) {
  p_gemm_nt(x, ldx, T, w, ldw, N, K, y, ldy, [](const uint16_t* p) { return bf16_to_f32(*p); });
}
void p_gemm_nt_f16(const float* x, int64_t ldx, int64_t T, const uint16_t* w, int64_t ldw, int64_t N, int64_t K, float* y,
                   int64_t ldy) {
  p_gemm_nt(x, ldx, T, w, ldw, N, K, y, ldy, [](const uint16_t* p) { return f16_to_f32(*p); });
}

void p_gemm_nn_acc(const float* a, int64_t lda, int64_t T, const float* b, int64_t ldb, int64_t P, int64_t C, float* y,
                   int64_t ldy) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t p = 0; p < P; ++p) {
      const float av = a[t * lda + p];
      for (int64_t c = 0; c < C; ++c) y[t * ldy + c] += av * b[p * ldb + c];
    }
}

void p_softmax_scaled(float* x, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) x[i] *= scale;
  softmax(x, n);
}

void p_bf16_to_f32(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(in[i]);
}
void p_f16_to_f32(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(in[i]);
}
void p_axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

const Kernels kPortable = {p_dot_f32,     p_gemm_nt_f32,    p_gemm_nt_bf16, p_gemm_nt_f16, p_gemm_nn_acc,
                           p_softmax_scaled, p_bf16_to_f32, p_f16_to_f32,  p_axpy,        nullptr};

}  // namespace

const Kernels& portable() { return kPortable; }

#ifdef GHOSTLINE_NO_AMX  // a compiler without the AMX instructions: no AMX set
const Kernels* amx() { return nullptr; }
bool amx_usable() { return false; }
int64_t amx_packed_size(int64_t, int64_t) { return 0; }
void amx_pack_bf16(const uint16_t*, int64_t, int64_t, uint16_t*) {}
#endif

}  // namespace isa

namespace {

// Whether this build has the set k (not null) and this CPU runs it.
bool runs_on_this_cpu(const isa::Kernels* k) {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 =
      avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  if (k && k == isa::amx()) return avx512 && isa::amx_usable();
  if (k && k == isa::avx512()) return avx512;
  if (k && k == isa::avx2()) return avx2;
  return k == &isa::portable();
}

// The best set this CPU runs; GHOSTLINE_CPU_KERNELS=avx512, =avx2 or =portable asks for a lesser
// one (benchmarks compare them).
const isa::Kernels* best_kernels() {
  const char* env = std::getenv("GHOSTLINE_CPU_KERNELS");
  const std::string_view want = env ? env : "";
  if (want == "portable") return &isa::portable();
  if (want != "avx2" && want != "avx512" && runs_on_this_cpu(isa::amx())) return isa::amx();
  if (want != "avx2" && runs_on_this_cpu(isa::avx512())) return isa::avx512();
  if (runs_on_this_cpu(isa::avx2())) return isa::avx2();
  return &isa::portable();
}

const isa::Kernels* g_forced = nullptr;

const isa::Kernels& kernels() {
  static const isa::Kernels* best = best_kernels();
  return g_forced ? *g_forced : *best;
}

}  // namespace

const char* kernel_isa() {
  const isa::Kernels* k = &kernels();
  if (k == isa::amx()) return "amx";
  return k == isa::avx512() ? "avx512" : k == isa::avx2() ? "avx2" : "portable";
}
void force_portable_kernels(bool on) { g_forced = on ? &isa::portable() : nullptr; }
bool force_kernel_isa(std::string_view name) {
  const isa::Kernels* k = name.empty()            ? nullptr
                          : name == "portable"    ? &isa::portable()
                          : name == "avx2"        ? isa::avx2()
                          : name == "avx512"      ? isa::avx512()
                          : name == "amx"         ? isa::amx()
                                                  : nullptr;
  if (name.empty()) {
    g_forced = nullptr;
    return true;
  }
  if (!k || !runs_on_this_cpu(k)) return false;
  g_forced = k;
  return true;
}

void row_to_f32(const WeightView& w, int64_t r, float* out) {
  const auto& k = kernels();
  switch (w.type) {
    case WType::F32: std::memcpy(out, w.row_ptr(r), w.cols * 4); break;
    case WType::BF16: k.bf16_to_f32(reinterpret_cast<const uint16_t*>(w.row_ptr(r)), out, w.cols); break;
    case WType::F16: k.f16_to_f32(reinterpret_cast<const uint16_t*>(w.row_ptr(r)), out, w.cols); break;
  }
}

float dot_f32(const float* a, const float* b, int64_t n) { return kernels().dot_f32(a, b, n); }
void axpy(float a, const float* x, float* y, int64_t n) { kernels().axpy(a, x, y, n); }

void gemm_nt(const float* x, int64_t ldx, int64_t T, const WeightView& w, float* y, int64_t ldy) {
  const auto& k = kernels();
  switch (w.type) {
    case WType::F32: k.gemm_nt_f32(x, ldx, T, static_cast<const float*>(w.data), w.cols, w.rows, w.cols, y, ldy); break;
    case WType::BF16:
      if (w.amx && k.gemm_nt_bf16_packed) k.gemm_nt_bf16_packed(x, ldx, T, w.amx, w.rows, w.cols, y, ldy);
      else k.gemm_nt_bf16(x, ldx, T, static_cast<const uint16_t*>(w.data), w.cols, w.rows, w.cols, y, ldy);
      break;
    case WType::F16: k.gemm_nt_f16(x, ldx, T, static_cast<const uint16_t*>(w.data), w.cols, w.rows, w.cols, y, ldy); break;
  }
}

int64_t amx_packed_values(const WeightView& w) {
  if (&kernels() != isa::amx() || w.type != WType::BF16 || w.cols % 32 != 0 || w.rows <= 0 || w.cols <= 0) return 0;
  return isa::amx_packed_size(w.rows, w.cols);
}

void pack_for_amx(WeightView& w, uint16_t* out) {
  isa::amx_pack_bf16(static_cast<const uint16_t*>(w.data), w.rows, w.cols, out);
  w.amx = out;
}

PackedBuffer pack_for_amx(WeightView& w) {
  const int64_t n = amx_packed_values(w);
  if (n == 0) return nullptr;
  PackedBuffer buf(static_cast<uint16_t*>(std::aligned_alloc(64, (static_cast<size_t>(n) * 2 + 63) / 64 * 64)));
  if (buf) pack_for_amx(w, buf.get());
  return buf;
}

PackedBuffer alloc_packed(int64_t n) {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t bytes = (static_cast<size_t>(n) * 2 + kHuge - 1) / kHuge * kHuge;
  PackedBuffer buf(static_cast<uint16_t*>(std::aligned_alloc(kHuge, bytes)));
  if (buf) madvise(buf.get(), bytes, MADV_HUGEPAGE);  // a hint: without it, 4 KiB pages
  return buf;
}

void gemm_nt_f32(const float* x, int64_t ldx, int64_t T, const float* w, int64_t ldw, int64_t N, int64_t K, float* y,
                 int64_t ldy) {
  kernels().gemm_nt_f32(x, ldx, T, w, ldw, N, K, y, ldy);
}

void gemm_nn_acc(const float* a, int64_t lda, int64_t T, const float* b, int64_t ldb, int64_t P, int64_t C, float* y,
                 int64_t ldy) {
  kernels().gemm_nn_acc(a, lda, T, b, ldb, P, C, y, ldy);
}

void softmax_scaled(float* x, int64_t n, float scale) { kernels().softmax_scaled(x, n, scale); }

void matmul(ThreadPool& pool, const float* x, int64_t T, const WeightView& w, const float* bias, float* y) {
  const MatmulJob job{x, T, &w, bias, y};
  matmul_batch(pool, std::span<const MatmulJob>(&job, 1));
}

void matmul_batch(ThreadPool& pool, std::span<const MatmulJob> jobs) {
  // Work items are (job, block of rows); each computes every token of its job for its rows, so
  // each weight row is read once. Items are sized from the total work (about 8 per thread, and
  // not under kMinItemWork multiply-adds) and handed out as threads come free. A packed (AMX)
  // matrix costs about the same for 1 to 10 tokens (the weights streamed once, two tiles of five
  // tokens' terms): its work counts tokens in tens, so that a few tokens do not cut it into
  // many small items, each splitting the activations again for a block of rows.
  // 12: whole 3- and 4-row tiles; 16: whole blocks of packed rows.
  constexpr int64_t kMinItemWork = 1 << 15, kRowMultiple = 12, kPackedRowMultiple = 16;
  auto token_work = [](const MatmulJob& j) { return j.w->amx ? (j.T + 9) / 10 : j.T; };
  int64_t total = 0;
  for (const auto& j : jobs) total += token_work(j) * j.w->rows * j.w->cols;
  if (total == 0) return;
  const int64_t item_work = std::max(kMinItemWork, total / (8 * pool.size()));
  struct Item {
    int job;
    int64_t row0, row1;
  };
  std::vector<Item> items;
  for (size_t ji = 0; ji < jobs.size(); ++ji) {
    const auto& j = jobs[ji];
    if (j.T <= 0 || j.w->rows <= 0) continue;
    int64_t rows = std::max<int64_t>(1, item_work / std::max<int64_t>(1, token_work(j) * j.w->cols));
    const int64_t multiple = j.w->amx ? kPackedRowMultiple : kRowMultiple;
    rows = (rows + multiple - 1) / multiple * multiple;
    for (int64_t r = 0; r < j.w->rows; r += rows) items.push_back({static_cast<int>(ji), r, std::min(j.w->rows, r + rows)});
  }
  auto run = [&](int64_t i) {
    const Item& it = items[i];
    const MatmulJob& j = jobs[it.job];
    const int64_t N = j.w->rows, K = j.w->cols;
    gemm_nt(j.x, K, j.T, j.w->slice_rows(it.row0, it.row1 - it.row0), j.y + it.row0, N);
    if (j.bias)
      for (int64_t t = 0; t < j.T; ++t)
        for (int64_t n = it.row0; n < it.row1; ++n) j.y[t * N + n] += j.bias[n];
  };
  if (items.size() == 1 || total < 2 * kMinItemWork) {
    for (size_t i = 0; i < items.size(); ++i) run(static_cast<int64_t>(i));
    return;
  }
  pool.run_tasks(static_cast<int64_t>(items.size()), run);
}

void rmsnorm(const float* x, const float* weight, int64_t n, float eps, float* y) {
  // Like the reference: mean of squares in float32, x * rsqrt(mean + eps), then times the weight.
  float ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = weight[i] * (x[i] * inv);
}

void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void softmax(float* x, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = std::max(m, x[i]);
  float s = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    s += x[i];
  }
  float inv = 1.0f / s;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

double measure_read_bandwidth(ThreadPool& pool, int64_t bytes) {
  const int64_t n = bytes / 4;
  std::vector<float> buf(n, 1.0f);
  std::vector<float> sums(pool.size() * 16, 0.0f);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(n, [&](int64_t b, int64_t e) {
      float s = kernels().dot_f32(buf.data() + b, buf.data() + b, e - b);
      sums[(b * pool.size() / n) * 16] += s;
    }, 1 << 16);
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(bytes) / sec / 1e9);
  }
  return best;
}

}  // namespace ghostline::cpu
