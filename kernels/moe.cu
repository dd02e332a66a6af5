// Mixture-of-experts routing: router logits, softmax and top-k (greedy or group-limited, ties
// to the lower expert id as transformers' topk does), the shared experts appended with weight
// 1, then a sort of the (token, expert) pairs by expert with the list of active experts. The
// expert products themselves are in skinny.cu (decode) or cuBLAS (prefill, rows gathered here).
#include <algorithm>
#include <cstdlib>

#include "kernels/common.cuh"
#include "kernels/mma.cuh"

namespace ghostline::kernels {

namespace {

constexpr int kMaxExperts = 1024;
constexpr int kMaxGroups = 64;
constexpr int kStablePairs = 1024;  // pairs up to this many keep token order inside an expert

// Argmax over v[0..n) for a warp; ties to the lower index. Every lane gets (value, index).
__device__ __forceinline__ void warp_argmax(const float* v, int n, int lane, float& best, int& idx) {
  best = -INFINITY;
  idx = 0x7fffffff;
  for (int i = lane; i < n; i += 32)
    if (v[i] > best) best = v[i], idx = i;  // lane-local: ascending i, so the first max stays
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, o);
    const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
    if (ob > best || (ob == best && oi < idx)) best = ob, idx = oi;
  }
}

__device__ __forceinline__ void select_experts(const RouteParams& rp, float* prob, float* gmax, int32_t* pe, float* pw, int lane);

// The routing of token t by one block (the pairs of every path end in r.pair_expert / weight).
__device__ __forceinline__ void route_token(int t, const float* h, int D, const float* router, const float* logits,
                                            const RouteParams& rp, const int32_t* seq, const MoeRouting& r, float* prob, float* gmax) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  const int KP = rp.K + rp.S;
  int32_t* pe = r.pair_expert + static_cast<int64_t>(t) * KP;
  float* pw = r.pair_weight + static_cast<int64_t>(t) * KP;
  if (seq && seq[t] < 0) {
    for (int k = threadIdx.x; k < KP; k += blockDim.x) pe[k] = -1, pw[k] = 0.0f;
    return;
  }
  for (int s = threadIdx.x; s < rp.S; s += blockDim.x) pe[rp.K + s] = rp.E + s, pw[rp.K + s] = 1.0f;
  if (rp.E == 0 || rp.K == 0) return;
  const float* x = h + static_cast<int64_t>(t) * D;
  const bool vec = D % 4 == 0 && aligned16(x) && aligned16(router);
  if (logits)
    for (int e = threadIdx.x; e < rp.E; e += blockDim.x) prob[e] = logits[static_cast<int64_t>(t) * rp.E + e];
  for (int e = warp; e < (logits ? 0 : rp.E); e += n_warps) {
    const float* w = router + static_cast<int64_t>(e) * D;
    float s = 0.0f;
    if (vec) {
      for (int k = lane * 4; k < D; k += 128) {
        const float4 a = *reinterpret_cast<const float4*>(w + k), b = *reinterpret_cast<const float4*>(x + k);
        s += a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
      }
    } else {
      for (int k = lane; k < D; k += 32) s += w[k] * x[k];
    }
    s = warp_sum(s);
    if (lane == 0) prob[e] = s;
  }
  __syncthreads();
  if (warp != 0) return;
  select_experts(rp, prob, gmax, pe, pw, lane);
}

