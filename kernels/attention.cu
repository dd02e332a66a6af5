// Attention over the paged KV cache.
//
// Decode (flash-decoding): a block takes one listed token, one KV head, up to 16 of its query
// heads and one split of the token's positions. Every key row is read once for all those heads
// (MLA: one 576-wide latent+rope row serves all 16 heads; values are the 512-wide latent), scores
// go to shared memory a chunk at a time with an online softmax, and the block writes its
// unnormalised output with its running max and sum. attn_combine merges the splits and, for MLA,
// applies W_vb per head.
//
// Prefill helpers: gather a sequence's cache rows, pack per-head operands for cuBLAS, and a
// causal softmax over the score rows.
#include <algorithm>
#include <cstdlib>

#include "kernels/common.cuh"

namespace ghostline::kernels {

namespace {

constexpr int kHeadsPerBlock = 16;
constexpr int kChunk = 128;        // positions scored at once
constexpr int kThreads = 256;
constexpr int kMaxSplits = 64;
constexpr int kAccHeads = 8;       // query heads per thread in the value pass (needs dv <= 512)
constexpr int kKeyChunks = 5;      // 16-byte chunks of a key per lane (dk <= 640)


__device__ __forceinline__ float dot4(const float4 a, const float4 b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }


// An empty split (no positions) still writes its statistics (max -inf, sum 0) and zero partial
// values for its `heads` heads from `part`, so that the merge reads every split unconditionally.
__device__ __forceinline__ void write_empty_split(const Attention& a, int64_t part, int heads, int dv) {
  for (int h = threadIdx.x; h < heads; h += blockDim.x) {
    a.part_ml[(part + h) * 2] = -INFINITY;
    a.part_ml[(part + h) * 2 + 1] = 0.0f;
  }
  for (int i = threadIdx.x; i < heads * dv; i += blockDim.x) a.part_o[part * dv + i] = 0.0f;
}

__global__ void __launch_bounds__(kThreads) attn_decode_kernel(Attention a, KvCache kv, TokenPlace place, int gchunks) {
  grid_wait();
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  const int split = blockIdx.x, li = blockIdx.y;
  const int kvh = blockIdx.z / gchunks, h0 = (blockIdx.z % gchunks) * kHeadsPerBlock;
  const int GB = min(kHeadsPerBlock, a.G - h0);
  const int dk = a.dk, dv = a.dv;
  float* q_sh = smem;                                   // [GB][dk]
  float* sc = q_sh + kHeadsPerBlock * dk;               // [16][kChunk]
  float* m_run = sc + kHeadsPerBlock * kChunk;          // [16]
  float* l_run = m_run + kHeadsPerBlock;                // [16]
  float* corr = l_run + kHeadsPerBlock;                 // [16]
  int64_t* offs = reinterpret_cast<int64_t*>(corr + kHeadsPerBlock);  // [kChunk]

  const int t = a.list[li];
  const int seq = place.seq[t];
  const int n = seq >= 0 ? place.pos[t] + 1 : 0;
  const int per = split_length(n, a);
  const int p0 = split * per, p1 = min(n, p0 + per);
  const int64_t part = ((static_cast<int64_t>(li) * a.n_kvh + kvh) * a.n_splits + split) * a.G + h0;
  if (p0 >= p1) {
    write_empty_split(a, part, GB, dv);
    return;
  }
  const int32_t* table = kv.block_table + kv.table_offset[seq];
  // The queries: 16-byte loads, all in flight at once (up to 16 heads x 576 floats).
  const float4* qt = reinterpret_cast<const float4*>(a.q + t * a.q_tok_stride + static_cast<int64_t>(kvh * a.G + h0) * dk);
  float4* q4 = reinterpret_cast<float4*>(q_sh);
#pragma unroll 4
  for (int i = threadIdx.x; i < GB * dk / 4; i += blockDim.x) {
    float4 v = qt[i];
    v.x *= a.scale, v.y *= a.scale, v.z *= a.scale, v.w *= a.scale;
    q4[i] = v;
  }
  for (int h = threadIdx.x; h < kHeadsPerBlock; h += blockDim.x) m_run[h] = -INFINITY, l_run[h] = 0.0f;

  const int k_base = a.k_off + kvh * a.k_head_stride, v_base = a.v_off + kvh * a.v_head_stride;
  const int dk4 = dk / 4, n_r4 = dv / 4;
  const int r4 = threadIdx.x % n_r4, hg = threadIdx.x / n_r4, n_hg = blockDim.x / n_r4;
  float4 acc[kAccHeads];
#pragma unroll
  for (int k = 0; k < kAccHeads; ++k) acc[k] = make_float4(0.f, 0.f, 0.f, 0.f);

  for (int c0 = p0; c0 < p1; c0 += kChunk) {
    const int len = min(kChunk, p1 - c0);
    __syncthreads();  // the previous chunk's readers of offs / sc are done; q_sh and m_run are written
    for (int j = threadIdx.x; j < len; j += blockDim.x) offs[j] = slot_offset(kv, table, c0 + j);
    __syncthreads();
    // Scores: a warp per position (two at a time), lanes across the key, all heads at once; every
    // chunk of both keys is loaded before the math so that the loads overlap.
    for (int j = warp; j < len; j += 2 * n_warps) {
      const int j2 = j + n_warps;
      const bool two = j2 < len;
      const float* kp = kv.layer + offs[j] + k_base;
      const float* kp2 = kv.layer + offs[two ? j2 : j] + k_base;
      float4 kc[kKeyChunks], kc2[kKeyChunks];
#pragma unroll
      for (int c = 0; c < kKeyChunks; ++c) {
        const int i4 = lane + 32 * c;
        const bool in = i4 < dk4;
        kc[c] = in ? *reinterpret_cast<const float4*>(kp + i4 * 4) : make_float4(0.f, 0.f, 0.f, 0.f);
        kc2[c] = in ? *reinterpret_cast<const float4*>(kp2 + i4 * 4) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
      float s[kHeadsPerBlock], s2[kHeadsPerBlock];
#pragma unroll
      for (int h = 0; h < kHeadsPerBlock; ++h) s[h] = 0.0f, s2[h] = 0.0f;
#pragma unroll
      for (int c = 0; c < kKeyChunks; ++c) {
        const int i4 = min(lane + 32 * c, dk4 - 1);  // lanes past the key read a valid chunk against a zero key
#pragma unroll
        for (int h = 0; h < kHeadsPerBlock; ++h) {
          if (h < GB) {
            const float4 q = *reinterpret_cast<const float4*>(q_sh + h * dk + i4 * 4);
            s[h] += dot4(q, kc[c]);
            s2[h] += dot4(q, kc2[c]);
          }
        }
      }
#pragma unroll
      for (int h = 0; h < kHeadsPerBlock; ++h) {
        if (h < GB) {
          const float v = warp_sum(s[h]), v2 = warp_sum(s2[h]);
          if (lane == 0) {
            sc[h * kChunk + j] = v;
            if (two) sc[h * kChunk + j2] = v2;
          }
        }
      }
    }
    __syncthreads();
    // Online softmax: a warp per head.
    for (int h = warp; h < GB; h += n_warps) {
      float mx = -INFINITY;
      for (int j = lane; j < len; j += 32) mx = fmaxf(mx, sc[h * kChunk + j]);
      mx = warp_max(mx);
      const float m_new = fmaxf(m_run[h], mx);
      float sum = 0.0f;
      for (int j = lane; j < len; j += 32) {
        const float e = expf(sc[h * kChunk + j] - m_new);
        sc[h * kChunk + j] = e;
        sum += e;
      }
      sum = warp_sum(sum);
      if (lane == 0) {
        const float c = expf(m_run[h] - m_new);
        corr[h] = c;
        l_run[h] = l_run[h] * c + sum;
        m_run[h] = m_new;
      }
    }
    __syncthreads();
    // Values: each thread owns 4 value dims of up to 8 heads.
    if (hg < n_hg) {
#pragma unroll
      for (int k = 0; k < kAccHeads; ++k) {
        const int h = hg + k * n_hg;
        if (h < GB) {
          const float c = corr[h];
          acc[k].x *= c, acc[k].y *= c, acc[k].z *= c, acc[k].w *= c;
        }
      }
      // Four positions' values loaded before use: their latencies overlap.
      for (int j0 = 0; j0 < len; j0 += 4) {
        float4 v[4];
#pragma unroll
        for (int u = 0; u < 4; ++u)
          v[u] = j0 + u < len ? *reinterpret_cast<const float4*>(kv.layer + offs[j0 + u] + v_base + r4 * 4) : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          if (j0 + u >= len) break;
#pragma unroll
          for (int k = 0; k < kAccHeads; ++k) {
            const int h = hg + k * n_hg;
            if (h < GB) {
              const float p = sc[h * kChunk + j0 + u];
              acc[k].x += p * v[u].x, acc[k].y += p * v[u].y, acc[k].z += p * v[u].z, acc[k].w += p * v[u].w;
            }
          }
        }
      }
    }
  }
  __syncthreads();
  if (hg < n_hg) {
#pragma unroll
    for (int k = 0; k < kAccHeads; ++k) {
      const int h = hg + k * n_hg;
      if (h < GB) *reinterpret_cast<float4*>(a.part_o + (part + h) * dv + r4 * 4) = acc[k];
    }
  }
  for (int h = threadIdx.x; h < GB; h += blockDim.x) {
    a.part_ml[(part + h) * 2] = m_run[h];
    a.part_ml[(part + h) * 2 + 1] = l_run[h];
  }
}

template <typename WT>
__global__ void __launch_bounds__(kThreads) attn_combine_kernel(Attention a, TokenPlace place, const WT* proj, int64_t proj_head_stride,
                                                               int64_t proj_ld, int dout, float* out, int64_t out_tok_stride) {
  grid_wait();
  extern __shared__ float4 smem4[];
  float* val = reinterpret_cast<float*>(smem4);  // [dv]
  __shared__ float wts[kMaxSplits];
  __shared__ float inv_total;
  const int li = blockIdx.x, h = blockIdx.y;
  const int kvh = h / a.G, g = h % a.G;
  const int t = a.list[li];
  const int dv = a.dv;
  const int n = place.seq[t] >= 0 ? place.pos[t] + 1 : 0;
  const int S = n > 0 ? (n + split_length(n, a) - 1) / split_length(n, a) : 0;  // splits with positions
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  const int64_t base = (static_cast<int64_t>(li) * a.n_kvh + kvh) * a.n_splits;
  if (warp == 0) {
    // Splits across the lanes (at most 64): one round of loads, then warp reductions.
    const SplitWeights sw = split_weights(a.part_ml, base, a.G, g, S, lane);
#pragma unroll
    for (int i = 0; i < 2; ++i)
      if (lane + 32 * i < S) wts[lane + 32 * i] = sw.w[i];
    if (lane == 0) inv_total = sw.total > 0.0f ? 1.0f / sw.total : 0.0f;
  }
  __syncthreads();
  const float* po = a.part_o + (base * a.G + g) * dv;
  const int64_t split_stride = static_cast<int64_t>(a.G) * dv;
  // Every split wrote its partial (zeros when empty), so the loads need no condition: eight
  // splits' loads at a time are in flight (a split past S reads the last one with weight 0).
  for (int r = threadIdx.x; r < dv; r += blockDim.x) {
    float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int s0 = 0; s0 < S; s0 += 8) {
      float x[8], w[8];
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        const int s = min(s0 + u, S - 1);
        x[u] = po[s * split_stride + r];
        w[u] = s0 + u < S ? wts[s] : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < 8; ++u) v[u] = fmaf(w[u], x[u], v[u]);
    }
    val[r] = (((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))) * inv_total;
  }
  float* o = out + t * out_tok_stride + static_cast<int64_t>(h) * dout;
  if (!proj) {
    for (int r = threadIdx.x; r < dv; r += blockDim.x) o[r] = val[r];
    return;
  }
  __syncthreads();
  const WT* W = proj + h * proj_head_stride;
  const bool vec = dv % 8 == 0 && proj_ld % (16 / sizeof(WT)) == 0 && proj_head_stride % (16 / sizeof(WT)) == 0 && aligned16(proj);
  if (vec) {
    // Four output rows per warp at a time, their weights loaded together.
    for (int j0 = warp * 4; j0 < dout; j0 += n_warps * 4) {
      float s[4] = {0, 0, 0, 0};
      for (int k = lane * 8; k < dv; k += 256) {
        float w[4][8];
#pragma unroll
        for (int u = 0; u < 4; ++u) load8(W + min(j0 + u, dout - 1) * proj_ld + k, w[u]);
#pragma unroll
        for (int u = 0; u < 4; ++u)
#pragma unroll
          for (int i = 0; i < 8; ++i) s[u] = fmaf(w[u][i], val[k + i], s[u]);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const float r = warp_sum(s[u]);
        if (lane == 0 && j0 + u < dout) o[j0 + u] = r;
      }
    }
  } else {
    for (int j = warp; j < dout; j += n_warps) {
      const WT* wr = W + j * proj_ld;
      float s = 0.0f;
      for (int k = lane; k < dv; k += 32) s = fmaf(to_float(wr[k]), val[k], s);
      s = warp_sum(s);
      if (lane == 0) o[j] = s;
    }
  }
}

