// Decode-step fusions. rmsnorm_router: the norm after attention and the router logits in one
// kernel (the product before the experts needs both; one launch and one round trip less).
#include <algorithm>

#include "kernels/common.cuh"
#include "kernels/decode_fused.h"

namespace ghostline::kernels {

namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kPre = 16;  // float4 of a router row each lane loads before the wait (2048 floats a row)

// Block (b, t): row t's norm (the residual_rmsnorm_kernel order: thread i holds elements
// i, i + 512, ...; block_sum), then router rows b * 16 + warp. Block 0 of the row writes h.
template <int kMaxPerThread>
__global__ void __launch_bounds__(kThreads) rmsnorm_router_kernel(const float* __restrict__ x, const float* __restrict__ delta,
                                                                  const float* __restrict__ w, float eps, float* __restrict__ h, int D,
                                                                  const float* __restrict__ router, int E, float* __restrict__ logits) {
  extern __shared__ float4 smem4[];
  float* hs = reinterpret_cast<float*>(smem4);  // [D]
  __shared__ float scratch[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int t = blockIdx.y, e = blockIdx.x * kWarps + warp;
  const float* wr = router + static_cast<int64_t>(min(e, E - 1)) * D;
  float4 pre[kPre];
#pragma unroll
  for (int j = 0; j < kPre; ++j) {
    const int k = 4 * (lane + 32 * j);
    pre[j] = k < D ? __ldg(reinterpret_cast<const float4*>(wr + k)) : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  grid_wait();
  const float* xr = x + static_cast<int64_t>(t) * D;
  const float* dr = delta + static_cast<int64_t>(t) * D;
  float v[kMaxPerThread];
#pragma unroll
  for (int i = 0; i < kMaxPerThread; ++i) {
    const int idx = threadIdx.x + i * kThreads;
    v[i] = idx < D ? xr[idx] + dr[idx] : 0.0f;
  }
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < kMaxPerThread; ++i) {
    const int idx = threadIdx.x + i * kThreads;
    if (idx < D) ss += v[i] * v[i];
  }
  ss = block_sum(ss, scratch);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
  float* hr = h + static_cast<int64_t>(t) * D;
#pragma unroll
  for (int i = 0; i < kMaxPerThread; ++i) {
    const int idx = threadIdx.x + i * kThreads;
    if (idx < D) {
      const float y = w[idx] * (v[i] * inv);
      hs[idx] = y;
      if (blockIdx.x == 0) hr[idx] = y;
    }
  }
  __syncthreads();
  float acc = 0.0f;
#pragma unroll
  for (int j = 0; j < kPre; ++j) {
    const int k = 4 * (lane + 32 * j);
    if (k < D) {
      const float4 a = pre[j], b = *reinterpret_cast<const float4*>(hs + k);
      acc = fmaf(a.x, b.x, acc), acc = fmaf(a.y, b.y, acc), acc = fmaf(a.z, b.z, acc), acc = fmaf(a.w, b.w, acc);
    }
  }
  for (int k = 4 * (lane + 32 * kPre); k < D; k += 128) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(wr + k)), b = *reinterpret_cast<const float4*>(hs + k);
    acc = fmaf(a.x, b.x, acc), acc = fmaf(a.y, b.y, acc), acc = fmaf(a.z, b.z, acc), acc = fmaf(a.w, b.w, acc);
  }
  acc = warp_sum(acc);
  if (lane == 0 && e < E) logits[static_cast<int64_t>(t) * E + e] = acc;
}

bool aligned(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

bool rmsnorm_router_fits(const float* x, const float* delta, int D, const float* router) {
  return D > 0 && D <= kThreads * 16 && D % 4 == 0 && aligned(x) && aligned(delta) && aligned(router);
}

void rmsnorm_router(const float* x, const float* delta, const float* w, float eps, float* h, int T, int D, const float* router, int E,
                    float* logits, cudaStream_t s) {
  if (T <= 0 || E <= 0) return;
  if (!rmsnorm_router_fits(x, delta, D, router)) {
    check_launch(cudaErrorInvalidValue, __FILE__, __LINE__);
    return;
  }
  const dim3 grid((E + kWarps - 1) / kWarps, T);
  const size_t smem = sizeof(float) * static_cast<size_t>(D);
  if (D <= kThreads * 4) launch(rmsnorm_router_kernel<4>, grid, dim3(kThreads), smem, s, x, delta, w, eps, h, D, router, E, logits);
  else if (D <= kThreads * 8) launch(rmsnorm_router_kernel<8>, grid, dim3(kThreads), smem, s, x, delta, w, eps, h, D, router, E, logits);
  else launch(rmsnorm_router_kernel<16>, grid, dim3(kThreads), smem, s, x, delta, w, eps, h, D, router, E, logits);
}

}  // namespace ghostline::kernels
