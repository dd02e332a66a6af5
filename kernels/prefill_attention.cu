// Fused causal prefill attention on the tensor cores (see prefill.h): a block takes 64 or 128
// query rows of one head (16 per warp, their bf16 query fragments in registers or shared memory)
// and walks the key tiles that those rows can see, 32 or 64 keys at a time, double-buffered in
// shared memory by cp.async. Per tile: S = Q K^T (mma.sync), the causal mask on the diagonal tiles, an online
// softmax in registers (exp2 of pre-scaled scores), and O += P V with P re-packed from the score
// registers as the A operand. Scores never leave registers; the output is normalised once.
// Blocks are launched longest rows first (the causal triangle's big tiles start early).
#include <algorithm>
#include <cstdlib>
#include <string>

#include "kernels/common.cuh"
#include "kernels/mma.cuh"
#include "kernels/prefill.h"

namespace ghostline::kernels {

namespace {

// Queries wider than 128 (MLA's 192) stay in shared memory, read by ldmatrix at each k-step:
// as register fragments they pushed the kernel past 255 registers (spills). The key and value
// copies keep consecutive threads on consecutive 16 bytes (copy_rows): two threads per row with
// contiguous halves ran 1.8x slower (H200, 2026-11-29).
// 128-row blocks keep them there too (their registers go to twice the blocks).
template <int DK, int BQ>
constexpr bool kQInSmem = DK > 128 || BQ > 64;

template <int DK, int DV, int kBQ, int kBK>
struct FlashSmem {
  static constexpr int kStrideK = DK + 8, kStrideV = DV + 8;  // bf16 per row: +16 bytes, so ldmatrix rows fall in distinct banks
  static constexpr int kKBytes = kBK * kStrideK * 2, kVBytes = kBK * kStrideV * 2;
  static constexpr int kStage = kKBytes + kVBytes;
  static constexpr int kQBytes = kQInSmem<DK, kBQ> ? kBQ * kStrideK * 2 : 0;  // after the two stages
  static constexpr int kBytes = 2 * kStage + kQBytes;
};

// Rows [row0, row0 + kBK) of a bf16 matrix (C 16-byte chunks a row, row stride ld) into shared
// rows dst_stride bytes apart: C consecutive threads copy one row's consecutive chunks (whole
// sectors), rows past n_valid as zeros. Addresses are made per tile, not kept in registers.
template <int C, int kThreads, int kBK>
__device__ __forceinline__ void copy_rows(uint8_t* dst, int dst_stride, const bf16* src, int64_t ld, int row0, int n_valid) {
  static_assert(kThreads % C == 0 && kBK % (kThreads / C) == 0, "whole rows per pass");
  constexpr int kRows = kThreads / C;
  const int c = threadIdx.x % C, r = threadIdx.x / C;
#pragma unroll
  for (int i = 0; i < kBK / kRows; ++i) {
    const int rr = r + i * kRows, j = row0 + rr;
    const bool ok = j < n_valid;
    cp_async16(dst + rr * dst_stride + c * 16, src + static_cast<int64_t>(ok ? j : 0) * ld + c * 8, ok);
  }
}

// Query rows [q0, q0 + kBQ) of head blockIdx.y, by the whole block.
template <int DK1, int DK, int DV, int kBQ, int kBK>
__device__ __forceinline__ void flash_rows(const FlashAttention& a, int q0) {
  constexpr int kThreads = kBQ / 16 * 32, NS = kBK / 8;  // NS: n-tiles of a score tile
  using Sm = FlashSmem<DK, DV, kBQ, kBK>;
  static_assert(DK % 16 == 0 && DV % 16 == 0 && DK1 % 8 == 0 && DK1 <= DK, "head dims");
  constexpr int KS = DK / 16;  // k-steps of S = Q K^T
  constexpr int NO = DV / 8;   // n-tiles of O
  extern __shared__ __align__(16) uint8_t smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int h = blockIdx.y, hk = h / a.G;
  const bf16* k1 = static_cast<const bf16*>(a.k1) + static_cast<int64_t>(hk) * a.k1_head_stride;
  const bf16* k2 = static_cast<const bf16*>(a.k2) + static_cast<int64_t>(hk) * a.k2_head_stride;
  const bf16* vp = static_cast<const bf16*>(a.v) + static_cast<int64_t>(hk) * a.v_head_stride;

  // The warp's 16 query rows as A fragments (rows past Tn read row Tn - 1 and are never stored).
  const int row_a = q0 + warp * 16 + g, row_b = row_a + 8;
  constexpr bool q_smem = kQInSmem<DK, kBQ>;
  uint32_t qf[q_smem ? 1 : KS][4];
  uint8_t* sq = smem + 2 * Sm::kStage;
  if constexpr (q_smem) {
    // The block's 64 rows in bf16 (visible to ldmatrix after the first barrier of the key loop).
    for (int i = threadIdx.x; i < kBQ * DK / 2; i += kThreads) {
      const int r = i / (DK / 2), c = (i % (DK / 2)) * 2;
      const float2 x = *reinterpret_cast<const float2*>(a.q + static_cast<int64_t>(min(q0 + r, a.Tn - 1)) * a.ldq +
                                                        static_cast<int64_t>(h) * a.q_head_stride + c);
      *reinterpret_cast<uint32_t*>(sq + (r * Sm::kStrideK + c) * 2) = pack_bf16(x.x, x.y);
    }
  } else {
    const float* qa = a.q + static_cast<int64_t>(min(row_a, a.Tn - 1)) * a.ldq + static_cast<int64_t>(h) * a.q_head_stride;
    const float* qb = a.q + static_cast<int64_t>(min(row_b, a.Tn - 1)) * a.ldq + static_cast<int64_t>(h) * a.q_head_stride;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
      const int c = ks * 16 + 2 * t;
      const float2 x0 = *reinterpret_cast<const float2*>(qa + c), x1 = *reinterpret_cast<const float2*>(qb + c);
      const float2 x2 = *reinterpret_cast<const float2*>(qa + c + 8), x3 = *reinterpret_cast<const float2*>(qb + c + 8);
      qf[ks][0] = pack_bf16(x0.x, x0.y);
      qf[ks][1] = pack_bf16(x1.x, x1.y);
      qf[ks][2] = pack_bf16(x2.x, x2.y);
      qf[ks][3] = pack_bf16(x3.x, x3.y);
    }
  }
  // Keys this block needs: up to the position of its last valid row. Later keys load as zeros.
  const int n_keys = a.P0 + min(q0 + kBQ, a.Tn);
  const int n_tiles = (n_keys + kBK - 1) / kBK;
  auto load = [&](int kt, int buf) {
    uint8_t* sk = smem + buf * Sm::kStage;
    copy_rows<DK1 / 8, kThreads, kBK>(sk, Sm::kStrideK * 2, k1, a.ldk1, kt * kBK, n_keys);
    if constexpr (DK > DK1) copy_rows<(DK - DK1) / 8, kThreads, kBK>(sk + DK1 * 2, Sm::kStrideK * 2, k2, a.ldk2, kt * kBK, n_keys);
    copy_rows<DV / 8, kThreads, kBK>(sk + Sm::kKBytes, Sm::kStrideV * 2, vp, a.ldv, kt * kBK, n_keys);
  };

