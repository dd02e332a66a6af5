// Skinny matrix products: a few activation rows (float32) against a weight matrix (bf16 or f32),
// the decode step's projections and experts. Memory-bound: each warp streams R weight rows with
// 16-byte loads (lane i reads elements 8i..8i+7 of every 256), multiplies them with up to 8
// activation rows at once and reduces across the warp. Three modes share the inner loop:
//   plain    y[b][t, n] = W[b][n, :] · x[b][t, :]          (batched with strides)
//   gate_up  act[row, j] = silu(gate_e[j] · h[tok]) * (up_e[j] · h[tok])   (MoE, rows by expert)
//   down     pair_out[row, d] = down_e[d] · act[row]                        (MoE, rows by expert)
// In the MoE modes blockIdx.y is an expert slot: slots past *n_active exit at once, so the grid
// can be sized for the worst case and captured in a CUDA graph.
#include <algorithm>
#include <cstdlib>

#include "kernels/common.cuh"
#include "kernels/moe_stream.h"
#include "kernels/skinny_mma.h"

namespace ghostline::kernels {

namespace {

enum Mode { kPlain = 0, kGateUp = 1, kDown = 2 };
constexpr int kFewRows = 4;  // plain products of 2 .. kFewRows rows take plain_few_rows

// Whether plain products of a few rows take plain_few_rows (GHOSTLINE_SKINNY_FEW=0: the general
// path, for comparisons). Read at every launch, so that a benchmark can compare both.
bool few_rows_on() { return env_on("GHOSTLINE_SKINNY_FEW"); }

struct SkinnyArgs {
  const void* w;
  int64_t ldw, w_batch;
  const float* x;
  int64_t ldx, x_batch;
  float* y;
  int64_t ldy, y_batch;
  const float* bias;
  int64_t bias_batch;
  int N, K, T;
  int few;        // MoE modes: an expert has at most this many rows (0: unknown)
  bool one_slot;  // MoE modes: one slot that every token uses (rows = tokens in order); with few
  // MoE modes
  const int32_t* active;
  const int32_t* n_active;
  const int32_t* offset;
  const int32_t* sorted_pair;
  int KP;
};

// Eight weights as loaded (16 bytes of bf16 or 32 of f32), kept packed in registers until used so
// that more loads can be in flight per lane.
template <typename WT> struct Raw8;
template <> struct Raw8<bf16> {
  uint4 v;
  __device__ __forceinline__ void load(const bf16* p) { v = __ldg(reinterpret_cast<const uint4*>(p)); }
  __device__ __forceinline__ void unpack(float (&w)[8]) const {
    const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      w[2 * i] = __uint_as_float(words[i] << 16);
      w[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
    }
  }
};
template <> struct Raw8<float> {
  float4 a, b;
  __device__ __forceinline__ void load(const float* p) {
    a = __ldg(reinterpret_cast<const float4*>(p));
    b = __ldg(reinterpret_cast<const float4*>(p) + 1);
  }
  __device__ __forceinline__ void unpack(float (&w)[8]) const {
    w[0] = a.x, w[1] = a.y, w[2] = a.z, w[3] = a.w, w[4] = b.x, w[5] = b.y, w[6] = b.z, w[7] = b.w;
  }
};

// acc[r][t] += sum over this lane's k of w_r[k] * x_t[k], for t < nt <= MAXT.
// VEC: K % 8 == 0 and 16-byte aligned rows; U chunks of 256 per row are loaded before use.
template <typename WT, int R, int MAXT, bool VEC>
__device__ __forceinline__ void rows_dot(const WT* const (&wr)[R], const float* const (&xr)[MAXT], int nt, int K, int lane,
                                         float (&acc)[R][MAXT]) {
  if constexpr (VEC) {
    constexpr int U = R >= 4 ? 2 : 8 / R;  // eight 16-byte weight loads in flight per lane
    int k = lane * 8;
    for (; k + (U - 1) * 256 < K; k += U * 256) {
      Raw8<WT> raw[U][R];
#pragma unroll
      for (int u = 0; u < U; ++u)
#pragma unroll
        for (int r = 0; r < R; ++r) raw[u][r].load(wr[r] + k + u * 256);
#pragma unroll
      for (int u = 0; u < U; ++u) {
        float w[R][8];
#pragma unroll
        for (int r = 0; r < R; ++r) raw[u][r].unpack(w[r]);
#pragma unroll
        for (int t = 0; t < MAXT; ++t) {
          if (t >= nt) break;
          float xv[8];
          load8_act(xr[t] + k + u * 256, xv);
#pragma unroll
          for (int r = 0; r < R; ++r)
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[r][t] = fmaf(w[r][i], xv[i], acc[r][t]);
        }
      }
    }
    for (; k < K; k += 256) {
      float w[R][8];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        Raw8<WT> raw;
        raw.load(wr[r] + k);
        raw.unpack(w[r]);
      }
#pragma unroll
      for (int t = 0; t < MAXT; ++t) {
        if (t >= nt) break;
        float xv[8];
        load8_act(xr[t] + k, xv);
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[r][t] = fmaf(w[r][i], xv[i], acc[r][t]);
      }
    }
  } else {
    for (int k = lane; k < K; k += 32) {
      float w[R];
#pragma unroll
      for (int r = 0; r < R; ++r) w[r] = to_float(wr[r][k]);
#pragma unroll
      for (int t = 0; t < MAXT; ++t) {
        if (t >= nt) break;
        const float xv = xr[t][k];
#pragma unroll
        for (int r = 0; r < R; ++r) acc[r][t] = fmaf(w[r], xv, acc[r][t]);
      }
    }
  }
}

// acc[r] += the eight weights held in raw[r] · xv, for each of the R rows (in that order).
template <typename WT, int R>
__device__ __forceinline__ void fma_rows(const Raw8<WT> (&raw)[R], const float (&xv)[8], float (&acc)[R]) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float w[8];
    raw[r].unpack(w);
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[r] = fmaf(w[i], xv[i], acc[r]);
  }
}