// GQA decode with few query heads per KV head (G <= 8) and head dims <= 128: a warp per
// position, keys and values read once, each lane holding 4 dims of every head, an online softmax
// per warp; the block's 8 warps merge at the end. Same partial outputs as attn_decode_kernel.
constexpr int kGqaHeads = 8;
__global__ void __launch_bounds__(kThreads) attn_decode_gqa_kernel(Attention a, KvCache kv, TokenPlace place) {
  grid_wait();
  __shared__ float4 w_acc[kThreads / 32][kGqaHeads][32];
  __shared__ float w_m[kThreads / 32][kGqaHeads], w_l[kThreads / 32][kGqaHeads];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  const int split = blockIdx.x, li = blockIdx.y, kvh = blockIdx.z;
  const int G = a.G, dk = a.dk, dv = a.dv;
  const int t = a.list[li];
  const int seq = place.seq[t];
  const int n = seq >= 0 ? place.pos[t] + 1 : 0;
  const int per = split_length(n, a);
  const int p0 = split * per, p1 = min(n, p0 + per);
  const int64_t part = ((static_cast<int64_t>(li) * a.n_kvh + kvh) * a.n_splits + split) * G;
  if (p0 >= p1) {
    write_empty_split(a, part, G, dv);
    return;
  }
  const int32_t* table = kv.block_table + kv.table_offset[seq];
  const bool kl = lane * 4 < dk, vl = lane * 4 < dv;  // lanes past the head dims idle
  float4 q[kGqaHeads], acc[kGqaHeads];
  float m[kGqaHeads], l[kGqaHeads];
  const float* qt = a.q + t * a.q_tok_stride + static_cast<int64_t>(kvh) * G * dk;
#pragma unroll
  for (int h = 0; h < kGqaHeads; ++h) {
    q[h] = make_float4(0.f, 0.f, 0.f, 0.f);
    if (h < G && kl) {
      q[h] = *reinterpret_cast<const float4*>(qt + h * dk + lane * 4);
      q[h].x *= a.scale, q[h].y *= a.scale, q[h].z *= a.scale, q[h].w *= a.scale;
    }
    acc[h] = make_float4(0.f, 0.f, 0.f, 0.f);
    m[h] = -INFINITY;
    l[h] = 0.0f;
  }
  const int k_base = a.k_off + kvh * a.k_head_stride, v_base = a.v_off + kvh * a.v_head_stride;
  const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
  auto load_kv = [&](int j, float4& k, float4& v) {
    const float* slot = kv.layer + slot_offset(kv, table, j);
    k = kl ? *reinterpret_cast<const float4*>(slot + k_base + lane * 4) : zero;
    v = vl ? *reinterpret_cast<const float4*>(slot + v_base + lane * 4) : zero;
  };
  float4 k_next = zero, v_next = zero;
  if (p0 + warp < p1) load_kv(p0 + warp, k_next, v_next);
  for (int j = p0 + warp; j < p1; j += n_warps) {
    const float4 k = k_next, v = v_next;
    if (j + n_warps < p1) load_kv(j + n_warps, k_next, v_next);  // the next position's loads overlap this one's math
#pragma unroll
    for (int h = 0; h < kGqaHeads; ++h) {
      if (h >= G) break;
      const float s = warp_sum(dot4(q[h], k));
      const float m_new = fmaxf(m[h], s);
      const float c = expf(m[h] - m_new), p = expf(s - m_new);
      l[h] = l[h] * c + p;
      acc[h].x = acc[h].x * c + p * v.x, acc[h].y = acc[h].y * c + p * v.y;
      acc[h].z = acc[h].z * c + p * v.z, acc[h].w = acc[h].w * c + p * v.w;
      m[h] = m_new;
    }
  }
#pragma unroll
  for (int h = 0; h < kGqaHeads; ++h) {
    if (h >= G) break;
    w_acc[warp][h][lane] = acc[h];
    if (lane == 0) w_m[warp][h] = m[h], w_l[warp][h] = l[h];
  }
  __syncthreads();
  // Merge the warps: thread (h, lane) for h < G.
  for (int i = threadIdx.x; i < G * 32; i += blockDim.x) {
    const int h = i / 32, ln = i % 32;
    float M = -INFINITY;
    for (int w = 0; w < n_warps; ++w) M = fmaxf(M, w_m[w][h]);
    float L = 0.0f;
    float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int w = 0; w < n_warps; ++w) {
      if (w_l[w][h] == 0.0f) continue;
      const float c = expf(w_m[w][h] - M);
      L += c * w_l[w][h];
      const float4 x = w_acc[w][h][ln];
      o.x += c * x.x, o.y += c * x.y, o.z += c * x.z, o.w += c * x.w;
    }
    if (ln * 4 < dv) *reinterpret_cast<float4*>(a.part_o + (part + h) * dv + ln * 4) = o;
    if (ln == 0) {
      a.part_ml[(part + h) * 2] = M;
      a.part_ml[(part + h) * 2 + 1] = L;
    }
  }
}

