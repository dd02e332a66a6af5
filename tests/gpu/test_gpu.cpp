// test_gpu: the CUDA backend against the CPU backend (one case per op) and against transformers
// (whole models), printing one line per check and a summary. Exit code 0 when every check
// passes, 1 when one fails, 77 (skipped) when this machine has no usable CUDA device.
//   test_gpu [--seed N] [--ops] [--models] [--source DIR] [--json FILE]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>

#include <cuda_runtime_api.h>
#include <nlohmann/json.hpp>

#include "engine/model.h"
#include "tests/gpu/gpu_check.h"

namespace ghostline::gpu_test {
void run_op_checks(Report& rep, uint64_t seed);
void run_pick_checks(Report& rep, uint64_t seed);
void run_model_checks(Report& rep, const std::string& source_dir, uint64_t seed);
}  // namespace ghostline::gpu_test

int main(int argc, char** argv) {
  using namespace ghostline;
  uint64_t seed = std::random_device{}();
  bool ops = true, models = true;
  std::string source = GHOSTLINE_SOURCE_DIR, json_out;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seed" && i + 1 < argc) seed = std::stoull(argv[++i]);
    else if (a == "--ops") models = false;
    else if (a == "--models") ops = false;
    else if (a == "--source" && i + 1 < argc) source = argv[++i];
    else if (a == "--json" && i + 1 < argc) json_out = argv[++i];
    else {
      std::fprintf(stderr, "usage: test_gpu [--seed N] [--ops] [--models] [--source DIR] [--json FILE]\n");
      return 2;
    }
  }
  if (!engine::cuda_available()) {
    std::printf("test_gpu: no usable CUDA device here: skipped\n");
    return 77;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("test_gpu on %s (sm_%d%d, %d SMs), seed %llu\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
              static_cast<unsigned long long>(seed));
  gpu_test::Report rep;
  const auto t0 = std::chrono::steady_clock::now();
  if (ops) gpu_test::run_op_checks(rep, seed);
  if (ops) gpu_test::run_pick_checks(rep, seed);
  if (models) gpu_test::run_model_checks(rep, source, seed);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\ntest_gpu: %zu checks, %d failed, %.1f s (seed %llu)\n", rep.size(), rep.failures(), sec,
              static_cast<unsigned long long>(seed));
  if (!json_out.empty()) {
    nlohmann::json j;
    j["gpu"] = prop.name;
    j["seed"] = seed;
    j["failed"] = rep.failures();
    for (const auto& r : rep.rows()) j["checks"].push_back({{"name", r.name}, {"err", r.err}, {"tol", r.tol}, {"pass", r.pass}, {"note", r.note}});
    std::ofstream(json_out) << j.dump(1) << "\n";
  }
  return rep.failures() == 0 ? 0 : 1;
}
