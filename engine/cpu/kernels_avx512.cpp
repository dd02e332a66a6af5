// AVX-512 (F + BW + VL) versions of the matrix kernels: gemm_nt over f32 / bf16 / f16 weights
// and gemm_nn_acc. This file alone is compiled with those ISA flags (and without floating-point
// contraction); the other entries of the kernel table are the AVX2 ones. kernels.cpp picks this
// set only after cpuid says the CPU has AVX-512 F, BW and VL as well as AVX2, FMA and F16C.
//
// gemm_nt works in blocks of 32 columns, two 16-lane vectors per block (kernels_isa.h):
//   bf16: the 32 weights are loaded as 16 pairs; a shift gives the even columns, a mask the odd
//         ones, so the conversion costs two instructions per 32 weights, and the tokens' x is
//         laid out the same way once per call (deinterleaved per block);
//   f32 / f16: columns k .. k + 15 and k + 16 .. k + 31.
// A tile is R weight rows x TT tokens of 16-lane accumulators (4 x 4, plus 8 x-vectors and 2
// weight vectors, in the 32 zmm registers; 12 x 1 and 6 x 2 for one and two tokens). The tied
// 16k x 256 bf16 lm_head on one thread here: 8 tokens 0.85 -> 0.70 ms, 9 tokens 1.08 -> 0.78 ms
// against the AVX2 kernels; one or two tokens are bound by reading the weights (~0.30 ms) either way.
#include <immintrin.h>

#include <utility>
#include <vector>

#include "engine/cpu/kernels_isa.h"
#include "engine/cpu/simd_reduce.h"

// GCC 12's AVX-512 headers fill the unused part of a cast or extract with _mm*_undefined_*(),
// which -W(maybe-)uninitialized reports at every inlined use.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define GHOSTLINE_UNROLL _Pragma("GCC unroll 16")

namespace ghostline::cpu::isa {
namespace {

// The sixteen lanes: l_i + l_(i+8), then the AVX2 order ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
inline float hsum16(__m512 v) {
  const __m256 lo8 = _mm512_castps512_ps256(v);
  const __m256 hi8 = _mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, 0x4E));  // lanes 8..15
  return hsum(_mm256_add_ps(lo8, hi8));
}

