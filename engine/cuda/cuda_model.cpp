// CudaModel: creation, the KV pool, one step's metadata on the device, the choice between the
// decode path (CUDA graphs per bucket of tokens) and the prefill path, and the logits' way back.
#include "engine/cuda/cuda_model_impl.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace ghostline::engine::cuda {

namespace {

constexpr int kDecodeCapacity = 64;   // tokens of the decode path's workspace (the largest bucket)
constexpr int kPrefillAttnMin = 8;    // prefill path: sequences with this many new tokens use cuBLAS attention

int bucket(int n, int cap) {
  int b = 1;
  while (b < n) b *= 2;
  return std::min(b, cap);
}

int64_t align_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

}  // namespace

CudaModel::CudaModel(model::ModelConfig cfg, ModelInfo info, int device) : cfg_(std::move(cfg)), info_(std::move(info)), device_(device) {}

CudaModel::~CudaModel() {
  cudaSetDevice(device_);
  if (stream_) cudaStreamSynchronize(stream_);
  drop_graphs();
  if (blas_) cublasDestroy(blas_);
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaModel::drop_graphs() {
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
}

int CudaModel::qkv_rows() const {
  if (cfg_.is_mla()) {
    const int q_cols = cfg_.q_lora_rank > 0 ? cfg_.q_lora_rank : cfg_.n_heads * (cfg_.qk_nope_head_dim + cfg_.qk_rope_head_dim);
    return q_cols + cfg_.kv_lora_rank + cfg_.qk_rope_head_dim;
  }
  return (cfg_.n_heads + 2 * cfg_.n_kv_heads) * cfg_.head_dim;
}

Expected<void> CudaModel::init(const model::ModelWeights* host, uint64_t seed) {
  CUDA_TRY(cudaSetDevice(device_));
  CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  dt_ = host ? device_dtype(host->dtype) : (cfg_.weight_dtype == "float32" ? DType::F32 : DType::BF16);
  auto w = upload_weights(cfg_, host, dt_, seed, stream_);
  if (!w) return w.error();
  w_ = std::move(*w);

  if (cublasCreate(&blas_) != CUBLAS_STATUS_SUCCESS) return Error(ErrorCode::Internal, "cuBLAS could not be initialised");
  cublasSetStream(blas_, stream_);
  auto r = blas_workspace_.alloc(int64_t{32} << 20);
  if (!r) return r;
  cublasSetWorkspace(blas_, blas_workspace_.get(), static_cast<size_t>(blas_workspace_.bytes()));

  if (cfg_.is_mla()) {
    rope_ = model::Rope(cfg_.rope, cfg_.qk_rope_head_dim, cfg_.max_position, model::Rope::Order::Interleaved);
    softmax_scale_ = 1.0f / std::sqrt(static_cast<float>(cfg_.qk_nope_head_dim + cfg_.qk_rope_head_dim));
    if (cfg_.rope.type != "default" && cfg_.rope.mscale_all_dim != 0) {
      const double m = model::yarn_get_mscale(cfg_.rope.factor, cfg_.rope.mscale_all_dim);
      softmax_scale_ *= static_cast<float>(m * m);
    }
  } else {
    rope_ = model::Rope(cfg_.rope, cfg_.head_dim, cfg_.max_position, model::Rope::Order::Half);
    softmax_scale_ = 1.0f / std::sqrt(static_cast<float>(cfg_.head_dim));
  }
  const auto& inv = rope_.inv_freq();
  if (auto a = inv_freq_.alloc(static_cast<int64_t>(inv.size()) * 4); !a) return a;
  CUDA_TRY(cudaMemcpy(inv_freq_.get(), inv.data(), inv.size() * 4, cudaMemcpyHostToDevice));
  rope_params_.inv_freq = inv_freq_.get<float>();
  rope_params_.dim = rope_.dim();
  rope_params_.attention_factor = rope_.attention_factor();
  rope_params_.interleaved = cfg_.is_mla();

  KP_ = 1, X_ = 1, I_max_ = 0, E_max_ = 0;
  for (const auto& L : w_.layers) {
    KP_ = std::max(KP_, L.K + L.S);
    X_ = std::max(X_, L.E + L.S);
    I_max_ = std::max(I_max_, L.I);
    E_max_ = std::max(E_max_, L.E);
  }
  if (auto s = size_workspace(small_, kDecodeCapacity, kDecodeCapacity, false); !s) return s;
  if (auto s = offsets_.ensure((X_ + 1) * 4); !s) return s;

  size_t free_b = 0, total_b = 0;
  CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
  // Leave room for the prefill path's buffers (about 3 GiB at 8K tokens on DeepSeek-V2-Lite).
  const int64_t reserve = std::min<int64_t>(int64_t{4} << 30, static_cast<int64_t>(total_b) / 8);
  info_.kv_memory_bytes = std::max<int64_t>(0, static_cast<int64_t>(free_b) - reserve);
  info_.weight_bytes = w_.bytes;
  info_.weight_dtype = dt_ == DType::BF16 ? "bf16" : "f32";
  const std::string e = kernels::take_error();
  if (!e.empty()) return Error(ErrorCode::Internal, "CUDA model setup: " + e);
  return ok();
}

Expected<void> CudaModel::size_workspace(Workspace& ws, int T, int R, bool prefill) {
  if (T <= ws.T && R <= ws.R && (!prefill || ws.gin)) return ok();
  T = std::max(T, ws.T);
  R = std::max(R, ws.R);
  const int64_t D = cfg_.hidden_size, V = cfg_.vocab_size, H = cfg_.n_heads;
  const bool mla = cfg_.is_mla();
  const int64_t n = cfg_.qk_nope_head_dim, p = cfg_.qk_rope_head_dim, r = cfg_.kv_lora_rank;
  const int64_t head_out = mla ? H * cfg_.v_head_dim : H * cfg_.head_dim;
  const int n_kvh = mla ? 1 : cfg_.n_kv_heads, G = mla ? cfg_.n_heads : cfg_.n_heads / cfg_.n_kv_heads;
  const int dv = mla ? cfg_.kv_lora_rank : cfg_.head_dim;
  const int64_t P = static_cast<int64_t>(T) * KP_;
  std::vector<std::pair<void**, int64_t>> parts;  // pointer, bytes
  auto add = [&](auto** ptr, int64_t bytes) { parts.push_back({reinterpret_cast<void**>(ptr), bytes}); };
  Workspace nw;
  nw.T = T, nw.R = R;
  add(&nw.x, T * D * 4);
  add(&nw.h, T * D * 4);
  add(&nw.delta, T * D * 4);
  add(&nw.qkv, T * int64_t{qkv_rows()} * 4);
  if (mla && cfg_.q_lora_rank > 0) add(&nw.q, T * H * (n + p) * 4);
  if (mla) add(&nw.q_full, T * H * (r + p) * 4);
  add(&nw.attn, T * head_out * 4);
  const int64_t part = kernels::attention_partial_floats(T, n_kvh, G, dv);
  add(&nw.part_o, part * 4);
  add(&nw.part_ml, part / dv * 2 * 4);
  add(&nw.moe.pair_expert, P * 4);
  add(&nw.moe.pair_weight, P * 4);
  add(&nw.moe.pair_slot, P * 4);
  add(&nw.moe.sorted_pair, P * 4);
  add(&nw.moe.expert_offset, (X_ + 1) * 4);
  add(&nw.moe.active, X_ * 4);
  add(&nw.moe.n_active, 4);
  add(&nw.router_logits, static_cast<int64_t>(T) * std::max(E_max_, 1) * 4);
  if (!prefill) {
    add(&nw.act, P * I_max_ * 4);
    add(&nw.pair_out, P * D * 4);
  }
  add(&nw.hfinal, R * D * 4);
  add(&nw.logits, R * V * 4);
  add(&nw.meta, int64_t{5 * T + R} * 4);
  if (prefill) {
    nw.gin_elems = std::max({T * H * (n + p), T * head_out, T * D, T * int64_t{std::max(cfg_.q_lora_rank, 1)}, int64_t{R} * D});
    add(&nw.gin, nw.gin_elems * kernels::dtype_size(dt_));
    if (dt_ == DType::BF16) add(&nw.hb, T * D * 2);
  }
  int64_t total = 0;
  for (auto& [ptr, bytes] : parts) total += align_up(bytes, 256);
  auto a = nw.arena.alloc(total);
  if (!a) return a;
  // Finite everywhere from the start: kernels may read rows nothing wrote yet with weight 0.
  CUDA_TRY(cudaMemsetAsync(nw.arena.get(), 0, static_cast<size_t>(total), stream_));
  int64_t off = 0;
  for (auto& [ptr, bytes] : parts) {
    *ptr = nw.arena.get<uint8_t>() + off;
    off += align_up(bytes, 256);
  }
  if (&ws == &small_) drop_graphs();
  ws = std::move(nw);
  return ok();
}

Expected<void> CudaModel::allocate_kv(int block_size, int n_blocks) {
  if (block_size <= 0 || n_blocks <= 0)
    return Error(ErrorCode::InvalidArgument, "allocate_kv: block_size and n_blocks must be positive (got " + std::to_string(block_size) +
                                                 ", " + std::to_string(n_blocks) + ")");
  CUDA_TRY(cudaSetDevice(device_));
  CUDA_TRY(cudaStreamSynchronize(stream_));
  drop_graphs();
  kv_.reset();
  const int64_t bytes = static_cast<int64_t>(n_blocks) * block_size * cfg_.kv_dim() * cfg_.n_layers * 4;
  size_t free_b = 0, total_b = 0;
  CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
  if (bytes > static_cast<int64_t>(free_b) - (int64_t{256} << 20))
    return Error(ErrorCode::ResourceExhausted, "allocate_kv: " + std::to_string(bytes >> 20) + " MiB of KV cache does not fit in the " +
                                                   std::to_string(free_b >> 20) + " MiB of free GPU memory");
  if (auto r = kv_.alloc(bytes); !r) return r;
  CUDA_TRY(cudaMemsetAsync(kv_.get(), 0, static_cast<size_t>(bytes), stream_));
  block_size_ = block_size;
  n_blocks_ = n_blocks;
  CUDA_TRY(cudaStreamSynchronize(stream_));
  return ok();
}

void CudaModel::copy_kv_block(int src, int dst) {
  if (src < 0 || dst < 0 || src >= n_blocks_ || dst >= n_blocks_ || src == dst) return;
  const int64_t block = static_cast<int64_t>(cfg_.n_layers) * block_size_ * cfg_.kv_dim();
  float* base = kv_.get<float>();
  kernels::check_launch(cudaMemcpyAsync(base + dst * block, base + src * block, block * 4, cudaMemcpyDeviceToDevice, stream_), __FILE__,
                        __LINE__);
}

kernels::KvCache CudaModel::kv_view(int layer, const Workspace& ws) const {
  kernels::KvCache kv;
  kv.layer = kv_.get<float>() + static_cast<int64_t>(layer) * block_size_ * cfg_.kv_dim();
  kv.block_stride = static_cast<int64_t>(cfg_.n_layers) * block_size_ * cfg_.kv_dim();
  kv.block_size = block_size_;
  kv.kv_dim = cfg_.kv_dim();
  kv.block_table = table_.get<int32_t>();
  kv.table_offset = ws.table_offset();
  return kv;
}

Expected<void> CudaModel::build_step(const StepBatch& b, HostStep& hs) const {
  hs = HostStep();
  if (auto r = check_step(b, cfg_.vocab_size, cfg_.max_position, block_size_, n_blocks_); !r) return r;
  for (size_t si = 0; si < b.seqs.size(); ++si) {
    const auto& s = b.seqs[si];
    const int64_t need = (static_cast<int64_t>(s.n_past) + s.n_new + block_size_ - 1) / block_size_;
    hs.table_offset.push_back(static_cast<int32_t>(hs.table.size()));
    for (int64_t blk = 0; blk < need; ++blk) hs.table.push_back(s.block_table[blk]);
    hs.first_token.push_back(static_cast<int>(hs.seq.size()));
    hs.n_past.push_back(s.n_past);
    hs.n_new.push_back(s.n_new);
    for (int i = 0; i < s.n_new; ++i) {
      if (s.all_logits || i == s.n_new - 1) hs.rows.push_back(static_cast<int32_t>(hs.seq.size()));
      hs.seq.push_back(static_cast<int32_t>(si));
      hs.pos.push_back(s.n_past + i);
    }
  }
  hs.T = static_cast<int>(hs.seq.size());
  hs.S = static_cast<int>(b.seqs.size());
  hs.R = static_cast<int>(hs.rows.size());
  hs.ids = b.tokens;
  return ok();
}

Expected<void> CudaModel::upload_step(Workspace& ws, const HostStep& hs, int T_pad, int R_pad) {
  const int M = ws.meta_ints();
  const int64_t n_tab = static_cast<int64_t>(hs.table.size());
  if (n_tab > table_cap_) {
    CUDA_TRY(cudaStreamSynchronize(stream_));
    const int64_t cap = std::max<int64_t>({n_tab * 2, int64_t{4096}, static_cast<int64_t>(n_blocks_) * 2});
    if (auto r = table_.alloc(cap * 4); !r) return r;
    table_cap_ = cap;
    drop_graphs();
  }
  if (auto r = staging_.ensure((M + n_tab) * 4); !r) return r;
  int32_t* m = staging_.get<int32_t>();
  std::fill(m, m + M, 0);
  for (int t = 0; t < T_pad; ++t) {
    const bool real = t < hs.T;
    m[t] = real ? hs.ids[t] : 0;
    m[ws.T + t] = real ? hs.seq[t] : -1;
    m[2 * ws.T + t] = real ? hs.pos[t] : 0;
  }
  for (int i = 0; i < R_pad; ++i) m[3 * ws.T + i] = i < hs.R ? hs.rows[i] : 0;
  for (int s = 0; s < hs.S; ++s) m[3 * ws.T + ws.R + s] = hs.table_offset[s];
  int32_t* list = m + 4 * ws.T + ws.R;
  if (hs.list.empty()) {
    for (int t = 0; t < T_pad; ++t) list[t] = t;
  } else {
    std::copy(hs.list.begin(), hs.list.end(), list);
  }
  std::copy(hs.table.begin(), hs.table.end(), m + M);
  CUDA_TRY(cudaMemcpyAsync(ws.meta, m, M * 4, cudaMemcpyHostToDevice, stream_));
  if (n_tab > 0) CUDA_TRY(cudaMemcpyAsync(table_.get(), m + M, n_tab * 4, cudaMemcpyHostToDevice, stream_));
  return ok();
}

Expected<void> CudaModel::run_decode(int T_pad, int R_pad, bool one_seq) {
  Ctx c;
  c.ws = &small_;
  c.T = T_pad;
  c.R = R_pad;
  c.decode = true;
  c.one_seq = one_seq;
  if (options.graphs && stats.graph_error.empty()) {
    const auto key = std::make_tuple(T_pad, R_pad, one_seq);
    auto it = graphs_.find(key);
    if (it == graphs_.end()) {
      cudaGraph_t graph = nullptr;
      cudaGraphExec_t exec = nullptr;
      std::string why;
      cudaError_t e = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
      if (e == cudaSuccess) {
        auto r = layers(c);
        e = cudaStreamEndCapture(stream_, &graph);
        const std::string k = kernels::take_error();
        if (!r) why = r.error().message;
        else if (!k.empty()) why = k;
        else if (e != cudaSuccess) why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(e);
        else if ((e = cudaGraphInstantiate(&exec, graph, 0)) != cudaSuccess)
          why = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(e);
      } else {
        why = std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(e);
      }
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();
      if (!why.empty()) {
        if (exec) cudaGraphExecDestroy(exec);
        stats.graph_error = why;  // graphs stay off; this and later steps run eagerly
      } else {
        it = graphs_.emplace(key, exec).first;
        ++stats.graph_captures;
      }
    }
    if (it != graphs_.end()) {
      CUDA_TRY(cudaGraphLaunch(it->second, stream_));
      ++stats.graph_replays;
      return ok();
    }
  }
  ++stats.eager_decode_steps;
  return layers(c);
}

Expected<const Workspace*> CudaModel::compute(const StepBatch& b, int& rows) {
  rows = 0;
  if (!kv_.get()) return Error(ErrorCode::InvalidArgument, "forward: no KV storage (call allocate_kv first)");
  HostStep hs;
  if (auto r = build_step(b, hs); !r) return r.error();
  if (hs.T == 0) return static_cast<const Workspace*>(nullptr);
  CUDA_TRY(cudaSetDevice(device_));
  kernels::take_error();
  Workspace* ws = &small_;
  const int decode_max = std::min(options.decode_max_tokens, small_.T);
  if (hs.T <= decode_max) {
    const int T_pad = bucket(hs.T, small_.T), R_pad = bucket(hs.R, small_.R);
    if (auto r = upload_step(small_, hs, T_pad, R_pad); !r) return r.error();
    if (auto r = run_decode(T_pad, R_pad, hs.S == 1); !r) return r.error();
  } else {
    for (int s = 0; s < hs.S; ++s) {
      const bool big = hs.n_new[s] >= kPrefillAttnMin;
      hs.prefill_seq.push_back(big ? 1 : 0);
      if (!big)
        for (int i = 0; i < hs.n_new[s]; ++i) hs.list.push_back(hs.first_token[s] + i);
    }
    if (auto r = size_workspace(large_, hs.T, hs.R, true); !r) return r.error();
    if (auto r = upload_step(large_, hs, hs.T, hs.R); !r) return r.error();
    ws = &large_;
    Ctx c;
    c.ws = &large_;
    c.T = hs.T;
    c.R = hs.R;
    c.decode = false;
    c.host = &hs;
    ++stats.prefill_steps;
    if (auto r = layers(c); !r) return r.error();
  }
  rows = hs.R;
  return static_cast<const Workspace*>(ws);
}

// Waits for the step's copies back and turns a recorded kernel error or a fault into an Error.
Expected<void> CudaModel::finish_step(const char* what) {
  const cudaError_t e = cudaStreamSynchronize(stream_);
  const std::string k = kernels::take_error();
  if (!k.empty()) return Error(ErrorCode::Internal, std::string(what) + ": " + k);
  if (e != cudaSuccess) return cuda_error(e, what, __FILE__, __LINE__);
  return ok();
}

Expected<void> CudaModel::forward(const StepBatch& b, std::vector<float>& logits) {
  logits.clear();
  int R = 0;
  auto ws = compute(b, R);
  if (!ws) return ws.error();
  if (!*ws) return ok();
  const int64_t n = static_cast<int64_t>(R) * cfg_.vocab_size;
  if (auto r = out_.ensure(n * 4); !r) return r;
  CUDA_TRY(cudaMemcpyAsync(out_.get(), (*ws)->logits, n * 4, cudaMemcpyDeviceToHost, stream_));
  if (auto r = finish_step("forward"); !r) return r;
  logits.assign(out_.get<float>(), out_.get<float>() + n);
  return ok();
}

Expected<void> CudaModel::forward_pick(const StepBatch& b, std::span<const TokenPick> picks, std::vector<int32_t>& ids) {
  ids.clear();
  if (static_cast<int>(picks.size()) != b.logit_rows())
    return Error(ErrorCode::InvalidArgument, "forward_pick: " + std::to_string(picks.size()) + " picks for " +
                                                 std::to_string(b.logit_rows()) + " logit rows");
  int R = 0;
  auto ws = compute(b, R);
  if (!ws) return ws.error();
  if (!*ws) return ok();
  // The picks go up and the ids come back through one pinned buffer: [R picks][R ids].
  const int64_t pick_bytes = static_cast<int64_t>(R) * sizeof(kernels::RowPick);
  if (auto r = out_.ensure(pick_bytes + R * 4); !r) return r;
  if (auto r = picks_dev_.ensure(pick_bytes + R * 4); !r) return r.error();
  auto* host_picks = out_.get<kernels::RowPick>();
  for (int i = 0; i < R; ++i)
    host_picks[i] = {picks[i].temperature, picks[i].top_p, picks[i].top_k, picks[i].uniform};
  auto* dev_picks = picks_dev_.get<kernels::RowPick>();
  auto* dev_ids = reinterpret_cast<int32_t*>(picks_dev_.get<char>() + pick_bytes);
  CUDA_TRY(cudaMemcpyAsync(dev_picks, host_picks, pick_bytes, cudaMemcpyHostToDevice, stream_));
  kernels::pick_tokens((*ws)->logits, R, cfg_.vocab_size, dev_picks, dev_ids, stream_);
  auto* host_ids = reinterpret_cast<int32_t*>(out_.get<char>() + pick_bytes);
  CUDA_TRY(cudaMemcpyAsync(host_ids, dev_ids, R * 4, cudaMemcpyDeviceToHost, stream_));
  if (auto r = finish_step("forward_pick"); !r) return r;
  ids.assign(host_ids, host_ids + R);
  return ok();
}

Expected<std::unique_ptr<Model>> create_cuda_model(const model::ModelConfig& cfg, const model::ModelWeights* host,
                                                   const model::ModelWeights& counts, const LoadOptions& options) {
  int n_dev = 0;
  if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
    cudaGetLastError();
    return Error(ErrorCode::Unsupported, "no usable CUDA device (run with --device cpu)");
  }
  if (options.device_index < 0 || options.device_index >= n_dev)
    return Error(ErrorCode::InvalidArgument, "CUDA device " + std::to_string(options.device_index) + " does not exist (" +
                                                 std::to_string(n_dev) + " found)");
  // The kernels read keys, values and heads four floats at a time.
  auto bad = [&](const std::string& what) { return Error(ErrorCode::Unsupported, "CUDA backend: " + what + " (" + cfg.model_type + ")"); };
  if (cfg.is_mla()) {
    if (cfg.kv_lora_rank % 4 || cfg.qk_rope_head_dim % 4 || cfg.kv_lora_rank > 512)
      return bad("MLA needs kv_lora_rank and qk_rope_head_dim multiples of 4, kv_lora_rank at most 512");
  } else if (cfg.head_dim % 4 || cfg.head_dim > 512) {
    return bad("head_dim must be a multiple of 4 and at most 512");
  }
  if (cfg.n_experts > 1024 || cfg.n_experts_per_tok > 16) return bad("at most 1024 experts and top-16 routing");
  ModelInfo info;
  info.architecture = cfg.model_type;
  info.vocab_size = cfg.vocab_size;
  info.n_layers = cfg.n_layers;
  info.max_context = cfg.max_position;
  info.eos_token_ids = cfg.eos_token_ids;
  info.params_total = counts.params_total;
  info.params_active = counts.params_active;
  info.kv_bytes_per_token = static_cast<int64_t>(cfg.n_layers) * cfg.kv_dim() * 4;
  info.device = Device::Cuda;
  auto m = std::make_unique<CudaModel>(cfg, std::move(info), options.device_index);
  if (auto r = m->init(host, options.dummy_seed); !r) return r.error();
  return std::unique_ptr<Model>(std::move(m));
}

void set_cuda_model_options(Model& model, const CudaModelOptions& options) {
  if (auto* m = dynamic_cast<CudaModel*>(&model)) m->set_options(options);
}

CudaModelStats cuda_model_stats(const Model& model) {
  if (const auto* m = dynamic_cast<const CudaModel*>(&model)) return m->stats;
  return {};
}

}  // namespace ghostline::engine::cuda
