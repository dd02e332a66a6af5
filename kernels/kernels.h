// The CUDA kernels of the engine's GPU backend: plain functions over device pointers, sizes and
// a stream. They know nothing of models or requests; engine/cuda/ composes them into a model.
//
// Activations are float32 everywhere; weights are bf16 or float32 (DType), read with float32
// accumulation. Each entry point checks what it cannot compute (alignment, sizes) and takes a
// slower path rather than failing. Launch errors are recorded (first one wins, per thread) and
// read with take_error(); a kernel that faults shows up at the next synchronisation.
//
// Legend: T tokens, D model dim, N output rows of a weight, K its input dim, H query heads,
// Hkv key/value heads, G = H / Hkv, E routed experts, S shared experts, X = E + S expert slots,
// KP pairs per token (top-k + shared), P = T * KP (token, expert) pairs, B tokens per KV block.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace ghostline::kernels {

enum class DType : uint8_t { F32, BF16 };
inline int dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

// ---- errors and launch settings ------------------------------------------------------------

// Records `e` (with place) as this thread's error unless one is already recorded.
void check_launch(cudaError_t e, const char* file, int line);
// The recorded error ("" when none) and clears it; also picks up cudaGetLastError().
std::string take_error();
// Programmatic dependent launch (sm_90): each kernel's launch overlaps the end of the one before.
// On by default where the device supports it; GHOSTLINE_PDL=0 turns it off.
void set_pdl(bool on);
bool pdl();
// A switch from the environment, on unless the variable is set and starts with '0'. Callers read
// it at every call, so that a benchmark can compare both ways in one process (bench_cuda).
inline bool env_on(const char* name) {
  const char* e = std::getenv(name);
  return !(e && e[0] == '0');
}

// Per-kernel timing for benchmarks (eager launches only, not inside graph capture): while on,
// every launch through kernels/ and every gemm is bracketed by CUDA events. kernel_times()
// synchronises, returns milliseconds per kernel (slowest first) and starts a new tally.
void set_kernel_timing(bool on);
bool kernel_timing();
struct KernelTime {
  std::string name;
  double ms = 0;
  int calls = 0;
};
std::vector<KernelTime> kernel_times();
// Used by the launch helpers: an event recorded on `s` now (null when timing is off), and the
// record of the launch that followed it (`fn` the kernel, or `label` for library calls).
cudaEvent_t timing_start(cudaStream_t s);
void timing_stop(cudaEvent_t start, const void* fn, const char* label, cudaStream_t s);

// ---- token picking (sample.cu) ---------------------------------------------------------------

// How one logit row's token is picked: greedy (argmax, lowest id on ties) when temperature <= 0;
// else softmax(x / temperature) cut by top-k (0 = off) then top-p (1 = off), and the token where
// uniform (in [0, 1), drawn by the caller) falls in the kept mass laid out in id order.
struct RowPick {
  float temperature = 0.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;
  float uniform = 0.0f;
};
// ids[r] = the token of row r of logits [R, V]; picks [R] and ids [R] in device memory.
void pick_tokens(const float* logits, int R, int V, const RowPick* picks, int32_t* ids, cudaStream_t s);

// ---- rows: embedding, norms, conversions ---------------------------------------------------

// out[t, :] = table[ids[t], :]  (table [V, D] in dt)
void embed_rows(const void* table, DType dt, int D, const int32_t* ids, int T, float* out, cudaStream_t s);

// The MoE outputs to add into the residual: x[t] += sum_k pair_weight[t*KP+k] * pair_out[pair_slot[t*KP+k]]
// (pairs with slot -1 are skipped), in k order. Every row of pair_out must hold finite values
// (a skipped pair reads row 0 with weight 0): zero the buffer once when it is allocated.
struct MoeSum {
  const float* pair_out = nullptr;     // [P, D] in sorted order
  const float* pair_weight = nullptr;  // [T * KP]
  const int32_t* pair_slot = nullptr;  // [T * KP]
  int pairs_per_token = 0;             // KP
  bool pair_bf16 = false;              // pair_out holds bf16 values (prefill; residual_rmsnorm only)
};

