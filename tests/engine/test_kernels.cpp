// The CPU kernels against plain double-precision loops, for each weight dtype, with every kernel
// set this CPU has (AMX, AVX-512, AVX2, portable); the gemm kernels' batch invariance.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/cpu/kernels.h"

using namespace ghostline::cpu;

namespace {

// Every kernel set; the ones this CPU cannot run are skipped.
constexpr const char* kIsas[] = {"amx", "avx512", "avx2", "portable"};

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>(u >> 16);
}

void check_matmul(WType type, int64_t T, int64_t N, int64_t K) {
  std::mt19937 rng(42);
  std::normal_distribution<float> nd;
  std::vector<float> x(T * K), wf(N * K), bias(N), y(T * N);
  for (auto& v : x) v = nd(rng);
  for (auto& v : bias) v = nd(rng);
  std::vector<uint16_t> wh(N * K);
  for (int64_t i = 0; i < N * K; ++i) {
    float f = nd(rng);
    if (type == WType::BF16) {
      wh[i] = to_bf16(f);
      wf[i] = bf16_to_f32(wh[i]);
    } else if (type == WType::F16) {
      // Round-trip through a value exactly representable in f16: small integers / 64.
      float q = std::round(f * 64) / 64;
      wf[i] = q;
      uint32_t u;
      std::memcpy(&u, &q, 4);
      // Exact conversion for these values (normal range).
      int exp = static_cast<int>((u >> 23) & 0xff) - 127 + 15;
      uint16_t h = static_cast<uint16_t>(((u >> 16) & 0x8000u) | (q == 0 ? 0 : (exp << 10) | ((u >> 13) & 0x3ffu)));
      wh[i] = h;
      REQUIRE(f16_to_f32(h) == q);
    } else {
      wf[i] = f;
    }
  }
  WeightView w{type == WType::F32 ? static_cast<const void*>(wf.data()) : wh.data(), type, N, K};
  const PackedBuffer packed = pack_for_amx(w);  // under the AMX kernels (bf16, K % 32 == 0)
  ThreadPool pool(2);
  matmul(pool, x.data(), T, w, bias.data(), y.data());
  double worst = 0;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double ref = bias[n];
      for (int64_t k = 0; k < K; ++k) ref += static_cast<double>(x[t * K + k]) * wf[n * K + k];
      worst = std::max(worst, std::abs(ref - y[t * N + n]) / (1.0 + std::abs(ref)));
    }
  INFO("type " << static_cast<int>(type) << " T=" << T << " N=" << N << " K=" << K << " isa " << kernel_isa());
  CHECK(worst < 1e-5);
}

}  // namespace

TEST_CASE("matmul matches a double-precision loop for f32, bf16 and f16 weights, every ISA") {
  for (const char* isa : kIsas) {
    if (!force_kernel_isa(isa)) continue;  // this CPU lacks it
    for (WType t : {WType::F32, WType::BF16, WType::F16}) {
      check_matmul(t, 1, 37, 67);
      check_matmul(t, 2, 64, 128);
      check_matmul(t, 9, 45, 100);
      check_matmul(t, 7, 50, 256);
      check_matmul(t, 23, 40, 64);
    }
  }
  force_kernel_isa("");
}

TEST_CASE("gemm_nt: a token's outputs are the same bits alone or among others, any T, every ISA") {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  for (const char* isa : kIsas) {
    if (!force_kernel_isa(isa)) continue;  // this CPU lacks it
    for (int64_t K : {8, 67, 160, 256})
      for (int64_t T = 1; T <= 13; ++T) {  // every token tiling: 12 x 1, 6 x 2, 4 x 3 ... 4 x 5, 4 + 4 + 5
        const int64_t N = 29;
        std::vector<float> x(T * K), wf(N * K);
        std::vector<uint16_t> wh(N * K);
        for (auto& v : x) v = nd(rng);
        for (int64_t i = 0; i < N * K; ++i) {
          wh[i] = to_bf16(nd(rng));
          wf[i] = bf16_to_f32(wh[i]);
        }
        for (WType type : {WType::F32, WType::BF16}) {
          WeightView w{type == WType::F32 ? static_cast<const void*>(wf.data()) : wh.data(), type, N, K};
          const PackedBuffer packed = pack_for_amx(w);
          std::vector<float> all(T * N), one(N);
          gemm_nt(x.data(), K, T, w, all.data(), N);
          for (int64_t t = 0; t < T; ++t) {
            gemm_nt(x.data() + t * K, K, 1, w, one.data(), N);
            INFO("K=" << K << " T=" << T << " t=" << t << " type " << static_cast<int>(type) << " isa " << kernel_isa());
            CHECK(std::memcmp(one.data(), all.data() + t * N, N * sizeof(float)) == 0);
          }
          // Rows in any split give the same bits too (packed weights: at a multiple of 16 rows).
          std::vector<float> split(T * N);
          const int64_t cut = w.amx ? 16 : 5;
          gemm_nt(x.data(), K, T, w.slice_rows(0, cut), split.data(), N);
          gemm_nt(x.data(), K, T, w.slice_rows(cut, N - cut), split.data() + cut, N);
          CHECK(std::memcmp(split.data(), all.data(), all.size() * sizeof(float)) == 0);
        }
      }
  }
  force_kernel_isa("");
}

