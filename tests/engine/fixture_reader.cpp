// Fixture loading for the engine tests.
#include "fixture_reader.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "engine/model/safetensors.h"

namespace ghostline::test {

std::vector<std::string> fixture_dirs() {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(std::string(GHOSTLINE_TEST_FIXTURES) + "/models", ec))
    if (std::filesystem::exists(e.path() / "reference.json")) dirs.push_back(e.path().string());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

Fixture load_fixture(const std::string& dir) {
  Fixture f;
  f.dir = dir;
  f.name = std::filesystem::path(dir).filename().string();
  std::ifstream in(dir + "/reference.json");
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str());
  for (const auto& p : j.at("prompts")) f.prompts.push_back(p.get<std::vector<int32_t>>());
  for (const auto& g : j.at("greedy")) f.greedy.push_back({g.at("prompt").get<int>(), g.at("tokens").get<std::vector<int32_t>>()});
  auto store = engine::model::TensorStore::open_file(dir + "/reference.safetensors");
  REQUIRE_MESSAGE(store.has_value(), (store ? std::string() : store.error().message));
  for (size_t i = 0; i < f.prompts.size(); ++i) {
    const auto* t = (*store)->find("logits." + std::to_string(i));
    REQUIRE(t != nullptr);
    REQUIRE(t->dtype == engine::model::DType::F32);
    REQUIRE(t->shape.size() == 2);
    REQUIRE(t->shape[0] == static_cast<int64_t>(f.prompts[i].size()));
    std::vector<float> v(t->numel());
    std::memcpy(v.data(), t->data, t->nbytes);
    f.logits.push_back(std::move(v));
  }
  return f;
}

double relative_error(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

}  // namespace ghostline::test
