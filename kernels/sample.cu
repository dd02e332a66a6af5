// Token picking on the device: one block per logit row picks that row's token, so that a step
// sends back R ids instead of R × V floats. Greedy is the argmax (lowest id on ties, as the host
// sampler). Otherwise the weights w_i = exp((x_i - max) / T) lie in (0, 1]; top-k keeps the
// w >= the k-th largest w, top-p then keeps the w >= the largest threshold whose kept mass still
// reaches p of what top-k kept, and the token is where u × (kept mass) falls when the kept
// weights are laid end to end in id order — the host sampler's draw (engine/runtime/sampler.cpp)
// with the same u. Thresholds are found exactly by bisection over the bit patterns of the
// weights (non-negative floats order as their bits do): at most 31 passes over the row each,
// cheap next to a forward at the sizes of real vocabularies. Exact ties at a threshold are all
// kept (the host keeps the lower ids); nothing else differs.
#include <cfloat>
#include <climits>

#include "kernels/common.cuh"

namespace ghostline::kernels {
namespace {

constexpr int kPickThreads = 1024;

// The largest (value, lowest id) of the block; every thread gets it. Shared scratch of 32 each.
__device__ void block_argmax(float& v, int& id, float* sv, int* si) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, id, o);
    if (ov > v || (ov == v && oi < id)) v = ov, id = oi;
  }
  __syncthreads();
  if (lane == 0) sv[warp] = v, si[warp] = id;
  __syncthreads();
  v = lane < n_warps ? sv[lane] : -FLT_MAX;
  id = lane < n_warps ? si[lane] : INT_MAX;
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, id, o);
    if (ov > v || (ov == v && oi < id)) v = ov, id = oi;
  }
}

__device__ __forceinline__ float weight(float x, float top, float inv_t) {
  const float w = __expf((x - top) * inv_t);
  return isfinite(w) ? w : 0.0f;
}

// Count (as float) and mass of the weights whose bits are >= `bits`.
__device__ void kept(const float* x, int V, float top, float inv_t, uint32_t bits, float* scratch, float& count,
                     float& mass) {
  float c = 0, m = 0;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const float w = weight(x[i], top, inv_t);
    if (__float_as_uint(w) >= bits) c += 1, m += w;
  }
  count = block_sum(c, scratch);
  mass = block_sum(m, scratch);
}

__global__ void __launch_bounds__(kPickThreads) pick_kernel(const float* logits, int V, const RowPick* picks, int32_t* ids) {
  grid_wait();
  __shared__ float sv[32], scratch[32];
  __shared__ int si[32];
  const float* x = logits + static_cast<size_t>(blockIdx.x) * V;
  const RowPick p = picks[blockIdx.x];
  float top = -FLT_MAX;
  int top_id = INT_MAX;
  for (int i = threadIdx.x; i < V; i += blockDim.x)
    if (x[i] > top || top_id == INT_MAX) top = x[i], top_id = i;  // strided: first hit has the lowest id
  block_argmax(top, top_id, sv, si);
  if (!(p.temperature > 0.0f) || top_id == INT_MAX) {
    if (threadIdx.x == 0) ids[blockIdx.x] = top_id == INT_MAX ? 0 : top_id;
    return;
  }
  const float inv_t = 1.0f / p.temperature;
  // Top-k: the largest bit pattern b with count(w >= b) >= k (the argmax has w = 1).
  uint32_t lo = 0, hi = __float_as_uint(1.0f);
  float count, mass;
  if (p.top_k > 0 && p.top_k < V) {
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo + 1) / 2;
      kept(x, V, top, inv_t, mid, scratch, count, mass);
      if (count >= static_cast<float>(p.top_k)) lo = mid;
      else hi = mid - 1;
    }
  }
  // Top-p over what top-k kept: the largest b with mass(w >= b) >= p × mass(w >= lo).
  if (p.top_p > 0.0f && p.top_p < 1.0f) {
    kept(x, V, top, inv_t, lo, scratch, count, mass);
    const float need = p.top_p * mass;
    hi = __float_as_uint(1.0f);
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo + 1) / 2;
      kept(x, V, top, inv_t, mid, scratch, count, mass);
      if (mass >= need) lo = mid;
      else hi = mid - 1;
    }
  }
  // The draw: each thread a contiguous run of ids; an exclusive scan of the runs' masses finds
  // the run where target falls, and that thread walks it.
  const uint32_t cut = lo;
  const int run = (V + blockDim.x - 1) / blockDim.x;
  const int begin = min(V, static_cast<int>(threadIdx.x) * run), end = min(V, begin + run);
  float local = 0;
  int last = -1;
  for (int i = begin; i < end; ++i) {
    const float w = weight(x[i], top, inv_t);
    if (__float_as_uint(w) >= cut) local += w, last = i;
  }
  // Inclusive scan over the block: warps, then the warp totals.
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float incl = local;
  for (int o = 1; o < 32; o <<= 1) {
    const float n = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += n;
  }
  __syncthreads();
  if (lane == 31) sv[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    float t = lane < static_cast<int>(blockDim.x >> 5) ? sv[lane] : 0.0f;
    for (int o = 1; o < 32; o <<= 1) {
      const float n = __shfl_up_sync(0xffffffffu, t, o);
      if (lane >= o) t += n;
    }
    sv[lane] = t;  // inclusive totals per warp
  }
  __syncthreads();
  // Run t covers [begin_t, end_t) with begin_t = end_{t-1} exactly (lane 31 ends at its warp's
  // scanned total, where the next warp's lane 0 begins), so the runs tile [0, total).
  const float base = warp > 0 ? sv[warp - 1] : 0.0f;
  const float run_end = lane == 31 ? sv[warp] : base + incl;
  float run_begin = __shfl_up_sync(0xffffffffu, run_end, 1);
  if (lane == 0) run_begin = base;
  const float total = sv[(blockDim.x >> 5) - 1];
  const float target = p.uniform * total;
  // The highest id kept anywhere: the answer if rounding leaves target in no run.
  float lv = static_cast<float>(last);
  int li = 0;
  __syncthreads();
  block_argmax(lv, li, sv, si);
  if (threadIdx.x == 0) ids[blockIdx.x] = lv >= 0 ? static_cast<int32_t>(lv) : top_id;
  __syncthreads();
  if (local > 0 && target >= run_begin && target < run_end) {
    float acc = run_begin;
    int pick = last;
    for (int i = begin; i < end; ++i) {
      const float w = weight(x[i], top, inv_t);
      if (__float_as_uint(w) < cut) continue;
      acc += w;
      if (target < acc) { pick = i; break; }
    }
    ids[blockIdx.x] = pick;
  }
}

}  // namespace

void pick_tokens(const float* logits, int R, int V, const RowPick* picks, int32_t* ids, cudaStream_t s) {
  if (R <= 0 || V <= 0) return;
  launch(pick_kernel, dim3(R), dim3(kPickThreads), 0, s, logits, V, picks, ids);
}

}  // namespace ghostline::kernels
