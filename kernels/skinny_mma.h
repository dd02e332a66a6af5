// Skinny products of 2..8 activation rows on tensor cores (skinny_mma.cu), for skinny.cu: the
// verification of a few drafted tokens and small batches. Internal to kernels/.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ghostline::kernels {

enum class FewMode : int { Plain = 0, GateUp = 1, Down = 2 };

// The same modes and layouts as skinny.cu's kernels (bf16 weights only):
//   Plain   y[b][t, n] = W[b][n, :] · x[b][t, :] (+ bias[b][n]), t < T, blockIdx.y = b
//   GateUp  act[row, j] = silu(gate_e[j] · h[tok]) * (up_e[j] · h[tok])   (rows by expert)
//   Down    pair_out[row, d] = down_e[d] · act[row]
// In the MoE modes grid_y expert slots (those past *n_active exit) and any number of rows per
// expert (8 per pass over the weights).
struct FewRows {
  FewMode mode = FewMode::Plain;
  const void* w = nullptr;  // bf16
  int64_t ldw = 0, w_batch = 0;
  const float* x = nullptr;
  int64_t ldx = 0, x_batch = 0;
  float* y = nullptr;
  int64_t ldy = 0, y_batch = 0;
  const float* bias = nullptr;
  int64_t bias_batch = 0;
  int N = 0, K = 0, T = 0;
  const int32_t* active = nullptr;
  const int32_t* n_active = nullptr;
  const int32_t* offset = nullptr;
  const int32_t* sorted_pair = nullptr;
  int KP = 1;
  // MoE modes: one expert slot (index 0) that every token uses, a dense MLP: its rows are the
  // T tokens in order, no routing list is read and the weights are requested before the wait.
  bool one_slot = false;
  // 1: one row tile of 16 a warp, 4 windows of 32 a step; 2: two tiles sharing the activations,
  // 2 windows; 3: weights through a shared-memory ring (cp.async); 0: GHOSTLINE_SKINNY_MMA=1|3
  // or else 2.
  int variant = 0;
};

// Whether the shape can go to skinny_mma: K % 8 == 0, 16-byte aligned weight and activation
// rows. GHOSTLINE_SKINNY_MMA=0 turns the path off (read at every call, for comparisons).
bool skinny_mma_fits(const FewRows& a);
bool skinny_mma_on();
void skinny_mma(const FewRows& a, int grid_y, cudaStream_t s);

}  // namespace ghostline::kernels
