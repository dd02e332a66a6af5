// Device-side helpers shared by the kernels: weight loads that widen bf16 / f32 to float32,
// warp reductions, and the launch helper that adds programmatic dependent launch (sm_90).
// Internal to kernels/ (the public entry points are in kernels.h).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/kernels.h"

namespace ghostline::kernels {

using bf16 = __nv_bfloat16;

// Every kernel starts with this: wait until the kernel before it in the stream has finished
// and its writes are visible (a no-op without programmatic dependent launch), then let the
// next kernel's blocks be scheduled as ours retire (they wait in their own grid_wait).
__device__ __forceinline__ void grid_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total.
// `scratch` holds 32 floats of shared memory; the call contains __syncthreads.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < n_warps ? scratch[lane] : 0.0f;
  return warp_sum(t);
}

// Offset in the paged cache of position `pos` of the sequence whose block table is `table`.
__device__ __forceinline__ int64_t slot_offset(const KvCache& kv, const int32_t* table, int pos) {
  const int32_t block = table[pos / kv.block_size];
  return static_cast<int64_t>(block) * kv.block_stride + static_cast<int64_t>(pos % kv.block_size) * kv.kv_dim;
}

// Positions per split for a token with n positions: n spread over the splits, but at least
// min_per_split, so that short contexts use fewer splits (less to merge).
__device__ __forceinline__ int split_length(int n, const Attention& a) {
  return max(max(a.min_per_split, 1), (n + a.n_splits - 1) / a.n_splits);
}

// Flash-decoding merge, one warp: the weights of up to 64 splits of one head (lane holds splits
// lane and lane + 32). Split s of the partials wrote its running max and sum at
// part_ml[((base + s) * G + head) * 2 + {0, 1}]; its weight is exp(max_s - M) (M the largest max
// of the splits with a non-zero sum; 0 for empty splits and those past S) and `total` is the sum
// over the warp of weight × sum, the softmax denominator.
struct SplitWeights {
  float w[2];
  float total;
};
__device__ __forceinline__ SplitWeights split_weights(const float* part_ml, int64_t base, int G, int head, int S, int lane) {
  float m[2], l[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int s = lane + 32 * i;
    m[i] = -INFINITY, l[i] = 0.0f;
    if (s < S) {
      const int64_t idx = ((base + s) * G + head) * 2;
      l[i] = part_ml[idx + 1];
      if (l[i] > 0.0f) m[i] = part_ml[idx];
    }
  }
  const float M = warp_max(fmaxf(m[0], m[1]));
  SplitWeights r;
  r.w[0] = l[0] > 0.0f ? expf(m[0] - M) : 0.0f;
  r.w[1] = l[1] > 0.0f ? expf(m[1] - M) : 0.0f;
  r.total = warp_sum(r.w[0] * l[0] + r.w[1] * l[1]);
  return r;
}

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(bf16 v) { return __bfloat162float(v); }
template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 from_float<bf16>(float v) { return __float2bfloat16_rn(v); }

// Eight consecutive weights widened to float32. The pointer must be 16-byte aligned.
__device__ __forceinline__ void load8(const bf16* p, float (&w)[8]) {
  const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
  const uint32_t words[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    w[2 * i] = __uint_as_float(words[i] << 16);
    w[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
  }
}
__device__ __forceinline__ void load8(const float* p, float (&w)[8]) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(p));
  const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
  w[0] = a.x, w[1] = a.y, w[2] = a.z, w[3] = a.w, w[4] = b.x, w[5] = b.y, w[6] = b.z, w[7] = b.w;
}
// Eight activations (float32, 16-byte aligned).
__device__ __forceinline__ void load8_act(const float* p, float (&x)[8]) {
  const float4 a = *reinterpret_cast<const float4*>(p);
  const float4 b = *(reinterpret_cast<const float4*>(p) + 1);
  x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
}

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The skinny products' block rows (kernels/skinny.cu, kernels/skinny_mma.cu; A: their arguments).
// MoE modes: the expert of block row blockIdx.y (false past *n_active: no expert), its weights
// and bias, and its rows [row_begin, row_begin + n_rows) of the routing lists.
template <class A, class WT>
__device__ __forceinline__ bool block_expert(const A& a, const WT*& W, const float*& bias, int& row_begin, int& n_rows) {
  if (static_cast<int>(blockIdx.y) >= *a.n_active) return false;
  const int e = a.active[blockIdx.y];
  W += e * a.w_batch;
  if (bias) bias += e * a.bias_batch;
  row_begin = a.offset[e];
  n_rows = a.offset[e + 1] - row_begin;
  return true;
}
// Plain mode: batch item blockIdx.y's activations, outputs and bias.
template <class A>
__device__ __forceinline__ void block_batch_item(const A& a, const float*& X, float*& Y, const float*& bias) {
  const int64_t b = blockIdx.y;
  X += b * a.x_batch;
  Y += b * a.y_batch;
  if (bias) bias += b * a.bias_batch;
}

// SiLU as the reference computes it in float32 (the experts' gate).
__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }

// The multiprocessor count of the current device (cached per process).
int sm_count();
// Whether the current device is compute capability 9.0 (cached per device).
bool device_is_sm90();

// Launches `kernel` on `stream`, with the programmatic-stream-serialization attribute when PDL
// is on (see set_pdl), and checks the launch.
template <typename... KArgs, typename... Args>
void launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  if (pdl()) {
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  }
  cudaEvent_t t0 = timing_start(stream);
  check_launch(cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...), __FILE__, __LINE__);
  if (t0) timing_stop(t0, reinterpret_cast<const void*>(kernel), nullptr, stream);
}

}  // namespace ghostline::kernels
