// Tokenizer: loading tokenizer.json (+ tokenizer_config.json), the encode pipeline that ties the
// added-token matcher, normalizer, pre-tokenizer and BPE model together, decoding, streaming.
#include "engine/tokenizer/tokenizer.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/added_tokens.h"
#include "engine/tokenizer/bpe.h"
#include "engine/tokenizer/pipeline.h"
#include "engine/tokenizer/unicode_text.h"

namespace ghostline::engine {

namespace tokenizer_detail {
struct Impl {
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  AddedTokenMatcher raw_tokens;         // normalized == false: matched on the raw text
  AddedTokenMatcher normalized_tokens;  // normalized == true: matched after normalization
  std::unordered_map<std::string, int32_t> added_ids;
  std::vector<std::string> spellings;   // id → vocabulary spelling / added token content
  std::vector<std::string> bytes;       // id → decoded bytes
  std::vector<char> special;
  std::optional<int32_t> bos, eos;
  bool add_bos = false;

  void encode_plain(std::string_view text, std::vector<int32_t>* out) const;
};
}  // namespace tokenizer_detail

using json = nlohmann::json;
using namespace tokenizer_detail;

namespace {

Expected<json> read_json(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return make_error(ErrorCode::NotFound, path + ": no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::Io, path + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(ErrorCode::InvalidArgument, path + ": not valid JSON");
  return j;
}

Error in_file(const std::string& path, const Error& e) { return Error(e.code, path + ": " + e.message); }

// Which decoder steps are present; only byte-level style decoders are supported.
struct DecoderInfo {
  bool byte_level = false;
  bool byte_fallback = false;
};
Expected<void> parse_decoder(const json& j, DecoderInfo* info) {
  if (j.is_null()) return ok();
  std::string t = j.is_object() ? j.value("type", "") : "";
  if (t == "Sequence") {
    if (!j.contains("decoders") || !j["decoders"].is_array())
      return make_error(ErrorCode::InvalidArgument, "decoder Sequence without a \"decoders\" array");
    for (const auto& d : j["decoders"]) {
      auto r = parse_decoder(d, info);
      if (!r) return r;
    }
    return ok();
  }
  if (t == "ByteLevel") { info->byte_level = true; return ok(); }
  if (t == "ByteFallback") { info->byte_fallback = true; return ok(); }
  if (t == "Fuse") return ok();
  return make_error(ErrorCode::Unsupported, "decoder type \"" + t + "\" is not supported");
}

// The bytes one token decodes to.
std::string token_to_bytes(const std::string& spelling, const DecoderInfo& d) {
  if (d.byte_fallback && spelling.size() == 6 && spelling.compare(0, 3, "<0x") == 0 && spelling[5] == '>') {
    unsigned v = 0;
    if (std::sscanf(spelling.c_str() + 3, "%2X", &v) == 1) return std::string(1, static_cast<char>(v));
  }
  if (d.byte_level) {
    std::string out;
    if (byte_level_decode(spelling, &out)) return out;
  }
  return spelling;
}

// A TemplateProcessing post-processor whose single-sequence template starts with a special token
// adds that token in front (Hugging Face's add_special_tokens=True): our BOS default.
std::optional<std::string> template_bos(const json& post) {
  if (!post.is_object()) return std::nullopt;
  std::string t = post.value("type", "");
  if (t == "Sequence" && post.contains("processors") && post["processors"].is_array()) {
    for (const auto& p : post["processors"])
      if (auto b = template_bos(p)) return b;
    return std::nullopt;
  }
  if (t != "TemplateProcessing" || !post.contains("single") || !post["single"].is_array() || post["single"].empty())
    return std::nullopt;
  const json& first = post["single"][0];
  if (first.is_object() && first.contains("SpecialToken") && first["SpecialToken"].is_object() &&
      first["SpecialToken"].contains("id") && first["SpecialToken"]["id"].is_string())
    return first["SpecialToken"]["id"].get<std::string>();
  return std::nullopt;
}

std::optional<std::string> config_token(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return std::nullopt;
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Expected<std::shared_ptr<const Tokenizer>> Tokenizer::from_file(const std::string& path) {
  auto doc = read_json(path);
  if (!doc) return doc.error();
  const json& j = *doc;
  if (!j.is_object()) return make_error(ErrorCode::InvalidArgument, path + ": the top level is not an object");
  if (!j.contains("model") || !j["model"].is_object())
    return make_error(ErrorCode::InvalidArgument, path + ": no \"model\" object");
  std::string model_type = j["model"].value("type", "BPE");
  if (model_type != "BPE")
    return make_error(ErrorCode::Unsupported, path + ": model type \"" + model_type + "\" is not supported (only BPE)");

  auto impl = std::make_unique<Impl>();
  auto norm = Normalizer::parse(j.value("normalizer", json()));
  if (!norm) return in_file(path, norm.error());
  impl->normalizer = std::move(*norm);
  auto pre = PreTokenizer::parse(j.value("pre_tokenizer", json()));
  if (!pre) return in_file(path, pre.error());
  impl->pre_tokenizer = std::move(*pre);
  DecoderInfo dec;
  if (auto r = parse_decoder(j.value("decoder", json()), &dec); !r) return in_file(path, r.error());

  auto model = BpeModel::parse(j["model"], impl->pre_tokenizer.byte_level());
  if (!model) return in_file(path, model.error());
  impl->model = std::move(*model);
  impl->spellings = impl->model->spellings();

  if (j.contains("added_tokens")) {
    if (!j["added_tokens"].is_array()) return make_error(ErrorCode::InvalidArgument, path + ": \"added_tokens\" is not an array");
    // Registered in file order as `tokenizers` does; the "id" field is only checked for shape:
    // the id each token gets comes from the content (see AddedVocabulary).
    AddedVocabulary added;
    for (const auto& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
          !a["content"].is_string())
        return make_error(ErrorCode::InvalidArgument, path + ": an added token lacks an integer \"id\" or a \"content\"");
      AddedToken t;
      t.content = a["content"].get<std::string>();
      t.special = a.value("special", false);
      t.normalized = a.value("normalized", !t.special);
      t.lstrip = a.value("lstrip", false);
      t.rstrip = a.value("rstrip", false);
      t.single_word = a.value("single_word", false);
      added.add(t, impl->model->vocab());
    }
    for (const auto& [id, t] : added.tokens()) {
      if (id > 0x7FFFFFF) return make_error(ErrorCode::InvalidArgument, path + ": added token id out of range");
      if (static_cast<size_t>(id) >= impl->spellings.size()) impl->spellings.resize(id + 1);
      impl->spellings[id] = t.content;
      if (impl->special.size() <= static_cast<size_t>(id)) impl->special.resize(id + 1, 0);
      impl->special[id] = added.is_special(t.content);
    }
    impl->added_ids = added.ids();
    added.build_matchers(impl->normalizer, &impl->raw_tokens, &impl->normalized_tokens);
  }
  impl->special.resize(impl->spellings.size(), 0);
  if (auto bos = template_bos(j.value("post_processor", json()))) {
    if (auto f = impl->added_ids.find(*bos); f != impl->added_ids.end()) {
      impl->bos = f->second;
      impl->add_bos = true;
    }
  }
  impl->bytes.reserve(impl->spellings.size());
  for (const auto& s : impl->spellings) impl->bytes.push_back(token_to_bytes(s, dec));
  return std::shared_ptr<const Tokenizer>(new Tokenizer(std::move(impl)));
}

Expected<std::shared_ptr<const Tokenizer>> Tokenizer::from_model_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  auto tok = from_file((fs::path(dir) / "tokenizer.json").string());
  if (!tok) return tok.error();
  std::string cfg_path = (fs::path(dir) / "tokenizer_config.json").string();
  std::error_code ec;
  if (!fs::exists(cfg_path, ec)) return tok;
  auto cfg = read_json(cfg_path);
  if (!cfg) return cfg.error();
  if (!cfg->is_object()) return make_error(ErrorCode::InvalidArgument, cfg_path + ": the top level is not an object");
  auto* impl = const_cast<Impl*>((*tok)->impl_.get());  // still private to this function
  auto lookup = [&](const char* key) -> Expected<std::optional<int32_t>> {
    auto name = config_token(*cfg, key);
    if (!name) return std::optional<int32_t>();
    auto id = (*tok)->token_id(*name);
    if (!id) return make_error(ErrorCode::InvalidArgument, cfg_path + ": " + key + " \"" + *name + "\" is not a token");
    return std::optional<int32_t>(*id);
  };
  auto bos = lookup("bos_token");
  if (!bos) return bos.error();
  auto eos = lookup("eos_token");
  if (!eos) return eos.error();
  // tokenizer_config.json overrides what the post-processor template implies.
  if (bos->has_value()) impl->bos = *bos;
  if (eos->has_value()) impl->eos = *eos;
  if (cfg->contains("add_bos_token") && (*cfg)["add_bos_token"].is_boolean())
    impl->add_bos = (*cfg)["add_bos_token"].get<bool>();
  impl->add_bos = impl->add_bos && impl->bos.has_value();
  return tok;
}

void Impl::encode_plain(std::string_view text, std::vector<int32_t>* out) const {
  std::string normalized = normalizer.empty() ? std::string(text) : normalizer.apply(std::string(text));
  std::vector<Segment> segs;
  if (normalized_tokens.empty()) segs.push_back({-1, 0, normalized.size()});
  else normalized_tokens.split(normalized, &segs);
  std::vector<std::string> words;
  for (const auto& s : segs) {
    if (s.id >= 0) {
      out->push_back(s.id);
      continue;
    }
    words.clear();
    pre_tokenizer.apply(normalized.substr(s.start, s.end - s.start), &words);
    for (const auto& w : words) model->encode_word(w, out);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::string fixed;
  if (!is_valid_utf8(text)) {
    fixed = replace_invalid_utf8(text);
    text = fixed;
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  std::vector<Segment> segs;
  if (impl_->raw_tokens.empty()) segs.push_back({-1, 0, text.size()});
  else impl_->raw_tokens.split(text, &segs);
  for (const auto& s : segs) {
    if (s.id >= 0) out.push_back(s.id);
    else impl_->encode_plain(text.substr(s.start, s.end - s.start), &out);
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  return out;
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  static const std::string empty;
  if (id < 0 || static_cast<size_t>(id) >= impl_->bytes.size()) return empty;
  return impl_->bytes[id];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  std::string key(token);
  if (auto f = impl_->added_ids.find(key); f != impl_->added_ids.end()) return f->second;
  const auto& v = impl_->model->vocab();
  if (auto f = v.find(key); f != v.end()) return f->second;
  return std::nullopt;
}

const std::string& Tokenizer::token_text(int32_t id) const {
  static const std::string empty;
  if (id < 0 || static_cast<size_t>(id) >= impl_->spellings.size()) return empty;
  return impl_->spellings[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->special.size() && impl_->special[id];
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->spellings.size()); }
std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }

// ---- streaming ------------------------------------------------------------------------------

// How many bytes at the end of `s` form a UTF-8 character that is still incomplete but could
// become valid with more bytes (0 when the end is complete or hopeless).
static size_t incomplete_tail(const std::string& s) {
  size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    auto b = static_cast<unsigned char>(s[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: look further back
    size_t need = utf8_len(b);
    if (need <= 1) return 0;
    return need > back ? back : 0;
  }
  return 0;
}

std::string Tokenizer::StreamDecoder::push(int32_t id) {
  pending_ += tok_->token_bytes(id);
  size_t hold = incomplete_tail(pending_);
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string Tokenizer::StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace ghostline::engine
