// Grouped expert products on the tensor cores (see prefill.h). The rows of a step's (token,
// expert) pairs sit in expert order; moe_tiles cuts each expert's rows into tiles of 128 on the
// device, and one launch runs every tile against its expert's weights: no padding to the
// largest expert, no product per expert, no group sizes on the host.
//
// A block computes a 128 x 128 tile (4 warps of 64 x 64) over k-slices of 32, four stages deep
// in shared memory (cp.async, rows padded to 40 bf16 so that ldmatrix is free of bank
// conflicts). With `silu` the 128 weight rows of a block are 32 gate and 32 up rows per warp
// column for the same hidden units, so each thread holds gate and up of the same outputs and
// writes SiLU(gate) * up in bf16: the float32 gate/up matrix never exists. Blocks along x walk
// the output columns of one tile, so the tile's rows and its expert's weights are reused in L2.
// On an H100 / H200 with sm_90a code, grouped_gemm hands the call to grouped_gemm_sm90.cu.
#include <algorithm>
#include <cstdlib>

#include "kernels/common.cuh"
#include "kernels/mma.cuh"
#include "kernels/grouped_store.cuh"
#include "kernels/prefill.h"

namespace ghostline::kernels {

namespace {

constexpr int kBM = kGroupedRows;  // rows per tile
constexpr int kBK = 32;            // k per stage
constexpr int kStages = 4;
constexpr int kLd = kBK + 8;       // bf16 per shared row

// WN warps along the weight rows (64 each), 2 along the tile rows: 128 x 128 tiles with 4 warps
// (two blocks per multiprocessor), or with GHOSTLINE_GROUPED_WIDE=1 128 x 256 with 8 (one block,
// a third less traffic from L2 per product, but 10% slower on the H200, 2026-11-29).
template <int WN>
struct GemmShape {
  static constexpr int kThreads = 64 * WN, kBN = 64 * WN;
  static constexpr int kABytes = kBM * kLd * 2, kBBytes = kBN * kLd * 2;
  static constexpr int kStageBytes = kABytes + kBBytes;
  static constexpr int kSmem = kStages * kStageBytes;
};

template <bool kSilu, int WN>
__global__ void __launch_bounds__(64 * WN) grouped_gemm_kernel(GroupedGemm p) {
  using Sh = GemmShape<WN>;
  constexpr int kThreads = Sh::kThreads, kBN = Sh::kBN, kCol = kSilu ? kBN / 2 : kBN;  // output columns per block
  constexpr int kARows = kBM * 4 / kThreads, kBRows = 4;  // rows of A / B each thread copies (one 16-byte chunk each)
  grid_wait();
  const int tile = blockIdx.y;
  if (tile >= *p.n_tiles) return;
  const int4 td = p.tiles[tile];
  const int e = td.x, row0 = td.y, rows = td.z;
  const int nb = blockIdx.x;
  extern __shared__ __align__(16) uint8_t smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp / WN, wn = warp % WN, g = lane >> 2, t = lane & 3;
  const bf16* A = static_cast<const bf16*>(p.a);
  const bf16* W = static_cast<const bf16*>(p.w) + static_cast<int64_t>(e) * p.w_expert_stride;

  // Each thread copies one 16-byte chunk (column cc) of kARows rows of A and 4 rows of B per
  // stage, rows kThreads / 4 apart.
  const int cc = tid & 3;
  const bf16* a_src[kARows];
  const bf16* b_src[kBRows];
  bool a_ok[kARows], b_ok[kBRows];
#pragma unroll
  for (int i = 0; i < kARows; ++i) {
    const int r = (tid >> 2) + i * (kThreads / 4);
    a_ok[i] = r < rows;
    a_src[i] = A + static_cast<int64_t>(row0 + (a_ok[i] ? r : 0)) * p.lda + cc * 8;
  }
#pragma unroll
  for (int i = 0; i < kBRows; ++i) {
    const int r = (tid >> 2) + i * (kThreads / 4);
    int wrow;
    if (kSilu) {
      const int q = r & 63, col = nb * kCol + (r >> 6) * 32 + (q & 31);
      b_ok[i] = col < p.N;
      wrow = (q < 32 ? 0 : p.N) + col;
    } else {
      wrow = nb * kBN + r;
      b_ok[i] = wrow < p.N;
    }
    b_src[i] = W + static_cast<int64_t>(b_ok[i] ? wrow : 0) * p.K + cc * 8;
  }
  auto load = [&](int kt, int stage) {
    uint8_t* sa = smem + stage * Sh::kStageBytes;
    uint8_t* sb = sa + Sh::kABytes;
    const int k = kt * kBK;
    const bool kin = k + cc * 8 < p.K;
#pragma unroll
    for (int i = 0; i < kARows; ++i) {
      const int r = (tid >> 2) + i * (kThreads / 4);
      const bool ao = kin && a_ok[i];
      cp_async16(sa + (r * kLd + cc * 8) * 2, ao ? a_src[i] + k : a_src[i], ao);
    }
#pragma unroll
    for (int i = 0; i < kBRows; ++i) {
      const int r = (tid >> 2) + i * (kThreads / 4);
      const bool bo = kin && b_ok[i];
      cp_async16(sb + (r * kLd + cc * 8) * 2, bo ? b_src[i] + k : b_src[i], bo);
    }
  };

  float acc[4][8][4];
#pragma unroll
  for (int mi = 0; mi < 4; ++mi)
#pragma unroll
    for (int ni = 0; ni < 8; ++ni) acc[mi][ni][0] = acc[mi][ni][1] = acc[mi][ni][2] = acc[mi][ni][3] = 0.0f;

  const int KT = (p.K + kBK - 1) / kBK;
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < KT) load(st, st);
    cp_async_commit();
  }
  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    // The slot refilled now was read in the previous iteration, which every thread has left.
    const int nk = kt + kStages - 1;
    if (nk < KT) load(nk, nk % kStages);
    cp_async_commit();
    const uint8_t* sa = smem + (kt % kStages) * Sh::kStageBytes;
    const uint8_t* sb = sa + Sh::kABytes;
#pragma unroll
    for (int ks = 0; ks < kBK / 16; ++ks) {
      uint32_t af[4][4], bf[4][4];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
        ldmatrix_x4(af[mi], sa + ((wm * 64 + mi * 16 + (lane & 15)) * kLd + ks * 16 + (lane >> 4) * 8) * 2);
#pragma unroll
      for (int np = 0; np < 4; ++np)
        ldmatrix_x4(bf[np], sb + ((wn * 64 + np * 16 + (lane >> 4) * 8 + (lane & 7)) * kLd + ks * 16 + ((lane >> 3) & 1) * 8) * 2);
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          mma_bf16(acc[mi][2 * np], af[mi], bf[np][0], bf[np][1]);
          mma_bf16(acc[mi][2 * np + 1], af[mi], bf[np][2], bf[np][3]);
        }
    }
  }
  cp_async_wait<0>();