// By one warp: softmax over the E logits in prob (shared memory, overwritten), the group limit,
// top-K into pe / pw (the token's routed pairs).
__device__ __forceinline__ void select_experts(const RouteParams& rp, float* prob, float* gmax, int32_t* pe, float* pw, int lane) {
  // Softmax over the E logits (float32, as the reference routes).
  float m = -INFINITY;
  for (int e = lane; e < rp.E; e += 32) m = fmaxf(m, prob[e]);
  m = warp_max(m);
  float sum = 0.0f;
  for (int e = lane; e < rp.E; e += 32) {
    const float v = expf(prob[e] - m);
    prob[e] = v;
    sum += v;
  }
  sum = warp_sum(sum);
  const float inv = 1.0f / sum;
  for (int e = lane; e < rp.E; e += 32) prob[e] *= inv;
  __syncwarp();
  if (rp.group_limited && rp.n_group > 1) {
    const int G = rp.n_group, per = rp.E / G;
    for (int g = lane; g < G; g += 32) {
      float gm = -INFINITY;
      for (int e = g * per; e < (g + 1) * per; ++e) gm = fmaxf(gm, prob[e]);
      gmax[g] = gm;
    }
    __syncwarp();
    // Keep the topk_group best groups (ties to the lower group), zero the others' scores.
    // The kept groups are marked by -2 in gmax (scores are >= 0, so -2 never wins again).
#pragma unroll 1
    for (int i = 0; i < rp.topk_group; ++i) {
      float b;
      int gi;
      warp_argmax(gmax, G, lane, b, gi);
      if (lane == 0) gmax[gi] = -2.0f;
      __syncwarp();
    }
    for (int e = lane; e < rp.E; e += 32)
      if (gmax[e / per] != -2.0f) prob[e] = 0.0f;
    __syncwarp();
  }
  // Loops kept rolled: this kernel runs on one multiprocessor per token, and its time goes to
  // fetching its code more than to the arithmetic.
  float wsum = 0.0f;
#pragma unroll 1
  for (int k = 0; k < rp.K; ++k) {
    float b;
    int e;
    warp_argmax(prob, rp.E, lane, b, e);
    wsum += b;
    if (lane == 0) {
      prob[e] = -INFINITY;
      pe[k] = e;
      pw[k] = b;
    }
    __syncwarp();
  }
  if (lane == 0) {
#pragma unroll 1
    for (int k = 0; k < rp.K; ++k) pw[k] = (rp.renormalize ? pw[k] / wsum : pw[k]) * rp.scale;
  }
}

// The sort of one token's pairs (T == 1, the decode step of one sequence), by warp 0: its
// experts are distinct, so each pair's row is the number of its experts with a lower id.
__device__ __forceinline__ void sort_one_token(const RouteParams& rp, const MoeRouting& r) {
  const int lane = threadIdx.x & 31;
  const int KP = rp.K + rp.S, X = rp.E + rp.S;
  const int e = lane < KP ? r.pair_expert[lane] : -1;
  const bool valid = e >= 0;
  int ids[32];
  int rank = 0;
#pragma unroll
  for (int j = 0; j < 32; ++j) {
    ids[j] = __shfl_sync(0xffffffffu, e, j);
    if (valid && ids[j] >= 0 && ids[j] < e) ++rank;
  }
  const int n_valid = __popc(__ballot_sync(0xffffffffu, valid));
  if (lane < KP) {
    r.pair_slot[lane] = valid ? rank : -1;
    if (valid) {
      r.sorted_pair[rank] = lane;
      r.active[rank] = e;
    }
  }
  for (int x = lane; x <= X; x += 32) {
    int below = 0;
#pragma unroll
    for (int j = 0; j < 32; ++j) below += ids[j] >= 0 && ids[j] < x;
    r.expert_offset[x] = below;
  }
  if (lane == 0) *r.n_active = n_valid;
}

__global__ void route_kernel(const float* h, int D, const float* router, const float* logits, RouteParams rp, const int32_t* seq,
                             MoeRouting r, bool also_sort) {
  grid_wait();
  __shared__ float prob[kMaxExperts];
  __shared__ float gmax[kMaxGroups];
  route_token(blockIdx.x, h, D, router, logits, rp, seq, r, prob, gmax);
  if (also_sort) {
    __syncthreads();
    if (threadIdx.x < 32) sort_one_token(rp, r);
  }
}