// hsum16 of sixteen vectors at once, with the same additions: lane 4 (i % 4) + i / 4 of the
// result is hsum16(v[i]) bit for bit. Four rounds each add two shuffled halves of the previous
// vectors (l_i + l_(i+8), then within each 8: s_j + s_(j+4), then t_0 + t_2 and t_1 + t_3, then
// u_0 + u_1): 45 instructions for sixteen sums rather than about 8 x 16 one by one.
inline __m512 hsum16x16(const __m512 v[16]) {
  __m512 a[8], b[4], c[2];
  GHOSTLINE_UNROLL for (int p = 0; p < 8; ++p)  // halves: [v_2p lanes 0-7 + 8-15 | v_2p+1 the same]
    a[p] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0x44), _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0xEE));
  GHOSTLINE_UNROLL for (int q = 0; q < 4; ++q)  // 128-bit chunk k: v_4q+k, s_j + s_(j+4)
    b[q] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * q], a[2 * q + 1], 0x88), _mm512_shuffle_f32x4(a[2 * q], a[2 * q + 1], 0xDD));
  GHOSTLINE_UNROLL for (int m = 0; m < 2; ++m)  // chunk k: (u0, u1) of v_8m+k, then of v_8m+4+k
    c[m] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * m], b[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(b[2 * m], b[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  // chunk k: v_k, v_4+k, v_8+k, v_12+k
  return _mm512_add_ps(_mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// Weight loaders: a block of 32 weights from p as two vectors (which columns each lane holds
// is kPairs: lane i = columns 2i, 2i + 1, or i, 16 + i), and one weight.
struct LoadF32 {
  using T = float;
  static constexpr bool kPairs = false;
  static constexpr int kLines = 2;  // cache lines per block
  static void load32(const float* p, __m512& a, __m512& b) {
    a = _mm512_loadu_ps(p);
    b = _mm512_loadu_ps(p + 16);
  }
  static float load1(const float* p) { return *p; }
};
struct LoadBf16 {
  using T = uint16_t;
  static constexpr bool kPairs = true;
  static constexpr int kLines = 1;
  static void load32(const uint16_t* p, __m512& a, __m512& b) {
    const __m512i v = _mm512_loadu_si512(p);
    a = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    b = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
  }
  static float load1(const uint16_t* p) {
    uint32_t u = static_cast<uint32_t>(*p) << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
  }
};
struct LoadF16 {
  using T = uint16_t;
  static constexpr bool kPairs = false;
  static constexpr int kLines = 1;
  static void load32(const uint16_t* p, __m512& a, __m512& b) {
    a = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    b = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16)));
  }
  static float load1(const uint16_t* p) { return _cvtsh_ss(*p); }
};

// y[t * ldy + r] = dot(x_t, w_r) for R rows and TT tokens; xp is x in the loader's block layout
// (ldxp apart; the first K32 columns), x the original (for the tail).
template <class L, int R, int TT>
inline void nt_tile(const float* xp, int64_t ldxp, const float* x, int64_t ldx, const typename L::T* w, int64_t ldw, int64_t K,
                    float* y, int64_t ldy) {
  __m512 acc[R][TT];
  GHOSTLINE_UNROLL for (int r = 0; r < R; ++r) GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_setzero_ps();
  const int64_t K32 = K & ~int64_t{31};
  for (int64_t k = 0; k < K32; k += 32) {
    if constexpr (TT > R) {
      // More tokens than rows (a wide tile for 5-8 tokens): the rows' weights stay in registers
      // and each token's x passes through, so that 2R + R x TT + 2 vectors are live.
      __m512 a[R], b[R];
      GHOSTLINE_UNROLL for (int r = 0; r < R; ++r) {
        L::load32(w + r * ldw + k, a[r], b[r]);
        GHOSTLINE_UNROLL for (int i = 0; i < L::kLines; ++i)
          _mm_prefetch(reinterpret_cast<const char*>(w + (r + 2 * R) * ldw + k) + 64 * i, _MM_HINT_T0);
      }
      GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) {
        const __m512 xa = _mm512_loadu_ps(xp + t * ldxp + k), xb = _mm512_loadu_ps(xp + t * ldxp + k + 16);
        GHOSTLINE_UNROLL for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(a[r], xa, acc[r][t]);
        GHOSTLINE_UNROLL for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(b[r], xb, acc[r][t]);
      }
      continue;
    }
    __m512 xa[TT], xb[TT];
    GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) {
      xa[t] = _mm512_loadu_ps(xp + t * ldxp + k);
      xb[t] = _mm512_loadu_ps(xp + t * ldxp + k + 16);
    }
    GHOSTLINE_UNROLL for (int r = 0; r < R; ++r) {
      __m512 a, b;
      L::load32(w + r * ldw + k, a, b);
      // The rows two tiles on (the hardware prefetcher alone leaves a few-token step waiting).
      GHOSTLINE_UNROLL for (int i = 0; i < L::kLines; ++i)
        _mm_prefetch(reinterpret_cast<const char*>(w + (r + 2 * R) * ldw + k) + 64 * i, _MM_HINT_T0);
      GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_fmadd_ps(a, xa[t], acc[r][t]);
      GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_fmadd_ps(b, xb[t], acc[r][t]);
    }
  }
  if constexpr (R * TT >= 8) {  // the sums sixteen at a time (the same bits as one by one)
    if (R == 4 && TT == 4 && K32 == K) {  // 128-bit chunk t: token t's four rows
      __m512 v[16];
      GHOSTLINE_UNROLL for (int i = 0; i < 16; ++i) v[i] = acc[i / TT][i % TT];
      const __m512 all = hsum16x16(v);
      GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) _mm_storeu_ps(y + t * ldy, _mm512_extractf32x4_ps(all, t & 3));
      return;
    }
    constexpr int kGroups = (R * TT + 15) / 16;
    alignas(64) float sums[16 * kGroups];
    GHOSTLINE_UNROLL for (int g = 0; g < kGroups; ++g) {
      __m512 v[16];
      GHOSTLINE_UNROLL for (int i = 0; i < 16; ++i) v[i] = 16 * g + i < R * TT ? acc[(16 * g + i) / TT][(16 * g + i) % TT] : _mm512_setzero_ps();
      _mm512_store_ps(sums + 16 * g, hsum16x16(v));
    }
    GHOSTLINE_UNROLL for (int r = 0; r < R; ++r) GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) {
      const int i = r * TT + t, j = i % 16;
      float s = sums[16 * (i / 16) + 4 * (j % 4) + j / 4];
      for (int64_t k = K32; k < K; ++k) s = fma1(x[t * ldx + k], L::load1(w + r * ldw + k), s);
      y[t * ldy + r] = s;
    }
  } else {
    GHOSTLINE_UNROLL for (int r = 0; r < R; ++r) GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) {
      float s = hsum16(acc[r][t]);
      for (int64_t k = K32; k < K; ++k) s = fma1(x[t * ldx + k], L::load1(w + r * ldw + k), s);
      y[t * ldy + r] = s;
    }
  }
}