// GQA/MHA decode, up to MAXR query rows a block: the G query heads of one KV head for one
// listed token, or (one_seq) for every listed token of one sequence (a verification of drafted
// tokens), so that each key and value row is read once for all of them instead of once per
// token. A warp takes NPOS consecutive positions at a time (their keys and values all requested
// before use), lanes across the head dims (<= 128); the NPOS x MAXR scores are independent warp
// sums, then one online-softmax update per row for the NPOS positions (branch-free: positions
// past a row's token, or past the split, score -inf). The block's warps merge at the end. With
// one_seq the splits are those of the longest token and every token writes every split (empty
// where it has no positions), so attn_combine, which takes each token's own split count (never
// fewer than its non-empty splits, never more than n_splits), merges them as usual.
constexpr int kRowsMax = 8;
template <int MAXR, int NPOS>
__global__ void __launch_bounds__(kThreads, 2) attn_rows_kernel(Attention a, KvCache kv, TokenPlace place, int one_seq) {
  grid_wait();
  __shared__ float4 w_acc[kThreads / 32][MAXR][32];
  __shared__ float w_m[kThreads / 32][MAXR], w_l[kThreads / 32][MAXR];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  const int split = blockIdx.x, kvh = blockIdx.z;
  const int first = one_seq ? 0 : static_cast<int>(blockIdx.y), count = one_seq ? a.n_list : 1;
  const int G = a.G, dk = a.dk, dv = a.dv, rows = count * G;
  int n_max = 0, seq = -1;
  for (int i = first; i < first + count; ++i) {
    const int t = a.list[i], sq = place.seq[t];
    if (sq >= 0) seq = sq, n_max = max(n_max, place.pos[t] + 1);
  }
  const int per = split_length(n_max, a);
  const int p0 = split * per, p1 = min(n_max, p0 + per);
  auto part_of = [&](int r) { return ((static_cast<int64_t>(first + r / G) * a.n_kvh + kvh) * a.n_splits + split) * G + r % G; };
  if (p0 >= p1) {
    for (int i = 0; i < count; ++i) write_empty_split(a, part_of(i * G), G, dv);
    return;
  }
  const int32_t* table = kv.block_table + kv.table_offset[seq];
  const bool kl = lane * 4 < dk, vl = lane * 4 < dv;  // lanes past the head dims idle
  const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
  float4 q[MAXR], acc[MAXR];
  float m[MAXR], l[MAXR];
  int lim[MAXR];  // positions row r sees in this split: [p0, lim)
#pragma unroll
  for (int r = 0; r < MAXR; ++r) {
    q[r] = zero;
    lim[r] = p0;
    if (r < rows) {
      const int t = a.list[first + r / G];
      lim[r] = min(p1, place.seq[t] >= 0 ? place.pos[t] + 1 : 0);
      if (kl) {
        q[r] = *reinterpret_cast<const float4*>(a.q + t * a.q_tok_stride + static_cast<int64_t>(kvh * G + r % G) * dk + lane * 4);
        q[r].x *= a.scale, q[r].y *= a.scale, q[r].z *= a.scale, q[r].w *= a.scale;
      }
    }
    acc[r] = zero;
    m[r] = -INFINITY;
    l[r] = 0.0f;
  }
  const int k_base = a.k_off + kvh * a.k_head_stride, v_base = a.v_off + kvh * a.v_head_stride;
  for (int j0 = p0 + warp * NPOS; j0 < p1; j0 += n_warps * NPOS) {
    float4 k[NPOS], v[NPOS];
#pragma unroll
    for (int u = 0; u < NPOS; ++u) {
      const float* slot = kv.layer + slot_offset(kv, table, min(j0 + u, p1 - 1));
      k[u] = kl ? *reinterpret_cast<const float4*>(slot + k_base + lane * 4) : zero;
      v[u] = vl ? *reinterpret_cast<const float4*>(slot + v_base + lane * 4) : zero;
    }
    float sc[NPOS][MAXR];
#pragma unroll
    for (int u = 0; u < NPOS; ++u)
#pragma unroll
      for (int r = 0; r < MAXR; ++r) sc[u][r] = warp_sum(dot4(q[r], k[u]));
#pragma unroll
    for (int r = 0; r < MAXR; ++r) {
      float mx = m[r];
#pragma unroll
      for (int u = 0; u < NPOS; ++u) {
        if (j0 + u >= lim[r]) sc[u][r] = -INFINITY;
        mx = fmaxf(mx, sc[u][r]);
      }
      const float ms = mx == -INFINITY ? 0.0f : mx;  // nothing seen yet: every weight 0
      const float c = expf(m[r] - ms);
      float sum = 0.0f;
      float4 o = zero;
#pragma unroll
      for (int u = 0; u < NPOS; ++u) {
        const float p = expf(sc[u][r] - ms);
        sum += p;
        o.x = fmaf(p, v[u].x, o.x), o.y = fmaf(p, v[u].y, o.y), o.z = fmaf(p, v[u].z, o.z), o.w = fmaf(p, v[u].w, o.w);
      }
      l[r] = l[r] * c + sum;
      acc[r].x = fmaf(acc[r].x, c, o.x), acc[r].y = fmaf(acc[r].y, c, o.y);
      acc[r].z = fmaf(acc[r].z, c, o.z), acc[r].w = fmaf(acc[r].w, c, o.w);
      m[r] = mx;
    }
  }
#pragma unroll
  for (int r = 0; r < MAXR; ++r) {
    w_acc[warp][r][lane] = acc[r];
    if (lane == 0) w_m[warp][r] = m[r], w_l[warp][r] = l[r];
  }
  __syncthreads();
  // Merge the warps: thread (row, lane) for row < rows.
  for (int i = threadIdx.x; i < rows * 32; i += blockDim.x) {
    const int r = i / 32, ln = i % 32;
    float M = -INFINITY;
    for (int w = 0; w < n_warps; ++w)
      if (w_l[w][r] > 0.0f) M = fmaxf(M, w_m[w][r]);
    float L = 0.0f;
    float4 o = zero;
    for (int w = 0; w < n_warps; ++w) {
      if (w_l[w][r] == 0.0f) continue;
      const float c = expf(w_m[w][r] - M);
      L += c * w_l[w][r];
      const float4 x = w_acc[w][r][ln];
      o.x += c * x.x, o.y += c * x.y, o.z += c * x.z, o.w += c * x.w;
    }
    const int64_t part = part_of(r);
    if (ln * 4 < dv) *reinterpret_cast<float4*>(a.part_o + part * dv + ln * 4) = o;
    if (ln == 0) {
      a.part_ml[part * 2] = L > 0.0f ? M : -INFINITY;
      a.part_ml[part * 2 + 1] = L;
    }
  }
}