// Steps of many tokens with their logits given (prefill): a warp per token, 8
// tokens a block (route_kernel's block per token kept 7 of its 8 warps idle and took ~19 us a
// layer at 2,048 tokens). GHOSTLINE_ROUTE_WARPS=0 keeps route_kernel.
constexpr int kRouteWarps = 8;
constexpr int kRouteWarpExperts = 256;  // prob per warp in shared memory: E up to this
__global__ void __launch_bounds__(kRouteWarps * 32) route_warps_kernel(const float* logits, RouteParams rp, const int32_t* seq, int T,
                                                                       MoeRouting r) {
  grid_wait();
  __shared__ float prob_all[kRouteWarps][kRouteWarpExperts];
  __shared__ float gmax_all[kRouteWarps][kMaxGroups];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int t = blockIdx.x * kRouteWarps + warp;
  if (t >= T) return;
  const int KP = rp.K + rp.S;
  int32_t* pe = r.pair_expert + static_cast<int64_t>(t) * KP;
  float* pw = r.pair_weight + static_cast<int64_t>(t) * KP;
  if (seq && seq[t] < 0) {
    for (int k = lane; k < KP; k += 32) pe[k] = -1, pw[k] = 0.0f;
    return;
  }
  for (int s = lane; s < rp.S; s += 32) pe[rp.K + s] = rp.E + s, pw[rp.K + s] = 1.0f;
  if (rp.E == 0 || rp.K == 0) return;
  float* prob = prob_all[warp];
  for (int e = lane; e < rp.E; e += 32) prob[e] = logits[static_cast<int64_t>(t) * rp.E + e];
  __syncwarp();
  select_experts(rp, prob, gmax_all[warp], pe, pw, lane);
}

// The expert ids of pairs p0 + i * blockDim.x + threadIdx.x, i < kSortPer, loaded at once (-1 past P).
template <int kSortPer>
__device__ __forceinline__ void load_pair_experts(const int* pair_expert, int P, int p0, int (&ev)[kSortPer]) {
#pragma unroll
  for (int i = 0; i < kSortPer; ++i) {
    const int p = p0 + i * blockDim.x + threadIdx.x;
    ev[i] = p < P ? pair_expert[p] : -1;
  }
}

// One block: counts per expert, offsets, the active list, and each pair's sorted row.
// kSortPer: pair ids a thread loads at once past kStablePairs (1 with GHOSTLINE_SORT_BATCH=0: the
// loop as it was, one load in flight a thread).
template <int kSortPer>
__global__ void __launch_bounds__(1024) sort_kernel(int P, int X, MoeRouting r) {
  grid_wait();
  __shared__ int cnt[kMaxExperts];
  __shared__ int off[kMaxExperts + 1];
  __shared__ int act_pos[kMaxExperts];
  __shared__ int experts[kStablePairs];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int e = threadIdx.x; e < X; e += blockDim.x) cnt[e] = 0;
  __syncthreads();
  if (P <= kStablePairs) {
    for (int p = threadIdx.x; p < P; p += blockDim.x) {
      const int e = r.pair_expert[p];
      experts[p] = e;
      if (e >= 0) atomicAdd(&cnt[e], 1);
    }
  } else {
    // kSortPer expert ids a thread loaded at once, then counted (a prefill's 16K pairs: one
    // round; one load in flight a thread took ~19 us a layer).
    for (int p0 = 0; p0 < P; p0 += kSortPer * blockDim.x) {
      int ev[kSortPer];
      load_pair_experts(r.pair_expert, P, p0, ev);
#pragma unroll
      for (int i = 0; i < kSortPer; ++i)
        if (ev[i] >= 0) atomicAdd(&cnt[ev[i]], 1);
    }
  }
  __syncthreads();
  if (warp == 0) {
    // Exclusive scans of the counts and of the active flags: each lane a run of experts.
    const int per = (X + 31) / 32, b = lane * per, e_end = min(X, b + per);
    int c = 0, a = 0;
    for (int e = b; e < e_end; ++e) c += cnt[e], a += cnt[e] > 0;
    int ci = c, ai = a;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int cu = __shfl_up_sync(0xffffffffu, ci, o), au = __shfl_up_sync(0xffffffffu, ai, o);
      if (lane >= o) ci += cu, ai += au;
    }
    int run_c = ci - c, run_a = ai - a;
    for (int e = b; e < e_end; ++e) {
      off[e] = run_c;
      act_pos[e] = cnt[e] > 0 ? run_a : -1;
      run_c += cnt[e];
      run_a += cnt[e] > 0;
    }
    if (lane == 31) {
      off[X] = ci;
      *r.n_active = ai;
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e <= X; e += blockDim.x) r.expert_offset[e] = off[e];
  for (int e = threadIdx.x; e < X; e += blockDim.x)
    if (act_pos[e] >= 0) r.active[act_pos[e]] = e;
  if (P <= kStablePairs) {
    for (int p = threadIdx.x; p < P; p += blockDim.x) {
      const int e = experts[p];
      int slot = -1;
      if (e >= 0) {
        int rank = 0;
        for (int q = 0; q < p; ++q) rank += experts[q] == e;
        slot = off[e] + rank;
        r.sorted_pair[slot] = p;
      }
      r.pair_slot[p] = slot;
    }
  } else {
    __syncthreads();
    for (int e = threadIdx.x; e < X; e += blockDim.x) cnt[e] = off[e];  // cursors
    __syncthreads();
    for (int p0 = 0; p0 < P; p0 += kSortPer * blockDim.x) {
      int ev[kSortPer];
      load_pair_experts(r.pair_expert, P, p0, ev);
#pragma unroll
      for (int i = 0; i < kSortPer; ++i) {
        const int p = p0 + i * blockDim.x + threadIdx.x;
        if (p >= P) continue;
        int slot = -1;
        if (ev[i] >= 0) {
          slot = atomicAdd(&cnt[ev[i]], 1);
          r.sorted_pair[slot] = p;
        }
        r.pair_slot[p] = slot;
      }
    }
  }
}

