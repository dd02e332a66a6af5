// CudaModel's definition, shared by cuda_model.cpp (setup, KV, the step, graphs) and
// cuda_layers.cpp (the blocks of a layer). Internal to engine/cuda.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <map>
#include <tuple>
#include <vector>

#include "engine/cuda/cuda_model.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/device_weights.h"
#include "engine/model/rope.h"
#include "kernels/kernels.h"

namespace ghostline::engine::cuda {

// Activation buffers for steps of up to T tokens and R logit rows, carved from one allocation.
struct Workspace {
  int T = 0, R = 0;
  DeviceBuffer arena;
  float *x = nullptr, *h = nullptr, *delta = nullptr;  // [T, D]
  float* qkv = nullptr;                                  // [T, qkv rows]
  float* q = nullptr;                                    // MLA with q_lora_rank: [T, H (n+p)]
  float* q_full = nullptr;                               // MLA: [T, H (r+p)] absorbed query + rope part
  float* attn = nullptr;                                 // [T, H v] attention output before o_proj
  float *part_o = nullptr, *part_ml = nullptr;           // decode attention splits
  kernels::MoeRouting moe;                               // [T KP] pairs, [X + 1] offsets
  float* router_logits = nullptr;                        // [T, E]
  float* act = nullptr;                                  // decode path: [T KP, I]
  float* pair_out = nullptr;                             // decode path: [T KP, D]
  float* hfinal = nullptr;                               // [R, D]
  float* logits = nullptr;                               // [R, V]
  int32_t* meta = nullptr;  // ids [T] | seq [T] | pos [T] | rows [R] | table offsets [T] | attention list [T]
  // prefill path only
  void* gin = nullptr;                                   // GEMM inputs in the weight dtype
  int64_t gin_elems = 0;
  void* hb = nullptr;                                    // bf16 weights: h in bf16 [T, D], written by the norms
  int32_t* ids() const { return meta; }
  int32_t* seq() const { return meta + T; }
  int32_t* pos() const { return meta + 2 * T; }
  int32_t* rows() const { return meta + 3 * T; }
  int32_t* table_offset() const { return meta + 3 * T + R; }
  int32_t* list() const { return meta + 4 * T + R; }  // tokens that take decode attention
  int meta_ints() const { return 5 * T + R; }
};

// One step's layout on the host: tokens in batch order, the sequences they belong to.
struct HostStep {
  int T = 0, S = 0, R = 0;
  std::vector<int32_t> ids, seq, pos, rows, table_offset, table;
  std::vector<int> first_token;  // [S] index of each sequence's first new token
  std::vector<int> n_past, n_new;// [S]
  std::vector<int32_t> list;     // tokens for decode attention (prefill path: sequences with few new tokens)
  std::vector<char> prefill_seq; // [S] sequences whose attention goes through cuBLAS (prefill path)
};

class CudaModel final : public Model {
 public:
  CudaModel(model::ModelConfig cfg, ModelInfo info, int device);
  ~CudaModel() override;
  // Uploads the weights (random ones when host is null) and sets up streams, cuBLAS, buffers.
  Expected<void> init(const model::ModelWeights* host, uint64_t seed);

  const ModelInfo& info() const override { return info_; }
  Expected<void> allocate_kv(int block_size, int n_blocks) override;
  void copy_kv_block(int src, int dst) override;
  Expected<void> forward(const StepBatch& batch, std::vector<float>& logits) override;
  bool picks_tokens() const override { return true; }
  Expected<void> forward_pick(const StepBatch& batch, std::span<const TokenPick> picks,
                              std::vector<int32_t>& ids) override;

  // New options drop the captured graphs (launch settings such as PDL are captured with them).
  void set_options(const CudaModelOptions& o) {
    cudaStreamSynchronize(stream_);
    options = o;
    stats.graph_error.clear();
    drop_graphs();
  }
  CudaModelOptions options;
  CudaModelStats stats;