// The plain kernels' start: this warp's R weight rows from n0 (rows past N repeat the last one;
// their results are not written), their first U chunks of 256 requested before grid_wait (with
// programmatic dependent launch they stream in while the kernel before finishes), then the wait.
// Returns n0.
template <typename WT, int R, int U>
__device__ __forceinline__ int plain_rows_start(const SkinnyArgs& a, const WT* (&wr)[R], Raw8<WT> (&pre)[U][R]) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  const WT* W = static_cast<const WT*>(a.w) + static_cast<int64_t>(blockIdx.y) * a.w_batch;
  const int n0 = (blockIdx.x * n_warps + warp) * R;
#pragma unroll
  for (int r = 0; r < R; ++r) wr[r] = W + static_cast<int64_t>(min(n0 + r, a.N - 1)) * a.ldw;
  const int k0 = lane * 8;
  if (n0 < a.N) {
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int r = 0; r < R; ++r)
        if (k0 + u * 256 < a.K) pre[u][r].load(wr[r] + k0 + u * 256);
  }
  grid_wait();
  return n0;
}

// R weight rows per warp (in gate_up mode R/2 output rows, each a gate and an up row).
// Plain mode, one activation row: the weights do not depend on the kernel before, so the first
// U chunks of every row are loaded before grid_wait (with programmatic dependent launch they
// stream in while that kernel finishes), then the row of x is read.
template <typename WT, int R>
__device__ __forceinline__ void plain_single_row(const SkinnyArgs& a) {
  constexpr int U = R >= 4 ? 2 : 8 / R;
  const int lane = threadIdx.x & 31, k0 = lane * 8;
  const int64_t b = blockIdx.y;
  const WT* wr[R];
  Raw8<WT> pre[U][R];
  const int n0 = plain_rows_start<WT, R, U>(a, wr, pre);
  if (n0 >= a.N) return;
  const float* x = a.x + b * a.x_batch;
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int k = k0 + u * 256;
    if (k < a.K) {
      float xv[8];
      load8_act(x + k, xv);
      fma_rows(pre[u], xv, acc);
    }
  }
  for (int k = k0 + U * 256; k < a.K; k += 256) {
    float xv[8];
    load8_act(x + k, xv);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      Raw8<WT> raw;
      raw.load(wr[r] + k);
      float w[8];
      raw.unpack(w);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[r] = fmaf(w[i], xv[i], acc[r]);
    }
  }
  float sum[R];