// R rows against every token: tiles of four tokens, the last five to eight as 5 | 4 + 2 | 4 + 3 |
// 4 + 4 and the last one to three alone (4 rows x 5 tokens in one pass: ~20% less than 3 + 2).
template <class L, int R>
inline void nt_rows(const float* xp, int64_t ldxp, const float* x, int64_t ldx, int64_t T, const typename L::T* w, int64_t ldw,
                    int64_t K, float* y, int64_t ldy) {
  int64_t t = 0;
  auto at = [&](int64_t tt) { return std::pair{xp + tt * ldxp, x + tt * ldx}; };
  for (; T - t > 8 || T - t == 4; t += 4) {
    auto [p, q] = at(t);
    nt_tile<L, R, 4>(p, ldxp, q, ldx, w, ldw, K, y + t * ldy, ldy);
  }
  if (T - t == 5) {
    auto [p, q] = at(t);
    nt_tile<L, R, 5>(p, ldxp, q, ldx, w, ldw, K, y + t * ldy, ldy);
    return;
  }
  if (T - t > 5) {
    auto [p, q] = at(t);
    nt_tile<L, R, 4>(p, ldxp, q, ldx, w, ldw, K, y + t * ldy, ldy);
    t += 4;
  }
  auto [p, q] = at(t);
  switch (T - t) {
    case 4: nt_tile<L, R, 4>(p, ldxp, q, ldx, w, ldw, K, y + t * ldy, ldy); break;
    case 3: nt_tile<L, R, 3>(p, ldxp, q, ldx, w, ldw, K, y + t * ldy, ldy); break;
    case 2: nt_tile<L, R, 2>(p, ldxp, q, ldx, w, ldw, K, y + t * ldy, ldy); break;
    case 1: nt_tile<L, R, 1>(p, ldxp, q, ldx, w, ldw, K, y + t * ldy, ldy); break;
    default: break;
  }
}

template <class L, int R>
int64_t nt_row_tiles(const float* xp, int64_t ldxp, const float* x, int64_t ldx, int64_t T, const typename L::T* w, int64_t ldw,
                     int64_t N, int64_t K, float* y, int64_t ldy) {
  int64_t n = 0;
  for (; n + R <= N; n += R) nt_rows<L, R>(xp, ldxp, x, ldx, T, w + n * ldw, ldw, K, y + n, ldy);
  return n;
}

template <class L>
void gemm_nt(const float* x, int64_t ldx, int64_t T, const typename L::T* w, int64_t ldw, int64_t N, int64_t K, float* y,
             int64_t ldy) {
  const int64_t K32 = K & ~int64_t{31};
  const float* xp = x;
  int64_t ldxp = ldx;
  if (L::kPairs && K32 > 0) {  // x in pair order: per block, the even columns then the odd ones
    thread_local std::vector<float> buf;
    buf.resize(static_cast<size_t>(T * K32));
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < K32; k += 32) {
        const __m512 lo = _mm512_loadu_ps(x + t * ldx + k), hi = _mm512_loadu_ps(x + t * ldx + k + 16);
        _mm512_storeu_ps(buf.data() + t * K32 + k, _mm512_permutex2var_ps(lo, even, hi));
        _mm512_storeu_ps(buf.data() + t * K32 + k + 16, _mm512_permutex2var_ps(lo, odd, hi));
      }
    xp = buf.data();
    ldxp = K32;
  }
  int64_t n = 0;
  // One token: twelve rows (twelve independent sums to hide the multiply-add latency); two: six;
  // more: four rows x four (or five) tokens. Rows left over go four, then one at a time.
  if (T == 1) n = nt_row_tiles<L, 12>(xp, ldxp, x, ldx, T, w, ldw, N, K, y, ldy);
  else if (T == 2) n = nt_row_tiles<L, 6>(xp, ldxp, x, ldx, T, w, ldw, N, K, y, ldy);
  n += nt_row_tiles<L, 4>(xp, ldxp, x, ldx, T, w + n * ldw, ldw, N - n, K, y + n, ldy);
  n += nt_row_tiles<L, 1>(xp, ldxp, x, ldx, T, w + n * ldw, ldw, N - n, K, y + n, ldy);
}