  float o[NO][4];
#pragma unroll
  for (int i = 0; i < NO; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;  // rows g and g + 8: running max (log2 units), partial sums
  const float sl2 = a.scale * 1.44269504088896341f;
  const int pos_a = a.P0 + row_a, pos_b = a.P0 + row_b;
  const int warp_first = a.P0 + q0 + warp * 16, warp_last = warp_first + 15;

  load(0, 0);
  cp_async_commit();
  for (int kt = 0; kt < n_tiles; ++kt) {
    if (kt + 1 < n_tiles) load(kt + 1, (kt + 1) & 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const uint8_t* sk = smem + (kt & 1) * Sm::kStage;
    const uint8_t* sv = sk + Sm::kKBytes;
    const int key0 = kt * kBK;
    if (key0 <= warp_last) {  // some key of the tile is visible to a row of this warp
      float s[NS][4];
#pragma unroll
      for (int i = 0; i < NS; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
      for (int ks = 0; ks < KS; ++ks) {
        uint32_t qs[4];
        if constexpr (q_smem) ldmatrix_x4(qs, sq + ((warp * 16 + (lane & 15)) * Sm::kStrideK + ks * 16 + (lane >> 4) * 8) * 2);
        const uint32_t(&qa)[4] = q_smem ? qs : qf[q_smem ? 0 : ks];
#pragma unroll
        for (int np = 0; np < NS / 2; ++np) {
          uint32_t b[4];
          const int key = np * 16 + (lane >> 4) * 8 + (lane & 7), col = ks * 16 + ((lane >> 3) & 1) * 8;
          ldmatrix_x4(b, sk + (key * Sm::kStrideK + col) * 2);
          mma_bf16(s[2 * np], qa, b[0], b[1]);
          mma_bf16(s[2 * np + 1], qa, b[2], b[3]);
        }
      }
      const bool diag = key0 + kBK - 1 > warp_first;
      float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
      for (int ni = 0; ni < NS; ++ni) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float x = s[ni][e] * sl2;
          const int key = key0 + ni * 8 + 2 * t + (e & 1);
          if (diag && key > (e < 2 ? pos_a : pos_b)) x = -INFINITY;
          s[ni][e] = x;
        }
        mx0 = fmaxf(mx0, fmaxf(s[ni][0], s[ni][1]));
        mx1 = fmaxf(mx1, fmaxf(s[ni][2], s[ni][3]));
      }
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
      const float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1);
      const float b0 = n0 == -INFINITY ? 0.0f : n0, b1 = n1 == -INFINITY ? 0.0f : n1;
      const float c0 = exp2f(m0 - b0), c1 = exp2f(m1 - b1);
      m0 = n0, m1 = n1;
      float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
      for (int ni = 0; ni < NS; ++ni) {
        s[ni][0] = exp2f(s[ni][0] - b0);
        s[ni][1] = exp2f(s[ni][1] - b0);
        s[ni][2] = exp2f(s[ni][2] - b1);
        s[ni][3] = exp2f(s[ni][3] - b1);
        sum0 += s[ni][0] + s[ni][1];
        sum1 += s[ni][2] + s[ni][3];
      }
      l0 = l0 * c0 + sum0;
      l1 = l1 * c1 + sum1;
#pragma unroll
      for (int i = 0; i < NO; ++i) o[i][0] *= c0, o[i][1] *= c0, o[i][2] *= c1, o[i][3] *= c1;
#pragma unroll
      for (int kk = 0; kk < NS / 2; ++kk) {
        const uint32_t pa[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                                pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int dp = 0; dp < DV / 16; ++dp) {
          uint32_t b[4];
          const int key = kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7), col = dp * 16 + (lane >> 4) * 8;
          ldmatrix_x4_trans(b, sv + (key * Sm::kStrideV + col) * 2);
          mma_bf16(o[2 * dp], pa, b[0], b[1]);
          mma_bf16(o[2 * dp + 1], pa, b[2], b[3]);
        }
      }
    }
    __syncthreads();
  }
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float i0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, i1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
  const int64_t off_a = static_cast<int64_t>(row_a) * a.ldo + static_cast<int64_t>(h) * a.o_head_stride + 2 * t;
  const int64_t off_b = static_cast<int64_t>(row_b) * a.ldo + static_cast<int64_t>(h) * a.o_head_stride + 2 * t;
  if (a.out_bf16) {
    bf16* ob = static_cast<bf16*>(a.out_bf16);
#pragma unroll
    for (int ni = 0; ni < NO; ++ni) {
      if (row_a < a.Tn) *reinterpret_cast<uint32_t*>(ob + off_a + ni * 8) = pack_bf16(o[ni][0] * i0, o[ni][1] * i0);
      if (row_b < a.Tn) *reinterpret_cast<uint32_t*>(ob + off_b + ni * 8) = pack_bf16(o[ni][2] * i1, o[ni][3] * i1);
    }
    return;
  }
#pragma unroll
  for (int ni = 0; ni < NO; ++ni) {
    if (row_a < a.Tn) *reinterpret_cast<float2*>(a.out + off_a + ni * 8) = make_float2(o[ni][0] * i0, o[ni][1] * i0);
    if (row_b < a.Tn) *reinterpret_cast<float2*>(a.out + off_b + ni * 8) = make_float2(o[ni][2] * i1, o[ni][3] * i1);
  }
}

