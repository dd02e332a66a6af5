// MLA decode attention over the latent cache.
//
// mla_decode_kernel: a block takes one listed token, up to 16 query heads and one split of the
// token's positions, 32 positions (a tile) at a time. The tile's 576-wide latent+rope rows are
// copied once into shared memory (cp.async, the next tile's copy in flight while this one is
// used) and serve every head: scores S[16 heads, 32 positions] = Q K^T and values
// O[16, 512] += P V are mma.sync m16n8k8 products (tf32 in three terms, split by masks: float32
// accuracy). The scores' k dimension is spread over the 16 warps (each keeps its slice of the
// queries in registers) and summed through shared memory; the values' n dimension too. Online
// softmax across tiles (a warp per head); the block writes its unnormalised output with its
// running max and sum, in the layout attn_decode uses.
//
// mla_merge_kernel: a block per (token, head, 32 output rows) merges the splits of its head and
// applies its rows of W_vb, which it loads before waiting on the kernel before it.
#include <algorithm>
#include <cstdlib>

#include "kernels/common.cuh"
#include "kernels/mma.cuh"
#include "kernels/mla_decode.h"

namespace ghostline::kernels {

namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kTile = 32;                  // positions per tile
constexpr int kHeads = 16;                 // query heads per block: the mma's M
constexpr int kMaxKSteps = 5;              // score k-steps (of 8) per warp: dk <= 8 * 16 * 5
constexpr int kMaxVTiles = 4;              // value n-tiles (of 8 dims) per warp: dv <= 512
constexpr int kRowsPerWarp = kTile / kWarps;
static_assert(kWarps == kHeads && kTile == 32, "the softmax takes a warp per head and a lane per position");
constexpr int kRedLd = kTile + 8;          // score partials [warp][head][position]
constexpr int kProbLd = kTile + 4;         // probabilities [head][position]
constexpr int kMaxSplits = 64;             // attn_decode's limit: the merge takes two per lane
constexpr int kMergeThreads = 512;
constexpr int kMergeRows = 2 * (kMergeThreads / 32);  // output rows per merge block
constexpr int kMaxDv = 512;


// x = hi + lo to about 21 bits, both tf32 (truncated by masks: conversions are slow).
__device__ __forceinline__ void split_tf32(float x, uint32_t& hi, uint32_t& lo) {
  hi = __float_as_uint(x) & 0xffffe000u;
  lo = __float_as_uint(x - __uint_as_float(hi)) & 0xffffe000u;
}
// c[16x8] += a[16x8] b[8x8] (a row-major fragment, b column-major), tf32 in, float32 accumulate.
__device__ __forceinline__ void mma_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// The same product in three tf32 terms (a_lo b_hi + a_hi b_lo + a_hi b_hi): float32 accuracy.
__device__ __forceinline__ void mma3(float (&c)[4], const uint32_t (&ah)[4], const uint32_t (&al)[4], float b0, float b1) {
  uint32_t h0, l0, h1, l1;
  split_tf32(b0, h0, l0);
  split_tf32(b1, h1, l1);
  mma_tf32(c, al, h0, h1);
  mma_tf32(c, ah, l0, l1);
  mma_tf32(c, ah, h0, h1);
}

// Fragment layout of m16n8k8 (tf32), lane = 4 g + c: a0 (row g, col c), a1 (g + 8, c),
// a2 (g, c + 4), a3 (g + 8, c + 4); b0 (row c, col g), b1 (c + 4, g); accumulators c0 (g, 2c),
// c1 (g, 2c + 1), c2 (g + 8, 2c), c3 (g + 8, 2c + 1).
__global__ void __launch_bounds__(kThreads, 1) mla_decode_kernel(Attention a, KvCache kv, TokenPlace place) {
  extern __shared__ float4 smem4[];
  const int dk = a.dk, dv = a.dv, ld = dk + 4;
  float* tiles = reinterpret_cast<float*>(smem4);  // [2][kTile][ld]
  float* red = tiles + 2 * kTile * ld;              // [kWarps][kHeads][kRedLd]
  float* prob = red + kWarps * kHeads * kRedLd;     // [kHeads][kProbLd]
  float* corr = prob + kHeads * kProbLd;            // [kHeads]
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c4 = lane & 3;
  const int split = blockIdx.x, li = blockIdx.y, h0 = blockIdx.z * kHeads;
  // The step's placement and block tables are written before the step: read before the wait.
  const int t = a.list[li];
  const int seq = place.seq[t];
  const int n = seq >= 0 ? place.pos[t] + 1 : 0;
  const int per = split_length(n, a);
  const int p0 = split * per, p1 = min(n, p0 + per);
  const int64_t part = (static_cast<int64_t>(li) * a.n_splits + split) * a.G + h0;
  if (p0 >= p1) {
    grid_wait();
    if (lane == 0 && h0 + warp < a.G) {
      a.part_ml[(part + warp) * 2] = -INFINITY;
      a.part_ml[(part + warp) * 2 + 1] = 0.0f;
    }
    return;
  }
  const int32_t* table = kv.block_table + kv.table_offset[seq];
  const int chunks = dk / 4;  // 16-byte pieces of a row
  // Cache offsets of the rows this warp copies (rows warp + 8 r of a tile), one tile ahead.
  // Rows past the split repeat its last position (finite values; their scores are masked).
  int64_t offs[kRowsPerWarp];
  auto row_offsets = [&](int c0) {
    const int last = min(kTile, p1 - c0) - 1;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) offs[r] = slot_offset(kv, table, c0 + min(warp + kWarps * r, last)) + a.k_off;
  };
  auto issue = [&](float* buf) {
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const float* src = kv.layer + offs[r];
      float* dst = buf + (warp + kWarps * r) * ld;
      for (int c = lane; c < chunks; c += 32) cp_async16(dst + 4 * c, src + 4 * c);
    }
    cp_async_commit();
  };
  row_offsets(p0);
  grid_wait();
  issue(tiles);
  const int n_tiles = (p1 - p0 + kTile - 1) / kTile;
  if (n_tiles > 1) row_offsets(p0 + kTile);

  // This warp's k-slice of the queries (k-steps warp, warp + 8, ...), scaled, as A fragments.
  const int k_steps = dk / 8;
  const bool lo_ok = h0 + g < a.G, hi_ok = h0 + g + 8 < a.G;
  const float* q_lo = a.q + t * a.q_tok_stride + static_cast<int64_t>(h0 + g) * dk;
  const float* q_hi = q_lo + 8 * dk;
  uint32_t qh[kMaxKSteps][4], ql[kMaxKSteps][4];