#pragma unroll
  for (int r = 0; r < R; ++r) sum[r] = warp_sum(acc[r]);
  if (lane == 0) {
    float* y = a.y + b * a.y_batch;
    const float* bias = a.bias ? a.bias + b * a.bias_batch : nullptr;
#pragma unroll
    for (int r = 0; r < R; ++r)
      if (n0 + r < a.N) y[n0 + r] = sum[r] + (bias ? bias[n0 + r] : 0.0f);
  }
}

// Plain mode, 2 .. MAXT activation rows (a verification of a few drafted tokens, a small batch):
// as plain_single_row, the first U chunks of every weight row are requested before grid_wait and
// every weight is used for all the rows; the sums are the general path's, in the same order.
template <typename WT, int R, int MAXT>
__device__ __forceinline__ void plain_few_rows(const SkinnyArgs& a) {
  constexpr int U = R >= 4 ? 2 : 8 / R;
  const int lane = threadIdx.x & 31, k0 = lane * 8;
  const int64_t b = blockIdx.y;
  const WT* wr[R];
  Raw8<WT> pre[U][R];
  const int n0 = plain_rows_start<WT, R, U>(a, wr, pre);
  if (n0 >= a.N) return;
  const float* x = a.x + b * a.x_batch;
  const int nt = min(a.T, MAXT);
  float acc[R][MAXT];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < MAXT; ++t) acc[r][t] = 0.0f;
  auto use = [&](const Raw8<WT> (&raw)[R], int k) {
    float w[R][8];
#pragma unroll
    for (int r = 0; r < R; ++r) raw[r].unpack(w[r]);
#pragma unroll
    for (int t = 0; t < MAXT; ++t) {
      if (t >= nt) break;
      float xv[8];
      load8_act(x + t * a.ldx + k, xv);
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[r][t] = fmaf(w[r][i], xv[i], acc[r][t]);
    }
  };
#pragma unroll
  for (int u = 0; u < U; ++u)
    if (k0 + u * 256 < a.K) use(pre[u], k0 + u * 256);
  for (int k = k0 + U * 256; k < a.K; k += 256) {
    Raw8<WT> raw[R];
#pragma unroll
    for (int r = 0; r < R; ++r) raw[r].load(wr[r] + k);
    use(raw, k);
  }
  float* y = a.y + b * a.y_batch;
  const float* bias = a.bias ? a.bias + b * a.bias_batch : nullptr;
#pragma unroll
  for (int t = 0; t < MAXT; ++t) {
    if (t >= nt) break;
    float sum[R];
#pragma unroll
    for (int r = 0; r < R; ++r) sum[r] = warp_sum(acc[r][t]);
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < R; ++r)
        if (n0 + r < a.N) y[t * a.ldy + n0 + r] = sum[r] + (bias ? bias[n0 + r] : 0.0f);
    }
  }
}

