// One token's experts (kernels.h: moe_gate_up_one / moe_down_one), the arguments both of their
// kernels take, and the Hopper kernels that stream the weights through a shared-memory ring
// (moe_stream.cu). Internal to kernels/.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ghostline::kernels {

// Slot p < KP of the token: expert pair_expert[p] (-1: none) with weights w + e * w_batch.
//   gate/up: w [X, 2N, K] (gate rows, then up rows), x = h [K], y[p, n] = silu(g) * u, n < N
//   down:    w [X, N, K], x = act [KP, ldx], y[pair_slot[p], n] = w_e[n] · x[p]
struct OneArgs {
  const void* w;
  int64_t w_batch;
  const float* x;
  int64_t ldx;
  float* y;
  int64_t ldy;
  const float* bias;
  int64_t bias_batch;
  int N, K;
  const int32_t* pair_expert;
  const int32_t* pair_slot;
  int n_routed, E, X, KP;
};

// The streamed kernels (bf16 weights, an sm_90 device and build): persistent blocks, one warp of
// each copying weight rows into a ring of shared-memory stages while eight warps multiply.
// They return false (nothing launched) where they do not apply and unless GHOSTLINE_MOE_STREAM=1
// (read at every call; off by default: slower than the kernels they would replace on an H200).
// GHOSTLINE_MOE_STREAM=2 makes down's requests before the launch wait use a wrong expert, so that
// tests reach the path that recovers from it; =3 fills the stages with bulk copies
// (cp.async.bulk) instead of cp.async.
bool moe_stream_gate_up(const OneArgs& a, cudaStream_t s);
bool moe_stream_down(const OneArgs& a, cudaStream_t s);
// y[n] = W[n, :] · x (+ bias[n]) for n < N, W [N, K] bf16 (rows K apart), x [K]: skinny_gemm of one
// row, the same kernel as down with one slot known before the wait (every stage requested then).
// Only with GHOSTLINE_SKINNY_STREAM=1..3 (read at every call).
bool skinny_stream(const void* w, const float* x, float* y, const float* bias, int N, int K, cudaStream_t s);

}  // namespace ghostline::kernels