// paired: block i takes query blocks nq - 1 - i and then i (the causal triangle's long and short
// rows: every block about the same work, so one wave of blocks ends together; the middle one of
// an odd count alone). Else block i takes nq - 1 - i only (longest first).
template <int DK1, int DK, int DV, int kBQ, int kBK, int kMinBlocks>
__global__ void __launch_bounds__(kBQ / 16 * 32, kMinBlocks) flash_prefill_kernel(FlashAttention a, int paired) {
  grid_wait();
  const int nq = (a.Tn + kBQ - 1) / kBQ, first = nq - 1 - static_cast<int>(blockIdx.x);
  const int passes = paired && static_cast<int>(blockIdx.x) < first ? 2 : 1;
  for (int pass = 0; pass < passes; ++pass)
    flash_rows<DK1, DK, DV, kBQ, kBK>(a, (pass == 0 ? first : static_cast<int>(blockIdx.x)) * kBQ);
}

__global__ void gather_cache_bf16_kernel(KvCache kv, int seq, bf16* dst) {
  grid_wait();
  const int i = blockIdx.x;
  const int32_t* table = kv.block_table + kv.table_offset[seq];
  const float* src = kv.layer + static_cast<int64_t>(table[i / kv.block_size]) * kv.block_stride +
                     static_cast<int64_t>(i % kv.block_size) * kv.kv_dim;
  bf16* d = dst + static_cast<int64_t>(i) * kv.kv_dim;
  for (int c = threadIdx.x * 4; c < kv.kv_dim; c += blockDim.x * 4) {
    const float4 x = *reinterpret_cast<const float4*>(src + c);
    uint2 packed;
    packed.x = pack_bf16(x.x, x.y);
    packed.y = pack_bf16(x.z, x.w);
    *reinterpret_cast<uint2*>(d + c) = packed;
  }
}

