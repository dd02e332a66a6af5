// isa_probe: the backend's bf16 products by instruction set, on the tied 16k x 256 lm_head of
// the embedded model, one thread, T = 1 .. 16 tokens:
//   avx512  the AVX-512 gemm_nt (float32 activations, bf16 weights widened, FMA);
//   dpbf16  AVX512_BF16 VDPBF16PS with the activations rounded to bf16 (half the instructions
//           of float32 FMA, but not the backend's numbers: a probe of the rate only);
//   amx     the backend's AMX gemm_nt (engine/cpu/kernels_amx.cpp: three bf16 terms per
//           activation, the weights packed once); the last column: how far from avx512.
// Each is the fastest of --reps calls with the weights warm in the caches (as in a decode loop,
// where the 21 MB model stays in L3).
//
//   isa_probe [--reps N]
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/cpu/kernels.h"

// GCC 12's AVX-512 headers fill the unused part of an extract with _mm*_undefined_*(), which
// -W(maybe-)uninitialized reports at every inlined use (as in engine/cpu/kernels_avx512.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

constexpr int N = 16384, K = 256, KB = K / 32;

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
[[maybe_unused]] float from_bf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---- VDPBF16PS: y[t][n] = sum_k xb[t][k] * w[n][k], lanes over k pairs, R rows x TT tokens.
template <int R, int TT>
__attribute__((target("avx512f,avx512bf16"))) void dp_tile(const uint16_t* x, const uint16_t* w, float* y, int ldy) {
  __m512 acc[R][TT];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_setzero_ps();
  for (int k = 0; k < K; k += 32) {
    __m512i wv[R];
    for (int r = 0; r < R; ++r) wv[r] = _mm512_loadu_si512(w + r * K + k);
    for (int t = 0; t < TT; ++t) {
      const __m512i xv = _mm512_loadu_si512(x + t * K + k);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], (__m512bh)xv, (__m512bh)wv[r]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

__attribute__((target("avx512f,avx512bf16"))) void dp_gemm(const uint16_t* x, int T, const uint16_t* w, float* y) {
  if (T == 1) {
    for (int n = 0; n < N; n += 8) dp_tile<8, 1>(x, w + static_cast<int64_t>(n) * K, y + n, N);
    return;
  }
  for (int n = 0; n < N; n += 4) {
    int t = 0;
    for (; T - t >= 4; t += 4) dp_tile<4, 4>(x + t * K, w + static_cast<int64_t>(n) * K, y + t * N + n, N);
    for (; t < T; ++t) dp_tile<4, 1>(x + t * K, w + static_cast<int64_t>(n) * K, y + t * N + n, N);
  }
}

template <class F>
double best_ms(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 200;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--reps") reps = std::max(1, std::atoi(argv[i + 1]));
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<uint16_t> w(static_cast<size_t>(N) * K);
  for (auto& v : w) v = to_bf16(0.05f * nd(rng));
  std::vector<float> x(16 * K), y(16 * N), ref(16 * N);
  for (auto& v : x) v = nd(rng);
  std::vector<uint16_t> xb(x.size());
  for (size_t i = 0; i < x.size(); ++i) xb[i] = to_bf16(x[i]);
  const ghostline::cpu::WeightView view{w.data(), ghostline::cpu::WType::BF16, N, K};
  const bool dp = __builtin_cpu_supports("avx512bf16");
  ghostline::cpu::WeightView packed_view = view;
  const bool amx = ghostline::cpu::force_kernel_isa("amx");
  const ghostline::cpu::PackedBuffer packed = amx ? ghostline::cpu::pack_for_amx(packed_view) : nullptr;
  ghostline::cpu::force_kernel_isa("avx512");
  std::printf("lm_head %d x %d bf16, one thread, fastest of %d, ms\n", N, K, reps);
  std::printf("   T   avx512   dpbf16      amx   amx max rel. diff\n");
  for (int T : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16}) {
    ghostline::cpu::force_kernel_isa("avx512");
    const double base = best_ms(reps, [&] { ghostline::cpu::gemm_nt(x.data(), K, T, view, ref.data(), N); });
    const double d = dp ? best_ms(reps, [&] { dp_gemm(xb.data(), T, w.data(), y.data()); }) : -1;
    double a = -1, diff = 0;
    if (amx) {
      ghostline::cpu::force_kernel_isa("amx");
      a = best_ms(reps, [&] { ghostline::cpu::gemm_nt(x.data(), K, T, packed_view, y.data(), N); });
      for (int i = 0; i < T * N; ++i) diff = std::max(diff, std::abs(static_cast<double>(y[i]) - ref[i]) / (1 + std::abs(ref[i])));
    }
    std::printf("%4d %8.3f %8.3f %8.3f   %.1e\n", T, base, d, a, diff);
  }
  ghostline::cpu::force_kernel_isa("");
  if (!dp || !amx) std::printf("(-1: this CPU lacks %s)\n", !dp ? "AVX512_BF16" : "AMX-BF16 (or the OS its tile state)");
  return 0;
}