TEST_CASE("AMX gemm_nt: float32 products exactly, any token count or row split the same bits") {
  if (!force_kernel_isa("amx")) return;  // this CPU (or OS, or compiler) has no AMX
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  std::uniform_real_distribution<float> unit(1.0f, 2.0f);
  for (int64_t K : {32, 64, 96, 256, 768}) {
    const int64_t N = 50, maxT = 31;  // N: three blocks of 16 rows and a partial one
    std::vector<float> x(maxT * K);
    for (auto& v : x) v = nd(rng) * std::exp2(static_cast<float>(static_cast<int>(rng() % 17) - 8));  // 2^-8 .. 2^8
    std::vector<uint16_t> wh(N * K);
    for (auto& v : wh) v = to_bf16(nd(rng));
    // Row 0: w = (1, -1, 0, ...) and tokens whose first two activations agree in their top bits,
    // so the result a - b lives in the low 16 bits of a and b: two bf16 terms per activation
    // would lose it.
    for (int64_t k = 0; k < K; ++k) wh[k] = 0;
    wh[0] = to_bf16(1.0f);
    wh[1] = to_bf16(-1.0f);
    for (int64_t t = 0; t < maxT; ++t) {
      x[t * K] = unit(rng);
      x[t * K + 1] = x[t * K] + static_cast<float>(static_cast<int>(rng() % 2001) - 1000) * std::exp2(-23.0f);
    }
    WeightView w{wh.data(), WType::BF16, N, K};
    const PackedBuffer packed = pack_for_amx(w);
    REQUIRE(packed);
    std::vector<float> one(maxT * N);
    for (int64_t t = 0; t < maxT; ++t) gemm_nt(x.data() + t * K, K, 1, w, one.data() + t * N, N);
    double worst = 0;
    for (int64_t t = 0; t < maxT; ++t) {
      INFO("K=" << K << " t=" << t);
      CHECK(one[t * N] == x[t * K] - x[t * K + 1]);  // exact (Sterbenz)
      for (int64_t n = 0; n < N; ++n) {
        double ref = 0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double p = static_cast<double>(x[t * K + k]) * bf16_to_f32(wh[n * K + k]);
          ref += p;
          mag += std::abs(p);
        }
        worst = std::max(worst, std::abs(one[t * N + n] - ref) / mag);
      }
    }
    INFO("K=" << K << " worst error / sum |x w| = " << worst);
    CHECK(worst < 2e-6);
    for (int64_t T : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 24, 31}) {  // one, two and three groups of five
      std::vector<float> all(T * N, -1.0f);
      gemm_nt(x.data(), K, T, w, all.data(), N);
      INFO("K=" << K << " T=" << T);
      CHECK(std::memcmp(all.data(), one.data(), all.size() * sizeof(float)) == 0);
      std::vector<float> split(T * N, -1.0f);
      gemm_nt(x.data(), K, T, w.slice_rows(0, 32), split.data(), N);
      gemm_nt(x.data(), K, T, w.slice_rows(32, N - 32), split.data() + 32, N);
      CHECK(std::memcmp(split.data(), one.data(), split.size() * sizeof(float)) == 0);
      ThreadPool pool(2);
      std::vector<float> pooled(T * N, -1.0f);
      matmul(pool, x.data(), T, w, nullptr, pooled.data());
      CHECK(std::memcmp(pooled.data(), one.data(), pooled.size() * sizeof(float)) == 0);
    }
  }
  force_kernel_isa("");
}

