// CudaModel: the Model contract (engine/model.h) on an NVIDIA GPU for every supported
// architecture: weights in bf16 (float32 for float32/float16 checkpoints), float32 activations
// and accumulation, paged KV in float32 (MLA: the normalised latent and the rotated rope key).
//
// A step runs one of two paths:
// - decode path (at most decode_max_tokens() tokens): skinny products that read each weight once
//   (MoE: only the selected experts), flash-decoding attention over the paged cache (MLA with
//   absorbed weights), everything on the device with no host synchronisation; padded to a
//   bucket of 1, 2, 4, .. 64 tokens and replayed from a CUDA graph captured per bucket;
// - prefill path: cuBLAS products (activations rounded to the weight dtype), experts grouped by
//   expert (one host synchronisation per MoE layer to read the group sizes), attention of each
//   sequence with several new tokens through cuBLAS over its expanded keys and values.
// Thread-safety: none (one engine thread), like every Model.
#pragma once

#include <memory>

#include "engine/model.h"
#include "engine/model/config.h"
#include "engine/model/weights.h"

namespace ghostline::engine::cuda {

// Creates the model on device options.device_index: uploads `host` (or random weights when null,
// for dummy models). `counts` gives the parameter counts for ModelInfo.
Expected<std::unique_ptr<Model>> create_cuda_model(const model::ModelConfig& cfg, const model::ModelWeights* host,
                                                   const model::ModelWeights& counts, const LoadOptions& options);

// Knobs for tests and benchmarks; apply to a model made by create_cuda_model.
struct CudaModelOptions {
  bool graphs = true;          // replay decode steps from CUDA graphs
  int decode_max_tokens = 64;  // steps with at most this many tokens take the decode path (0: never)
};
// Applies `options` (dropping captured graphs, so that kernels::set_pdl changes take effect).
void set_cuda_model_options(Model& model, const CudaModelOptions& options);
struct CudaModelStats {
  int64_t graph_captures = 0, graph_replays = 0, eager_decode_steps = 0, prefill_steps = 0;
  std::string graph_error;     // why graphs were turned off, if they were
  int64_t moe_padded_layers = 0, moe_exact_layers = 0;  // prefill: how the experts' products ran
  int64_t moe_grouped_layers = 0;                       // prefill: one grouped launch per matrix (bf16)
};
CudaModelStats cuda_model_stats(const Model& model);

}  // namespace ghostline::engine::cuda
