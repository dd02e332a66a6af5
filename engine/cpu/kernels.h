// CPU compute kernels over float32 activations and f32 / bf16 / f16 weights.
//
// Entry points check nothing and take raw pointers and sizes (the model checked shapes at load).
// AVX2+FMA(+F16C) versions live in kernels_avx2.cpp, compiled for that ISA alone and chosen at run
// time by cpuid; a portable version runs everywhere else. Both accumulate in float32.
//
// The gemm entry points (and matmul over them) reduce each output in a fixed order that does not
// depend on how many tokens are in the call, how they are tiled or which thread runs them
// (kernels_isa.h): a token's outputs are bit for bit the same alone or in a batch.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string_view>

#include "engine/cpu/thread_pool.h"

namespace ghostline::cpu {

enum class WType : uint8_t { F32, BF16, F16 };

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
float f16_to_f32(uint16_t h);
inline int wtype_size(WType t) { return t == WType::F32 ? 4 : 2; }

// A row-major weight matrix [rows, cols] in its stored dtype (often a view into mapped memory).
struct WeightView {
  const void* data = nullptr;
  WType type = WType::F32;
  int64_t rows = 0, cols = 0;
  // The same bf16 matrix packed for the AMX kernels (pack_for_amx), or null. The AMX kernels
  // read it for every product with this matrix; the others ignore it. A slice keeps it only
  // where it starts at a multiple of 16 rows (matmul splits packed matrices there).
  const uint16_t* amx = nullptr;
  const uint8_t* row_ptr(int64_t r) const {
    return static_cast<const uint8_t*>(data) + r * cols * wtype_size(type);
  }
  WeightView slice_rows(int64_t begin, int64_t n) const {
    return {row_ptr(begin), type, n, cols, amx && begin % 16 == 0 ? amx + begin * cols : nullptr};
  }
};

struct FreeDelete {
  void operator()(void* p) const { std::free(p); }
};
using PackedBuffer = std::unique_ptr<uint16_t[], FreeDelete>;
// When the AMX kernels are selected and w is bf16 with cols % 32 == 0: the values of w's copy in
// their tile order (rows rounded up to 16); otherwise 0.
int64_t amx_packed_values(const WeightView& w);
// w repacked into out (amx_packed_values(w) > 0 values, 64-byte aligned), w.amx pointing at it.
void pack_for_amx(WeightView& w, uint16_t* out);
// The same into a buffer of its own; null (w unchanged) where amx_packed_values(w) is 0. The
// caller keeps the buffer as long as w is used.
PackedBuffer pack_for_amx(WeightView& w);
// A 2 MiB-aligned buffer of n values, backed by huge pages where the OS grants them
// (madvise): the packed weights are streamed every step, and 4 KiB pages cost a TLB miss each.
PackedBuffer alloc_packed(int64_t n);

// Which kernels run: "amx" (the AVX-512 set, with AMX TDPBF16PS for the products over packed
// bf16 weights), "avx512" (AVX2 with AVX-512 matrix kernels), "avx2" or "portable". The best the
// CPU (and, for AMX, the OS) allows, chosen once at start-up, unless the environment names a
// lesser set (GHOSTLINE_CPU_KERNELS=avx512, avx2 or portable) or a test forces one.
const char* kernel_isa();
// Forces the portable kernels (on) or goes back to the default (off).
void force_portable_kernels(bool on);
// Forces "amx", "avx512", "avx2" or "portable" ("" = the default); false, changing nothing, when
// this CPU or build cannot run that set. Not thread-safe: tests call it between forwards. Weights
// are packed for AMX when a model is loaded under "amx" (pack_for_amx); under another set the
// packed copy is ignored, and without one the AMX set computes with the AVX-512 kernels.
bool force_kernel_isa(std::string_view isa);

// out[0..n) = row r of w converted to float32.
void row_to_f32(const WeightView& w, int64_t r, float* out);
float dot_f32(const float* a, const float* b, int64_t n);
// y += a * x
void axpy(float a, const float* x, float* y, int64_t n);

// y[t * ldy + n] = x_t . (row n of w) for t < T, n < w.rows, with x_t = x + t * ldx (w.cols long).
// On the calling thread.
void gemm_nt(const float* x, int64_t ldx, int64_t T, const WeightView& w, float* y, int64_t ldy);
// The same over float32 rows ldw floats apart: y[t * ldy + n] = x_t . w[n * ldw + 0 .. K).
void gemm_nt_f32(const float* x, int64_t ldx, int64_t T, const float* w, int64_t ldw, int64_t N, int64_t K, float* y,
                 int64_t ldy);
// y[t * ldy + c] += sum over p < P (ascending) of a[t * lda + p] * b[p * ldb + c], t < T, c < C.
void gemm_nn_acc(const float* a, int64_t lda, int64_t T, const float* b, int64_t ldb, int64_t P, int64_t C, float* y,
                 int64_t ldy);

// y[T, N] = x[T, K] · w[N, K]^T (+ bias[N] when not null), split over the pool by output rows.
// x and y are dense row-major with row strides K and N.
void matmul(ThreadPool& pool, const float* x, int64_t T, const WeightView& w, const float* bias, float* y);

// Several matmuls in one dispatch over the pool (their row blocks share the threads): the
// projections that read one input, or the experts of a MoE layer each with its own tokens.
struct MatmulJob {
  const float* x = nullptr;       // [T, K]
  int64_t T = 0;
  const WeightView* w = nullptr;  // [N, K]
  const float* bias = nullptr;    // [N] or null
  float* y = nullptr;             // [T, N]
};
void matmul_batch(ThreadPool& pool, std::span<const MatmulJob> jobs);

// y = x / rms(x) * weight (y may alias x); float32 like the reference.
void rmsnorm(const float* x, const float* weight, int64_t n, float eps, float* y);
// gate[i] = silu(gate[i]) * up[i]
void silu_mul(float* gate, const float* up, int64_t n);
// In-place softmax over n values (std::exp, as the reference; routers use it).
void softmax(float* x, int64_t n);
// In-place softmax of scale * x over n values, for attention: the AVX2 version has its own
// vectorised exp (within 2 ulp of std::exp); the same values give the same bits, whatever else
// is in the batch.
void softmax_scaled(float* x, int64_t n, float scale);

// Measured read bandwidth of this machine (GB/s), reading a buffer of `bytes` over the pool.
double measure_read_bandwidth(ThreadPool& pool, int64_t bytes);

}  // namespace ghostline::cpu