 private:
  // Context of the layer blocks: which path, which workspace, how many tokens.
  struct Ctx {
    Workspace* ws = nullptr;
    int T = 0, R = 0;
    bool decode = true;             // decode path (skinny kernels, graph-safe)
    bool one_seq = false;           // every token belongs to one sequence (a verification step)
    const HostStep* host = nullptr; // prefill path: the host layout
  };

  // Runs a step up to its logits on the device: the workspace holding them (null for an empty
  // step) and their row count. forward() copies them back, forward_pick() picks on the device.
  Expected<const Workspace*> compute(const StepBatch& b, int& rows);
  Expected<void> finish_step(const char* what);
  Expected<void> build_step(const StepBatch& b, HostStep& hs) const;
  Expected<void> size_workspace(Workspace& ws, int T, int R, bool prefill);
  Expected<void> upload_step(Workspace& ws, const HostStep& hs, int T_pad, int R_pad);
  Expected<void> run_decode(int T_pad, int R_pad, bool one_seq);
  Expected<void> layers(const Ctx& c);  // embedding .. logits of one step, either path

  // Blocks (cuda_layers.cpp).
  kernels::KvCache kv_view(int layer, const Workspace& ws) const;
  kernels::TokenPlace place(const Workspace& ws) const { return {ws.seq(), ws.pos()}; }
  // xb: x in bf16 ([T, K] dense) when a kernel wrote it so already (prefill, bf16 weights): no convert.
  void linear(const Ctx& c, const DMat& w, const float* bias, const float* x, int64_t ldx, int T, float* y, int64_t ldy,
              const void* xb = nullptr);
  // Prefill with bf16 weights: the norms write h in bf16 too and the flash kernel its output
  // (GHOSTLINE_BF16_ACTS=0: float32 only, converted before each product). ws.hb, or null.
  void* h_bf16(const Ctx& c) const;
  bool flash_prefill() const;  // prefill attention through kernels/prefill_attention.cu
  Expected<void> attention_mla(const Ctx& c, int layer);
  Expected<void> attention_gqa(const Ctx& c, int layer);
  // fused_norm: the norm after attention is still to do, with the router logits (rmsnorm_router).
  Expected<void> ffn(const Ctx& c, int layer, bool fused_norm);
  void decode_attention(const Ctx& c, int layer, int n_list);
  // out_bf16: the flash kernel writes its output there in bf16 instead of ws.attn (only when
  // flash_prefill()).
  Expected<void> prefill_attention(const Ctx& c, int layer, int seq, int t0, int n_new, int n_past, void* out_bf16 = nullptr);
  kernels::RouteParams route_params(const DeviceLayer& L) const;
  int qkv_rows() const;

  model::ModelConfig cfg_;
  DeviceWeights w_;
  ModelInfo info_;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  DeviceBuffer blas_workspace_;
  DType dt_;
  model::Rope rope_;
  DeviceBuffer inv_freq_;
  kernels::RopeParams rope_params_;
  float softmax_scale_ = 1.0f;
  int KP_ = 1, X_ = 1, I_max_ = 0, E_max_ = 0;  // pairs per token, expert slots, hidden size, routed experts: maxima

  // KV cache: [n_blocks][L][B][kv_dim] float32.
  DeviceBuffer kv_;
  int block_size_ = 0, n_blocks_ = 0;
  DeviceBuffer table_;          // flat block tables of a step
  int64_t table_cap_ = 0;

  Workspace small_, large_;
  DeviceBuffer attn_scratch_;   // prefill attention operands
  DeviceBuffer moe_scratch_;    // prefill experts: padded inputs, gate/up, activations, outputs
  const float* moe_out_ = nullptr;  // the experts' outputs of the current layer (ffn sets it)
  bool moe_out_bf16_ = false;        // ... in bf16 (prefill with h_bf16)
  PinnedBuffer staging_, out_, offsets_;
  DeviceBuffer picks_dev_;      // forward_pick: the picks and the ids on the device
  std::map<std::tuple<int, int, bool>, cudaGraphExec_t> graphs_;  // (T_pad, R_pad, one_seq)
  void drop_graphs();
};

}  // namespace ghostline::engine::cuda