#pragma unroll
  for (int s = 0; s < kMaxKSteps; ++s) {
    const int k = (warp + kWarps * s) * 8 + c4;
    const bool in = warp + kWarps * s < k_steps;
    const float x0 = in && lo_ok ? q_lo[k] * a.scale : 0.0f, x1 = in && hi_ok ? q_hi[k] * a.scale : 0.0f;
    const float x2 = in && lo_ok ? q_lo[k + 4] * a.scale : 0.0f, x3 = in && hi_ok ? q_hi[k + 4] * a.scale : 0.0f;
    split_tf32(x0, qh[s][0], ql[s][0]);
    split_tf32(x1, qh[s][1], ql[s][1]);
    split_tf32(x2, qh[s][2], ql[s][2]);
    split_tf32(x3, qh[s][3], ql[s][3]);
  }

  const int v_tiles = dv / 8, vcol = a.v_off - a.k_off;
  float acc[kMaxVTiles][4];
#pragma unroll
  for (int i = 0; i < kMaxVTiles; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
  float m_run = -INFINITY, l_run = 0.0f;  // of head `warp` (its lanes hold the same)

  for (int it = 0; it < n_tiles; ++it) {
    const int c0 = p0 + it * kTile, len = min(kTile, p1 - c0);
    const float* buf = tiles + (it & 1) * kTile * ld;
    if (it + 1 < n_tiles) {
      issue(tiles + ((it + 1) & 1) * kTile * ld);
      if (it + 2 < n_tiles) row_offsets(p0 + (it + 2) * kTile);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    // Scores of this warp's k-slice: 16 heads x 32 positions.
    float sc[kTile / 8][4];
#pragma unroll
    for (int nt = 0; nt < kTile / 8; ++nt) sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.0f;
#pragma unroll
    for (int s = 0; s < kMaxKSteps; ++s) {
      if (warp + kWarps * s < k_steps) {
        const int k = (warp + kWarps * s) * 8 + c4;
#pragma unroll
        for (int nt = 0; nt < kTile / 8; ++nt) {
          const float* row = buf + (nt * 8 + g) * ld + k;
          mma3(sc[nt], qh[s], ql[s], row[0], row[4]);
        }
      }
    }
#pragma unroll
    for (int nt = 0; nt < kTile / 8; ++nt) {
      float* r0 = red + (warp * kHeads + g) * kRedLd + nt * 8 + 2 * c4;
      *reinterpret_cast<float2*>(r0) = make_float2(sc[nt][0], sc[nt][1]);
      *reinterpret_cast<float2*>(r0 + 8 * kRedLd) = make_float2(sc[nt][2], sc[nt][3]);
    }
    __syncthreads();
    // Online softmax: a warp per head (kWarps == kHeads), a lane per position.
    float s0 = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) s0 += red[(w * kHeads + warp) * kRedLd + lane];
    if (lane >= len) s0 = -INFINITY;
    const float m_new = fmaxf(m_run, warp_max(s0));  // finite: position 0 of the tile is always in range
    const float e0 = expf(s0 - m_new);
    const float sum = warp_sum(e0);
    const float cf = expf(m_run - m_new);
    l_run = l_run * cf + sum;
    m_run = m_new;
    prob[warp * kProbLd + lane] = e0;
    if (lane == 0) corr[warp] = cf;
    __syncthreads();
    // Values: this warp's n-tiles (dims 8 (warp + 8 i) ..), the probabilities as A fragments.
    const float c_lo = corr[g], c_hi = corr[g + 8];
    uint32_t ph[kTile / 8][4], pl[kTile / 8][4];
#pragma unroll
    for (int ks = 0; ks < kTile / 8; ++ks) {
      const float* pr = prob + g * kProbLd + ks * 8 + c4;
      split_tf32(pr[0], ph[ks][0], pl[ks][0]);
      split_tf32(pr[8 * kProbLd], ph[ks][1], pl[ks][1]);
      split_tf32(pr[4], ph[ks][2], pl[ks][2]);
      split_tf32(pr[8 * kProbLd + 4], ph[ks][3], pl[ks][3]);
    }
#pragma unroll
    for (int i = 0; i < kMaxVTiles; ++i) {
      const int nt = warp + kWarps * i;
      if (nt < v_tiles) {
        acc[i][0] *= c_lo, acc[i][1] *= c_lo, acc[i][2] *= c_hi, acc[i][3] *= c_hi;
        const float* col = buf + vcol + nt * 8 + g;
#pragma unroll
        for (int ks = 0; ks < kTile / 8; ++ks) mma3(acc[i], ph[ks], pl[ks], col[(ks * 8 + c4) * ld], col[(ks * 8 + c4 + 4) * ld]);
      }
    }
    __syncthreads();  // before the next iteration's copy reuses this buffer
  }
#pragma unroll
  for (int i = 0; i < kMaxVTiles; ++i) {
    const int nt = warp + kWarps * i;
    if (nt < v_tiles) {
      const int col = nt * 8 + 2 * c4;
      if (lo_ok) *reinterpret_cast<float2*>(a.part_o + (part + g) * dv + col) = make_float2(acc[i][0], acc[i][1]);
      if (hi_ok) *reinterpret_cast<float2*>(a.part_o + (part + g + 8) * dv + col) = make_float2(acc[i][2], acc[i][3]);
    }
  }
  if (lane == 0 && h0 + warp < a.G) {
    a.part_ml[(part + warp) * 2] = m_run;
    a.part_ml[(part + warp) * 2 + 1] = l_run;
  }
}

