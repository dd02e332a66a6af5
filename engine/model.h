// The contract between a model definition (with its backend) and the engine runtime above it.
//
// A Model turns a batch of new tokens into logits, reading and writing its own paged KV storage.
// The runtime (scheduler, block manager, prefix cache, speculation) owns the block tables and
// decides which blocks each sequence uses; the model owns the block storage and its layout.
//
// Legend: T tokens in the step (all sequences), S sequences in the step, V vocabulary size,
// L layers, B tokens per KV block.
//
// Thread-safety: none. One engine thread owns a Model and calls it; the model may use worker
// threads inside forward() but returns only when the step is complete.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/base/expected.h"

namespace ghostline::engine {

enum class Device { Cpu, Cuda };

// Facts about a loaded model that the layers above need.
struct ModelInfo {
  std::string architecture;          // config.json model_type: "deepseek_v2", "qwen3_moe", "llama", ...
  int vocab_size = 0;                // V: rows of the logits
  int n_layers = 0;                  // L
  int max_context = 0;               // max_position_embeddings
  std::vector<int32_t> eos_token_ids;
  int64_t params_total = 0;          // every weight
  int64_t params_active = 0;         // weights read for one token (routed experts: only top-k)
  int64_t weight_bytes = 0;          // bytes of the weights as stored / loaded
  int64_t kv_bytes_per_token = 0;    // over all layers, in the backend's KV dtype
  std::string weight_dtype;          // "bf16", "f32", "f16" (as loaded)
  Device device = Device::Cpu;
  int64_t kv_memory_bytes = 0;       // memory left for the KV pool (CUDA: free GPU memory after the
                                     // weights, less a reserve); 0 = the host's free memory
};

// One sequence's part of a step. Its new tokens take positions n_past .. n_past + n_new - 1.
struct SequenceStep {
  int n_past = 0;                    // tokens of this sequence already in its KV blocks
  int n_new = 0;                     // tokens of this sequence in StepBatch::tokens
  std::vector<int32_t> block_table;  // blocks holding positions [0, n_past + n_new): ceil(/B)
  bool all_logits = false;           // logits for every new token (verification) or the last only
};

// Per-step metadata: every sequence's new tokens, concatenated in the order of `seqs`.
struct StepBatch {
  std::vector<int32_t> tokens;       // [T]
  std::vector<SequenceStep> seqs;    // [S], sum of n_new == T
  int logit_rows() const {
    int rows = 0;
    for (const auto& s : seqs) rows += s.all_logits ? s.n_new : (s.n_new > 0 ? 1 : 0);
    return rows;
  }
};

// How a backend that picks tokens itself (Model::forward_pick) picks one logit row's token: the
// argmax (lowest id on ties) when temperature <= 0; else softmax(logits / temperature) cut by
// top-k (0 = off) and then top-p (1 = off), and the token where `uniform` (in [0, 1), drawn by
// the caller's seeded generator) falls when the kept probabilities are laid end to end in id
// order — the host sampler's draw (engine/runtime/sampler.h) with the same number.
struct TokenPick {
  float temperature = 0.0f;
  float top_p = 1.0f;
  int top_k = 0;
  float uniform = 0.0f;
};

class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelInfo& info() const = 0;

  // Allocates KV storage for n_blocks blocks of block_size tokens each (all layers).
  // Replaces any earlier storage. Fails with ResourceExhausted when it does not fit.
  virtual Expected<void> allocate_kv(int block_size, int n_blocks) = 0;

  // Copies every layer's KV of block `src` into block `dst` (copy-on-write of a shared
  // partial block). Both must be below the allocated n_blocks.
  virtual void copy_kv_block(int src, int dst) = 0;

  // Runs the model over the batch: writes KV for every new token into its sequence's blocks and
  // fills `logits` with batch.logit_rows() rows of V floats, in sequence order (per sequence
  // n_new rows when all_logits, else one row for its last new token).
  virtual Expected<void> forward(const StepBatch& batch, std::vector<float>& logits) = 0;

  // Optional: forward() with each logit row's token picked where the logits are (picks[r] for
  // row r, rows laid out as forward() lays them), so that only batch.logit_rows() ids come back
  // instead of as many rows of V floats. Backends that have it say so with picks_tokens().
  virtual bool picks_tokens() const { return false; }
  virtual Expected<void> forward_pick(const StepBatch& batch, std::span<const TokenPick> picks,
                                      std::vector<int32_t>& ids) {
    (void)batch, (void)picks, ids.clear();
    return make_error(ErrorCode::Unsupported, "this backend does not pick tokens itself");
  }
};

// Loads a model directory in Hugging Face layout (config.json + *.safetensors), or
// "dummy:CONFIG.json" for random weights of that config's shapes.
struct LoadOptions {
  Device device = Device::Cpu;
  int device_index = 0;
  int threads = 0;                   // CPU worker threads; 0 = all cores
  uint64_t dummy_seed = 1234;
};
Expected<std::unique_ptr<Model>> load_model(const std::string& path, const LoadOptions& options);

// Whether this process can run models on a CUDA device: a build with the CUDA backend and at
// least one device the driver reports. Cheap after the first call; never fails.
bool cuda_available();

// The checks every backend makes of a step before running it: n_past/n_new not negative, every
// sequence within max_position, block tables long enough and naming allocated blocks, n_new adding
// up to the tokens, token ids inside the vocabulary. InvalidArgument naming what is wrong.
Expected<void> check_step(const StepBatch& batch, int vocab_size, int64_t max_position, int block_size, int n_blocks);
// "auto" (CUDA when cuda_available(), else the CPU), "cpu", "cuda" or "cuda:N" -> device and
// index in `options`; anything else is InvalidArgument.
Expected<void> parse_device(const std::string& text, LoadOptions& options);

}  // namespace ghostline::engine