__device__ __forceinline__ int64_t padded_row(int e, int rank, const MoePadding& L, int sorted_row) {
  if (L.packed) return sorted_row;
  return e < L.E ? static_cast<int64_t>(e) * L.maxc + rank : static_cast<int64_t>(L.E) * L.maxc + static_cast<int64_t>(e - L.E) * L.T + rank;
}

// Sorted row j (pair p of expert e, its rank-th row) -> padded row of e: the row of h it copies
// (its token's) and the row of dst it copies into.
template <typename T>
__device__ __forceinline__ void gather_ends(const float* h, int D, const MoeRouting& r, int KP, const MoePadding& L, T* dst, int j,
                                            const float*& s, T*& d) {
  const int p = r.sorted_pair[j], e = r.pair_expert[p];
  s = h + static_cast<int64_t>(p / KP) * D;
  d = dst + padded_row(e, j - r.expert_offset[e], L, j) * D;
}

// h[token of p] into the padded row of sorted row j (a block a row).
template <typename T>
__global__ void moe_gather_kernel(const float* h, int D, MoeRouting r, int KP, MoePadding L, T* dst) {
  grid_wait();
  const float* s;
  T* d;
  gather_ends(h, D, r, KP, L, dst, blockIdx.x, s, d);
  for (int i = threadIdx.x; i < D; i += blockDim.x) d[i] = from_float<T>(s[i]);
}

// The same in bf16, 8 values a thread (two float4 loads issued before one 16-byte store):
// the one-value-a-thread loop above kept one load in flight per thread (1.24 ms a 2,048-token
// DeepSeek-V2-Lite prefill, ~1.4 TB/s). Needs D % 8 == 0 and 16-byte aligned h and dst rows.
__global__ void moe_gather_bf16x8_kernel(const float* h, int D, MoeRouting r, int KP, MoePadding L, bf16* dst) {
  grid_wait();
  const float* s;
  bf16* d;
  gather_ends(h, D, r, KP, L, dst, blockIdx.x, s, d);
  for (int i = threadIdx.x * 8; i < D; i += blockDim.x * 8) {
    const float4 a = *reinterpret_cast<const float4*>(s + i), b = *reinterpret_cast<const float4*>(s + i + 4);
    uint4 o;
    o.x = pack_bf16(a.x, a.y), o.y = pack_bf16(a.z, a.w), o.z = pack_bf16(b.x, b.y), o.w = pack_bf16(b.z, b.w);
    *reinterpret_cast<uint4*>(d + i) = o;
  }
}