__global__ void gather_cache_kernel(KvCache kv, int seq, float* dst) {
  grid_wait();
  const int i = blockIdx.x;
  const float* src = kv.layer + slot_offset(kv, kv.block_table + kv.table_offset[seq], i);
  float* d = dst + static_cast<int64_t>(i) * kv.kv_dim;
  for (int c = threadIdx.x; c < kv.kv_dim; c += blockDim.x) d[c] = src[c];
}

template <typename T>
__global__ void pack_heads_kernel(const float* src, int64_t src_ld, int64_t src_off, int64_t src_head_stride, int width, T* dst,
                                  int64_t dst_head_stride, int64_t dst_ld, int64_t dst_col) {
  grid_wait();
  const int64_t i = blockIdx.x, h = blockIdx.y;
  const float* s = src + i * src_ld + src_off + h * src_head_stride;
  T* d = dst + h * dst_head_stride + i * dst_ld + dst_col;
  for (int c = threadIdx.x; c < width; c += blockDim.x) d[c] = from_float<T>(s[c]);
}

template <typename T>
__global__ void causal_softmax_kernel(const float* S, int rows, int cols, int first_pos, T* P) {
  grid_wait();
  __shared__ float scratch[32];
  const int i = blockIdx.x, h = blockIdx.y;
  const float* s = S + (static_cast<int64_t>(h) * rows + i) * cols;
  T* p = P + (static_cast<int64_t>(h) * rows + i) * cols;
  const int valid = min(cols, first_pos + i + 1);
  float mx = -INFINITY;
  for (int c = threadIdx.x; c < valid; c += blockDim.x) mx = fmaxf(mx, s[c]);
  mx = warp_max(mx);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = mx;
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) m = fmaxf(m, scratch[w]);
  float sum = 0.0f;
  for (int c = threadIdx.x; c < valid; c += blockDim.x) sum += expf(s[c] - m);
  sum = block_sum(sum, scratch);
  const float inv = 1.0f / sum;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) p[c] = from_float<T>(c < valid ? expf(s[c] - m) * inv : 0.0f);
}