TEST_CASE("gemm_nn_acc accumulates a . b over p in order, matching a double-precision loop") {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd;
  for (const char* isa : kIsas) {
    if (!force_kernel_isa(isa)) continue;  // this CPU lacks it
    const int64_t T = 6, P = 21, C = 43;
    std::vector<float> a(T * P), b(P * C), y0(T * C);
    for (auto& v : a) v = nd(rng);
    for (auto& v : b) v = nd(rng);
    for (auto& v : y0) v = nd(rng);
    std::vector<float> y = y0;
    gemm_nn_acc(a.data(), P, T, b.data(), C, P, C, y.data(), C);
    double worst = 0;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) {
        double ref = y0[t * C + c];
        for (int64_t p = 0; p < P; ++p) ref += static_cast<double>(a[t * P + p]) * b[p * C + c];
        worst = std::max(worst, std::abs(ref - y[t * C + c]) / (1.0 + std::abs(ref)));
      }
    CHECK(worst < 1e-5);
    // Split over p and over tokens: the same bits.
    std::vector<float> z = y0;
    gemm_nn_acc(a.data(), P, T, b.data(), C, 8, C, z.data(), C);
    for (int64_t t = 0; t < T; ++t) gemm_nn_acc(a.data() + t * P + 8, P, 1, b.data() + 8 * C, C, P - 8, C, z.data() + t * C, C);
    CHECK(std::memcmp(z.data(), y.data(), y.size() * sizeof(float)) == 0);
  }
  force_kernel_isa("");
}

TEST_CASE("rmsnorm, softmax, silu") {
  std::vector<float> x = {0.5f, -1.25f, 2.0f, 3.5f, -0.75f}, w = {1.0f, 0.5f, 2.0f, -1.0f, 1.5f}, y(5);
  rmsnorm(x.data(), w.data(), 5, 1e-6f, y.data());
  double ss = 0;
  for (float v : x) ss += static_cast<double>(v) * v;
  double inv = 1.0 / std::sqrt(ss / 5 + 1e-6);
  for (int i = 0; i < 5; ++i) CHECK(y[i] == doctest::Approx(w[i] * x[i] * inv).epsilon(1e-6));
  std::vector<float> s = x;
  softmax(s.data(), 5);
  double z = 0;
  for (float v : x) z += std::exp(static_cast<double>(v));
  for (int i = 0; i < 5; ++i) CHECK(s[i] == doctest::Approx(std::exp(static_cast<double>(x[i])) / z).epsilon(1e-6));
  std::vector<float> g = x, u = w;
  silu_mul(g.data(), u.data(), 5);
  for (int i = 0; i < 5; ++i) CHECK(g[i] == doctest::Approx(x[i] / (1 + std::exp(-static_cast<double>(x[i]))) * w[i]).epsilon(1e-6));
}

TEST_CASE("softmax_scaled matches a double-precision softmax, every ISA") {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 8.0f);
  for (const char* isa : kIsas) {
    if (!force_kernel_isa(isa)) continue;  // this CPU lacks it
    for (int64_t n : {1, 7, 8, 37, 600}) {
      std::vector<float> x(n);
      for (auto& v : x) v = nd(rng);
      if (n > 2) x[1] = -1e4f;  // far below the max: exp underflows
      const float scale = 0.37f;
      std::vector<float> y = x;
      softmax_scaled(y.data(), n, scale);
      double m = -1e300, z = 0;
      for (float v : x) m = std::max(m, static_cast<double>(v * scale));
      for (float v : x) z += std::exp(static_cast<double>(v * scale) - m);
      double worst = 0;
      for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(std::exp(static_cast<double>(x[i] * scale) - m) / z - y[i]));
      INFO("n=" << n << " isa " << kernel_isa());
      CHECK(worst < 1e-6);
    }
  }
  force_kernel_isa("");
}

TEST_CASE("thread pool: run_tasks runs every task once") {
  ThreadPool pool(3);
  for (int rep = 0; rep < 200; ++rep) {
    std::vector<std::atomic<int>> hits(1 + rep % 17);
    pool.run_tasks(static_cast<int64_t>(hits.size()), [&](int64_t i) { hits[i]++; });
    for (auto& h : hits) REQUIRE(h.load() == 1);
  }
}

TEST_CASE("thread pool covers every index exactly once, repeatedly") {
  ThreadPool pool(3);
  for (int rep = 0; rep < 200; ++rep) {
    std::vector<int> hits(1000 + rep, 0);
    pool.parallel_for(static_cast<int64_t>(hits.size()), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    }, 7);
    for (int h : hits) REQUIRE(h == 1);
  }
}
