// Skinny products of 2..8 activation rows on tensor cores: each weight is read once for all the
// rows, and the multiply costs a few mma.sync per 16 x 32 weights instead of the float32 path's
// one FMA per weight and row (whose activation loads and FMAs grow with the rows; at 8 rows the
// float32 kernels issued more instructions than the weights take to stream).
//
// A warp owns a tile of 16 weight rows (GateUp: 8 gate rows over their 8 up rows, so that one
// thread holds both halves of an output) and a slice of K; the 8 tokens are the mma's N. Lane
// (g = lane / 4, c = lane % 4) loads 16 bytes of rows g and g + 8 at k = 32 w + 8 c of every
// 32-wide window w, and the 8 activations of token g at the same k: the k order inside a window
// is permuted the same way for both operands, so their fragments come straight from global
// memory (no shared memory, no shuffles). Activations are float32: each is split into three
// bf16 terms (hi + mid + lo carry 24 bits), so the products keep float32 accuracy against the
// exact bf16 weights. Two steps of 4 windows are in flight per warp (registers double-buffered);
// a block's warps split K when there are too few row tiles to fill the GPU, and sum through
// shared memory. Plain mode and a dense MLP (one_slot) request their first weights before the
// programmatic-launch wait.
#include <algorithm>
#include <cstdlib>

#include "kernels/common.cuh"
#include "kernels/mma.cuh"
#include "kernels/skinny_mma.h"