template <typename WT, int R, int MAXT, bool VEC, int MODE>
__global__ void __launch_bounds__(256) skinny_kernel(SkinnyArgs a) {
  if constexpr (MODE == kPlain && MAXT == 1 && VEC) {
    plain_single_row<WT, R>(a);
    return;
  }
  if constexpr (MODE == kPlain && MAXT == kFewRows && VEC) {
    plain_few_rows<WT, R, kFewRows>(a);
    return;
  }
  grid_wait();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  const WT* W = static_cast<const WT*>(a.w);
  const float* X = a.x;
  float* Y = a.y;
  const float* bias = a.bias;
  int row_begin = 0, n_rows = a.T;
  if constexpr (MODE == kPlain) {
    W += static_cast<int64_t>(blockIdx.y) * a.w_batch;
    block_batch_item(a, X, Y, bias);
  } else if (!block_expert(a, W, bias, row_begin, n_rows)) {
    return;
  }
  constexpr int OUT = MODE == kGateUp ? R / 2 : R;  // output rows per warp
  const int n0 = (blockIdx.x * n_warps + warp) * OUT;
  if (n0 >= a.N) return;
  const WT* wr[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    int n = MODE == kGateUp ? n0 + (r % OUT) : n0 + r;
    n = min(n, a.N - 1);  // rows past N repeat the last one; their results are not written
    const int64_t row = MODE == kGateUp && r >= OUT ? a.N + n : n;
    wr[r] = W + row * a.ldw;
  }
  for (int t0 = 0; t0 < n_rows; t0 += MAXT) {
    const int nt = min(MAXT, n_rows - t0);
    const float* xr[MAXT];
#pragma unroll
    for (int t = 0; t < MAXT; ++t) {
      const int tt = t0 + min(t, nt - 1);
      int64_t xrow = tt;
      if constexpr (MODE == kGateUp) xrow = a.sorted_pair[row_begin + tt] / a.KP;
      else if constexpr (MODE == kDown) xrow = row_begin + tt;
      xr[t] = X + xrow * a.ldx;
    }
    float acc[R][MAXT];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int t = 0; t < MAXT; ++t) acc[r][t] = 0.0f;
    rows_dot<WT, R, MAXT, VEC>(wr, xr, nt, a.K, lane, acc);
#pragma unroll
    for (int t = 0; t < MAXT; ++t) {
      if (t >= nt) break;
      float s[R];
#pragma unroll
      for (int r = 0; r < R; ++r) s[r] = warp_sum(acc[r][t]);
      if (lane == 0) {
        if constexpr (MODE == kGateUp) {
          float* yr = Y + static_cast<int64_t>(row_begin + t0 + t) * a.ldy;
#pragma unroll
          for (int r = 0; r < OUT; ++r) {
            const int n = n0 + r;
            if (n < a.N) {
              float g = s[r], u = s[r + OUT];
              if (bias) g += bias[n], u += bias[a.N + n];
              yr[n] = silu(g) * u;
            }
          }
        } else {
          const int64_t yrow = MODE == kDown ? row_begin + t0 + t : t0 + t;
          float* yr = Y + yrow * a.ldy;
#pragma unroll
          for (int r = 0; r < R; ++r) {
            const int n = n0 + r;
            if (n < a.N) yr[n] = s[r] + (bias ? bias[n] : 0.0f);
          }
        }
      }
    }
  }
}

// MAXT: activation rows per pass, 1 (a single row: few registers, more loads in flight) or 8.
template <typename WT, int R, int MODE>
void launch_rows(const SkinnyArgs& a, bool vec, bool single, int warps, int grid_y, cudaStream_t s) {
  constexpr int OUT = MODE == kGateUp ? R / 2 : R;
  const int rows_per_block = warps * OUT;
  dim3 grid((a.N + rows_per_block - 1) / rows_per_block, grid_y);
  if (single) {
    if (vec) launch(skinny_kernel<WT, R, 1, true, MODE>, grid, dim3(warps * 32), 0, s, a);
    else launch(skinny_kernel<WT, R, 1, false, MODE>, grid, dim3(warps * 32), 0, s, a);
  } else if (MODE == kPlain && vec && a.T <= kFewRows && few_rows_on()) {
    launch(skinny_kernel<WT, R, kFewRows, true, MODE>, grid, dim3(warps * 32), 0, s, a);
  } else {
    if (vec) launch(skinny_kernel<WT, R, 8, true, MODE>, grid, dim3(warps * 32), 0, s, a);
    else launch(skinny_kernel<WT, R, 8, false, MODE>, grid, dim3(warps * 32), 0, s, a);
  }
}