// GHOSTLINE_GQA_KERNEL=0 sends GQA through the generic kernel (for comparisons).
bool gqa_kernel_enabled() {
  static const bool on = env_on("GHOSTLINE_GQA_KERNEL");
  return on;
}

// Read at every call (env_on), for comparisons: GHOSTLINE_ATTN_SEQ=0 keeps one sequence's new
// tokens apart; GHOSTLINE_ATTN_ROWS=0 takes attn_decode_gqa_kernel for one token's heads.

// attn_rows_kernel for `rows` query rows a block (<= kRowsMax): the smallest instance that holds
// them; fewer rows take more positions at a time (more loads in flight per warp).
void launch_rows(const Attention& a, KvCache kv, TokenPlace place, bool one_seq, int rows, cudaStream_t s) {
  const dim3 grid(a.n_splits, one_seq ? 1 : a.n_list, a.n_kvh), block(kThreads);
  const int os = one_seq ? 1 : 0;
  if (rows <= 1) launch(attn_rows_kernel<1, 8>, grid, block, 0, s, a, kv, place, os);
  else if (rows <= 2) launch(attn_rows_kernel<2, 8>, grid, block, 0, s, a, kv, place, os);
  else if (rows <= 4) launch(attn_rows_kernel<4, 4>, grid, block, 0, s, a, kv, place, os);
  else launch(attn_rows_kernel<8, 2>, grid, block, 0, s, a, kv, place, os);
}