// Merges the splits of head h of listed token li and applies rows [row0, row0 + 32) of W_vb[h]:
// a warp per two rows, each lane 8 + 8 of the dv columns (weights loaded before the wait).
template <typename WT>
__global__ void __launch_bounds__(kMergeThreads) mla_merge_kernel(Attention a, TokenPlace place, const WT* proj, int64_t head_stride,
                                                                  int64_t proj_ld, int dout, float* out, int64_t out_tok_stride) {
  __shared__ float4 quarter[4][kMaxDv / 4];
  __shared__ float4 val4[kMaxDv / 4];
  const int li = blockIdx.x, h = blockIdx.y, row0 = blockIdx.z * kMergeRows;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int dv = a.dv;
  float w[2][2][8];
  const WT* W = proj + h * head_stride;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = min(row0 + 2 * warp + r, dout - 1);
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int k = lane * 8 + 256 * u;
      load8(W + row * proj_ld + min(k, dv - 8), w[r][u]);
      if (k >= dv) {
#pragma unroll
        for (int i = 0; i < 8; ++i) w[r][u][i] = 0.0f;
      }
    }
  }
  const int t = a.list[li];
  const int n = place.seq[t] >= 0 ? place.pos[t] + 1 : 0;
  const int per = split_length(n, a);
  const int S = n > 0 ? (n + per - 1) / per : 0;  // splits with positions (at most 64)
  grid_wait();
  // The partial values first (they do not depend on the split weights): thread (quarter qd,
  // column c) takes splits qd, qd + 4, ... (S <= 64: one round of 16 loads in flight).
  const int64_t base = static_cast<int64_t>(li) * a.n_splits;
  const int dv4 = dv / 4, col = threadIdx.x & 127, qd = threadIdx.x >> 7;
  const int64_t stride4 = static_cast<int64_t>(a.G) * dv4;
  const float4* po = reinterpret_cast<const float4*>(a.part_o + (base * a.G + h) * dv) + min(col, dv4 - 1);
  float4 x[16];
