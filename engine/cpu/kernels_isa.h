// The kernel entry points that have one implementation per ISA (portable in kernels.cpp, AVX2 in
// kernels_avx2.cpp). Internal to engine/cpu.
//
// The gemm kernels reduce every output in one fixed order, whatever the number of tokens, the
// tile shapes or the thread that runs it:
//   gemm_nt: eight lanes, lane j summing x[k] * w[k] for k = j, j + 8, ... in ascending k
//            (fused multiply-add in AVX2, multiply then add in the portable code), the lanes then
//            added as ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), then the K % 8 tail;
//   gemm_nn: each output its own chain over p ascending.
// The AVX-512 gemm_nt has an order of its own (kernels_avx512.cpp), fixed the same way: blocks of
// 32 columns, sixteen lanes, lane i summing its two columns of each block (bf16: 2i then 2i + 1;
// f32 / f16: i then 16 + i) over the blocks in ascending order, the lanes added as l_i + l_(i+8)
// and then in the order above, then the K % 32 tail. Its gemm_nn gives the AVX2 bits.
// So a token's result never depends on the other tokens of its batch: a forward over k tokens
// gives the same bits as k forwards over one (speculative verification relies on it).
#pragma once

#include <cstdint>

namespace ghostline::cpu::isa {

// y[t * ldy + n] = dot(x[t * ldx + 0 .. K), w[n * ldw + 0 .. K)) for t < T, n < N.
template <class W>
using GemmNt = void (*)(const float* x, int64_t ldx, int64_t T, const W* w, int64_t ldw, int64_t N, int64_t K, float* y,
                        int64_t ldy);

struct Kernels {
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  GemmNt<float> gemm_nt_f32;
  GemmNt<uint16_t> gemm_nt_bf16;
  GemmNt<uint16_t> gemm_nt_f16;
  // y[t * ldy + c] += sum over p < P of a[t * lda + p] * b[p * ldb + c], for t < T, c < C.
  void (*gemm_nn_acc)(const float* a, int64_t lda, int64_t T, const float* b, int64_t ldb, int64_t P, int64_t C, float* y,
                      int64_t ldy);
  // x[i] = exp(scale * x[i] - max) / sum over the n values (attention probabilities).
  void (*softmax_scaled)(float* x, int64_t n, float scale);
  void (*bf16_to_f32)(const uint16_t* in, float* out, int64_t n);
  void (*f16_to_f32)(const uint16_t* in, float* out, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);
};

const Kernels& portable();
// Null when this build has no AVX2 kernels.
const Kernels* avx2();
// The AVX2 set with AVX-512 matrix kernels; null when this build has none.
const Kernels* avx512();

}  // namespace ghostline::cpu::isa