size_t decode_smem(int dk) {
  return sizeof(float) * (static_cast<size_t>(kHeadsPerBlock) * dk + kHeadsPerBlock * kChunk + 3 * kHeadsPerBlock) +
         sizeof(int64_t) * kChunk;
}

}  // namespace

int attention_splits(int n_list, int n_kvh, int max_context) {
  const int64_t blocks = std::max<int64_t>(1, static_cast<int64_t>(n_list) * n_kvh);
  int64_t splits = (2 * static_cast<int64_t>(sm_count()) + blocks - 1) / blocks;
  splits = std::min<int64_t>(splits, (std::max(max_context, 1) + 15) / 16);  // at least ~16 positions a split
  return static_cast<int>(std::clamp<int64_t>(splits, 1, kMaxSplits));
}

int64_t attention_partial_floats(int n_list, int n_kvh, int G, int dv) {
  // n * ceil(2 SMs / n) <= 2 SMs + n for any n up to n_list * n_kvh blocks.
  const int64_t blocks = static_cast<int64_t>(n_list) * n_kvh;
  int64_t most = std::min<int64_t>(blocks * kMaxSplits, 2 * static_cast<int64_t>(sm_count()) + blocks);
  // One sequence's tokens (attn_decode_groups): each of up to kRowsMax tokens writes the splits
  // of attention_splits(1, n_kvh), n_kvh * those <= 2 SMs + n_kvh.
  most = std::max<int64_t>(most, std::min(n_list, kRowsMax) * (2 * static_cast<int64_t>(sm_count()) + n_kvh));
  return most * G * dv;
}