// Vector loads need K % 8 == 0 and every row start 16-byte aligned, activations likewise.
bool can_vec(const SkinnyArgs& a, DType wt) {
  const int64_t align_w = wt == DType::BF16 ? 8 : 4;
  return a.K % 8 == 0 && a.ldw % align_w == 0 && a.w_batch % align_w == 0 && a.ldx % 4 == 0 && a.x_batch % 4 == 0 &&
         (reinterpret_cast<uintptr_t>(a.w) & 15u) == 0 && (reinterpret_cast<uintptr_t>(a.x) & 15u) == 0;
}

template <typename WT, int MODE>
void dispatch(const SkinnyArgs& a, DType wt, int grid_y, bool single, cudaStream_t s) {
  const bool vec = can_vec(a, wt);
  const int64_t target = 2 * static_cast<int64_t>(sm_count());
  auto blocks = [&](int rows_per_block) { return (static_cast<int64_t>(a.N) + rows_per_block - 1) / rows_per_block * grid_y; };
  if constexpr (MODE == kGateUp) {
    if (blocks(16) >= target) launch_rows<WT, 4, MODE>(a, vec, single, 8, grid_y, s);
    else if (blocks(8) >= target / 2) launch_rows<WT, 2, MODE>(a, vec, single, 8, grid_y, s);
    else launch_rows<WT, 2, MODE>(a, vec, single, 4, grid_y, s);
  } else {
    if (blocks(32) >= target) launch_rows<WT, 4, MODE>(a, vec, single, 8, grid_y, s);
    else if (blocks(16) >= target) launch_rows<WT, 2, MODE>(a, vec, single, 8, grid_y, s);
    else if (blocks(8) >= target / 2) launch_rows<WT, 1, MODE>(a, vec, single, 8, grid_y, s);
    else launch_rows<WT, 1, MODE>(a, vec, single, 4, grid_y, s);
  }
}

// 2..8 activation rows (plain T; MoE: rows an expert can have) with bf16 weights go to the
// tensor-core kernel (skinny_mma.cu) unless GHOSTLINE_SKINNY_MMA=0.
// Routed experts (MoE modes but a dense MLP) take it from GHOSTLINE_MOE_MMA_MIN rows (default
// 4): with 2 rows an expert the one-row kernel, more blocks in flight, was faster on an H200.
int moe_mma_min() {
  const char* e = std::getenv("GHOSTLINE_MOE_MMA_MIN");
  return e && *e ? std::atoi(e) : 4;
}

template <int MODE>
bool run_mma(const SkinnyArgs& a, DType wt, int grid_y, cudaStream_t s) {
  const int rows = MODE == kPlain ? a.T : a.few;
  if (wt != DType::BF16 || rows < 2 || rows > 8 || !skinny_mma_on()) return false;
  if (MODE != kPlain && !a.one_slot && rows < moe_mma_min()) return false;
  FewRows f;
  f.mode = static_cast<FewMode>(MODE);
  f.w = a.w, f.ldw = a.ldw, f.w_batch = a.w_batch;
  f.x = a.x, f.ldx = a.ldx, f.x_batch = a.x_batch;
  f.y = a.y, f.ldy = a.ldy, f.y_batch = a.y_batch;
  f.bias = a.bias, f.bias_batch = a.bias_batch;
  f.N = a.N, f.K = a.K, f.T = a.T;
  f.active = a.active, f.n_active = a.n_active, f.offset = a.offset, f.sorted_pair = a.sorted_pair, f.KP = a.KP;
  if (MODE != kPlain && a.one_slot) f.one_slot = true, f.T = a.few;
  if (!skinny_mma_fits(f)) return false;
  skinny_mma(f, grid_y, s);
  return true;
}

