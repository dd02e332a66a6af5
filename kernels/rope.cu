// Per-token preparation before attention: rotary embeddings (angles in float32 like the
// reference; cos/sin by sincosf), the MLA latent's RMSNorm, GQA's per-head q/k
// norms, and the write of this token's keys and values into its paged KV slot.
#include "kernels/common.cuh"

namespace ghostline::kernels {

namespace {

constexpr int kMaxHalf = 512;

__device__ __forceinline__ float* slot_of(const KvCache& kv, int seq, int pos) {
  const int32_t block = kv.block_table[kv.table_offset[seq] + pos / kv.block_size];
  return kv.layer + static_cast<int64_t>(block) * kv.block_stride + static_cast<int64_t>(pos % kv.block_size) * kv.kv_dim;
}

// cos / sin of this position's angles into shared memory (the caller syncs).
__device__ __forceinline__ void rope_table(const RopeParams& rope, int pos, float* cs, float* sn) {
  const int half = rope.dim / 2;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float angle = static_cast<float>(pos) * rope.inv_freq[i];
    // sincosf is within 1 ulp of the reference's double cos/sin rounded to float, and much less
    // code than the double functions (these one-block kernels pay for every line of code).
    float sv, cv;
    sincosf(angle, &sv, &cv);
    cs[i] = cv * rope.attention_factor;
    sn[i] = sv * rope.attention_factor;
  }
}

// Rotates pair i of `src` into `dst` (may alias): interleaved (2i, 2i+1) or halves (i, i+half).
__device__ __forceinline__ void rotate_pair(const float* src, float* dst, int i, int half, bool interleaved, const float* cs,
                                            const float* sn) {
  if (interleaved) {
    const float a = src[2 * i], b = src[2 * i + 1];
    dst[2 * i] = a * cs[i] - b * sn[i];
    dst[2 * i + 1] = a * sn[i] + b * cs[i];
  } else {
    const float a = src[i], b = src[i + half];
    dst[i] = a * cs[i] - b * sn[i];
    dst[i + half] = b * cs[i] + a * sn[i];
  }
}

// One block a token, a thread per latent value. The placement and block tables are written before
// the step and the weights before any, so the rope angles, the KV slot's address and the latent
// norm's weight are ready before the launch wait (as in mla_decode_kernel); after it, the latent
// value is loaded before the rope loops store anything, so that its load is in flight while q's
// pairs rotate (9.4 us a layer at batch 1 under ncu with 128 threads and the loads after the wait).
constexpr int kPrepThreads = 512;  // >= kv_lora_rank (at most 512, checked at load); 16 heads x 32 q pairs
__global__ void __launch_bounds__(kPrepThreads) mla_prep_kernel(const float* ckv, int64_t ld_ckv, float* q, int64_t ld_q,
                                                                float* q_full, int H, int nope, int r, int p, const float* kv_norm,
                                                                float eps, RopeParams rope, KvCache kv, TokenPlace place) {
  __shared__ float cs[kMaxHalf], sn[kMaxHalf], scratch[32];
  const int t = blockIdx.x, i = threadIdx.x;
  const int seq = place.seq[t], pos = place.pos[t];
  const int half = p / 2;
  rope_table(rope, pos, cs, sn);
  float* slot = seq >= 0 ? slot_of(kv, seq, pos) : nullptr;
  const float nw = i < r ? kv_norm[i] : 0.0f;
  __syncthreads();  // the rope table before its reads
  grid_wait();
  const float* c = ckv + t * ld_ckv;
  const float cv = i < r ? c[i] : 0.0f;
  if (slot && i < half) rotate_pair(c + r, slot + r, i, half, rope.interleaved, cs, sn);
  float* qt = q + t * ld_q;
  for (int j = i; j < H * half; j += kPrepThreads) {
    const int h = j / half, k = j % half;
    float* qh = qt + static_cast<int64_t>(h) * (nope + p) + nope;
    rotate_pair(qh, qh, k, half, rope.interleaved, cs, sn);
    if (q_full) {
      float* f = q_full + static_cast<int64_t>(t) * H * (r + p) + static_cast<int64_t>(h) * (r + p) + r;
      if (rope.interleaved) f[2 * k] = qh[2 * k], f[2 * k + 1] = qh[2 * k + 1];
      else f[k] = qh[k], f[k + half] = qh[k + half];
    }
  }
  const float inv = 1.0f / sqrtf(block_sum(cv * cv, scratch) / static_cast<float>(r) + eps);
  if (slot && i < r) slot[i] = nw * (cv * inv);
}

// One warp per head (q heads, then k heads); values copied by the whole block.
__global__ void gqa_prep_kernel(float* qkv, int64_t ld, int H, int Hkv, int d, const float* q_norm, const float* k_norm, float eps,
                                RopeParams rope, KvCache kv, TokenPlace place) {
  grid_wait();
  __shared__ float cs[kMaxHalf], sn[kMaxHalf];
  const int t = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  const int seq = place.seq[t], pos = place.pos[t];
  rope_table(rope, pos, cs, sn);
  __syncthreads();
  float* row = qkv + t * ld;
  float* slot = seq >= 0 ? slot_of(kv, seq, pos) : nullptr;
  const int half = rope.dim / 2;
  for (int hh = warp; hh < H + Hkv; hh += n_warps) {
    float* v = row + static_cast<int64_t>(hh) * d;
    const float* nw = hh < H ? q_norm : k_norm;
    if (nw) {
      float ss = 0.0f;
      for (int i = lane; i < d; i += 32) ss += v[i] * v[i];
      ss = warp_sum(ss);
      const float inv = 1.0f / sqrtf(ss / static_cast<float>(d) + eps);
      for (int i = lane; i < d; i += 32) v[i] = nw[i] * (v[i] * inv);
      __syncwarp();
    }
    for (int i = lane; i < half; i += 32) rotate_pair(v, v, i, half, rope.interleaved, cs, sn);
    __syncwarp();
    if (hh >= H && slot)
      for (int i = lane; i < d; i += 32) slot[static_cast<int64_t>(hh - H) * d + i] = v[i];
  }
  if (slot) {
    const float* vals = row + static_cast<int64_t>(H + Hkv) * d;
    for (int i = threadIdx.x; i < Hkv * d; i += blockDim.x) slot[static_cast<int64_t>(Hkv) * d + i] = vals[i];
  }
}

}  // namespace

void mla_prep(const float* ckv, int64_t ld_ckv, float* q, int64_t ld_q, float* q_full, int H, int nope, int r, int p,
              const float* kv_norm, float eps, const RopeParams& rope, KvCache kv, TokenPlace place, int T, cudaStream_t s) {
  launch(mla_prep_kernel, dim3(T), dim3(kPrepThreads), 0, s, ckv, ld_ckv, q, ld_q, q_full, H, nope, r, p, kv_norm, eps, rope, kv, place);
}

void gqa_prep(float* qkv, int64_t ld, int H, int Hkv, int d, const float* q_norm, const float* k_norm, float eps,
              const RopeParams& rope, KvCache kv, TokenPlace place, int T, cudaStream_t s) {
  launch(gqa_prep_kernel, dim3(T), dim3(256), 0, s, qkv, ld, H, Hkv, d, q_norm, k_norm, eps, rope, kv, place);
}

}  // namespace ghostline::kernels
