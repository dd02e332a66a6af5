// Reads a parity fixture (tests/fixtures/models/<name>/): the prompts, the greedy continuations
// and the reference logits transformers computed (see tools/make_fixtures.py).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ghostline::test {

struct Fixture {
  std::string name, dir;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<float>> logits;  // [prompt][position * V + v]
  struct Greedy {
    int prompt = 0;
    std::vector<int32_t> tokens;
  };
  std::vector<Greedy> greedy;
};

// Every fixture directory with a reference.json, sorted by name.
std::vector<std::string> fixture_dirs();
// Loads one; fails the running test (doctest REQUIRE) on a malformed fixture.
Fixture load_fixture(const std::string& dir);

// ||a - b|| / ||b|| over n floats.
double relative_error(const float* a, const float* b, int64_t n);

}  // namespace ghostline::test
