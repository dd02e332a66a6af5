// Row-major cuBLAS products: a row-major C[M, N] is the column-major C^T[N, M] = op(B) · A^T,
// so B goes first with the dimensions swapped.
#include "kernels/blas.h"

#include <string>

namespace ghostline::kernels {

namespace {
thread_local const char* g_label = nullptr;
}  // namespace

GemmLabel::GemmLabel(const char* label) : prev(g_label) { g_label = label; }
GemmLabel::~GemmLabel() { g_label = prev; }

void gemm(cublasHandle_t handle, int M, int N, int K, const void* A, int64_t lda, const void* B, int64_t ldb, bool b_is_nk,
          DType dt, float* C, int64_t ldc, float alpha, float beta, const GemmBatch& batch) {
  if (M <= 0 || N <= 0 || K <= 0 || batch.count <= 0) return;
  const cudaDataType t = dt == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F;
  const cublasOperation_t op_b = b_is_nk ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasStatus_t st;
  cudaStream_t stream = nullptr;
  cublasGetStream(handle, &stream);
  cudaEvent_t t0 = timing_start(stream);
  if (batch.count == 1) {
    st = cublasGemmEx(handle, op_b, CUBLAS_OP_N, N, M, K, &alpha, B, t, static_cast<int>(ldb), A, t, static_cast<int>(lda), &beta, C,
                      CUDA_R_32F, static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  } else {
    st = cublasGemmStridedBatchedEx(handle, op_b, CUBLAS_OP_N, N, M, K, &alpha, B, t, static_cast<int>(ldb), batch.stride_b, A, t,
                                    static_cast<int>(lda), batch.stride_a, &beta, C, CUDA_R_32F, static_cast<int>(ldc),
                                    batch.stride_c, batch.count, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  }
  if (t0) timing_stop(t0, nullptr, g_label ? g_label : batch.count == 1 ? "cublas gemm" : "cublas gemm (batched)", stream);
  if (st != CUBLAS_STATUS_SUCCESS) {
    // Reported through the same channel as launch errors, with cuBLAS's own status name.
    check_launch(cudaErrorUnknown, (std::string(__FILE__) + " (cuBLAS " + cublasGetStatusName(st) + ")").c_str(), __LINE__);
  }
}

void gemm_bf16_out(cublasHandle_t handle, int M, int N, int K, const void* A, int64_t lda, const void* B, int64_t ldb, bool b_is_nk,
                   void* C, int64_t ldc, const GemmBatch& batch) {
  if (M <= 0 || N <= 0 || K <= 0 || batch.count <= 0) return;
  const float alpha = 1.0f, beta = 0.0f;
  const cublasOperation_t op_b = b_is_nk ? CUBLAS_OP_T : CUBLAS_OP_N;
  cudaStream_t stream = nullptr;
  cublasGetStream(handle, &stream);
  cudaEvent_t t0 = timing_start(stream);
  const cublasStatus_t st =
      batch.count == 1
          ? cublasGemmEx(handle, op_b, CUBLAS_OP_N, N, M, K, &alpha, B, CUDA_R_16BF, static_cast<int>(ldb), A, CUDA_R_16BF,
                         static_cast<int>(lda), &beta, C, CUDA_R_16BF, static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT)
          : cublasGemmStridedBatchedEx(handle, op_b, CUBLAS_OP_N, N, M, K, &alpha, B, CUDA_R_16BF, static_cast<int>(ldb), batch.stride_b, A,
                                       CUDA_R_16BF, static_cast<int>(lda), batch.stride_a, &beta, C, CUDA_R_16BF, static_cast<int>(ldc),
                                       batch.stride_c, batch.count, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (t0) timing_stop(t0, nullptr, g_label ? g_label : "cublas gemm (bf16 out)", stream);
  if (st != CUBLAS_STATUS_SUCCESS)
    check_launch(cudaErrorUnknown, (std::string(__FILE__) + " (cuBLAS " + cublasGetStatusName(st) + ")").c_str(), __LINE__);
}

}  // namespace ghostline::kernels
