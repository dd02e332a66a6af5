// Small helpers of the GPU checks: a results table, device buffers for test data, random inputs,
// relative errors. Only tests/gpu uses them.
#pragma once

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace ghostline::gpu_test {

// One row per check: what was compared, the worst relative error, the tolerance.
class Report {
 public:
  bool check(const std::string& name, double err, double tol, const std::string& note = "") {
    const bool pass = std::isfinite(err) && err <= tol;
    rows_.push_back({name, err, tol, pass, note});
    std::printf("%-58s %-4s err %.3e  tol %.1e  %s\n", name.c_str(), pass ? "ok" : "FAIL", err, tol, note.c_str());
    std::fflush(stdout);
    return pass;
  }
  bool expect(const std::string& name, bool cond, const std::string& note = "") { return check(name, cond ? 0.0 : 1.0, 0.5, note); }
  int failures() const {
    int n = 0;
    for (const auto& r : rows_) n += !r.pass;
    return n;
  }
  size_t size() const { return rows_.size(); }
  struct Row {
    std::string name;
    double err, tol;
    bool pass;
    std::string note;
  };
  const std::vector<Row>& rows() const { return rows_; }

 private:
  std::vector<Row> rows_;
};

// ||a - b|| / ||b|| (NaN anywhere gives NaN).
inline double rel_err(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  if (!std::isfinite(num)) return NAN;
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}
inline double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  return rel_err(a.data(), b.data(), a.size());
}

inline uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float from_bf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t seed) : g(seed) {}
  std::vector<float> normal(size_t n, float scale = 1.0f) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(g);
    return v;
  }
  int uniform_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); }
};

// A device array that remembers its host copy's size; freed on destruction.
template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  Dev() = default;
  explicit Dev(size_t count) { alloc(count); }
  explicit Dev(const std::vector<T>& h) { upload(h); }
  ~Dev() { if (p) cudaFree(p); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  void alloc(size_t count) {
    if (p) cudaFree(p);
    n = count;
    cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(1, n) * sizeof(T));
    // Poison: every element a kernel should write must be written.
    cudaMemset(p, 0xff, std::max<size_t>(1, n) * sizeof(T));
  }
  void upload(const std::vector<T>& h) {
    alloc(h.size());
    cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  std::vector<T> download() const {
    cudaDeviceSynchronize();
    std::vector<T> h(n);
    cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
  }
};

// Rounds to bf16 (returned as the bf16 bits and as the float32 values they hold).
inline void round_bf16(const std::vector<float>& in, std::vector<uint16_t>& bits, std::vector<float>& vals) {
  bits.resize(in.size());
  vals.resize(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    bits[i] = to_bf16(in[i]);
    vals[i] = from_bf16(bits[i]);
  }
}

// The error a kernel recorded, plus any fault found by synchronising ("" when none).
inline std::string device_error() {
  cudaError_t e = cudaDeviceSynchronize();
  std::string k = kernels::take_error();
  if (e != cudaSuccess) k += std::string(k.empty() ? "" : "; ") + cudaGetErrorString(e);
  return k;
}

}  // namespace ghostline::gpu_test
