// open_engine: model + tokenizer from a path, then Engine::create — the one call the layers
// above need to get an engine.
#include <filesystem>

#include "engine/engine.h"

#ifdef GHOSTLINE_HAVE_TOKENIZER
#include "engine/tokenizer/tokenizer.h"
#endif

namespace ghostline::engine {

Expected<std::unique_ptr<Engine>> open_engine(const std::string& model_path, const LoadOptions& load,
                                              const EngineOptions& options) {
  std::shared_ptr<const Tokenizer> tokenizer;
#ifdef GHOSTLINE_HAVE_TOKENIZER
  if (model_path.rfind("dummy:", 0) != 0 && std::filesystem::exists(model_path + "/tokenizer.json")) {
    auto tok = Tokenizer::from_model_dir(model_path);
    if (!tok) return tok.error();
    tokenizer = *tok;
  }
#endif
  auto model = load_model(model_path, load);
  if (!model) return model.error();
  return Engine::create(std::move(*model), std::move(tokenizer), options);
}

}  // namespace ghostline::engine