#pragma unroll
  for (int mi = 0; mi < 4; ++mi)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = wm * 64 + mi * 16 + g + half * 8;
      if (r >= rows) continue;
      const int64_t row = row0 + r;
      if (kSilu) {
        bf16* out = static_cast<bf16*>(p.out) + row * p.ldo;
        const float* bias = p.bias ? p.bias + static_cast<int64_t>(e) * 2 * p.N : nullptr;
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
          const int col = nb * kCol + wn * 32 + ni * 8 + 2 * t;
          if (col < p.N)
            store_silu_pair(out, bias, p.N, col, acc[mi][ni][2 * half], acc[mi][ni][2 * half + 1], acc[mi][ni + 4][2 * half],
                            acc[mi][ni + 4][2 * half + 1]);
        }
      } else {
        const float* bias = p.bias ? p.bias + static_cast<int64_t>(e) * p.N : nullptr;
        auto store_row = [&](auto* out) {
#pragma unroll
          for (int ni = 0; ni < 8; ++ni) {
            const int col = nb * kCol + wn * 64 + ni * 8 + 2 * t;
            if (col < p.N) store_pair(out, bias, col, acc[mi][ni][2 * half], acc[mi][ni][2 * half + 1]);
          }
        };
        if (p.out_bf16) store_row(static_cast<bf16*>(p.out) + row * p.ldo);
        else store_row(static_cast<float*>(p.out) + row * p.ldo);
      }
    }
}

