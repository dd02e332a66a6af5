// Prefill kernels on the tensor cores (mma.sync bf16, float32 accumulation), for steps of many
// tokens with bf16 weights:
// - fused causal attention (flash-attention style: key/value tiles in shared memory, online
//   softmax, scores never in device memory) over keys and values in bf16, for MLA (q/k 192 =
//   128 nope + 64 rope, v 128) and GQA / MHA heads of 128;
// - grouped expert products: every expert's rows in one launch (tiles of 128 rows listed on the
//   device, so the host never waits for the group sizes), gate/up with SiLU(gate) * up fused.
// Legend as in kernels.h.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernels.h"

namespace ghostline::kernels {

// ---- causal attention ------------------------------------------------------------------------

// Query row i < Tn (position P0 + i) of head h attends to keys 0 .. P0 + i of KV head h / G:
//   out[i, h] = softmax_j(scale * q[i, h] · k[j, h/G]) v[j, h/G]
// q (float32, rounded to bf16 on load): q[i * ldq + h * q_head_stride + c], c < dk.
// Keys (bf16) in up to two column ranges: c < dk1 from k1[j * ldk1 + hk * k1_head_stride + c],
// dk1 <= c < dk from k2[j * ldk2 + hk * k2_head_stride + c - dk1] (MLA: the expanded nope part
// per head, the rope part shared by the heads, k2_head_stride 0).
// Values (bf16): v[j * ldv + hk * v_head_stride + c], c < dv. Output (float32):
// out[i * ldo + h * o_head_stride + c], or in bf16 at out_bf16 (same offsets) when that is set
// (o_proj's input without a convert pass). Every bf16 row and head offset 16-byte aligned.
struct FlashAttention {
  const float* q = nullptr;
  int64_t ldq = 0;
  int q_head_stride = 0;
  const void* k1 = nullptr;
  int64_t ldk1 = 0;
  int k1_head_stride = 0;
  const void* k2 = nullptr;
  int64_t ldk2 = 0;
  int k2_head_stride = 0;
  const void* v = nullptr;
  int64_t ldv = 0;
  int v_head_stride = 0;
  float* out = nullptr;
  void* out_bf16 = nullptr;  // instead of out when set
  int64_t ldo = 0;
  int o_head_stride = 0;
  int dk1 = 0, dk = 0, dv = 0;
  int H = 1, G = 1;       // query heads, query heads per KV head
  int Tn = 0, P0 = 0;     // new query rows, positions before them
  float scale = 1.0f;
};
// Whether prefill_attention has a kernel for these head dims (dk1, dk, dv): (128, 192, 128) and
// (128, 128, 128) now; callers take another path otherwise.
bool prefill_attention_supported(int dk1, int dk, int dv);
void prefill_attention(const FlashAttention& a, cudaStream_t s);

// dst[i, :] (bf16, kv_dim values) = the cache slot of position i of sequence `seq`, i < n.
void gather_cache_bf16(KvCache kv, int seq, int n, void* dst, cudaStream_t s);

// ---- grouped expert products -----------------------------------------------------------------

// Rows per tile of the grouped products (the tile list has at most P / kGroupedRows + X entries).
constexpr int kGroupedRows = 128;
// Tiles of experts [0, X): tile i = {expert, first row, rows} (int4, last field unused) of
// expert_offset's groups, in expert order; *n_tiles = their count.
void moe_tiles(const int32_t* expert_offset, int X, int4* tiles, int32_t* n_tiles, cudaStream_t s);
int moe_max_tiles(int P, int X);

// One product per tile: rows [row0, row0 + rows) of a (bf16 [*, K], row stride lda, in expert
// order) against the weights of the tile's expert w + e * w_expert_stride (bf16 [N', K]).
//   silu: w holds gate rows [0, N) then up rows [N, 2N); out (bf16, ld ldo) = SiLU(a·gate^T + bg)
//         * (a·up^T + bu), bias [X, 2N] or null;
//   else: out (float32, or bf16 with out_bf16; ld ldo) = a·w^T + bias, w [N, K], bias [X, N] or null.
// Needs K % 8 == 0, N % 2 == 0, lda % 8 == 0 and 16-byte aligned a and w (grouped_gemm_supported).
// a_rows (the rows a holds) and experts (the weight matrices w holds) bound the Hopper kernel's
// bulk copies; with either left 0 the call takes the mma.sync kernel.
struct GroupedGemm {
  const void* a = nullptr;
  int64_t lda = 0;
  int a_rows = 0;
  int experts = 0;
  const void* w = nullptr;
  int64_t w_expert_stride = 0;
  const float* bias = nullptr;
  int N = 0, K = 0;
  bool silu = false;
  bool out_bf16 = false;  // without silu: out in bf16 instead of float32
  void* out = nullptr;
  int64_t ldo = 0;
  const int4* tiles = nullptr;
  const int32_t* n_tiles = nullptr;
  int max_tiles = 0;
};
bool grouped_gemm_supported(int N, int K);
void grouped_gemm(const GroupedGemm& g, cudaStream_t s);

// The Hopper kernel behind grouped_gemm (kernels/grouped_gemm_sm90.cu: wgmma and bulk tensor
// copies, 128 x 256 tiles): available on a compute-capability-9.0 device when the build made
// sm_90a code and GHOSTLINE_WGMMA is not "0" (read at every call). grouped_gemm_sm90 launches it
// and returns true, or returns false (nothing launched) when it is unavailable or g does not fit
// it (a_rows or experts unset, strides not 16-byte multiples).
bool grouped_wgmma_available();
bool grouped_gemm_sm90(const GroupedGemm& g, cudaStream_t s);

}  // namespace ghostline::kernels
