// Portable kernels, the run-time choice between them and the AVX2 ones, and the composite ops
// (matmul, rmsnorm, softmax) built on the inner kernels.
#include "engine/cpu/kernels.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/cpu/kernels_isa.h"

namespace ghostline::cpu {

float f16_to_f32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400u)) {
        mant <<= 1;
        --exp;
      }
      u = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

namespace isa {
namespace {

float p_dot_f32(const float* a, const float* b, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
  float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; ++i) r += a[i] * b[i];
  return r;
}
float p_dot_bf16(const float* x, const uint16_t* w, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += x[i + j] * bf16_to_f32(w[i + j]);
  float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; ++i) r += x[i] * bf16_to_f32(w[i]);
  return r;
}
float p_dot_f16(const float* x, const uint16_t* w, int64_t n) {
  float r = 0;
  for (int64_t i = 0; i < n; ++i) r += x[i] * f16_to_f32(w[i]);
  return r;
}
void p_dot4_f32(const float* x, const float* w, int64_t n, float* out) {
  for (int r = 0; r < 4; ++r) out[r] = p_dot_f32(x, w + r * n, n);
}
void p_bf16_to_f32(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(in[i]);
}
void p_f16_to_f32(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(in[i]);
}
void p_axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

const Kernels kPortable = {p_dot_f32, p_dot_bf16, p_dot_f16, p_dot4_f32, p_bf16_to_f32, p_f16_to_f32, p_axpy};

}  // namespace

const Kernels& portable() { return kPortable; }

}  // namespace isa

namespace {

bool g_force_portable = false;

const isa::Kernels& kernels() {
  static const isa::Kernels* best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && isa::avx2()) return isa::avx2();
    return &isa::portable();
  }();
  return g_force_portable ? isa::portable() : *best;
}

}  // namespace

const char* kernel_isa() { return &kernels() == &isa::portable() ? "portable" : "avx2"; }
void force_portable_kernels(bool on) { g_force_portable = on; }

void row_to_f32(const WeightView& w, int64_t r, float* out) {
  const auto& k = kernels();
  switch (w.type) {
    case WType::F32: std::memcpy(out, w.row_ptr(r), w.cols * 4); break;
    case WType::BF16: k.bf16_to_f32(reinterpret_cast<const uint16_t*>(w.row_ptr(r)), out, w.cols); break;
    case WType::F16: k.f16_to_f32(reinterpret_cast<const uint16_t*>(w.row_ptr(r)), out, w.cols); break;
  }
}

float dot_row(const float* x, const WeightView& w, int64_t r) {
  const auto& k = kernels();
  switch (w.type) {
    case WType::F32: return k.dot_f32(x, reinterpret_cast<const float*>(w.row_ptr(r)), w.cols);
    case WType::BF16: return k.dot_bf16(x, reinterpret_cast<const uint16_t*>(w.row_ptr(r)), w.cols);
    case WType::F16: return k.dot_f16(x, reinterpret_cast<const uint16_t*>(w.row_ptr(r)), w.cols);
  }
  return 0;
}

float dot_f32(const float* a, const float* b, int64_t n) { return kernels().dot_f32(a, b, n); }
void axpy(float a, const float* x, float* y, int64_t n) { kernels().axpy(a, x, y, n); }

void matmul(ThreadPool& pool, const float* x, int64_t T, const WeightView& w, const float* bias, float* y) {
  const int64_t N = w.rows, K = w.cols;
  constexpr int64_t kRows = 16;  // rows converted to float32 at once when several tokens share them
  // Small T: stream each weight row once through the native-dtype dot. Larger T: convert a block
  // of rows to float32 once and reuse it for every token.
  const int64_t grain = T <= 2 ? std::max<int64_t>(1, 8192 / std::max<int64_t>(K, 1)) : kRows;
  pool.parallel_for(N, [&](int64_t n0, int64_t n1) {
    const auto& k = kernels();
    if (T <= 2) {
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t t = 0; t < T; ++t) y[t * N + n] = dot_row(x + t * K, w, n) + (bias ? bias[n] : 0.0f);
      return;
    }
    thread_local std::vector<float> buf;
    buf.resize(kRows * K);
    for (int64_t b0 = n0; b0 < n1; b0 += kRows) {
      int64_t nb = std::min(kRows, n1 - b0);
      const float* rows;
      if (w.type == WType::F32) {
        rows = reinterpret_cast<const float*>(w.row_ptr(b0));
      } else {
        for (int64_t r = 0; r < nb; ++r) row_to_f32(w, b0 + r, buf.data() + r * K);
        rows = buf.data();
      }
      for (int64_t t = 0; t < T; ++t) {
        const float* xt = x + t * K;
        float* yt = y + t * N + b0;
        int64_t r = 0;
        for (; r + 4 <= nb; r += 4) k.dot4_f32(xt, rows + r * K, K, yt + r);
        for (; r < nb; ++r) yt[r] = k.dot_f32(xt, rows + r * K, K);
        if (bias)
          for (int64_t j = 0; j < nb; ++j) yt[j] += bias[b0 + j];
      }
    }
  }, grain);
}

void rmsnorm(const float* x, const float* weight, int64_t n, float eps, float* y) {
  // Like the reference: mean of squares in float32, x * rsqrt(mean + eps), then times the weight.
  float ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = weight[i] * (x[i] * inv);
}

void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void softmax(float* x, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = std::max(m, x[i]);
  float s = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    s += x[i];
  }
  float inv = 1.0f / s;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

double measure_read_bandwidth(ThreadPool& pool, int64_t bytes) {
  const int64_t n = bytes / 4;
  std::vector<float> buf(n, 1.0f);
  std::vector<float> sums(pool.size() * 16, 0.0f);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(n, [&](int64_t b, int64_t e) {
      float s = kernels().dot_f32(buf.data() + b, buf.data() + b, e - b);
      sums[(b * pool.size() / n) * 16] += s;
    }, 1 << 16);
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(bytes) / sec / 1e9);
  }
  return best;
}

}  // namespace ghostline::cpu