__global__ void moe_pad_slots_kernel(MoeRouting r, int P, MoePadding L) {
  grid_wait();
  for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < P; p += gridDim.x * blockDim.x) {
    const int slot = r.pair_slot[p];
    if (slot < 0) continue;
    const int e = r.pair_expert[p];
    r.pair_slot[p] = static_cast<int32_t>(padded_row(e, slot - r.expert_offset[e], L, slot));
  }
}

}  // namespace

void moe_route(const float* h, int D, const float* router, const float* logits, const RouteParams& rp, const int32_t* seq, int T,
               const MoeRouting& r, bool also_sort, cudaStream_t s) {
  if (rp.K + rp.S > 32 || rp.E > kMaxExperts || rp.K > 16 || (rp.group_limited && (rp.n_group > kMaxGroups || rp.n_group < 1 || rp.E % rp.n_group))) {
    check_launch(cudaErrorInvalidValue, __FILE__, __LINE__);
    return;
  }
  // From 128 tokens: at decode sizes the block per token was as fast (batch 32: 7.3 us a layer,
  // warps 8.2 us; prefill 2,048: 19.5 vs 10.2 us; H200, ed21fe6).
  if (logits && T >= 128 && rp.E <= kRouteWarpExperts && env_on("GHOSTLINE_ROUTE_WARPS")) {
    launch(route_warps_kernel, dim3((T + kRouteWarps - 1) / kRouteWarps), dim3(kRouteWarps * 32), 0, s, logits, rp, seq, T, r);
    return;
  }
  launch(route_kernel, dim3(T), dim3(256), 0, s, h, D, router, logits, rp, seq, r, also_sort && T == 1);
}

void moe_sort(int T, int KP, int X, const MoeRouting& r, cudaStream_t s) {
  if (X > kMaxExperts) {
    check_launch(cudaErrorInvalidValue, __FILE__, __LINE__);
    return;
  }
  if (env_on("GHOSTLINE_SORT_BATCH")) launch(sort_kernel<16>, dim3(1), dim3(1024), 0, s, T * KP, X, r);
  else launch(sort_kernel<1>, dim3(1), dim3(1024), 0, s, T * KP, X, r);
}

void moe_gather(const float* h, int D, const MoeRouting& r, int KP, int P, const MoePadding& pad, void* dst, DType dt, cudaStream_t s) {
  if (P <= 0) return;
  // GHOSTLINE_GATHER_VEC=0: the one-value-a-thread kernel (for comparisons; read at every call).
  const bool vec = env_on("GHOSTLINE_GATHER_VEC") && D % 8 == 0 &&
                   ((reinterpret_cast<uintptr_t>(h) | reinterpret_cast<uintptr_t>(dst)) & 15u) == 0;
  if (dt == DType::BF16 && vec)
    launch(moe_gather_bf16x8_kernel, dim3(P), dim3(std::min(256, (D / 8 + 31) / 32 * 32)), 0, s, h, D, r, KP, pad, static_cast<bf16*>(dst));
  else if (dt == DType::BF16) launch(moe_gather_kernel<bf16>, dim3(P), dim3(128), 0, s, h, D, r, KP, pad, static_cast<bf16*>(dst));
  else launch(moe_gather_kernel<float>, dim3(P), dim3(128), 0, s, h, D, r, KP, pad, static_cast<float*>(dst));
}

void moe_pad_slots(const MoeRouting& r, int P, const MoePadding& pad, cudaStream_t s) {
  if (P <= 0) return;
  launch(moe_pad_slots_kernel, dim3(std::min((P + 255) / 256, 1024)), dim3(256), 0, s, r, P, pad);
}

}  // namespace ghostline::kernels