namespace ghostline::kernels {

namespace {

constexpr int kWarps = 8;

// One step of a warp: KW 32-wide k windows of RT row tiles (weights of rows g and g + 8 of each,
// bf16 x 8) and of token g's activations.
template <int RT, int KW>
struct Step {
  uint4 lo[RT][KW], hi[RT][KW];
  float4 xa[KW], xb[KW];
};

template <int RT, int KW>
__device__ __forceinline__ void load_step(Step<RT, KW>& s, const bf16* const (&wlo)[RT], const bf16* const (&whi)[RT], const float* xr,
                                          bool tok_ok, int w, int wend, int K, int c) {
  const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
  for (int j = 0; j < KW; ++j) {
    const int k = (w + j) * 32 + 8 * c;
    const bool ok = w + j < wend && k < K;
#pragma unroll
    for (int t = 0; t < RT; ++t) {
      s.lo[t][j] = ok ? __ldg(reinterpret_cast<const uint4*>(wlo[t] + k)) : make_uint4(0, 0, 0, 0);
      s.hi[t][j] = ok ? __ldg(reinterpret_cast<const uint4*>(whi[t] + k)) : make_uint4(0, 0, 0, 0);
    }
    // x was written by the kernel before: plain loads (not the read-only path).
    s.xa[j] = ok && tok_ok ? *reinterpret_cast<const float4*>(xr + k) : zero;
    s.xb[j] = ok && tok_ok ? *reinterpret_cast<const float4*>(xr + k + 4) : zero;
  }
}

// (a, b) = hi + mid + lo, three bf16 pairs (a in the low halves).
__device__ __forceinline__ void split3(float a, float b, uint32_t& hi, uint32_t& mid, uint32_t& lo) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
  const float2 hf = __bfloat1622float2(h);
  const float ra = a - hf.x, rb = b - hf.y;
  const __nv_bfloat162 m = __floats2bfloat162_rn(ra, rb);
  const float2 mf = __bfloat1622float2(m);
  const __nv_bfloat162 l = __floats2bfloat162_rn(ra - mf.x, rb - mf.y);
  hi = *reinterpret_cast<const uint32_t*>(&h);
  mid = *reinterpret_cast<const uint32_t*>(&m);
  lo = *reinterpret_cast<const uint32_t*>(&l);
}

// Window j of a step: real k 8c + {0,1,2,3} are the mma's k {2c, 2c+1, 2c+8, 2c+9} of the
// first product, 8c + {4..7} the same of the second (A and B alike). The step's products start
// from zero and are added to acc in float32 (round to nearest), so that no tensor-core chain is
// longer than one step.
template <int RT, int KW>
__device__ __forceinline__ void multiply(const Step<RT, KW>& s, float (&acc)[RT][4]) {
  float big[RT][4], small[RT][4];
#pragma unroll
  for (int t = 0; t < RT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) big[t][i] = small[t][i] = 0.0f;
#pragma unroll
  for (int j = 0; j < KW; ++j) {
    uint32_t h[4], m[4], l[4];
    split3(s.xa[j].x, s.xa[j].y, h[0], m[0], l[0]);
    split3(s.xa[j].z, s.xa[j].w, h[1], m[1], l[1]);
    split3(s.xb[j].x, s.xb[j].y, h[2], m[2], l[2]);
    split3(s.xb[j].z, s.xb[j].w, h[3], m[3], l[3]);
#pragma unroll
    for (int t = 0; t < RT; ++t) {
      const uint32_t a0[4] = {s.lo[t][j].x, s.hi[t][j].x, s.lo[t][j].y, s.hi[t][j].y};
      const uint32_t a1[4] = {s.lo[t][j].z, s.hi[t][j].z, s.lo[t][j].w, s.hi[t][j].w};
      mma_bf16(small[t], a0, l[0], l[1]);
      mma_bf16(small[t], a1, l[2], l[3]);
      mma_bf16(small[t], a0, m[0], m[1]);
      mma_bf16(small[t], a1, m[2], m[3]);
      mma_bf16(big[t], a0, h[0], h[1]);
      mma_bf16(big[t], a1, h[2], h[3]);
    }
  }
#pragma unroll
  for (int t = 0; t < RT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[t][i] += big[t][i] + small[t][i];
}

// The activation row of token tt of a block's rows: the token itself (plain, a dense MLP's one
// slot), its token through the routing lists (gate/up), or its pair row (down).
template <int MODE>
__device__ __forceinline__ int64_t activation_row(const FewRows& a, int row_begin, int tt) {
  if constexpr (MODE == static_cast<int>(FewMode::GateUp)) return a.one_slot ? tt : a.sorted_pair[row_begin + tt] / a.KP;
  else if constexpr (MODE == static_cast<int>(FewMode::Down)) return row_begin + tt;
  else return tt;
}

// A row tile's sums to the outputs, for the tokens 2c and 2c + 1 of the nt from t0 (rows of the
// routing lists from row_begin in the MoE modes): acc[u] and acc[2 + u] are token u's sums of
// output rows n0 + g and n0 + 8 + g, or, for gate/up, its gate and up sums of output n0 + g.
template <bool gate_up, bool plain>
__device__ __forceinline__ void store_tile(const FewRows& a, float* Y, const float* bias, int row_begin, int t0, int nt, int c,
                                           int g, int n0, const float (&acc)[4]) {
#pragma unroll
  for (int u = 0; u < 2; ++u) {
    const int tok = 2 * c + u;
    if (tok >= nt) continue;
    const int64_t yrow = plain ? t0 + tok : row_begin + t0 + tok;
    float* yr = Y + yrow * a.ldy;
    if constexpr (gate_up) {
      const int n = n0 + g;
      if (n < a.N) {
        float gv = acc[u], uv = acc[2 + u];
        if (bias) gv += bias[n], uv += bias[a.N + n];
        yr[n] = silu(gv) * uv;
      }
    } else {
      const int n = n0 + g, n8 = n0 + 8 + g;
      if (n < a.N) yr[n] = acc[u] + (bias ? bias[n] : 0.0f);
      if (n8 < a.N) yr[n8] = acc[2 + u] + (bias ? bias[n8] : 0.0f);
    }
  }
}

// RT row tiles a warp (sharing the activation fragments), KW windows a step. Lane layout of the
// accumulators of a tile: acc[0] (row g, token 2c), acc[1] (g, 2c + 1), acc[2] (g + 8, 2c),
// acc[3] (g + 8, 2c + 1).
template <int MODE, int RT, int KW>
__global__ void __launch_bounds__(kWarps * 32, 1) skinny_mma_kernel(FewRows a, int ksplit) {
  __shared__ float red[kWarps][RT][4][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
  const int kp = warp % ksplit, rg = blockIdx.x * (kWarps / ksplit) + warp / ksplit;
  constexpr bool gate_up = MODE == static_cast<int>(FewMode::GateUp);
  constexpr bool plain = MODE == static_cast<int>(FewMode::Plain);
  constexpr int tile_out = gate_up ? 8 : 16;  // output rows of a tile
  const int n0 = rg * RT * tile_out;
  const int nwin = (a.K + 31) / 32, wpk = (nwin + ksplit - 1) / ksplit;
  const int wbeg = min(nwin, kp * wpk), wend = min(nwin, wbeg + wpk);
  const bf16* W = static_cast<const bf16*>(a.w);
  const int64_t b = blockIdx.y;
  int64_t row_lo[RT], row_hi[RT];
#pragma unroll
  for (int t = 0; t < RT; ++t) {
    const int n_lo = min(n0 + t * tile_out + g, a.N - 1);
    row_lo[t] = n_lo;
    row_hi[t] = gate_up ? a.N + n_lo : min(n0 + t * tile_out + 8 + g, a.N - 1);
  }
  Step<RT, KW> A, B;
  int row_begin = 0, n_rows = a.T;
  const float* X = a.x;
  float* Y = a.y;
  const float* bias = a.bias;
  const bf16* wlo[RT];
  const bf16* whi[RT];
  const bool early = plain || a.one_slot;  // the weights do not depend on the kernels before
  if (early) {
    if (plain) W += b * a.w_batch;
#pragma unroll
    for (int t = 0; t < RT; ++t) wlo[t] = W + row_lo[t] * a.ldw, whi[t] = W + row_hi[t] * a.ldw;
    load_step(A, wlo, whi, X, false, wbeg, wend, a.K, c);  // weights only: x is not ready yet
    grid_wait();
    if (plain) block_batch_item(a, X, Y, bias);
  } else {
    grid_wait();
    if (!block_expert(a, W, bias, row_begin, n_rows)) return;
#pragma unroll
    for (int t = 0; t < RT; ++t) wlo[t] = W + row_lo[t] * a.ldw, whi[t] = W + row_hi[t] * a.ldw;
  }
  for (int t0 = 0; t0 < n_rows; t0 += 8) {
    const int nt = min(8, n_rows - t0);
    const bool tok_ok = g < nt;
    const int tt = t0 + min(g, nt - 1);
    const float* xr = X + activation_row<MODE>(a, row_begin, tt) * a.ldx;
    if (!early || t0 > 0) {
      load_step(A, wlo, whi, xr, tok_ok, wbeg, wend, a.K, c);
    } else {
      // The weights are in flight since before the wait: the activations of the first step.
#pragma unroll
      for (int j = 0; j < KW; ++j) {
        const int k = (wbeg + j) * 32 + 8 * c;
        const bool ok = tok_ok && wbeg + j < wend && k < a.K;
        A.xa[j] = ok ? *reinterpret_cast<const float4*>(xr + k) : make_float4(0.f, 0.f, 0.f, 0.f);
        A.xb[j] = ok ? *reinterpret_cast<const float4*>(xr + k + 4) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
    }
    float acc[RT][4];
#pragma unroll
    for (int t = 0; t < RT; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;
    for (int w = wbeg; w < wend;) {
      if (w + KW < wend) load_step(B, wlo, whi, xr, tok_ok, w + KW, wend, a.K, c);
      multiply(A, acc);
      w += KW;
      if (w >= wend) break;
      if (w + KW < wend) load_step(A, wlo, whi, xr, tok_ok, w + KW, wend, a.K, c);
      multiply(B, acc);
      w += KW;
    }
    if (ksplit > 1) {
#pragma unroll
      for (int t = 0; t < RT; ++t)
#pragma unroll
        for (int i = 0; i < 4; ++i) red[warp][t][i][lane] = acc[t][i];
      __syncthreads();
      if (kp == 0) {
        for (int q = 1; q < ksplit; ++q)
#pragma unroll
          for (int t = 0; t < RT; ++t)
#pragma unroll
            for (int i = 0; i < 4; ++i) acc[t][i] += red[warp + q][t][i][lane];
      }
      __syncthreads();  // red is rewritten by the next pass
    }
    if (kp != 0) continue;
#pragma unroll
    for (int t = 0; t < RT; ++t) store_tile<gate_up, plain>(a, Y, bias, row_begin, t0, nt, c, g, n0 + t * tile_out, acc[t]);
  }
}

// The same product with the weights streamed through shared memory (one row tile a warp, 4
// windows a step): each lane copies its own 16-byte pieces with cp.async into its slots of the
// warp's ring of kStages steps and reads back only those (no barrier), so kStages - 1 steps of
// weights (20 KB a warp) are in flight without holding registers; plain mode and a dense MLP
// request them before the launch wait. The activations stay in registers, one step ahead.
constexpr int kStages = 6;
constexpr int kRingWin = 4;
constexpr int kRingItems = 2 * kRingWin;  // 16-byte pieces a lane a step (rows g and g + 8)

struct Acts {
  float4 xa[kRingWin], xb[kRingWin];
};

__device__ __forceinline__ void load_acts(Acts& x, const float* xr, bool tok_ok, int w, int wend, int K, int c) {
  const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
  for (int j = 0; j < kRingWin; ++j) {
    const int k = (w + j) * 32 + 8 * c;
    const bool ok = tok_ok && w + j < wend && k < K;
    x.xa[j] = ok ? *reinterpret_cast<const float4*>(xr + k) : zero;
    x.xb[j] = ok ? *reinterpret_cast<const float4*>(xr + k + 4) : zero;
  }
}

template <int MODE>
__global__ void __launch_bounds__(kWarps * 32, 1) skinny_ring_kernel(FewRows a, int ksplit) {
  extern __shared__ uint4 ring_sm[];
  __shared__ float red[kWarps][4][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
  const int kp = warp % ksplit, rg = blockIdx.x * (kWarps / ksplit) + warp / ksplit;
  constexpr bool gate_up = MODE == static_cast<int>(FewMode::GateUp);
  constexpr bool plain = MODE == static_cast<int>(FewMode::Plain);
  const int n0 = rg * (gate_up ? 8 : 16);
  const int nwin = (a.K + 31) / 32, wpk = (nwin + ksplit - 1) / ksplit;
  const int wbeg = min(nwin, kp * wpk), wend = min(nwin, wbeg + wpk);
  const int nsteps = (wend - wbeg + kRingWin - 1) / kRingWin;
  const bf16* W = static_cast<const bf16*>(a.w);
  const int64_t b = blockIdx.y;
  const int n_lo = min(n0 + g, a.N - 1);
  const int64_t row_lo = n_lo, row_hi = gate_up ? a.N + n_lo : min(n0 + 8 + g, a.N - 1);
  uint4* ring = ring_sm + static_cast<int64_t>(warp) * kStages * kRingItems * 32 + lane;
  const bf16* wlo = nullptr;
  const bf16* whi = nullptr;
  // Step i into slot i % kStages; past the last step an empty group (the waits count groups).
  auto issue = [&](int i) {
    if (i < nsteps) {
      uint4* d = ring + (i % kStages) * kRingItems * 32;
#pragma unroll
      for (int j = 0; j < kRingWin; ++j) {
        const int k = (wbeg + i * kRingWin + j) * 32 + 8 * c;
        const bool ok = wbeg + i * kRingWin + j < wend && k < a.K;
        cp_async16(d + (2 * j) * 32, ok ? wlo + k : wlo, ok);
        cp_async16(d + (2 * j + 1) * 32, ok ? whi + k : whi, ok);
      }
    }
    cp_async_commit();
  };
  int row_begin = 0, n_rows = a.T;
  const float* X = a.x;
  float* Y = a.y;
  const float* bias = a.bias;
  const bool early = plain || a.one_slot;  // the weights do not depend on the kernels before
  if (early) {
    if (plain) W += b * a.w_batch;
    wlo = W + row_lo * a.ldw, whi = W + row_hi * a.ldw;
    for (int i = 0; i < kStages - 1; ++i) issue(i);
    grid_wait();
    if (plain) block_batch_item(a, X, Y, bias);
  } else {
    grid_wait();
    if (!block_expert(a, W, bias, row_begin, n_rows)) return;
    wlo = W + row_lo * a.ldw, whi = W + row_hi * a.ldw;
  }
  for (int t0 = 0; t0 < n_rows; t0 += 8) {
    const int nt = min(8, n_rows - t0);
    const bool tok_ok = g < nt;
    const int tt = t0 + min(g, nt - 1);
    const float* xr = X + activation_row<MODE>(a, row_begin, tt) * a.ldx;
    if (!early || t0 > 0)
      for (int i = 0; i < kStages - 1; ++i) issue(i);
    Acts XA, XB;
    load_acts(XA, xr, tok_ok, wbeg, wend, a.K, c);
    float acc[1][4] = {{0.f, 0.f, 0.f, 0.f}};
    auto consume = [&](int i, const Acts& x) {
      cp_async_wait<kStages - 1>();
      const uint4* d = ring + (i % kStages) * kRingItems * 32;
      Step<1, kRingWin> st;
#pragma unroll
      for (int j = 0; j < kRingWin; ++j) {
        st.lo[0][j] = d[(2 * j) * 32];
        st.hi[0][j] = d[(2 * j + 1) * 32];
        st.xa[j] = x.xa[j];
        st.xb[j] = x.xb[j];
      }
      multiply(st, acc);
    };
    for (int i = 0; i < nsteps;) {
      issue(i + kStages - 1);
      if (i + 1 < nsteps) load_acts(XB, xr, tok_ok, wbeg + (i + 1) * kRingWin, wend, a.K, c);
      consume(i, XA);
      if (++i >= nsteps) break;
      issue(i + kStages - 1);
      if (i + 1 < nsteps) load_acts(XA, xr, tok_ok, wbeg + (i + 1) * kRingWin, wend, a.K, c);
      consume(i, XB);
      ++i;
    }
    cp_async_wait<0>();  // the ring is refilled by the next pass
    if (ksplit > 1) {
#pragma unroll
      for (int i = 0; i < 4; ++i) red[warp][i][lane] = acc[0][i];
      __syncthreads();
      if (kp == 0) {
        for (int q = 1; q < ksplit; ++q)
#pragma unroll
          for (int i = 0; i < 4; ++i) acc[0][i] += red[warp + q][i][lane];
      }
      __syncthreads();
    }
    if (kp != 0) continue;
    store_tile<gate_up, plain>(a, Y, bias, row_begin, t0, nt, c, g, n0, acc[0]);
  }
}

void launch_ring(const FewRows& a, int grid_y, cudaStream_t s) {
  const int out_per_tile = a.mode == FewMode::GateUp ? 8 : 16;
  const int64_t tiles = (a.N + out_per_tile - 1) / out_per_tile;
  const int nwin = (a.K + 31) / 32;
  const int64_t want = 8 * static_cast<int64_t>(sm_count());  // one block of 8 warps a multiprocessor
  int ksplit = 1;
  while (ksplit < kWarps && tiles * grid_y * ksplit < want && nwin / (2 * ksplit) >= 2 * kRingWin) ksplit *= 2;
  const int tiles_per_block = kWarps / ksplit;
  const dim3 grid(static_cast<unsigned>((tiles + tiles_per_block - 1) / tiles_per_block), grid_y);
  const size_t smem = sizeof(uint4) * kWarps * kStages * kRingItems * 32;
  auto go = [&](auto kernel, bool& raised) {
    if (!raised) {
      check_launch(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)), __FILE__, __LINE__);
      raised = true;
    }
    launch(kernel, grid, dim3(kWarps * 32), smem, s, a, ksplit);
  };
  static bool r0 = false, r1 = false, r2 = false;
  switch (a.mode) {
    case FewMode::Plain: go(skinny_ring_kernel<0>, r0); break;
    case FewMode::GateUp: go(skinny_ring_kernel<1>, r1); break;
    case FewMode::Down: go(skinny_ring_kernel<2>, r2); break;
  }
}

template <int RT, int KW>
void launch_mma(const FewRows& a, int grid_y, cudaStream_t s) {
  const int out_per_tile = (a.mode == FewMode::GateUp ? 8 : 16) * RT;
  const int64_t tiles = (a.N + out_per_tile - 1) / out_per_tile;
  const int nwin = (a.K + 31) / 32;
  // Split K over a block's warps until about 16 warps per multiprocessor have work, while each
  // keeps at least two steps to overlap.
  const int64_t want = 16 * static_cast<int64_t>(sm_count());
  int ksplit = 1;
  while (ksplit < kWarps && tiles * grid_y * ksplit < want && nwin / (2 * ksplit) >= 2 * KW) ksplit *= 2;
  const int tiles_per_block = kWarps / ksplit;
  const dim3 grid(static_cast<unsigned>((tiles + tiles_per_block - 1) / tiles_per_block), grid_y);
  switch (a.mode) {
    case FewMode::Plain: launch(skinny_mma_kernel<0, RT, KW>, grid, dim3(kWarps * 32), 0, s, a, ksplit); break;
    case FewMode::GateUp: launch(skinny_mma_kernel<1, RT, KW>, grid, dim3(kWarps * 32), 0, s, a, ksplit); break;
    case FewMode::Down: launch(skinny_mma_kernel<2, RT, KW>, grid, dim3(kWarps * 32), 0, s, a, ksplit); break;
  }
}

}  // namespace

bool skinny_mma_on() { return env_on("GHOSTLINE_SKINNY_MMA"); }

bool skinny_mma_fits(const FewRows& a) {
  auto al = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; };
  return a.N > 0 && a.K > 0 && a.K % 8 == 0 && a.ldw % 8 == 0 && a.w_batch % 8 == 0 && a.ldx % 4 == 0 && a.x_batch % 4 == 0 && al(a.w) &&
         al(a.x);
}

void skinny_mma(const FewRows& a, int grid_y, cudaStream_t s) {
  if (a.N <= 0 || a.K <= 0 || grid_y <= 0) return;
  // Variants (FewRows::variant, else GHOSTLINE_SKINNY_MMA=1|2|3, default 2): 1 one row tile a
  // warp, 4 windows a step; 2 two row tiles sharing the activations' loads and splits (half the
  // L2 traffic of x); 3 the weights through a shared-memory ring (skinny_ring_kernel).
  const char* e = std::getenv("GHOSTLINE_SKINNY_MMA");
  const int v = a.variant ? a.variant : (e && (e[0] == '1' || e[0] == '3') ? e[0] - '0' : 2);
  if (v == 1) launch_mma<1, 4>(a, grid_y, s);
  else if (v == 3) launch_ring(a, grid_y, s);
  else launch_mma<2, 2>(a, grid_y, s);
}

}  // namespace ghostline::kernels