// For each row t < T: x[t] += delta[t] (when not null) + the MoE sum (when moe.pair_out), then
// h[t] = rmsnorm(x[t]) * w (when h is not null), and h in bf16 into h_bf16 when that is not null
// too (prefill: the products' bf16 input without a convert pass). x, delta, h, h_bf16 are [T, D]
// dense; D <= 8192, KP <= 32.
void residual_rmsnorm(float* x, const float* delta, const MoeSum& moe, const float* w, float eps, float* h, int T, int D,
                      cudaStream_t s, void* h_bf16 = nullptr);
// y[r, :n] = rmsnorm(x[r, :n]) * w for `rows` rows with strides ldx / ldy (y may alias x).
void rmsnorm_rows(const float* x, int64_t ldx, const float* w, int n, float eps, float* y, int64_t ldy, int rows, cudaStream_t s);
// dst[r, :] = src[idx[r], :] for r < rows (n floats per row).
void gather_rows(const float* src, int64_t ld_src, const int32_t* idx, int rows, int n, float* dst, int64_t ld_dst, cudaStream_t s);
// dst (dtype dt) = src, `rows` rows of n values.
void convert_rows(const float* src, int64_t ld_src, int rows, int n, void* dst, DType dt, int64_t ld_dst, cudaStream_t s);
// y[r, :n] += bias
void add_bias(float* y, int64_t ld, int rows, int n, const float* bias, cudaStream_t s);
// act[r, j] = silu(gu[r, j]) * gu[r, I + j] for j < I (gu rows of 2I floats); act (dt) rows of ld_act.
void silu_mul_rows(const float* gu, int rows, int I, void* act, DType dt, int64_t ld_act, cudaStream_t s);
// The same from gate/up sums in bf16 (gu_bf16 [rows, 2I]).
void silu_mul_rows_bf16(const void* gu_bf16, int rows, int I, void* act, DType dt, int64_t ld_act, cudaStream_t s);
// Uniform values in [-scale, scale) from a counter-based hash of (seed, index); dst in dt.
void fill_uniform(void* dst, DType dt, int64_t n, float scale, uint64_t seed, cudaStream_t s);
void fill_value(float* dst, int64_t n, float v, cudaStream_t s);

// ---- skinny matrix products: few tokens against a weight matrix (memory-bound) -------------

// y[b][t, n] = sum_k W[b][n, k] * x[b][t, k] (+ bias[b][n]) for n < N, t < T, b < batch.
// Each weight row is read once per 8 tokens; float32 accumulation.
struct Skinny {
  const void* w = nullptr;
  DType wt = DType::BF16;
  int64_t ldw = 0, w_batch = 0;   // row stride and batch stride of W (elements)
  const float* x = nullptr;
  int64_t ldx = 0, x_batch = 0;
  float* y = nullptr;
  int64_t ldy = 0, y_batch = 0;
  const float* bias = nullptr;
  int64_t bias_batch = 0;
  int N = 0, K = 0, T = 0, batch = 1;
};
void skinny_gemm(const Skinny& p, cudaStream_t s);

// ---- rotary embeddings and the KV cache ----------------------------------------------------

// The paged KV cache: one allocation; block b of layer l starts at
// base + b * block_stride + layer_offset; slot p % B of a block at + (p % B) * kv_dim.
struct KvCache {
  float* layer = nullptr;              // base + layer_offset
  int64_t block_stride = 0;            // floats between consecutive blocks
  int block_size = 0;                  // B
  int kv_dim = 0;                      // floats per slot
  const int32_t* block_table = nullptr;// flat block ids of every sequence
  const int32_t* table_offset = nullptr;// [S] start of each sequence's blocks in block_table
};
// Per-token placement: seq[t] < 0 marks a padding token (no KV written, outputs unspecified).
struct TokenPlace {
  const int32_t* seq = nullptr;        // [T]
  const int32_t* pos = nullptr;        // [T] absolute position
};
struct RopeParams {
  const float* inv_freq = nullptr;     // [dim / 2] on the device
  int dim = 0;                         // rotated dims per head
  float attention_factor = 1.0f;
  bool interleaved = false;            // DeepSeek: pairs (2i, 2i+1); else (i, i + dim/2)
};