template <int DK1, int DK, int DV, int BQ, int BK, int MinBlocks>
void launch_flash(const FlashAttention& a, cudaStream_t s) {
  constexpr int bytes = FlashSmem<DK, DV, BQ, BK>::kBytes;
  auto* kernel = flash_prefill_kernel<DK1, DK, DV, BQ, BK, MinBlocks>;
  static bool raised = false;  // per instantiation
  if (!raised) {
    check_launch(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), __FILE__, __LINE__);
    raised = true;
  }
  // GHOSTLINE_FLASH_PAIRS=0: a block per query block (read at every call).
  const int paired = env_on("GHOSTLINE_FLASH_PAIRS");
  const int nq = (a.Tn + BQ - 1) / BQ;
  launch(kernel, dim3(paired ? (nq + 1) / 2 : nq, a.H), dim3(BQ / 16 * 32), bytes, s, a, paired);
}

// Tile shapes (GHOSTLINE_FLASH_TILE=BQxBK: "64x64", "128x64", "64x32", "128x32", read at every
// call; unset or anything else: the default): BQ query rows a block (a warp per 16 rows), BK keys
// a tile. 64x64 was the first kernel; 128-row blocks read each key and value tile once for twice
// the rows (half the L2 -> SM traffic), 32-key tiles halve the shared memory of the stages so
// that more blocks fit on a multiprocessor (128x32: two blocks of 8 warps, <= 128 registers).
// H200, DeepSeek-V2-Lite 2,048-token prefill, a block per query block (19b2f1b): 64x32 4.66 ms,
// 64x64 4.89, 128x32 5.05, 128x64 5.13 for the 27 layers; ncu: the SMs active only 55-70% of
// the kernel's time (the causal triangle's short blocks), hence the pairs of query blocks. With
// pairs (ed21fe6, same process): 64x64 3.37 ms, 128x64 3.35, 64x32 3.62, 128x32 3.80.
template <int DK1, int DK, int DV>
void launch_flash_tiles(const FlashAttention& a, cudaStream_t s) {
  const char* e = std::getenv("GHOSTLINE_FLASH_TILE");
  const std::string t = e ? e : "";
  if (t == "64x32") launch_flash<DK1, DK, DV, 64, 32, 1>(a, s);
  else if (t == "128x64") launch_flash<DK1, DK, DV, 128, 64, 1>(a, s);
  else if (t == "128x32") launch_flash<DK1, DK, DV, 128, 32, 2>(a, s);
  else launch_flash<DK1, DK, DV, 64, 64, 1>(a, s);  // default
}

bool aligned_bf16(const void* p, int64_t ld, int head_stride) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0 && ld % 8 == 0 && head_stride % 8 == 0;
}

}  // namespace

bool prefill_attention_supported(int dk1, int dk, int dv) {
  return (dk1 == 128 && dk == 192 && dv == 128) || (dk1 == 128 && dk == 128 && dv == 128);
}

void prefill_attention(const FlashAttention& a, cudaStream_t s) {
  if (a.Tn <= 0) return;
  const bool two = a.dk > a.dk1;
  if (!prefill_attention_supported(a.dk1, a.dk, a.dv) || a.G < 1 || a.H % a.G || !aligned_bf16(a.k1, a.ldk1, a.k1_head_stride) ||
      (two && !aligned_bf16(a.k2, a.ldk2, a.k2_head_stride)) || !aligned_bf16(a.v, a.ldv, a.v_head_stride) || a.ldq % 2 ||
      a.q_head_stride % 2 || (reinterpret_cast<uintptr_t>(a.q) & 7u) || a.ldo % 2 || a.o_head_stride % 2 ||
      (reinterpret_cast<uintptr_t>(a.out) & 7u) || (reinterpret_cast<uintptr_t>(a.out_bf16) & 3u)) {
    check_launch(cudaErrorInvalidValue, __FILE__, __LINE__);
    return;
  }
  if (a.dk == 192) launch_flash_tiles<128, 192, 128>(a, s);
  else launch_flash_tiles<128, 128, 128>(a, s);
}

void gather_cache_bf16(KvCache kv, int seq, int n, void* dst, cudaStream_t s) {
  if (n <= 0) return;
  if (kv.kv_dim % 4 || (reinterpret_cast<uintptr_t>(dst) & 7u)) {
    check_launch(cudaErrorInvalidValue, __FILE__, __LINE__);
    return;
  }
  launch(gather_cache_bf16_kernel, dim3(n), dim3(128), 0, s, kv, seq, static_cast<bf16*>(dst));
}

}  // namespace ghostline::kernels
