// FIM templates per model family: detection from tokenizer files and prompt rendering.
#include "completion/fim.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace ghostline::completion {

namespace {
// DeepSeek-Coder's tokens use U+FF5C (fullwidth vertical line) and U+2581 (lower one eighth block).
const std::string kDsBegin = "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>";
const std::string kDsHole = "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>";
const std::string kDsEnd = "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>";
const std::string kDsEos = "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>";
const std::string kDsEot = "<|EOT|>";
}  // namespace

const char* fim_family_name(FimFamily family) {
  switch (family) {
    case FimFamily::DeepSeekCoder: return "deepseek-coder";
    case FimFamily::QwenCoder: return "qwen-coder";
    case FimFamily::StarCoder2: return "starcoder2";
    case FimFamily::CodeLlama: break;
  }
  return "codellama";
}

bool FimTemplate::supports(FimOrder order) const {
  return std::find(orders.begin(), orders.end(), order) != orders.end();
}

FimTemplate fim_template_for(FimFamily family) {
  FimTemplate t;
  t.family = family;
  switch (family) {
    case FimFamily::DeepSeekCoder: t.stop_tokens = {kDsEos, kDsEot}; break;
    case FimFamily::QwenCoder: t.stop_tokens = {"<|endoftext|>", "<|file_sep|>", "<|fim_pad|>", "<|repo_name|>", "<|im_end|>"}; break;
    case FimFamily::StarCoder2: t.stop_tokens = {"<|endoftext|>", "<file_sep>", "<repo_name>"}; break;
    case FimFamily::CodeLlama: t.stop_tokens = {"<EOT>", "</s>"}; break;
  }
  return t;
}

// Snippets as commented file headers followed by their text (formats without file separators).
static std::string commented_snippets(const Context& c) {
  std::string out;
  const char* lc = line_comment(c.language);
  for (const auto& s : c.snippets) {
    out += std::string(lc) + " " + s.path + "\n" + s.text;
    if (!s.text.empty() && s.text.back() != '\n') out += "\n";
  }
  if (!out.empty() && !c.path.empty()) out += std::string(lc) + " " + c.path + "\n";
  return out;
}

std::string FimTemplate::render(const Context& c, FimOrder order) const {
  if (!supports(order)) order = FimOrder::PSM;
  switch (family) {
    case FimFamily::DeepSeekCoder: {
      std::string prefix = commented_snippets(c) + c.prefix;
      if (order == FimOrder::SPM) return kDsHole + c.suffix + kDsBegin + prefix + kDsEnd;
      return kDsBegin + prefix + kDsHole + c.suffix + kDsEnd;
    }
    case FimFamily::QwenCoder: {
      std::string fim = "<|fim_prefix|>" + c.prefix + "<|fim_suffix|>" + c.suffix + "<|fim_middle|>";
      if (c.snippets.empty() && c.path.empty()) return fim;
      std::string out = "<|repo_name|>" + repo_name + "\n";
      for (const auto& s : c.snippets) out += "<|file_sep|>" + s.path + "\n" + s.text + (s.text.empty() || s.text.back() == '\n' ? "" : "\n");
      return out + "<|file_sep|>" + c.path + "\n" + fim;
    }
    case FimFamily::StarCoder2: {
      std::string out;
      if (!c.snippets.empty()) {
        out = "<repo_name>" + repo_name;
        for (const auto& s : c.snippets) out += "<file_sep>" + s.path + "\n" + s.text;
        out += "<file_sep>";
      }
      std::string header = c.path.empty() ? "" : c.path + "\n";
      return out + "<fim_prefix>" + header + c.prefix + "<fim_suffix>" + c.suffix + "<fim_middle>";
    }
    case FimFamily::CodeLlama:
      return "<PRE> " + commented_snippets(c) + c.prefix + " <SUF>" + c.suffix + " <MID>";
  }
  return c.prefix;
}

static Expected<nlohmann::json> read_json(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error(ErrorCode::NotFound, "cannot open " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return make_error(ErrorCode::InvalidArgument, p.string() + " is not valid JSON");
  return j;
}

Expected<FimTemplate> detect_fim_template(const std::string& model_dir) {
  namespace fs = std::filesystem;
  fs::path dir(model_dir);
  std::set<std::string> tokens;
  bool any = false;
  nlohmann::json config;
  if (auto j = read_json(dir / "tokenizer.json"); j) {
    any = true;
    if (j->contains("added_tokens") && (*j)["added_tokens"].is_array())
      for (const auto& t : (*j)["added_tokens"])
        if (t.is_object() && t.contains("content") && t["content"].is_string()) tokens.insert(t["content"].get<std::string>());
  } else if (j.error().code != ErrorCode::NotFound) {
    return j.error();
  }
  if (auto j = read_json(dir / "tokenizer_config.json"); j) {
    any = true;
    config = *j;
    if (config.contains("added_tokens_decoder") && config["added_tokens_decoder"].is_object())
      for (const auto& [id, t] : config["added_tokens_decoder"].items())
        if (t.is_object() && t.contains("content") && t["content"].is_string()) tokens.insert(t["content"].get<std::string>());
  } else if (j.error().code != ErrorCode::NotFound) {
    return j.error();
  }
  if (!any)
    return make_error(ErrorCode::NotFound, "no tokenizer.json or tokenizer_config.json in " + model_dir);

  FimTemplate t;
  if (tokens.count(kDsBegin) && tokens.count(kDsHole) && tokens.count(kDsEnd)) t = fim_template_for(FimFamily::DeepSeekCoder);
  else if (tokens.count("<|fim_prefix|>") && tokens.count("<|fim_middle|>")) t = fim_template_for(FimFamily::QwenCoder);
  else if (tokens.count("<fim_prefix>") && tokens.count("<fim_middle>")) t = fim_template_for(FimFamily::StarCoder2);
  else if (tokens.count("<PRE>") || tokens.count("\xE2\x96\x81<PRE>")) t = fim_template_for(FimFamily::CodeLlama);
  else return make_error(ErrorCode::Unsupported, "no fill-in-the-middle tokens known to ghostline in the tokenizer of " + model_dir);

  if (config.is_object() && config.contains("fim_orders") && config["fim_orders"].is_array()) {
    std::vector<FimOrder> orders{FimOrder::PSM};
    for (const auto& o : config["fim_orders"]) {
      if (!o.is_string()) continue;
      if (o == "spm" && std::find(orders.begin(), orders.end(), FimOrder::SPM) == orders.end()) orders.push_back(FimOrder::SPM);
    }
    t.orders = orders;
  }
  // Keep only stop tokens the tokenizer knows (plus the family defaults when it lists none).
  std::vector<std::string> stops;
  for (const auto& s : t.stop_tokens)
    if (tokens.count(s)) stops.push_back(s);
  if (!stops.empty()) t.stop_tokens = stops;
  return t;
}

}  // namespace ghostline::completion
