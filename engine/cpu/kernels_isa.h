// The kernel entry points that have one implementation per ISA (portable in kernels.cpp, AVX2 in
// kernels_avx2.cpp). Internal to engine/cpu.
#pragma once

#include <cstdint>

namespace ghostline::cpu::isa {

struct Kernels {
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  float (*dot_bf16)(const float* x, const uint16_t* w, int64_t n);
  float (*dot_f16)(const float* x, const uint16_t* w, int64_t n);
  // out[r] = dot(x, w + r * n) for r in [0, 4): four rows against one vector.
  void (*dot4_f32)(const float* x, const float* w, int64_t n, float* out);
  void (*bf16_to_f32)(const uint16_t* in, float* out, int64_t n);
  void (*f16_to_f32)(const uint16_t* in, float* out, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);
};

const Kernels& portable();
// Null when this build has no AVX2 kernels.
const Kernels* avx2();

}  // namespace ghostline::cpu::isa
