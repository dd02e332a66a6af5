// `ghostline logits` and `ghostline info`: load a model (a directory or dummy:CONFIG.json) and
// print the last position's float32 logits for given ids, or the model's facts and memory needs.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "engine/model.h"

namespace ghostline::cli {

namespace {

Expected<engine::LoadOptions> load_options(const Args& args) {
  engine::LoadOptions o;
  if (auto d = engine::parse_device(args.get_or("device", "auto"), o); !d) return d.error();
  auto threads = args.get_int("threads", 0);
  if (!threads) return threads.error();
  o.threads = *threads;
  return o;
}

// MemAvailable from /proc/meminfo, or 0.
int64_t host_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  int64_t kb = 0;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

Expected<std::vector<int32_t>> parse_ids(const std::string& text, int vocab) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string item = text.substr(i, j - i);
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 0 || v >= vocab)
      return make_error(ErrorCode::InvalidArgument, "--ids: '" + item + "' is not a token id in [0, " + std::to_string(vocab) + ")");
    ids.push_back(static_cast<int32_t>(v));
    i = j + 1;
  }
  return ids;
}

}  // namespace

int cmd_logits(const Argv& argv) {
  auto args = Args::parse(argv, {"model", "ids", "device", "threads"}, {});
  if (!args) return fail("logits", args.error());
  auto ids_text = args->get("ids");
  if (!ids_text || ids_text->empty())
    return fail("logits", make_error(ErrorCode::InvalidArgument, "--ids 1,2,3 is required"));
  auto opts = load_options(*args);
  if (!opts) return fail("logits", opts.error());
  auto model = engine::load_model(args->get_or("model", default_model_dir()), *opts);
  if (!model) return fail("logits", model.error());
  auto ids = parse_ids(*ids_text, (*model)->info().vocab_size);
  if (!ids) return fail("logits", ids.error());
  const int block = 16, n_blocks = static_cast<int>((ids->size() + block - 1) / block);
  if (auto r = (*model)->allocate_kv(block, n_blocks); !r) return fail("logits", r.error());
  engine::StepBatch batch;
  batch.tokens = *ids;
  engine::SequenceStep s;
  s.n_new = static_cast<int>(ids->size());
  for (int b = 0; b < n_blocks; ++b) s.block_table.push_back(b);
  batch.seqs.push_back(s);
  std::vector<float> logits;
  if (auto r = (*model)->forward(batch, logits); !r) return fail("logits", r.error());
  nlohmann::json out;
  out["logits"] = logits;
  std::cout << out.dump() << "\n";
  return 0;
}

int cmd_info(const Argv& argv) {
  auto args = Args::parse(argv, {"model", "device", "threads"}, {"json"});
  if (!args) return fail("info", args.error());
  auto opts = load_options(*args);
  if (!opts) return fail("info", opts.error());
  auto model = engine::load_model(args->get_or("model", default_model_dir()), *opts);
  if (!model) return fail("info", model.error());
  const auto& i = (*model)->info();
  nlohmann::json j;
  j["architecture"] = i.architecture;
  j["vocab_size"] = i.vocab_size;
  j["layers"] = i.n_layers;
  j["max_context"] = i.max_context;
  j["params_total"] = i.params_total;
  j["params_active_per_token"] = i.params_active;
  j["weight_dtype"] = i.weight_dtype;
  j["weight_bytes"] = i.weight_bytes;
  j["kv_bytes_per_token"] = i.kv_bytes_per_token;
  j["kv_bytes_full_context"] = i.kv_bytes_per_token * static_cast<int64_t>(i.max_context);
  j["device"] = i.device == engine::Device::Cuda ? "cuda" : "cpu";
  // Tokens of KV cache that fit in the memory left for it (the GPU's, or the host's on the CPU).
  const int64_t kv_memory = i.kv_memory_bytes > 0 ? i.kv_memory_bytes : host_available_bytes();
  const int64_t kv_tokens = i.kv_bytes_per_token > 0 ? kv_memory / i.kv_bytes_per_token : 0;
  j["kv_memory_bytes"] = kv_memory;
  j["kv_capacity_tokens"] = kv_tokens;
  if (args->has("json")) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  auto mib = [](int64_t b) { return std::to_string(b / (1 << 20)) + " MiB"; };
  std::printf("architecture        %s\n", i.architecture.c_str());
  std::printf("layers              %d\n", i.n_layers);
  std::printf("vocabulary          %d\n", i.vocab_size);
  std::printf("max context         %d\n", i.max_context);
  std::printf("parameters total    %lld (%.2f M)\n", static_cast<long long>(i.params_total), i.params_total / 1e6);
  std::printf("parameters active   %lld (%.2f M) per token\n", static_cast<long long>(i.params_active), i.params_active / 1e6);
  std::printf("weights             %s, %lld bytes (%s)\n", i.weight_dtype.c_str(), static_cast<long long>(i.weight_bytes), mib(i.weight_bytes).c_str());
  std::printf("KV cache            %lld bytes per token (float32), %s at the full context\n",
              static_cast<long long>(i.kv_bytes_per_token), mib(i.kv_bytes_per_token * static_cast<int64_t>(i.max_context)).c_str());
  std::printf("device              %s\n", i.device == engine::Device::Cuda ? "cuda" : "cpu");
  std::printf("KV capacity         %lld tokens in %s of free %s memory\n", static_cast<long long>(kv_tokens), mib(kv_memory).c_str(),
              i.device == engine::Device::Cuda ? "GPU" : "host");
  return 0;
}

}  // namespace ghostline::cli
