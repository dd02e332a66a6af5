// The scalar helpers the AVX2 and AVX-512 kernel files share: the eight-lane sum in the one lane
// order every kernel uses, and a fused multiply-add of one float. Internal to engine/cpu.
//
// Internal linkage on purpose: each kernel file is compiled with its own ISA flags, and a single
// shared (external inline) copy could carry one file's instructions into the other's callers.
#pragma once

#include <immintrin.h>

namespace ghostline::cpu::isa {
namespace {

// ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}

inline float fma1(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

}  // namespace
}  // namespace ghostline::cpu::isa