bool attn_decode_groups(const Attention& a) {
  return a.one_seq && a.n_list >= 2 && a.n_list * a.G <= kRowsMax && a.dk <= 128 && a.dv <= 128 && env_on("GHOSTLINE_ATTN_SEQ");
}

namespace {
bool rows_for_one_token(const Attention& a) {
  return a.G <= kRowsMax && a.dk <= 128 && a.dv <= 128 && gqa_kernel_enabled() && env_on("GHOSTLINE_ATTN_ROWS");
}
}  // namespace

int attn_decode_splits(const Attention& a, int max_context) {
  const bool groups = attn_decode_groups(a);
  if (!groups && !rows_for_one_token(a)) return attention_splits(a.n_list, a.n_kvh, max_context);
  // attn_rows_kernel runs two blocks per multiprocessor: the splits that fill them once (a
  // second, partial wave of short blocks costs as much as the first).
  const int64_t blocks = std::max<int64_t>(1, static_cast<int64_t>(groups ? 1 : a.n_list) * a.n_kvh);
  int64_t splits = std::max<int64_t>(1, 2 * static_cast<int64_t>(sm_count()) / blocks);
  splits = std::min<int64_t>(splits, (std::max(max_context, 1) + 15) / 16);
  return static_cast<int>(std::clamp<int64_t>(splits, 1, kMaxSplits));
}

