// FIM templates: the prompt layout of each model family, detected from a model directory's
// tokenizer.json / tokenizer_config.json, and render(context) → prompt string.
//
// Families: DeepSeek-Coder V1/V2 (and our embedded model, which uses DeepSeek's tokens and may
// announce `"fim_orders": ["psm", "spm"]` in tokenizer_config.json), Qwen2.5/Qwen3-Coder (repo
// level with <|repo_name|>/<|file_sep|>), StarCoder2 (<repo_name>/<file_sep>), CodeLlama
// (<PRE>/<SUF>/<MID>). The BOS token is not part of the rendered prompt: the service adds it.
#pragma once

#include <string>
#include <vector>

#include "completion/context.h"
#include "engine/base/expected.h"

namespace ghostline::completion {

enum class FimFamily { DeepSeekCoder, QwenCoder, StarCoder2, CodeLlama };
enum class FimOrder { PSM, SPM };
const char* fim_family_name(FimFamily family);

struct FimTemplate {
  FimFamily family = FimFamily::DeepSeekCoder;
  std::vector<FimOrder> orders{FimOrder::PSM};  // supported orders, PSM always first
  std::vector<std::string> stop_tokens;         // end-of-text / file-separator tokens
  std::string repo_name = "ghostline";          // for repo-level formats

  bool supports(FimOrder order) const;
  // SPM when supported (the edit point stays at the end of the prompt), else PSM.
  FimOrder preferred_order() const { return supports(FimOrder::SPM) ? FimOrder::SPM : FimOrder::PSM; }
  // The prompt for a context; an unsupported order falls back to PSM.
  std::string render(const Context& context, FimOrder order) const;
  std::string render(const Context& context) const { return render(context, preferred_order()); }
};

FimTemplate fim_template_for(FimFamily family);

// Reads DIR/tokenizer.json and DIR/tokenizer_config.json and picks the family from their special
// tokens. Fails with NotFound when neither file exists and Unsupported when no FIM tokens are known.
Expected<FimTemplate> detect_fim_template(const std::string& model_dir);

}  // namespace ghostline::completion