// single: every block has one activation row (plain T == 1; MoE rows of one token).
template <int MODE>
void run(const SkinnyArgs& a, DType wt, int grid_y, bool single, cudaStream_t s) {
  if (a.N <= 0 || a.K <= 0 || grid_y <= 0) return;
  if (run_mma<MODE>(a, wt, grid_y, s)) return;
  if (wt == DType::BF16) dispatch<bf16, MODE>(a, wt, grid_y, single, s);
  else dispatch<float, MODE>(a, wt, grid_y, single, s);
}

// ---- one token's experts (the decode step of one sequence) -----------------------------------
// Block row p is pair slot p of the token (its expert from pair_expert[p], read after the wait),
// so no chain of sorted-list loads comes before the weights. Each warp holds the whole K span of
// its R weight rows in registers (NCH chunks of 256 per row, all loads issued at once, 64 KB a
// block in flight), and the weights are requested before the wait when the expert is known:
// - gate/up: the always-on slots (p >= K: expert E + p - K), scheduled first (block row 0 is
//   the last slot) so that they stream while the routing kernel runs;
// - down: every slot, from pair_expert as it reads before the wait. With the routing two launches
//   back (gate/up between) it is final there; it is checked after the wait, and the rows are
//   loaded again when it differs, so the result never depends on that order.
// x (h, or the pair's activations) is read after the wait into shared memory.
// With GHOSTLINE_MOE_STREAM=1 (bf16 weights, Hopper) moe_stream.cu's persistent kernels take
// these calls instead (slower on an H200: off by default).
template <typename WT, int R, int NCH, int MODE>
__device__ __forceinline__ void one_load(const OneArgs& a, int e, int n0, int lane, Raw8<WT> (&raw)[NCH][R]) {
  constexpr int OUT = MODE == kGateUp ? R / 2 : R;
  const WT* W = static_cast<const WT*>(a.w) + static_cast<int64_t>(e) * a.w_batch;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int n = min(n0 + (MODE == kGateUp ? r % OUT : r), a.N - 1);
    const int64_t row = MODE == kGateUp && r >= OUT ? a.N + n : n;
    const WT* wr = W + row * a.K;
#pragma unroll
    for (int c = 0; c < NCH; ++c) {
      const int k = lane * 8 + c * 256;
      if (k < a.K) raw[c][r].load(wr + k);
    }
  }
}