#pragma unroll
  for (int u = 0; u < 16; ++u) x[u] = S > 0 ? po[min(qd + 4 * u, S - 1) * stride4] : make_float4(0.f, 0.f, 0.f, 0.f);
  // Split weights, in every warp: splits lane and lane + 32.
  const SplitWeights sw = split_weights(a.part_ml, base, a.G, h, S, lane);
  const float w0 = sw.w[0], w1 = sw.w[1];
  const float inv_total = sw.total > 0.0f ? 1.0f / sw.total : 0.0f;
  float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
  for (int u = 0; u < 16; ++u) {
    const int s = qd + 4 * u;
    const float wa = __shfl_sync(0xffffffffu, w0, s & 31), wb = __shfl_sync(0xffffffffu, w1, s & 31);
    const float ws = s < S ? (s < 32 ? wa : wb) : 0.0f;
    v.x = fmaf(ws, x[u].x, v.x), v.y = fmaf(ws, x[u].y, v.y), v.z = fmaf(ws, x[u].z, v.z), v.w = fmaf(ws, x[u].w, v.w);
  }
  quarter[qd][col] = v;
  __syncthreads();
  if (threadIdx.x < dv4) {
    const float4 a0 = quarter[0][threadIdx.x], a1 = quarter[1][threadIdx.x], a2 = quarter[2][threadIdx.x], a3 = quarter[3][threadIdx.x];
    val4[threadIdx.x] = make_float4(((a0.x + a1.x) + (a2.x + a3.x)) * inv_total, ((a0.y + a1.y) + (a2.y + a3.y)) * inv_total,
                                    ((a0.z + a1.z) + (a2.z + a3.z)) * inv_total, ((a0.w + a1.w) + (a2.w + a3.w)) * inv_total);
  }
  __syncthreads();
  const float* val = reinterpret_cast<const float*>(val4);
  float* o = out + t * out_tok_stride + static_cast<int64_t>(h) * dout;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float s = 0.0f;
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int k = lane * 8 + 256 * u;
      if (k < dv) {
#pragma unroll
        for (int i = 0; i < 8; ++i) s = fmaf(w[r][u][i], val[k + i], s);
      }
    }
    s = warp_sum(s);
    const int row = row0 + 2 * warp + r;
    if (lane == 0 && row < dout) o[row] = s;
  }
}

