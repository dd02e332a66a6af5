// CPU compute kernels over float32 activations and f32 / bf16 / f16 weights.
//
// Entry points check nothing and take raw pointers and sizes (the model checked shapes at load).
// AVX2+FMA(+F16C) versions live in kernels_avx2.cpp, compiled for that ISA alone and chosen at run
// time by cpuid; a portable version runs everywhere else. Both accumulate in float32.
#pragma once

#include <cstdint>

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
  const uint8_t* row_ptr(int64_t r) const {
    return static_cast<const uint8_t*>(data) + r * cols * wtype_size(type);
  }
  WeightView slice_rows(int64_t begin, int64_t n) const { return {row_ptr(begin), type, n, cols}; }
};

// Which kernels run: "avx2" or "portable".
const char* kernel_isa();
// Forces the portable kernels (tests compare the two).
void force_portable_kernels(bool on);

// out[0..n) = row r of w converted to float32.
void row_to_f32(const WeightView& w, int64_t r, float* out);
// Dot product of a float32 vector with row r of w (n = w.cols).
float dot_row(const float* x, const WeightView& w, int64_t r);
float dot_f32(const float* a, const float* b, int64_t n);
// y += a * x
void axpy(float a, const float* x, float* y, int64_t n);

// y[T, N] = x[T, K] · w[N, K]^T (+ bias[N] when not null), split over the pool by output rows.
// x and y are dense row-major with row strides K and N.
void matmul(ThreadPool& pool, const float* x, int64_t T, const WeightView& w, const float* bias, float* y);

// y = x / rms(x) * weight (y may alias x); float32 like the reference.
void rmsnorm(const float* x, const float* weight, int64_t n, float eps, float* y);
// gate[i] = silu(gate[i]) * up[i]
void silu_mul(float* gate, const float* up, int64_t n);
// In-place softmax over n values.
void softmax(float* x, int64_t n);

// Measured read bandwidth of this machine (GB/s), reading a buffer of `bytes` over the pool.
double measure_read_bandwidth(ThreadPool& pool, int64_t bytes);

}  // namespace ghostline::cpu