template <typename WT, int R, int NCH, int MODE>
__global__ void __launch_bounds__(256) moe_one_kernel(OneArgs a) {
  extern __shared__ float4 one_xs4[];
  float* xs = reinterpret_cast<float*>(one_xs4);
  constexpr int OUT = MODE == kGateUp ? R / 2 : R;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  const int p = MODE == kGateUp ? a.KP - 1 - static_cast<int>(blockIdx.y) : static_cast<int>(blockIdx.y);
  const int n0 = (blockIdx.x * n_warps + warp) * OUT;
  int hint = MODE == kGateUp ? (p >= a.n_routed ? a.E + p - a.n_routed : -1) : __ldcg(a.pair_expert + p);
  if (hint >= a.X) hint = -1;
  Raw8<WT> raw[NCH][R];
  if (hint >= 0) one_load<WT, R, NCH, MODE>(a, hint, n0, lane, raw);
  grid_wait();
  const int e = __ldcg(a.pair_expert + p);
  const int slot = MODE == kDown ? __ldcg(a.pair_slot + p) : p;
  const float* x = MODE == kGateUp ? a.x : a.x + static_cast<int64_t>(p) * a.ldx;
  for (int i = threadIdx.x * 4; i < a.K; i += blockDim.x * 4)
    *reinterpret_cast<float4*>(xs + i) = __ldcg(reinterpret_cast<const float4*>(x + i));
  __syncthreads();
  if (e < 0 || e >= a.X || slot < 0 || n0 >= a.N) return;
  if (e != hint) one_load<WT, R, NCH, MODE>(a, e, n0, lane, raw);
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
#pragma unroll
  for (int c = 0; c < NCH; ++c) {
    const int k = lane * 8 + c * 256;
    if (k < a.K) {
      float xv[8];
      load8_act(xs + k, xv);
      fma_rows(raw[c], xv, acc);
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = warp_sum(acc[r]);
  if (lane != 0) return;
  const float* bias = a.bias ? a.bias + static_cast<int64_t>(e) * a.bias_batch : nullptr;
  float* y = a.y + static_cast<int64_t>(slot) * a.ldy;
#pragma unroll
  for (int r = 0; r < OUT; ++r) {
    const int n = n0 + r;
    if (n >= a.N) break;
    if constexpr (MODE == kGateUp) {
      float g = acc[r], u = acc[r + OUT];
      if (bias) g += bias[n], u += bias[a.N + n];
      y[n] = silu(g) * u;
    } else {
      y[n] = acc[r] + (bias ? bias[n] : 0.0f);
    }
  }
}

constexpr int kOneMaxK = 2048;

template <typename WT, int MODE>
void launch_one(const OneArgs& a, int slots, cudaStream_t s) {
  const size_t smem = sizeof(float) * static_cast<size_t>(a.K);
  auto go = [&](auto kernel, int out_per_warp) {
    launch(kernel, dim3((a.N + 8 * out_per_warp - 1) / (8 * out_per_warp), slots), dim3(256), smem, s, a);
  };
  constexpr int half = MODE == kGateUp ? 2 : 1;
  if (a.K <= 512) go(moe_one_kernel<WT, 4, 2, MODE>, 4 / half);
  else if (a.K <= 1024) go(moe_one_kernel<WT, 4, 4, MODE>, 4 / half);
  else if (a.K <= 1536) go(moe_one_kernel<WT, 2, 6, MODE>, 2 / half);
  else go(moe_one_kernel<WT, 2, 8, MODE>, 2 / half);
}

template <int MODE>
void run_one(const OneArgs& a, DType wt, int slots, cudaStream_t s) {
  if (a.N <= 0 || slots <= 0) return;
  if (wt == DType::BF16) launch_one<bf16, MODE>(a, slots, s);
  else launch_one<float, MODE>(a, slots, s);
}

}  // namespace

bool moe_one_fits(int D, int I, const void* w_gu, const void* w_down, const float* h, const float* act) {
  auto al = [](const void* q) { return (reinterpret_cast<uintptr_t>(q) & 15u) == 0; };
  return D > 0 && I > 0 && D % 8 == 0 && I % 8 == 0 && D <= kOneMaxK && I <= kOneMaxK && al(w_gu) && al(w_down) && al(h) && al(act);
}

void moe_gate_up_one(const float* h, int D, const void* w_gu, DType wt, const float* b_gu, int I, const RouteParams& rp,
                     const MoeRouting& r, float* act, cudaStream_t s) {
  if (!moe_one_fits(D, I, w_gu, w_gu, h, act)) {
    check_launch(cudaErrorInvalidValue, __FILE__, __LINE__);
    return;
  }
  OneArgs a{};
  a.w = w_gu, a.w_batch = static_cast<int64_t>(2) * I * D;
  a.x = h, a.ldx = D;
  a.y = act, a.ldy = I;
  a.bias = b_gu, a.bias_batch = static_cast<int64_t>(2) * I;
  a.N = I, a.K = D;
  a.pair_expert = r.pair_expert, a.pair_slot = r.pair_slot;
  a.n_routed = rp.K, a.E = rp.E, a.X = rp.E + rp.S, a.KP = rp.K + rp.S;
  if (wt == DType::BF16 && moe_stream_gate_up(a, s)) return;
  run_one<kGateUp>(a, wt, a.KP, s);
}

void moe_down_one(const float* act, int I, const void* w_down, DType wt, const float* b_down, int D, const RouteParams& rp,
                  const MoeRouting& r, float* pair_out, cudaStream_t s) {
  if (!moe_one_fits(D, I, w_down, w_down, act, act)) {
    check_launch(cudaErrorInvalidValue, __FILE__, __LINE__);
    return;
  }
  OneArgs a{};
  a.w = w_down, a.w_batch = static_cast<int64_t>(D) * I;
  a.x = act, a.ldx = I;
  a.y = pair_out, a.ldy = D;
  a.bias = b_down, a.bias_batch = D;
  a.N = D, a.K = I;
  a.pair_expert = r.pair_expert, a.pair_slot = r.pair_slot;
  a.n_routed = rp.K, a.E = rp.E, a.X = rp.E + rp.S, a.KP = rp.K + rp.S;
  if (wt == DType::BF16 && moe_stream_down(a, s)) return;
  run_one<kDown>(a, wt, a.KP, s);
}

void skinny_gemm(const Skinny& p, cudaStream_t s) {
  if (p.T <= 0) return;
  if (p.T == 1 && p.batch == 1 && p.wt == DType::BF16 && p.ldw == p.K && skinny_stream(p.w, p.x, p.y, p.bias, p.N, p.K, s)) return;
  SkinnyArgs a{};
  a.w = p.w, a.ldw = p.ldw, a.w_batch = p.w_batch;
  a.x = p.x, a.ldx = p.ldx, a.x_batch = p.x_batch;
  a.y = p.y, a.ldy = p.ldy, a.y_batch = p.y_batch;
  a.bias = p.bias, a.bias_batch = p.bias_batch;
  a.N = p.N, a.K = p.K, a.T = p.T;
  run<kPlain>(a, p.wt, p.batch, p.T == 1, s);
}

void moe_gate_up(const float* h, int D, const void* w_gu, DType wt, const float* b_gu, int I, int KP, const MoeRouting& r,
                 int max_active, bool lean, float* act, cudaStream_t s, int max_rows, bool one_slot) {
  SkinnyArgs a{};
  a.w = w_gu, a.ldw = D, a.w_batch = static_cast<int64_t>(2) * I * D;
  a.x = h, a.ldx = D;
  a.y = act, a.ldy = I;
  a.bias = b_gu, a.bias_batch = 2 * I;
  a.N = I, a.K = D, a.T = 0, a.few = max_rows, a.one_slot = one_slot;
  a.active = r.active, a.n_active = r.n_active, a.offset = r.expert_offset, a.sorted_pair = r.sorted_pair, a.KP = KP;
  run<kGateUp>(a, wt, max_active, lean, s);
}

void moe_down(const float* act, int I, const void* w_down, DType wt, const float* b_down, int D, const MoeRouting& r,
              int max_active, bool lean, float* pair_out, cudaStream_t s, int max_rows, bool one_slot) {
  SkinnyArgs a{};
  a.w = w_down, a.ldw = I, a.w_batch = static_cast<int64_t>(D) * I;
  a.x = act, a.ldx = I;
  a.y = pair_out, a.ldy = D;
  a.bias = b_down, a.bias_batch = D;
  a.N = D, a.K = I, a.T = 0, a.few = max_rows, a.one_slot = one_slot;
  a.active = r.active, a.n_active = r.n_active, a.offset = r.expert_offset, a.sorted_pair = r.sorted_pair, a.KP = 1;
  run<kDown>(a, wt, max_active, lean, s);
}

}  // namespace ghostline::kernels