bool mla_kernel_enabled() {
  static const bool on = env_on("GHOSTLINE_MLA_KERNEL");
  return on;
}

bool host_aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

size_t mla_smem(int dk) {
  return sizeof(float) * (2 * static_cast<size_t>(kTile) * (dk + 4) + kWarps * kHeads * kRedLd + kHeads * kProbLd + kHeads);
}

}  // namespace

bool mla_decode_fused(const Attention& a, KvCache kv, const void* w_vb, DType w_dt, int64_t w_head_stride, int64_t w_ld) {
  const int64_t align = w_dt == DType::BF16 ? 8 : 4;  // weights per 16 bytes
  return mla_kernel_enabled() && a.n_kvh == 1 && a.dk % 8 == 0 && a.dk <= 8 * kWarps * kMaxKSteps && a.dv % 8 == 0 && a.dv <= kMaxDv &&
         a.k_off % 4 == 0 && a.v_off >= a.k_off && a.v_off + a.dv <= a.k_off + a.dk && kv.kv_dim % 4 == 0 && kv.block_stride % 4 == 0 &&
         host_aligned16(kv.layer) && host_aligned16(a.part_o) && a.n_splits >= 1 && a.n_splits <= kMaxSplits && w_vb && host_aligned16(w_vb) &&
         w_ld % align == 0 && w_head_stride % align == 0;
}

void mla_decode(const Attention& a, KvCache kv, TokenPlace place, const void* w_vb, DType w_dt, int64_t w_head_stride, int64_t w_ld,
                int dout, float* out, int64_t out_tok_stride, cudaStream_t s) {
  if (a.n_list <= 0) return;
  if (!mla_decode_fused(a, kv, w_vb, w_dt, w_head_stride, w_ld)) {
    attn_decode(a, kv, place, s);
    attn_combine(a, place, w_vb, w_dt, w_head_stride, w_ld, dout, out, out_tok_stride, s);
    return;
  }
  const size_t smem = mla_smem(a.dk);
  static size_t raised = 48 * 1024;
  if (smem > raised) {
    check_launch(cudaFuncSetAttribute(mla_decode_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)), __FILE__,
                 __LINE__);
    raised = smem;
  }
  launch(mla_decode_kernel, dim3(a.n_splits, a.n_list, (a.G + kHeads - 1) / kHeads), dim3(kThreads), smem, s, a, kv, place);
  const dim3 grid(a.n_list, a.G, (dout + kMergeRows - 1) / kMergeRows);
  if (w_dt == DType::BF16)
    launch(mla_merge_kernel<bf16>, grid, dim3(kMergeThreads), 0, s, a, place, static_cast<const bf16*>(w_vb), w_head_stride, w_ld, dout,
           out, out_tok_stride);
  else
    launch(mla_merge_kernel<float>, grid, dim3(kMergeThreads), 0, s, a, place, static_cast<const float*>(w_vb), w_head_stride, w_ld,
           dout, out, out_tok_stride);
}

}  // namespace ghostline::kernels
