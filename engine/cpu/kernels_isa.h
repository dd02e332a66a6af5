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
// The AMX gemm_nt (bf16 weights packed at load) has its own order too (kernels_amx.cpp): three
// bf16 terms per activation, two chains over the even and odd 32-column blocks, then fixed sums.
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
  // gemm_nt over bf16 weights repacked by amx_pack_bf16 (N rows, K % 32 == 0); null in the sets
  // that have no such kernel (every one but amx()).
  void (*gemm_nt_bf16_packed)(const float* x, int64_t ldx, int64_t T, const uint16_t* packed, int64_t N, int64_t K, float* y,
                              int64_t ldy);
};

const Kernels& portable();
// Null when this build has no AVX2 kernels.
const Kernels* avx2();
// The AVX2 set with AVX-512 matrix kernels; null when this build has none.
const Kernels* avx512();
// The AVX-512 set with the AMX product over packed bf16 weights (kernels_amx.cpp); null when this
// build has none.
const Kernels* amx();
// Whether this CPU has AMX-TILE, AMX-BF16 and AVX512-BF16 and the kernel lets this process use
// the tile state (asked once, process-wide).
bool amx_usable();
// Values in the packed copy of a [rows, cols] bf16 matrix (rows rounded up to 16).
int64_t amx_packed_size(int64_t rows, int64_t cols);
// w [rows, cols] (cols % 32 == 0) in the AMX kernel's tile order (kernels_amx.cpp) into out.
void amx_pack_bf16(const uint16_t* w, int64_t rows, int64_t cols, uint16_t* out);

}  // namespace ghostline::cpu::isa