// MLA (deepseek_v2), per token t:
//   latent = rmsnorm(ckv[t, :r]) * kv_norm -> cache slot [0, r)
//   k_pe   = rope(ckv[t, r:r+p])            -> cache slot [r, r+p)
//   q_pe of each head h (q[t, h*(n+p)+n : +p]) is rotated in place and copied to
//   q_full[t, h*(r+p) + r : +p].
void mla_prep(const float* ckv, int64_t ld_ckv, float* q, int64_t ld_q, float* q_full, int H, int nope, int r, int p,
              const float* kv_norm, float eps, const RopeParams& rope, KvCache kv, TokenPlace place, int T, cudaStream_t s);
// GQA, per token t: q heads (qkv[t, :H*d]) and k heads (qkv[t, H*d : (H+Hkv)*d]) get RMSNorm with
// q_norm / k_norm when given, then rope (in place); k and v (the next Hkv*d) go to the cache slot
// as [k heads | v heads].
void gqa_prep(float* qkv, int64_t ld, int H, int Hkv, int d, const float* q_norm, const float* k_norm, float eps,
              const RopeParams& rope, KvCache kv, TokenPlace place, int T, cudaStream_t s);

// ---- attention over the paged cache --------------------------------------------------------

// Decode-style attention (flash-decoding): each listed token's query heads attend to positions
// [0, pos] of its sequence, the positions split into n_splits parts that are merged by
// attn_combine. Query layout: q[t * q_tok_stride + (kvh * G + g) * dk + i]. Keys of KV head kvh:
// slot[k_off + kvh * k_head_stride + i], i < dk; values slot[v_off + kvh * v_head_stride + i], i < dv.
// MLA uses one KV head with G = H, dk = r + p, dv = r and values = the latent (v_off = 0).
struct Attention {
  const float* q = nullptr;
  int64_t q_tok_stride = 0;
  int n_kvh = 1, G = 1, dk = 0, dv = 0;
  int k_off = 0, k_head_stride = 0, v_off = 0, v_head_stride = 0;
  float scale = 1.0f;
  const int32_t* list = nullptr;       // [n_list] token indices
  int n_list = 0;
  int n_splits = 1;
  int min_per_split = 1;               // positions a split takes at least (short contexts use fewer splits)
  float* part_o = nullptr;             // [n_list * n_kvh * n_splits * G * dv]
  float* part_ml = nullptr;            // [n_list * n_kvh * n_splits * G * 2]
  // Every listed token belongs to one sequence (or is padding, seq < 0): the new tokens of a
  // verification. attn_decode may then read each key and value row once for all of them.
  bool one_seq = false;
};
// Splits that keep the GPU busy for n_list tokens (what attn_decode is best called with).
int attention_splits(int n_list, int n_kvh, int max_context);
// Floats of part_o enough for any n <= n_list tokens with attention_splits(n, ...) splits.
int64_t attention_partial_floats(int n_list, int n_kvh, int G, int dv);
void attn_decode(const Attention& a, KvCache kv, TokenPlace place, cudaStream_t s);
// Whether attn_decode takes `a` with one block per (split, KV head) for all its tokens (a.one_seq,
// 2 <= n_list, n_list * G <= 8, head dims <= 128; GHOSTLINE_ATTN_SEQ=0: never); the splits then
// divide the positions of the longest token.
bool attn_decode_groups(const Attention& a);
// The splits attn_decode is best called with for `a` (all fields but n_splits set): those of the
// kernel it takes (the rows kernel for G <= 8 and head dims <= 128 unless GHOSTLINE_ATTN_ROWS=0,
// else attention_splits). Never more than attention_partial_floats was sized for.
int attn_decode_splits(const Attention& a, int max_context);
// Merges the splits of every (listed token, head) and writes out[t * out_tok_stride + h * dout + j]:
// the merged value itself (dout = dv, proj null) or proj[h] · value (MLA's W_vb: rows of dv
// weights, proj_ld apart, proj_head_stride between heads; dout rows).
void attn_combine(const Attention& a, TokenPlace place, const void* proj, DType proj_dt, int64_t proj_head_stride, int64_t proj_ld,
                  int dout, float* out, int64_t out_tok_stride, cudaStream_t s);

