// Bad input gives one clear error naming the thing that is wrong, never a crash: missing or
// misshapen tensors, truncated files, unknown architectures, bad configs, bad steps.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/model.h"
#include "engine/model/safetensors.h"

using namespace ghostline;
using namespace ghostline::engine;
namespace fs = std::filesystem;

namespace {

const std::string kBase = std::string(GHOSTLINE_TEST_FIXTURES) + "/models/dsv2_tiny";

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("ghostline_engine_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void write_file(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

struct RawTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// The fixture's tensors, to be edited and written back.
std::map<std::string, RawTensor> base_tensors() {
  auto store = model::TensorStore::open_file(kBase + "/model.safetensors");
  REQUIRE(store.has_value());
  std::map<std::string, RawTensor> out;
  for (const auto& [name, t] : (*store)->tensors())
    out[name] = {model::dtype_name(t.dtype), t.shape, std::string(reinterpret_cast<const char*>(t.data), t.nbytes)};
  return out;
}

void write_safetensors(const fs::path& p, const std::map<std::string, RawTensor>& tensors) {
  nlohmann::json h = nlohmann::json::object();
  std::string data;
  for (const auto& [name, t] : tensors) {
    h[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  std::string header = h.dump();
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  write_file(p, out + header + data);
}

std::string load_error(const std::string& path) {
  auto m = load_model(path, LoadOptions{});
  if (m) return "";
  return m.error().message;
}

}  // namespace

TEST_CASE("the unmodified fixture loads (the baseline the cases below edit)") {
  TempDir d;
  fs::copy_file(kBase + "/config.json", d.path / "config.json");
  write_safetensors(d.path / "model.safetensors", base_tensors());
  CHECK(load_error(d.path.string()) == "");
}

TEST_CASE("missing tensor: named, with its expected shape") {
  TempDir d;
  fs::copy_file(kBase + "/config.json", d.path / "config.json");
  auto t = base_tensors();
  REQUIRE(t.erase("model.layers.1.self_attn.kv_b_proj.weight") == 1);
  write_safetensors(d.path / "model.safetensors", t);
  auto e = load_error(d.path.string());
  CHECK(e.find("model.layers.1.self_attn.kv_b_proj.weight") != std::string::npos);
  CHECK(e.find("missing") != std::string::npos);
  CHECK(e.find("[128, 32]") != std::string::npos);  // 4 heads * (16 + 16), kv_lora_rank 32
}

TEST_CASE("missing expert: named") {
  TempDir d;
  fs::copy_file(kBase + "/config.json", d.path / "config.json");
  auto t = base_tensors();
  REQUIRE(t.erase("model.layers.2.mlp.experts.7.up_proj.weight") == 1);
  write_safetensors(d.path / "model.safetensors", t);
  CHECK(load_error(d.path.string()).find("model.layers.2.mlp.experts.7.up_proj.weight") != std::string::npos);
}

TEST_CASE("wrong shape: tensor, expected and found shape") {
  TempDir d;
  fs::copy_file(kBase + "/config.json", d.path / "config.json");
  auto t = base_tensors();
  auto& q = t.at("model.layers.0.self_attn.q_proj.weight");
  std::swap(q.shape[0], q.shape[1]);  // same bytes, transposed shape
  write_safetensors(d.path / "model.safetensors", t);
  auto e = load_error(d.path.string());
  CHECK(e.find("model.layers.0.self_attn.q_proj.weight") != std::string::npos);
  CHECK(e.find("expected shape [96, 64]") != std::string::npos);
  CHECK(e.find("found [64, 96]") != std::string::npos);
}

TEST_CASE("truncated file") {
  TempDir d;
  fs::copy_file(kBase + "/config.json", d.path / "config.json");
  std::string bytes = read_file(kBase + "/model.safetensors");
  write_file(d.path / "model.safetensors", bytes.substr(0, bytes.size() / 2));
  auto e = load_error(d.path.string());
  CHECK(e.find("truncated") != std::string::npos);
  CHECK(e.find("model.safetensors") != std::string::npos);
  write_file(d.path / "model.safetensors", bytes.substr(0, 5));
  CHECK(load_error(d.path.string()).find("truncated") != std::string::npos);
}

TEST_CASE("unknown architecture and bad configs") {
  TempDir d;
  auto cfg = nlohmann::json::parse(read_file(kBase + "/config.json"));
  fs::copy_file(kBase + "/model.safetensors", d.path / "model.safetensors");
  auto with = [&](const nlohmann::json& c) {
    write_file(d.path / "config.json", c.dump());
    return load_error(d.path.string());
  };
  auto c = cfg;
  c["model_type"] = "gpt_unknown";
  auto e = with(c);
  CHECK(e.find("unknown architecture 'gpt_unknown'") != std::string::npos);
  c = cfg;
  c.erase("hidden_size");
  CHECK(with(c).find("hidden_size") != std::string::npos);
  c = cfg;
  c["num_attention_heads"] = 3;
  c["num_key_value_heads"] = 2;
  CHECK(with(c).find("num_key_value_heads") != std::string::npos);
  c = cfg;
  c["hidden_size"] = "wide";
  CHECK(with(c).find("hidden_size") != std::string::npos);
  c = cfg;
  c["rope_scaling"] = {{"rope_type", "dynamic_xyz"}, {"factor", 2.0}};
  CHECK(with(c).find("dynamic_xyz") != std::string::npos);
  write_file(d.path / "config.json", "{ not json");
  CHECK(load_error(d.path.string()).find("not valid JSON") != std::string::npos);
  CHECK(load_error((d.path / "nowhere").string()).find("not a model directory") != std::string::npos);
  CHECK(load_error("dummy:/nonexistent/config.json").find("cannot open") != std::string::npos);
}

TEST_CASE("bad steps are refused, not crashed on") {
  auto m = load_model("dummy:" + kBase + "/config.json", LoadOptions{});
  REQUIRE(m.has_value());
  std::vector<float> logits;
  StepBatch b;
  b.tokens = {1, 2, 3};
  SequenceStep s;
  s.n_new = 3;
  s.block_table = {0};
  b.seqs = {s};
  CHECK((*m)->forward(b, logits).error().message.find("allocate_kv") != std::string::npos);
  REQUIRE((*m)->allocate_kv(2, 4).has_value());
  CHECK((*m)->forward(b, logits).error().message.find("block table") != std::string::npos);
  b.seqs[0].block_table = {0, 9};
  CHECK((*m)->forward(b, logits).error().message.find("block id 9") != std::string::npos);
  b.seqs[0].block_table = {0, 1};
  b.tokens = {1, 2, 999};
  CHECK((*m)->forward(b, logits).error().message.find("999") != std::string::npos);
  b.tokens = {1, 2};
  CHECK((*m)->forward(b, logits).error().message.find("add up") != std::string::npos);
  b.tokens = {1, 2, 3};
  CHECK((*m)->forward(b, logits).has_value());
  CHECK(logits.size() == static_cast<size_t>((*m)->info().vocab_size));
  CHECK((*m)->allocate_kv(0, 4).error().code == ErrorCode::InvalidArgument);
}
