// AVX2 + FMA + F16C versions of the inner kernels. This file alone is compiled with those ISA
// flags (and without floating-point contraction: every fused multiply-add is written out);
// kernels.cpp calls into it only after cpuid says the CPU has them.
//
// gemm_nt tiles R weight rows x TT tokens of 8-lane accumulators, the rows converted to float32
// in registers once per 8 columns and used by every token of the tile: up to 12 accumulators +
// 3-4 row vectors in the 16 ymm registers. Tokens go in groups of four, so a weight row is read
// from memory once per call (the other groups find it in L1); this is what makes a forward over
// a few tokens cost little more than over one. The reduction order is fixed (kernels_isa.h).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "engine/cpu/kernels_isa.h"
#include "engine/cpu/simd_reduce.h"

#define GHOSTLINE_UNROLL _Pragma("GCC unroll 16")

namespace ghostline::cpu::isa {
namespace {

float scalar_bf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
float scalar_f16(uint16_t h) { return _cvtsh_ss(h); }

// Weight loaders: eight consecutive weights as float32, and one.
struct LoadF32 {
  using T = float;
  static __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
  static float load1(const float* p) { return *p; }
};
struct LoadBf16 {
  using T = uint16_t;
  static __m256 load8(const uint16_t* p) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static float load1(const uint16_t* p) { return scalar_bf16(*p); }
};
struct LoadF16 {
  using T = uint16_t;
  static __m256 load8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static float load1(const uint16_t* p) { return scalar_f16(*p); }
};

float dot_f32(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; ++i) s = fma1(a[i], b[i], s);
  return s;
}

// y[t * ldy + r] = dot(x_t, w_r) for R rows and TT tokens.
template <class L, int R, int TT>
inline void nt_tile(const float* x, int64_t ldx, const typename L::T* w, int64_t ldw, int64_t K, float* y, int64_t ldy) {
  __m256 acc[R][TT];
  GHOSTLINE_UNROLL for (int r = 0; r < R; ++r) GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) acc[r][t] = _mm256_setzero_ps();
  const int64_t K8 = K & ~int64_t{7};
  for (int64_t k = 0; k < K8; k += 8) {
    __m256 wv[R];
    GHOSTLINE_UNROLL for (int r = 0; r < R; ++r) {
      wv[r] = L::load8(w + r * ldw + k);
      // The rows two tiles on: the hardware prefetcher alone leaves a few-token step waiting
      // on L3 (10-15% of a 16k x 256 bf16 matmul at 2-4 tokens).
      _mm_prefetch(reinterpret_cast<const char*>(w + (r + 2 * R) * ldw + k), _MM_HINT_T0);
    }
    GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) {
      const __m256 xv = _mm256_loadu_ps(x + t * ldx + k);
      GHOSTLINE_UNROLL for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  GHOSTLINE_UNROLL for (int r = 0; r < R; ++r) GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) {
    float s = hsum(acc[r][t]);
    for (int64_t k = K8; k < K; ++k) s = fma1(x[t * ldx + k], L::load1(w + r * ldw + k), s);
    y[t * ldy + r] = s;
  }
}

// One tile of R rows against every token, four tokens at a time: the rows stay in L1 between
// the groups.
template <class L, int R>
inline void nt_rows(const float* x, int64_t ldx, int64_t T, const typename L::T* w, int64_t ldw, int64_t K, float* y,
                    int64_t ldy) {
  int64_t t = 0;
  // Groups of four, but 3 + 2 rather than 4 + 1 at the end: a one-token group converts the rows
  // again for a single multiply-add each.
  for (; T - t >= 4 && T - t != 5; t += 4) nt_tile<L, R, 4>(x + t * ldx, ldx, w, ldw, K, y + t * ldy, ldy);
  if (T - t == 5) {
    nt_tile<L, R, 3>(x + t * ldx, ldx, w, ldw, K, y + t * ldy, ldy);
    t += 3;
  }
  switch (T - t) {
    case 3: nt_tile<L, R, 3>(x + t * ldx, ldx, w, ldw, K, y + t * ldy, ldy); break;
    case 2: nt_tile<L, R, 2>(x + t * ldx, ldx, w, ldw, K, y + t * ldy, ldy); break;
    case 1: nt_tile<L, R, 1>(x + t * ldx, ldx, w, ldw, K, y + t * ldy, ldy); break;
    default: break;
  }
}

template <class L>
void gemm_nt(const float* x, int64_t ldx, int64_t T, const typename L::T* w, int64_t ldw, int64_t N, int64_t K, float* y,
             int64_t ldy) {
  int64_t n = 0;
  if (T <= 2) {  // few accumulators per row: four rows per tile
    for (; n + 4 <= N; n += 4) nt_rows<L, 4>(x, ldx, T, w + n * ldw, ldw, K, y + n, ldy);
  } else {       // up to 3 x 4 accumulators
    for (; n + 3 <= N; n += 3) nt_rows<L, 3>(x, ldx, T, w + n * ldw, ldw, K, y + n, ldy);
  }
  for (; n < N; ++n) nt_rows<L, 1>(x, ldx, T, w + n * ldw, ldw, K, y + n, ldy);
}