// Prefill helpers (the products themselves go through cuBLAS, see blas.h):
// dst[i, :] = the cache slot of position i of sequence `seq`, for i < n (kv_dim floats each).
void gather_cache(KvCache kv, int seq, int n, float* dst, cudaStream_t s);
// dst[h * dst_head_stride + i * dst_ld + dst_col + c] = src[i * src_ld + src_off + h * src_head_stride + c]
// for h < heads, i < rows, c < width, converted to dt.
void pack_heads(const float* src, int64_t src_ld, int64_t src_off, int64_t src_head_stride, int rows, int heads, int width,
                void* dst, DType dt, int64_t dst_head_stride, int64_t dst_ld, int64_t dst_col, cudaStream_t s);
// Row i of head h of S [heads, rows, cols] may see columns [0, first_pos + i]: P = softmax over
// those (zeros after), in dt.
void causal_softmax(const float* S, int heads, int rows, int cols, int first_pos, void* P, DType dt, cudaStream_t s);

// ---- mixture of experts --------------------------------------------------------------------

struct RouteParams {
  int E = 0, K = 0;                    // routed experts, top-k (E = 0: no router, shared only)
  int S = 0;                           // shared experts appended with weight 1 (ids E..E+S-1)
  int n_group = 1, topk_group = 1;     // group-limited greedy when n_group > 1
  bool group_limited = false;
  bool renormalize = false;            // top-k weights divided by their sum
  float scale = 1.0f;                  // routed_scaling_factor
};
// Device arrays of one step's routing.
struct MoeRouting {
  int32_t* pair_expert = nullptr;      // [T * KP] expert slot of each pair, -1 = none
  float* pair_weight = nullptr;        // [T * KP]
  int32_t* pair_slot = nullptr;        // [T * KP] row of the pair in expert order, -1 = none
  int32_t* sorted_pair = nullptr;      // [P] pair ids in expert order
  int32_t* expert_offset = nullptr;    // [X + 1] first sorted row of each expert
  int32_t* active = nullptr;           // [X] experts that have pairs, ascending
  int32_t* n_active = nullptr;         // [1]
};
// Router logits (router [E, D] float32) -> softmax -> top-k as transformers does (greedy or
// group-limited; ties to the lower expert id), plus the shared experts. Tokens with
// place.seq[t] < 0 (when place.seq is given) get no pairs. With also_sort and T == 1 it also
// writes what moe_sort would (one launch less per layer when a single sequence decodes).
// `logits` [T, E], when given, are the router logits already computed (skinny_gemm or gemm over
// the router): the kernel then skips its own dot products.
void moe_route(const float* h, int D, const float* router, const float* logits, const RouteParams& rp, const int32_t* seq, int T,
               const MoeRouting& r, bool also_sort, cudaStream_t s);
