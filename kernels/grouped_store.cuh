// The output of the grouped expert products (kernels/grouped_gemm.cu on mma.sync,
// kernels/grouped_gemm_sm90.cu on wgmma): columns col and col + 1 of one output row, from the
// two kernels' accumulators. out is the row; bias the expert's (or null).
#pragma once

#include "kernels/common.cuh"

namespace ghostline::kernels {

// Gate/up: SiLU(gate) * up in bf16, from the gate sums g0, g1 and the up sums u0, u1 of the two
// columns (an expert's bias holds its N gate values, then its N up values).
__device__ __forceinline__ void store_silu_pair(bf16* out, const float* bias, int N, int col, float g0, float g1, float u0,
                                                float u1) {
  if (bias) g0 += bias[col], g1 += bias[col + 1], u0 += bias[N + col], u1 += bias[N + col + 1];
  *reinterpret_cast<__nv_bfloat162*>(out + col) = __floats2bfloat162_rn(silu(g0) * u0, silu(g1) * u1);
}

// Down: the two sums in float32, plus the bias.
__device__ __forceinline__ void store_pair(float* out, const float* bias, int col, float v0, float v1) {
  float2 v = make_float2(v0, v1);
  if (bias) v.x += bias[col], v.y += bias[col + 1];
  *reinterpret_cast<float2*>(out + col) = v;
}

// Down with GroupedGemm::out_bf16: the same rounded to bf16 (half the bytes to write and to read
// back in the residual norm's MoE sum).
__device__ __forceinline__ void store_pair(bf16* out, const float* bias, int col, float v0, float v1) {
  if (bias) v0 += bias[col], v1 += bias[col + 1];
  *reinterpret_cast<__nv_bfloat162*>(out + col) = __floats2bfloat162_rn(v0, v1);
}

}  // namespace ghostline::kernels
