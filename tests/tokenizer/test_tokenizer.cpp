// Tokenizer tests: exact ids against Hugging Face `tokenizers` (refs made by
// tools/make_tokenizer_refs.py) over the whole corpus for DeepSeek-V3 and Qwen3, decode round
// trips, streaming decode of characters split across tokens, and clear errors on bad input.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/tokenizer.h"

using ghostline::ErrorCode;
using ghostline::engine::Tokenizer;
namespace fs = std::filesystem;

namespace {
const std::string kFixtures = GHOSTLINE_TOKENIZER_FIXTURES;
const std::string kPackages = GHOSTLINE_TOKENIZER_PACKAGES;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string model_dir(const std::string& name) { return kPackages + "/tokenizer-" + name + "/models"; }

std::shared_ptr<const Tokenizer> load(const std::string& name) {
  static std::map<std::string, std::shared_ptr<const Tokenizer>> cache;
  auto& t = cache[name];
  if (!t) {
    auto r = Tokenizer::from_model_dir(model_dir(name));
    INFO("run tools/setup.sh --no-build (npm ci in tests/tokenizer) first");
    REQUIRE_MESSAGE(r.has_value(), (r ? std::string() : r.error().message));
    t = *r;
  }
  return t;
}

// Compares our ids with the reference ids for every corpus file and edge string.
// What decode(encode(text)) must give: the text (Exact), ids that encode to themselves again
// (Stable: a normalizer changes the text), or nothing checked (a pipeline that drops characters).
enum class RoundTrip { Exact, Stable, Unchecked };

void check_exact(const std::string& name, RoundTrip round_trip,
                 std::shared_ptr<const Tokenizer> tok = nullptr) {
  if (!tok) tok = load(name);
  auto refs = nlohmann::json::parse(read_file(kFixtures + "/refs/" + name + ".json"));
  REQUIRE(refs["ids"].size() >= (name.rfind("variant_", 0) == 0 ? 4u : 9u));
  size_t total = 0;
  for (auto it = refs["ids"].begin(); it != refs["ids"].end(); ++it) {
    std::string text = read_file(kFixtures + "/corpus/" + it.key());
    REQUIRE(!text.empty());
    auto expected = it.value().get<std::vector<int32_t>>();
    auto got = tok->encode(text);
    total += expected.size();
    if (got != expected) {
      size_t k = 0;
      while (k < got.size() && k < expected.size() && got[k] == expected[k]) ++k;
      std::string around;
      for (size_t q = k >= 3 ? k - 3 : 0; q < k + 3 && q < expected.size(); ++q)
        around += "[" + tok->token_bytes(expected[q]) + "]";
      FAIL_CHECK(name << " " << it.key() << ": first difference at token " << k << " of "
                      << expected.size() << "; expected tokens near it: " << around);
    }
    std::string back = tok->decode(got);
    if (round_trip == RoundTrip::Stable && back != text)
      CHECK_MESSAGE(tok->encode(back) == got, it.key() << ": decode is not stable");
    else if (round_trip != RoundTrip::Unchecked)
      CHECK_MESSAGE(back == text, it.key() << ": decode(encode(text)) != text");
  }
  CHECK(total > 10000);
  for (const auto& e : refs["edge"]) {
    std::string text = e[0].get<std::string>();
    CHECK_MESSAGE(tok->encode(text) == e[1].get<std::vector<int32_t>>(), name << " edge string: " << text);
  }
}
}  // namespace

namespace {
std::string write_temp(const std::string& name, const std::string& content) {
  auto dir = fs::temp_directory_path() / "ghostline_tokenizer_test";
  fs::create_directories(dir);
  auto p = (dir / name).string();
  std::ofstream(p, std::ios::binary) << content;
  return p;
}
const char* kTinyModel = R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";
}  // namespace

TEST_CASE("DeepSeek-V3 ids match Hugging Face tokenizers over the corpus") { check_exact("deepseek_v3", RoundTrip::Exact); }
TEST_CASE("Qwen3 ids match Hugging Face tokenizers over the corpus") { check_exact("qwen3", RoundTrip::Stable); }

// Any further reference file (e.g. ghostline_coder_tiny.json once tools/make_tokenizer_refs.py has
// been run with the default model present) is checked the same way.
TEST_CASE("every other reference file matches too") {
  for (const auto& e : fs::directory_iterator(kFixtures + "/refs")) {
    std::string name = e.path().stem().string();
    if (name == "deepseek_v3" || name == "qwen3" || name.rfind("variant_", 0) == 0) continue;
    auto refs = nlohmann::json::parse(read_file(e.path().string()));
    auto tok = Tokenizer::from_file(std::string(GHOSTLINE_SOURCE_DIR) + "/" + refs["tokenizer"].get<std::string>());
    REQUIRE_MESSAGE(tok.has_value(), (tok ? std::string() : tok.error().message));
    check_exact(name, RoundTrip::Exact, *tok);
  }
}

