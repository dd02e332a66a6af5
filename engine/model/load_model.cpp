// load_model: a Hugging Face model directory or "dummy:CONFIG.json" -> a CpuModel.
#include <filesystem>

#include "engine/model.h"
#include "engine/model/config.h"
#include "engine/model/cpu_model.h"
#include "engine/model/safetensors.h"
#include "engine/model/weights.h"

namespace ghostline::engine {

Expected<std::unique_ptr<Model>> load_model(const std::string& path, const LoadOptions& options) {
  using namespace model;
  if (options.device != Device::Cpu)
    return Error(ErrorCode::Unsupported, "load_model: this build runs models on the CPU only (no CUDA backend)");
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