void attn_decode(const Attention& a, KvCache kv, TokenPlace place, cudaStream_t s) {
  if (a.n_list <= 0) return;
  if (a.dk % 4 || a.dv % 4 || a.dv > 4 * kAccHeads * 16 || a.dk > 4 * 32 * kKeyChunks || a.k_off % 4 || a.v_off % 4 || a.k_head_stride % 4 ||
      a.v_head_stride % 4 || kv.kv_dim % 4 || a.q_tok_stride % 4 || (reinterpret_cast<uintptr_t>(a.q) & 15u) || a.n_splits < 1 ||
      a.n_splits > kMaxSplits) {
    check_launch(cudaErrorInvalidValue, __FILE__, __LINE__);
    return;
  }
  if (attn_decode_groups(a)) {
    launch_rows(a, kv, place, true, a.n_list * a.G, s);
    return;
  }
  if (rows_for_one_token(a)) {
    launch_rows(a, kv, place, false, a.G, s);
    return;
  }
  if (a.G <= kGqaHeads && a.dk <= 128 && a.dv <= 128 && gqa_kernel_enabled()) {
    launch(attn_decode_gqa_kernel, dim3(a.n_splits, a.n_list, a.n_kvh), dim3(kThreads), 0, s, a, kv, place);
    return;
  }
  const int gchunks = (a.G + kHeadsPerBlock - 1) / kHeadsPerBlock;
  const size_t smem = decode_smem(a.dk);
  static size_t raised = 48 * 1024;
  if (smem > raised) {
    check_launch(cudaFuncSetAttribute(attn_decode_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
                 __FILE__, __LINE__);
    raised = smem;
  }
  launch(attn_decode_kernel, dim3(a.n_splits, a.n_list, a.n_kvh * gchunks), dim3(kThreads), smem, s, a, kv, place, gchunks);
}

void attn_combine(const Attention& a, TokenPlace place, const void* proj, DType proj_dt, int64_t proj_head_stride, int64_t proj_ld,
                  int dout, float* out, int64_t out_tok_stride, cudaStream_t s) {
  if (a.n_list <= 0) return;
  const dim3 grid(a.n_list, a.n_kvh * a.G);
  const size_t smem = sizeof(float) * a.dv;
  if (proj_dt == DType::BF16)
    launch(attn_combine_kernel<bf16>, grid, dim3(kThreads), smem, s, a, place, static_cast<const bf16*>(proj), proj_head_stride, proj_ld,
           proj ? dout : a.dv, out, out_tok_stride);
  else
    launch(attn_combine_kernel<float>, grid, dim3(kThreads), smem, s, a, place, static_cast<const float*>(proj), proj_head_stride, proj_ld,
           proj ? dout : a.dv, out, out_tok_stride);
}

void gather_cache(KvCache kv, int seq, int n, float* dst, cudaStream_t s) {
  launch(gather_cache_kernel, dim3(n), dim3(128), 0, s, kv, seq, dst);
}

void pack_heads(const float* src, int64_t src_ld, int64_t src_off, int64_t src_head_stride, int rows, int heads, int width,
                void* dst, DType dt, int64_t dst_head_stride, int64_t dst_ld, int64_t dst_col, cudaStream_t s) {
  const dim3 grid(rows, heads), block(width >= 128 ? 128 : 64);
  if (dt == DType::BF16)
    launch(pack_heads_kernel<bf16>, grid, block, 0, s, src, src_ld, src_off, src_head_stride, width, static_cast<bf16*>(dst),
           dst_head_stride, dst_ld, dst_col);
  else
    launch(pack_heads_kernel<float>, grid, block, 0, s, src, src_ld, src_off, src_head_stride, width, static_cast<float*>(dst),
           dst_head_stride, dst_ld, dst_col);
}

void causal_softmax(const float* S, int heads, int rows, int cols, int first_pos, void* P, DType dt, cudaStream_t s) {
  const dim3 grid(rows, heads);
  if (dt == DType::BF16) launch(causal_softmax_kernel<bf16>, grid, dim3(256), 0, s, S, rows, cols, first_pos, static_cast<bf16*>(P));
  else launch(causal_softmax_kernel<float>, grid, dim3(256), 0, s, S, rows, cols, first_pos, static_cast<float*>(P));
}

}  // namespace ghostline::kernels
