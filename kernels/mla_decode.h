// MLA decode attention in two kernels (mla_decode.cu): the latent cache read once for every
// query head, then the splits merged with W_vb applied. Declared apart from kernels.h so that it
// stays a local addition; the types are kernels.h's.
#pragma once

#include "kernels/kernels.h"

namespace ghostline::kernels {

// MLA decode (one latent KV head: a.n_kvh == 1, G = H query heads, keys dk = r + p wide at
// slot[a.k_off ..], values the dv-wide latent at slot[a.v_off ..]), for the listed tokens:
//   out[t * out_tok_stride + h * dout + j] = w_vb[h] row j · softmax(q_h K^T * scale) V
// w_vb: per head `dout` rows of dv weights, `w_ld` apart, `w_head_stride` between heads.
// Same splits (a.n_splits, a.min_per_split) and partial buffers (a.part_o, a.part_ml) as
// attn_decode. Products on tensor cores in 3xTF32 (float32 accuracy). Shapes it does not take
// (dk % 8, dv % 8, dk > 640, dv > 512, unaligned cache or weights) go through attn_decode +
// attn_combine instead; GHOSTLINE_MLA_KERNEL=0 always does (for comparisons).
void mla_decode(const Attention& a, KvCache kv, TokenPlace place, const void* w_vb, DType w_dt, int64_t w_head_stride, int64_t w_ld,
                int dout, float* out, int64_t out_tok_stride, cudaStream_t s);
// Whether mla_decode takes `a` with its own kernels (else the fallback above).
bool mla_decode_fused(const Attention& a, KvCache kv, const void* w_vb, DType w_dt, int64_t w_head_stride, int64_t w_ld);

}  // namespace ghostline::kernels