// The pipeline variants of variants.json: each must load and encode the corpus; where
// tools/make_tokenizer_refs.py has written refs/variant_<name>.json, the ids must match it.
TEST_CASE("pipeline variants (Split behaviours, Digits, ByteLevel regex, normalizers, added-token rules)") {
  auto spec = nlohmann::json::parse(read_file(kFixtures + "/variants.json"));
  const std::string base_path = std::string(GHOSTLINE_SOURCE_DIR) + "/" + spec["base"].get<std::string>();
  if (!fs::exists(base_path)) return;  // our model's tokenizer is not in this checkout
  auto base = nlohmann::json::parse(read_file(base_path));
  std::string prose = read_file(kFixtures + "/corpus/prose_multilingual.txt");
  for (auto it = spec["variants"].begin(); it != spec["variants"].end(); ++it) {
    nlohmann::json doc = base;
    for (auto kv = it.value().begin(); kv != it.value().end(); ++kv) {
      if (kv.key() == "model") {
        doc["model"].update(kv.value());
      } else if (kv.key() == "added_tokens_extra") {
        int64_t next = 0;
        for (auto v = doc["model"]["vocab"].begin(); v != doc["model"]["vocab"].end(); ++v)
          next = std::max(next, v.value().get<int64_t>());
        for (const auto& t : doc["added_tokens"]) next = std::max(next, t["id"].get<int64_t>());
        for (auto t : kv.value()) {
          t["id"] = ++next;
          doc["added_tokens"].push_back(t);
        }
      } else {
        doc[kv.key()] = kv.value();
      }
    }
    auto tok = Tokenizer::from_file(write_temp("variant_" + it.key() + ".json", doc.dump()));
    REQUIRE_MESSAGE(tok.has_value(), it.key() << ": " << (tok ? std::string() : tok.error().message));
    CHECK_MESSAGE(!(*tok)->encode(prose).empty(), it.key());
    std::string refs = kFixtures + "/refs/variant_" + it.key() + ".json";
    if (fs::exists(refs)) check_exact("variant_" + it.key(), RoundTrip::Unchecked, *tok);
  }
}

TEST_CASE("tokenizer_config.json gives BOS/EOS and add_bos") {
  auto ds = load("deepseek_v3");
  REQUIRE(ds->bos_id().has_value());
  CHECK(ds->token_text(*ds->bos_id()) == "<｜begin▁of▁sentence｜>");
  CHECK(ds->token_text(*ds->eos_id()) == "<｜end▁of▁sentence｜>");
  CHECK(ds->add_bos());
  CHECK(ds->is_special(*ds->bos_id()));
  auto qw = load("qwen3");
  CHECK(!qw->bos_id().has_value());
  CHECK(!qw->add_bos());
  CHECK(qw->token_text(*qw->eos_id()) == "<|im_end|>");
  CHECK(qw->vocab_size() > 151000);
}

TEST_CASE("our model's tokenizer loads, round-trips the corpus and takes BOS from its template") {
  const std::string dir = std::string(GHOSTLINE_SOURCE_DIR) + "/models/ghostline-coder-tiny";
  if (!fs::exists(dir + "/tokenizer.json")) return;  // the default model is not in this checkout
  auto r = Tokenizer::from_model_dir(dir);
  REQUIRE_MESSAGE(r.has_value(), (r ? std::string() : r.error().message));
  auto tok = *r;
  REQUIRE(tok->bos_id().has_value());
  CHECK(tok->token_text(*tok->bos_id()) == "<｜begin▁of▁sentence｜>");
  CHECK(tok->add_bos());
  for (const auto& e : fs::directory_iterator(kFixtures + "/corpus")) {
    std::string text = read_file(e.path().string());
    CHECK_MESSAGE(tok->decode(tok->encode(text)) == text, e.path().filename().string());
  }
  auto ids = tok->encode("<｜fim▁begin｜>x = 1<｜fim▁hole｜>\n<｜fim▁end｜>");
  CHECK(ids.front() == *tok->token_id("<｜fim▁begin｜>"));
  CHECK(ids.back() == *tok->token_id("<｜fim▁end｜>"));
}

TEST_CASE("special tokens are single ids and decode to their text") {
  auto ds = load("deepseek_v3");
  auto hole = ds->token_id("<｜fim▁hole｜>");
  REQUIRE(hole.has_value());
  auto ids = ds->encode("a<｜fim▁hole｜>b");
  REQUIRE(ids.size() == 3);
  CHECK(ids[1] == *hole);
  CHECK(ds->decode(ids) == "a<｜fim▁hole｜>b");
  CHECK(!ds->token_id("<｜no▁such▁token｜>").has_value());
}

