// cuBLAS for the large products (prefill projections, experts grouped by expert, attention
// scores and values), row-major like the rest of the engine: C[M, N] = alpha * A[M, K] · B^T
// (B stored [N, K], the weight layout) or A · B (B stored [K, N]), float32 output and
// accumulation; A and B both bf16 or both float32 (float32 runs in full FP32, no TF32).
#pragma once

#include <cublas_v2.h>

#include "kernels/kernels.h"

namespace ghostline::kernels {

struct GemmBatch {
  int count = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // elements between consecutive problems
};

// Records a failure like a launch error (see take_error).
void gemm(cublasHandle_t handle, int M, int N, int K, const void* A, int64_t lda, const void* B, int64_t ldb, bool b_is_nk,
          DType dt, float* C, int64_t ldc, float alpha = 1.0f, float beta = 0.0f, const GemmBatch& batch = {});

// As gemm with bf16 A and B, C written in bf16 (float32 accumulation, rounded once): operands
// of a later tensor-core kernel (the prefill attention's expanded keys and values, the always-on
// experts' gate/up and down in prefill).
void gemm_bf16_out(cublasHandle_t handle, int M, int N, int K, const void* A, int64_t lda, const void* B, int64_t ldb, bool b_is_nk,
                   void* C, int64_t ldc, const GemmBatch& batch = {});

// While one lives, the per-kernel timing (set_kernel_timing) names this thread's products
// `label` (a string literal) instead of "cublas gemm": the benchmark's prefill table by phase.
struct GemmLabel {
  const char* prev;
  explicit GemmLabel(const char* label);
  ~GemmLabel();
  GemmLabel(const GemmLabel&) = delete;
  GemmLabel& operator=(const GemmLabel&) = delete;
};

}  // namespace ghostline::kernels
