// `ghostline logits` and `ghostline info` through the real binary: the last position's logits
// equal transformers' reference, the parameter count equals the safetensors' element count, and
// bad input is one line on stderr with a non-zero exit.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <string>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "engine/model/safetensors.h"
#include "fixture_reader.h"

namespace {

struct Run {
  int code = -1;
  std::string out;
};

Run run(const std::string& args) {
  Run r;
  std::string cmd = std::string(GHOSTLINE_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace

TEST_CASE("ghostline logits: the last position equals the reference") {
  for (const auto& dir : ghostline::test::fixture_dirs()) {
    auto f = ghostline::test::load_fixture(dir);
    const auto& prompt = f.prompts[1];
    std::string ids;
    for (size_t i = 0; i < prompt.size(); ++i) {
      if (i) ids.push_back(',');
      ids.append(std::to_string(prompt[i]));
    }
    auto r = run("logits --model " + dir + " --ids " + ids);
    INFO(f.name << ": " << r.out.substr(0, 300));
    REQUIRE(r.code == 0);
    auto j = nlohmann::json::parse(r.out);
    auto logits = j.at("logits").get<std::vector<float>>();
    const size_t V = f.logits[1].size() / prompt.size();
    REQUIRE(logits.size() == V);
    CHECK(ghostline::test::relative_error(logits.data(), f.logits[1].data() + (prompt.size() - 1) * V, V) <= 1e-4);
  }
}

TEST_CASE("ghostline info: parameters counted as the checkpoint holds them") {
  for (const auto& dir : ghostline::test::fixture_dirs()) {
    auto store = ghostline::engine::model::TensorStore::open_dir(dir);
    REQUIRE(store.has_value());
    int64_t numel = 0;
    for (const auto& [name, t] : (*store)->tensors()) numel += t.numel();
    auto r = run("info --json --model " + dir);
    INFO(dir << ": " << r.out);
    REQUIRE(r.code == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j.at("params_total").get<int64_t>() == numel);
    CHECK(j.at("params_active_per_token").get<int64_t>() <= numel);
    CHECK(j.at("kv_bytes_per_token").get<int64_t>() > 0);
  }
}

TEST_CASE("ghostline logits / info: bad input is one line and a non-zero exit") {
  const std::string dir = std::string(GHOSTLINE_TEST_FIXTURES) + "/models/dsv2_tiny";
  for (const std::string& args : std::vector<std::string>{"logits --model /nonexistent --ids 1", "logits --model " + dir + " --ids 1,,2",
                                 "logits --model " + dir + " --ids 99999", "logits --model " + dir,
                                 "info --model dummy:/nonexistent.json", "logits --model " + dir + " --ids 1 --device tpu"}) {
    auto r = run(args);
    INFO(args << " -> " << r.out);
    CHECK(r.code != 0);
    CHECK(r.out.find("ghostline") == 0);
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  }
}