// y[t][c .. c + 8 CC) += sum_p a[t][p] * b[p][c .. c + 8 CC) for TT tokens.
template <int TT, int CC>
inline void nn_tile(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t P, float* y, int64_t ldy) {
  __m256 acc[TT][CC];
  GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) GHOSTLINE_UNROLL for (int c = 0; c < CC; ++c) acc[t][c] = _mm256_loadu_ps(y + t * ldy + 8 * c);
  for (int64_t p = 0; p < P; ++p) {
    __m256 bv[CC];
    GHOSTLINE_UNROLL for (int c = 0; c < CC; ++c) bv[c] = _mm256_loadu_ps(b + p * ldb + 8 * c);
    GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) {
      const __m256 av = _mm256_broadcast_ss(a + t * lda + p);
      GHOSTLINE_UNROLL for (int c = 0; c < CC; ++c) acc[t][c] = _mm256_fmadd_ps(av, bv[c], acc[t][c]);
    }
  }
  GHOSTLINE_UNROLL for (int t = 0; t < TT; ++t) GHOSTLINE_UNROLL for (int c = 0; c < CC; ++c) _mm256_storeu_ps(y + t * ldy + 8 * c, acc[t][c]);
}

template <int TT>
inline void nn_cols(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t P, int64_t C, float* y, int64_t ldy) {
  int64_t c = 0;
  for (; c + 24 <= C; c += 24) nn_tile<TT, 3>(a, lda, b + c, ldb, P, y + c, ldy);
  for (; c + 8 <= C; c += 8) nn_tile<TT, 1>(a, lda, b + c, ldb, P, y + c, ldy);
  for (; c < C; ++c)
    for (int t = 0; t < TT; ++t) {
      float s = y[t * ldy + c];
      for (int64_t p = 0; p < P; ++p) s = fma1(a[t * lda + p], b[p * ldb + c], s);
      y[t * ldy + c] = s;
    }
}

void gemm_nn_acc(const float* a, int64_t lda, int64_t T, const float* b, int64_t ldb, int64_t P, int64_t C, float* y,
                 int64_t ldy) {
  int64_t t = 0;
  for (; t + 4 <= T; t += 4) nn_cols<4>(a + t * lda, lda, b, ldb, P, C, y + t * ldy, ldy);
  for (; t < T; ++t) nn_cols<1>(a + t * lda, lda, b, ldb, P, C, y + t * ldy, ldy);
}

// exp(x) for x <= 0 (arguments below -87.3 give exp(-87.3), about 1e-38): x = n ln2 + r with
// |r| <= ln2 / 2, e^r by its Taylor series to r^7 (error under 2e-8 relative), times 2^n.
inline __m256 exp_nonpositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.33654f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

void softmax_scaled(float* x, int64_t n, float scale) {
  if (n <= 0) return;
  const __m256 sv = _mm256_set1_ps(scale);
  __m256 mv = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), sv);
    _mm256_storeu_ps(x + i, v);
    mv = _mm256_max_ps(mv, v);
  }
  float m = -INFINITY;
  for (; i < n; ++i) {
    x[i] *= scale;
    m = std::max(m, x[i]);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, mv);
  for (float l : lanes) m = std::max(m, l);
  const __m256 mb = _mm256_set1_ps(m);
  __m256 sum = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + i), mb));
    _mm256_storeu_ps(x + i, e);
    sum = _mm256_add_ps(sum, e);
  }
  float s = hsum(sum);
  if (i < n) {  // the tail through the same exp, in one masked-off vector
    alignas(32) float tail[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t j = i; j < n; ++j) tail[j - i] = x[j] - m;
    _mm256_store_ps(tail, exp_nonpositive(_mm256_load_ps(tail)));
    for (int64_t j = i; j < n; ++j) {
      x[j] = tail[j - i];
      s += x[j];
    }
  }
  const __m256 inv = _mm256_set1_ps(1.0f / s);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  for (; i < n; ++i) x[i] *= 1.0f / s;
}

void bf16_to_f32(const uint16_t* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, LoadBf16::load8(in + i));
  for (; i < n; ++i) out[i] = scalar_bf16(in[i]);
}
void f16_to_f32(const uint16_t* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, LoadF16::load8(in + i));
  for (; i < n; ++i) out[i] = scalar_f16(in[i]);
}

void axpy(float a, const float* x, float* y, int64_t n) {
  __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] = fma1(a, x[i], y[i]);
}

const Kernels kAvx2 = {dot_f32,        gemm_nt<LoadF32>, gemm_nt<LoadBf16>, gemm_nt<LoadF16>, gemm_nn_acc,
                       softmax_scaled, bf16_to_f32,      f16_to_f32,        axpy,        nullptr};

}  // namespace

const Kernels* avx2() { return &kAvx2; }

}  // namespace ghostline::cpu::isa