// One warp: lane l takes a run of experts, a scan gives each run its first tile.
__global__ void moe_tiles_kernel(const int32_t* off, int X, int4* tiles, int32_t* n_tiles) {
  grid_wait();
  const int lane = threadIdx.x;
  const int per = (X + 31) / 32, b = lane * per, end = min(X, b + per);
  int c = 0;
  for (int e = b; e < end; ++e) c += (off[e + 1] - off[e] + kBM - 1) / kBM;
  int incl = c;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int u = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += u;
  }
  int next = incl - c;
  for (int e = b; e < end; ++e) {
    const int first = off[e], cnt = off[e + 1] - first;
    for (int r = 0; r < cnt; r += kBM) tiles[next++] = make_int4(e, first + r, min(kBM, cnt - r), 0);
  }
  if (lane == 31) *n_tiles = incl;
}

template <int WN>
void launch_grouped(const GroupedGemm& g, cudaStream_t s) {
  using Sh = GemmShape<WN>;
  static bool raised = false;  // per instantiation
  if (!raised) {
    check_launch(cudaFuncSetAttribute(grouped_gemm_kernel<true, WN>, cudaFuncAttributeMaxDynamicSharedMemorySize, Sh::kSmem), __FILE__,
                 __LINE__);
    check_launch(cudaFuncSetAttribute(grouped_gemm_kernel<false, WN>, cudaFuncAttributeMaxDynamicSharedMemorySize, Sh::kSmem), __FILE__,
                 __LINE__);
    raised = true;
  }
  const int cols = g.silu ? Sh::kBN / 2 : Sh::kBN;
  const dim3 grid((g.N + cols - 1) / cols, g.max_tiles);
  if (g.silu) launch(grouped_gemm_kernel<true, WN>, grid, dim3(Sh::kThreads), Sh::kSmem, s, g);
  else launch(grouped_gemm_kernel<false, WN>, grid, dim3(Sh::kThreads), Sh::kSmem, s, g);
}

bool wide_tiles() {
  const char* e = std::getenv("GHOSTLINE_GROUPED_WIDE");
  return e && e[0] == '1';
}

}  // namespace

int moe_max_tiles(int P, int X) { return (P + kBM - 1) / kBM + X; }

void moe_tiles(const int32_t* expert_offset, int X, int4* tiles, int32_t* n_tiles, cudaStream_t s) {
  launch(moe_tiles_kernel, dim3(1), dim3(32), 0, s, expert_offset, X, tiles, n_tiles);
}

bool grouped_gemm_supported(int N, int K) { return N > 0 && K > 0 && K % 8 == 0 && N % 2 == 0; }

void grouped_gemm(const GroupedGemm& g, cudaStream_t s) {
  if (g.max_tiles <= 0) return;
  if (!grouped_gemm_supported(g.N, g.K) || g.lda % 8 || g.w_expert_stride % 8 || g.ldo % 2 || (reinterpret_cast<uintptr_t>(g.a) & 15u) ||
      (reinterpret_cast<uintptr_t>(g.w) & 15u) || g.max_tiles > 65535) {
    check_launch(cudaErrorInvalidValue, __FILE__, __LINE__);
    return;
  }
  if (grouped_gemm_sm90(g, s)) return;  // wgmma on sm_90a
  if (wide_tiles()) launch_grouped<4>(g, s);
  else launch_grouped<2>(g, s);
}

}  // namespace ghostline::kernels
