// load_model: a Hugging Face model directory or "dummy:CONFIG.json" -> a CpuModel, or a CudaModel
// in builds with the CUDA backend; and the device choice ("auto" picks CUDA when it is usable).
#include <cstdlib>
#include <filesystem>

#include "engine/model.h"
#include "engine/model/config.h"
#include "engine/model/cpu_model.h"
#include "engine/model/safetensors.h"
#include "engine/model/weights.h"

#ifdef GHOSTLINE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "engine/cuda/cuda_model.h"
#endif

namespace ghostline::engine {

bool cuda_available() {
#ifdef GHOSTLINE_HAVE_CUDA
  static const bool available = [] {
    int n = 0;
    const bool ok = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
    cudaGetLastError();  // clear "no device" / "insufficient driver"
    return ok;
  }();
  return available;
#else
  return false;
#endif
}

Expected<void> parse_device(const std::string& text, LoadOptions& options) {
  options.device_index = 0;
  if (text == "cpu") {
    options.device = Device::Cpu;
  } else if (text == "auto") {
    options.device = cuda_available() ? Device::Cuda : Device::Cpu;
  } else if (text == "cuda") {
    options.device = Device::Cuda;
  } else if (text.rfind("cuda:", 0) == 0 && text.size() > 5 &&
             text.find_first_not_of("0123456789", 5) == std::string::npos && text.size() < 10) {
    options.device = Device::Cuda;
    options.device_index = std::atoi(text.c_str() + 5);
  } else {
    return Error(ErrorCode::InvalidArgument, "--device must be auto, cpu or cuda[:N], not '" + text + "'");
  }
  return ok();
}

Expected<std::unique_ptr<Model>> load_model(const std::string& path, const LoadOptions& options) {
  using namespace model;
#ifndef GHOSTLINE_HAVE_CUDA
  if (options.device != Device::Cpu)
    return Error(ErrorCode::Unsupported, "load_model: this build runs models on the CPU only (no CUDA backend)");
#endif
  const std::string dummy_prefix = "dummy:";
  const bool dummy = path.rfind(dummy_prefix, 0) == 0;
  const std::string config_path = dummy ? path.substr(dummy_prefix.size()) : path + "/config.json";
  if (!dummy) {
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec))
      return Error(ErrorCode::NotFound, path + ": not a model directory (expected config.json and *.safetensors)");
  }
  auto cfg = load_config(config_path);
  if (!cfg) return cfg.error();
  if (cfg->head_dim > 1024 || cfg->qk_rope_head_dim > 1024)
    return Error(ErrorCode::Unsupported, config_path + ": head dimensions above 1024 are not supported");
#ifdef GHOSTLINE_HAVE_CUDA
  if (options.device == Device::Cuda) {
    if (!cuda_available()) return Error(ErrorCode::Unsupported, "load_model: no usable CUDA device (try --device cpu)");
    if (dummy) {
      // Random weights are drawn on the GPU: the host only counts them.
      auto counts = count_weights(*cfg);
      if (!counts) return counts.error();
      return cuda::create_cuda_model(*cfg, nullptr, *counts, options);
    }
    auto store = TensorStore::open_dir(path);
    if (!store) return store.error();
    WeightStorage storage;  // the mapped files, unmapped once the weights are on the GPU
    auto weights = load_weights(*cfg, std::move(*store), storage);
    if (!weights) return weights.error();
    return cuda::create_cuda_model(*cfg, &*weights, *weights, options);
  }
#endif
  WeightStorage storage;
  Expected<ModelWeights> weights = Error(ErrorCode::Internal, "unset");
  if (dummy) {
    weights = dummy_weights(*cfg, options.dummy_seed, storage);
  } else {
    auto store = TensorStore::open_dir(path);
    if (!store) return store.error();
    weights = load_weights(*cfg, std::move(*store), storage);
  }
  if (!weights) return weights.error();
  return std::unique_ptr<Model>(new CpuModel(std::move(*cfg), std::move(storage), std::move(*weights), options.threads));
}

}  // namespace ghostline::engine