// y[t][c ..] += sum_p a[t][p] * b[p][c ..] for TT tokens and CC vectors of 16 columns (the
// last one masked to `mask`): each output its own chain over p ascending, as the AVX2 kernel.
template <int TT, int CC>
inline void nn_tile(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t P, float* y, int64_t ldy, __mmask16 mask) {
  __m512 acc[TT][CC];
  GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) GHOSTLINE_UNROLL for (int c = 0; c < CC; ++c)
    acc[t][c] = c == CC - 1 ? _mm512_maskz_loadu_ps(mask, y + t * ldy + 16 * c) : _mm512_loadu_ps(y + t * ldy + 16 * c);
  for (int64_t p = 0; p < P; ++p) {
    __m512 bv[CC];
    GHOSTLINE_UNROLL for (int c = 0; c < CC; ++c)
      bv[c] = c == CC - 1 ? _mm512_maskz_loadu_ps(mask, b + p * ldb + 16 * c) : _mm512_loadu_ps(b + p * ldb + 16 * c);
    GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) {
      const __m512 av = _mm512_set1_ps(a[t * lda + p]);
      GHOSTLINE_UNROLL for (int c = 0; c < CC; ++c) acc[t][c] = _mm512_fmadd_ps(av, bv[c], acc[t][c]);
    }
  }
  GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) GHOSTLINE_UNROLL for (int c = 0; c < CC; ++c) {
    if (c == CC - 1) _mm512_mask_storeu_ps(y + t * ldy + 16 * c, mask, acc[t][c]);
    else _mm512_storeu_ps(y + t * ldy + 16 * c, acc[t][c]);
  }
}

template <int TT>
inline void nn_cols(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t P, int64_t C, float* y, int64_t ldy) {
  int64_t c = 0;
  for (; c + 64 <= C; c += 64) nn_tile<TT, 4>(a, lda, b + c, ldb, P, y + c, ldy, 0xFFFF);
  for (; c + 16 <= C; c += 16) nn_tile<TT, 1>(a, lda, b + c, ldb, P, y + c, ldy, 0xFFFF);
  if (c < C) nn_tile<TT, 1>(a, lda, b + c, ldb, P, y + c, ldy, static_cast<__mmask16>((1u << (C - c)) - 1));
}

void gemm_nn_acc(const float* a, int64_t lda, int64_t T, const float* b, int64_t ldb, int64_t P, int64_t C, float* y,
                 int64_t ldy) {
  int64_t t = 0;
  for (; t + 4 <= T; t += 4) nn_cols<4>(a + t * lda, lda, b, ldb, P, C, y + t * ldy, ldy);
  // The last 1-3 tokens together (each b row loaded once for them; the same chains).
  if (T - t == 3) nn_cols<3>(a + t * lda, lda, b, ldb, P, C, y + t * ldy, ldy);
  else if (T - t == 2) nn_cols<2>(a + t * lda, lda, b, ldb, P, C, y + t * ldy, ldy);
  else if (T - t == 1) nn_cols<1>(a + t * lda, lda, b, ldb, P, C, y + t * ldy, ldy);
}

}  // namespace

const Kernels* avx512() {
  static const Kernels k = [] {
    Kernels s = *avx2();
    s.gemm_nt_f32 = gemm_nt<LoadF32>;
    s.gemm_nt_bf16 = gemm_nt<LoadBf16>;
    s.gemm_nt_f16 = gemm_nt<LoadF16>;
    s.gemm_nn_acc = gemm_nn_acc;
    return s;
  }();
  return &k;
}

}  // namespace ghostline::cpu::isa