// Counts, offsets, the active list and every pair's sorted row (stable for small P).
void moe_sort(int T, int KP, int X, const MoeRouting& r, cudaStream_t s);
// act[row, j] = silu(gate_e[j] · h[token]) * (up_e[j] · h[token]) for each sorted row (pair of
// expert e, token = pair / KP), j < I. w_gu [X, 2I, D] (gate rows, then up rows); b_gu [X, 2I] or null.
// Grid over max_active expert slots (those past n_active exit at once). lean: the kernel that
// takes an expert's rows one at a time (few registers, more blocks per multiprocessor), best when
// experts get few rows each (routed experts); else up to 8 rows per pass over the weights.
// max_rows: the most rows an expert can have (the step's tokens) when known; 2..8 with bf16
// weights take the tensor-core kernel, each expert's weights read once for all its rows
// (GHOSTLINE_SKINNY_MMA=0: the kernels above). Plain skinny_gemm of T = 2..8 likewise.
// one_slot (with such max_rows = T): the layer has one expert slot that every token uses, a
// dense MLP, and every token is real but trailing padding: rows are the tokens in order (padding
// rows written too, nothing reads them), no routing list is waited for.
void moe_gate_up(const float* h, int D, const void* w_gu, DType wt, const float* b_gu, int I, int KP, const MoeRouting& r,
                 int max_active, bool lean, float* act, cudaStream_t s, int max_rows = 0, bool one_slot = false);
// pair_out[row, :] = down_e · act[row, :] (+ b_down[e]) for each sorted row. w_down [X, D, I].
void moe_down(const float* act, int I, const void* w_down, DType wt, const float* b_down, int D, const MoeRouting& r,
              int max_active, bool lean, float* pair_out, cudaStream_t s, int max_rows = 0, bool one_slot = false);
// One token's experts (the decode step of one sequence, T == 1, after moe_route with also_sort):
// one block row per pair slot p < K + S, its expert pair_expert[p] (none when -1).
//   moe_gate_up_one: act[p, j] = silu(gate_e[j] · h[0]) * (up_e[j] · h[0]) (+ b_gu), rows by slot.
//   moe_down_one:    pair_out[pair_slot[p], :] = down_e · act[p, :] (+ b_down), rows in expert
//                    order as moe_down writes them (residual_rmsnorm's MoeSum reads them so).
// Weights are requested before the programmatic-launch wait where the expert is known then (the
// always-on slots; for down, the routing as it reads there: final when moe_route ran two launches
// before, checked after the wait either way). Needs moe_one_fits (D, I <= 2048, multiples of 8,
// 16-byte aligned pointers).
bool moe_one_fits(int D, int I, const void* w_gu, const void* w_down, const float* h, const float* act);
void moe_gate_up_one(const float* h, int D, const void* w_gu, DType wt, const float* b_gu, int I, const RouteParams& rp,
                     const MoeRouting& r, float* act, cudaStream_t s);
void moe_down_one(const float* act, int I, const void* w_down, DType wt, const float* b_down, int D, const RouteParams& rp,
                  const MoeRouting& r, float* pair_out, cudaStream_t s);
// Prefill: the grouped products run as two strided batches (routed experts, shared slots) over
// a padded layout: routed expert e owns rows [e maxc, e maxc + count_e), shared slot s (expert
// E + s) rows [E maxc + s T, + T). Padding rows hold garbage that nothing reads.
struct MoePadding {
  int E = 0;     // routed experts
  int maxc = 0;  // rows per routed expert (the largest count)
  int T = 0;     // rows per shared slot (every token)
  bool packed = false;  // no padding: an expert's rows are its sorted rows (grouped products)
};
// dst[padded row of sorted row j] = h[token of j] for j < P (P = rows with an expert), in dt.
void moe_gather(const float* h, int D, const MoeRouting& r, int KP, int P, const MoePadding& pad, void* dst, DType dt, cudaStream_t s);
// Rewrites pair_slot (for P = T * KP pairs) from sorted rows to padded rows, for residual_rmsnorm.
void moe_pad_slots(const MoeRouting& r, int P, const MoePadding& pad, cudaStream_t s);

}  // namespace ghostline::kernels