TEST_CASE("streaming decode holds back characters split across tokens") {
  auto qw = load("qwen3");
  std::string text = "emoji 👩‍👩‍👧‍👦 and 漢字 and é done 🦀";
  auto ids = qw->encode(text);
  Tokenizer::StreamDecoder stream(qw);
  std::string all;
  bool saw_split = false;
  for (int32_t id : ids) {
    std::string piece = stream.push(id);
    // Every piece handed out is valid UTF-8 on its own.
    std::string bytes = qw->token_bytes(id);
    if (!bytes.empty() && (static_cast<unsigned char>(bytes.back()) & 0x80) && piece != bytes) saw_split = true;
    for (size_t i = 0; i < piece.size();) {
      auto b = static_cast<unsigned char>(piece[i]);
      size_t n = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : 4;
      REQUIRE(b != 0xFF);
      REQUIRE((b & 0xC0) != 0x80);
      REQUIRE(i + n <= piece.size());
      i += n;
    }
    all += piece;
  }
  all += stream.flush();
  CHECK(all == text);
  CHECK(saw_split);  // the text above does split characters across tokens in Qwen3's vocabulary
}

TEST_CASE("concurrent encodes from several threads give the reference ids") {
  auto qw = load("qwen3");
  auto refs = nlohmann::json::parse(read_file(kFixtures + "/refs/qwen3.json"));
  const char* files[] = {"code_go.go", "code_js.js", "prose_multilingual.txt", "code_go.go"};
  std::vector<std::vector<int32_t>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] { got[t] = qw->encode(read_file(kFixtures + "/corpus/" + files[t])); });
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < got.size(); ++t)
    CHECK_MESSAGE(got[t] == refs["ids"][files[t]].get<std::vector<int32_t>>(), files[t]);
}

TEST_CASE("invalid UTF-8 input is replaced, not crashed on") {
  auto ds = load("deepseek_v3");
  auto ids = ds->encode(std::string("ab\xFF\xC3", 4));
  CHECK(ds->decode(ids) == "ab\xEF\xBF\xBD\xEF\xBF\xBD");
}


TEST_CASE("bad input gives clear errors") {
  auto missing = Tokenizer::from_file("/nonexistent/tokenizer.json");
  REQUIRE(!missing);
  CHECK(missing.error().code == ErrorCode::NotFound);
  CHECK(missing.error().message.find("/nonexistent/tokenizer.json") != std::string::npos);

  auto malformed = Tokenizer::from_file(write_temp("malformed.json", "{\"model\": {"));
  REQUIRE(!malformed);
  CHECK(malformed.error().code == ErrorCode::InvalidArgument);
  CHECK(malformed.error().message.find("not valid JSON") != std::string::npos);

  auto unigram = Tokenizer::from_file(write_temp("unigram.json", R"({"model": {"type": "Unigram", "vocab": []}})"));
  REQUIRE(!unigram);
  CHECK(unigram.error().code == ErrorCode::Unsupported);
  CHECK(unigram.error().message.find("Unigram") != std::string::npos);

  auto pre = Tokenizer::from_file(write_temp("pre.json", std::string(R"({"pre_tokenizer": {"type": "Whitespace"}, )") + kTinyModel + "}"));
  REQUIRE(!pre);
  CHECK(pre.error().code == ErrorCode::Unsupported);
  CHECK(pre.error().message.find("Whitespace") != std::string::npos);

  auto regex = Tokenizer::from_file(write_temp("regex.json", std::string(R"({"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(["}, "behavior": "Isolated"}, )") + kTinyModel + "}"));
  REQUIRE(!regex);
  CHECK(regex.error().message.find("bad regex") != std::string::npos);

  auto merge = Tokenizer::from_file(write_temp("merge.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a c"]}})"));
  REQUIRE(!merge);
  CHECK(merge.error().message.find("merge 0") != std::string::npos);

  auto good = Tokenizer::from_file(write_temp("good.json", std::string("{") + kTinyModel + "}"));
  REQUIRE_MESSAGE(good.has_value(), (good ? "" : good.error().message));
  CHECK((*good)->encode("abab") == std::vector<int32_t>{2, 2});
  CHECK((*good)->encode("aab") == std::vector<int32_t>{0, 2});

  auto no_dir = Tokenizer::from_model_dir("/nonexistent-model-dir");
  REQUIRE(!no_dir);
  CHECK(no_dir.error().code == ErrorCode::NotFound);
}
