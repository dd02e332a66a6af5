// isa_probe: what other x86 matrix instructions would give the CPU backend's bf16 products, on
// the tied 16k x 256 lm_head of the embedded model, one thread, T = 1, 2, 4, 5, 8 tokens:
//   avx512  the backend's own gemm_nt (float32 activations, bf16 weights widened, FMA);
//   dpbf16  AVX512_BF16 VDPBF16PS with the activations rounded to bf16 (half the instructions
//           of float32 FMA, but not the backend's numbers: a probe of the rate only);
//   amx2    AMX TDPBF16PS with each activation split into two bf16 terms (the last column: how
//           far from the backend's float32 results), the weights repacked once into 16 x 32
//           tiles (the layout AMX loads), four output tiles at a time.
// Each is the fastest of --reps calls with the weights warm in the caches (as in a decode loop,
// where the 21 MB model stays in L3). Nothing here is used by the engine; it records why the
// backend keeps its float32 FMA kernels (README, speculative decoding).
//
//   isa_probe [--reps N]
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

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
float from_bf16(uint16_t h) {
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

// ---- AMX: weights packed [n block of 16][k block of 32][16 pair rows][16 columns][2].
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

bool amx_usable() {
  if (!__builtin_cpu_supports("amx-bf16") || !__builtin_cpu_supports("amx-tile")) return false;
  constexpr long kReqPerm = 0x1023, kXtileData = 18;  // arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
  return syscall(SYS_arch_prctl, kReqPerm, kXtileData) == 0;
}

std::vector<uint16_t> pack_amx(const std::vector<uint16_t>& w) {
  std::vector<uint16_t> p(w.size());
  for (int nb = 0; nb < N / 16; ++nb)
    for (int kb = 0; kb < KB; ++kb)
      for (int r = 0; r < 16; ++r)
        for (int c = 0; c < 16; ++c)
          for (int j = 0; j < 2; ++j)
            p[((static_cast<size_t>(nb) * KB + kb) * 16 + r) * 32 + c * 2 + j] =
                w[static_cast<size_t>(nb * 16 + c) * K + kb * 32 + 2 * r + j];
  return p;
}

__attribute__((target("amx-tile,amx-bf16,avx512f"))) void amx_gemm(const float* x, int T, const uint16_t* packed, float* y) {
  alignas(64) uint16_t a[2][KB][16][32] = {};  // the two bf16 terms of each activation
  for (int t = 0; t < T; ++t)
    for (int k = 0; k < K; ++k) {
      float v = x[t * K + k];
      for (int s = 0; s < 2; ++s) {
        uint32_t u;
        std::memcpy(&u, &v, 4);
        const uint16_t h = static_cast<uint16_t>(u >> 16);  // truncation: the rest is exact in v - h
        a[s][k / 32][t][k % 32] = h;
        v -= from_bf16(h);
      }
    }
  TileConfig cfg;
  for (int i = 0; i < 6; ++i) cfg.colsb[i] = 64, cfg.rows[i] = static_cast<uint8_t>(T);
  cfg.colsb[7] = 64, cfg.rows[7] = 16;
  _tile_loadconfig(&cfg);
  alignas(64) float c[4][16][16];
  for (int nb = 0; nb < N / 16; nb += 4) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int kb = 0; kb < KB; ++kb) {
      _tile_loadd(4, a[0][kb], 64);
      _tile_loadd(5, a[1][kb], 64);
      const uint16_t* b = packed + (static_cast<size_t>(nb) * KB + kb) * 512;
      // Tile numbers are immediates: the four output tiles written out.
      _tile_loadd(7, b, 64);
      _tile_dpbf16ps(0, 4, 7);
      _tile_dpbf16ps(0, 5, 7);
      _tile_loadd(7, b + KB * 512, 64);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(1, 5, 7);
      _tile_loadd(7, b + 2 * KB * 512, 64);
      _tile_dpbf16ps(2, 4, 7);
      _tile_dpbf16ps(2, 5, 7);
      _tile_loadd(7, b + 3 * KB * 512, 64);
      _tile_dpbf16ps(3, 4, 7);
      _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c[0], 64);
    _tile_stored(1, c[1], 64);
    _tile_stored(2, c[2], 64);
    _tile_stored(3, c[3], 64);
    for (int i = 0; i < 4; ++i)
      for (int t = 0; t < T; ++t) std::memcpy(y + static_cast<size_t>(t) * N + (nb + i) * 16, c[i][t], 64);
  }
  _tile_release();
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
  std::vector<float> x(8 * K), y(8 * N), ref(8 * N);
  for (auto& v : x) v = nd(rng);
  std::vector<uint16_t> xb(x.size());
  for (size_t i = 0; i < x.size(); ++i) xb[i] = to_bf16(x[i]);
  const ghostline::cpu::WeightView view{w.data(), ghostline::cpu::WType::BF16, N, K};
  const bool dp = __builtin_cpu_supports("avx512bf16"), amx = amx_usable();
  const std::vector<uint16_t> packed = amx ? pack_amx(w) : std::vector<uint16_t>{};
  std::printf("lm_head %d x %d bf16, one thread, fastest of %d, ms (backend kernels: %s)\n", N, K, reps,
              ghostline::cpu::kernel_isa());
  std::printf("   T   avx512   dpbf16     amx2   amx2 max rel. diff\n");
  for (int T : {1, 2, 4, 5, 8}) {
    const double base = best_ms(reps, [&] { ghostline::cpu::gemm_nt(x.data(), K, T, view, ref.data(), N); });
    const double d = dp ? best_ms(reps, [&] { dp_gemm(xb.data(), T, w.data(), y.data()); }) : -1;
    double a = -1, diff = 0;
    if (amx) {
      a = best_ms(reps, [&] { amx_gemm(x.data(), T, packed.data(), y.data()); });
      for (int i = 0; i < T * N; ++i) diff = std::max(diff, std::abs(static_cast<double>(y[i]) - ref[i]) / (1 + std::abs(ref[i])));
    }
    std::printf("%4d %8.3f %8.3f %8.3f   %.1e\n", T, base, d, a, diff);
  }
  if (!dp || !amx) std::printf("(-1: this CPU lacks %s)\n", !dp ? "AVX512_BF16" : "AMX-BF16");
  return 0;
}
