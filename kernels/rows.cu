// Row-wise kernels: embedding lookup, RMSNorm fused with the residual add (and the MoE sum),
// gathers, dtype conversion, bias, SiLU·mul, and random fills; plus what every kernel file
// shares: the recorded launch error, the launch settings and the per-kernel timing.
#include <cxxabi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "kernels/common.cuh"

namespace ghostline::kernels {

// ---- errors and settings ---------------------------------------------------------------------

namespace {
thread_local std::string g_error;
int g_pdl = -1;  // -1: not decided yet
}  // namespace

void check_launch(cudaError_t e, const char* file, int line) {
  if (e == cudaSuccess || !g_error.empty()) return;
  const char* base = std::strrchr(file, '/');
  g_error = std::string(base ? base + 1 : file) + ":" + std::to_string(line) + ": " + cudaGetErrorString(e);
}

std::string take_error() {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) check_launch(e, "cuda", 0);
  std::string out;
  out.swap(g_error);
  return out;
}

void set_pdl(bool on) { g_pdl = on ? 1 : 0; }

bool pdl() {
  if (g_pdl < 0) {
    int dev = 0, major = 0;
    const bool want = env_on("GHOSTLINE_PDL");
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess)
      major = 0;
    g_pdl = want && major >= 9 ? 1 : 0;
  }
  return g_pdl == 1;
}

namespace {
struct TimedLaunch {
  cudaEvent_t start, stop;
  const void* fn;
  const char* label;
};
bool g_timing = false;
std::vector<TimedLaunch> g_timed;

// "void ghostline::kernels::(anonymous namespace)::skinny_kernel<__nv_bfloat16, 4, 1, true, 0>(...)"
// -> "skinny_kernel<__nv_bfloat16, 4, 1, true, 0>"
std::string kernel_name(const void* fn) {
  const char* mangled = nullptr;
  if (cudaFuncGetName(&mangled, fn) != cudaSuccess || !mangled) {
    cudaGetLastError();
    return "kernel";
  }
  int st = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &st);
  std::string name = st == 0 && d ? d : mangled;
  std::free(d);
  // Cut the argument list: the first '(' outside template brackets that is not "(anonymous".
  int depth = 0;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '<') ++depth;
    else if (name[i] == '>') --depth;
    else if (name[i] == '(' && depth == 0 && name.compare(i, 10, "(anonymous") != 0) {
      name.resize(i);
      break;
    }
  }
  if (name.rfind("void ", 0) == 0) name = name.substr(5);
  const size_t lt = name.find('<');
  const size_t colon = name.rfind("::", lt == std::string::npos ? std::string::npos : lt);
  if (colon != std::string::npos) name = name.substr(colon + 2);
  return name;
}
}  // namespace

void set_kernel_timing(bool on) { g_timing = on; }
bool kernel_timing() { return g_timing; }

cudaEvent_t timing_start(cudaStream_t s) {
  if (!g_timing) return nullptr;
  cudaEvent_t e = nullptr;
  if (cudaEventCreate(&e) != cudaSuccess) return nullptr;
  cudaEventRecord(e, s);
  return e;
}

void timing_stop(cudaEvent_t start, const void* fn, const char* label, cudaStream_t s) {
  cudaEvent_t e = nullptr;
  if (cudaEventCreate(&e) != cudaSuccess) return;
  cudaEventRecord(e, s);
  g_timed.push_back({start, e, fn, label});
}

std::vector<KernelTime> kernel_times() {
  cudaDeviceSynchronize();
  std::map<std::string, KernelTime> by_name;
  std::map<const void*, std::string> names;
  for (const auto& t : g_timed) {
    float ms = 0;
    cudaEventElapsedTime(&ms, t.start, t.stop);
    std::string name = t.label ? t.label : "";
    if (!t.label) {
      auto it = names.find(t.fn);
      if (it == names.end()) it = names.emplace(t.fn, kernel_name(t.fn)).first;
      name = it->second;
    }
    auto& k = by_name[name];
    k.name = name;
    k.ms += ms;
    ++k.calls;
    cudaEventDestroy(t.start);
    cudaEventDestroy(t.stop);
  }
  g_timed.clear();
  std::vector<KernelTime> out;
  for (auto& [n, k] : by_name) out.push_back(k);
  std::sort(out.begin(), out.end(), [](const KernelTime& a, const KernelTime& b) { return a.ms > b.ms; });
  return out;
}

int sm_count() {
  static int n = [] {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || v <= 0)
      v = 108;
    return v;
  }();
  return n;
}

// ---- kernels ---------------------------------------------------------------------------------

namespace {

template <typename WT>
__global__ void embed_kernel(const WT* table, int D, const int32_t* ids, float* out) {
  grid_wait();
  const int t = blockIdx.x;
  const WT* row = table + static_cast<int64_t>(ids[t]) * D;
  float* o = out + static_cast<int64_t>(t) * D;
  for (int i = threadIdx.x; i < D; i += blockDim.x) o[i] = to_float(row[i]);
}

// One block per row; each thread keeps its (at most kMaxPerThread) elements in registers so
// that every load of the row is issued before any store (no load waits behind a store it
// might alias). 512 threads with few elements each keep the code small (a one-block kernel
// spends much of its time fetching code). Sums in float32; y = w * (x * inv) as the reference.
template <int kMaxPerThread, typename PT>
__global__ void residual_rmsnorm_kernel(float* __restrict__ x, const float* __restrict__ delta, MoeSum moe, const float* __restrict__ w,
                                        float eps, float* __restrict__ h, int D, bf16* __restrict__ hb) {
  // The norm's weights are the model's: requested before the launch wait, not after the sum.
  float wv[kMaxPerThread];
#pragma unroll
  for (int i = 0; i < kMaxPerThread; ++i) {
    const int idx = threadIdx.x + i * blockDim.x;
    wv[i] = h && idx < D ? w[idx] : 0.0f;
  }
  grid_wait();
  __shared__ float scratch[32];
  __shared__ int s_slot[32];
  __shared__ float s_w[32];
  const int t = blockIdx.x;
  const int KP = moe.pair_out ? moe.pairs_per_token : 0;
  for (int k = threadIdx.x; k < KP; k += blockDim.x) {
    s_slot[k] = moe.pair_slot[t * KP + k];
    s_w[k] = moe.pair_weight[t * KP + k];
  }
  float* xr = x + static_cast<int64_t>(t) * D;
  float v[kMaxPerThread], m[kMaxPerThread];
#pragma unroll
  for (int i = 0; i < kMaxPerThread; ++i) {
    const int idx = threadIdx.x + i * blockDim.x;
    v[i] = 0.0f, m[i] = 0.0f;
    if (idx < D) v[i] = xr[idx] + (delta ? delta[static_cast<int64_t>(t) * D + idx] : 0.0f);
  }
  __syncthreads();
  // No branch on the slot: a pair without one reads row 0 with weight 0 (callers keep every row
  // of pair_out finite), so the loads of all pairs can be in flight together.
#pragma unroll 2
  for (int k = 0; k < KP; ++k) {
    const int slot = s_slot[k];
    const float wk = slot >= 0 ? s_w[k] : 0.0f;
    const PT* po = reinterpret_cast<const PT*>(moe.pair_out) + static_cast<int64_t>(max(slot, 0)) * D;
#pragma unroll
    for (int i = 0; i < kMaxPerThread; ++i) {
      const int idx = min(static_cast<int>(threadIdx.x + i * blockDim.x), D - 1);
      m[i] = fmaf(wk, to_float(po[idx]), m[i]);
    }
  }
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < kMaxPerThread; ++i) {
    const int idx = threadIdx.x + i * blockDim.x;
    v[i] += m[i];
    if (idx < D) {
      xr[idx] = v[i];
      ss += v[i] * v[i];
    }
  }
  if (!h) return;
  ss = block_sum(ss, scratch);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
  float* hr = h + static_cast<int64_t>(t) * D;
#pragma unroll
  for (int i = 0; i < kMaxPerThread; ++i) {
    const int idx = threadIdx.x + i * blockDim.x;
    if (idx < D) {
      const float y = wv[i] * (v[i] * inv);
      hr[idx] = y;
      if (hb) hb[static_cast<int64_t>(t) * D + idx] = __float2bfloat16_rn(y);
    }
  }
}

__global__ void rmsnorm_kernel(const float* x, int64_t ldx, const float* w, int n, float eps, float* y, int64_t ldy) {
  grid_wait();
  __shared__ float scratch[32];
  const float* xr = x + blockIdx.x * ldx;
  float* yr = y + blockIdx.x * ldy;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_sum(ss, scratch);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(n) + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = w[i] * (xr[i] * inv);
}

__global__ void gather_kernel(const float* src, int64_t ld_src, const int32_t* idx, int n, float* dst, int64_t ld_dst) {
  grid_wait();
  const float* s = src + static_cast<int64_t>(idx[blockIdx.x]) * ld_src;
  float* d = dst + blockIdx.x * ld_dst;
  for (int i = threadIdx.x; i < n; i += blockDim.x) d[i] = s[i];
}

template <typename T>
__global__ void convert_kernel(const float* src, int64_t ld_src, int n, T* dst, int64_t ld_dst) {
  grid_wait();
  const float* s = src + blockIdx.x * ld_src;
  T* d = dst + blockIdx.x * ld_dst;
  for (int i = threadIdx.x; i < n; i += blockDim.x) d[i] = from_float<T>(s[i]);
}

__global__ void add_bias_kernel(float* y, int64_t ld, int n, const float* bias) {
  grid_wait();
  float* r = y + blockIdx.x * ld;
  for (int i = threadIdx.x; i < n; i += blockDim.x) r[i] += bias[i];
}

// Four hidden units per thread, grid-stride over every row (prefill: tens of thousands of rows).
__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float4 load4(const bf16* p) {
  const uint2 v = *reinterpret_cast<const uint2*>(p);
  const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&v.x));
  const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&v.y));
  return make_float4(a.x, a.y, b.x, b.y);
}

template <typename GT, typename T>
__global__ void silu_mul_kernel(const GT* __restrict__ gu, int64_t rows, int I, T* __restrict__ act, int64_t ld_act) {
  grid_wait();
  const int j = (blockIdx.x * blockDim.x + threadIdx.x) * 4;  // four hidden units per thread, rows along y
  if (j >= I) return;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const float4 g = load4(gu + r * 2 * I + j);
    const float4 u = load4(gu + r * 2 * I + I + j);
    T* o = act + r * ld_act + j;
    o[0] = from_float<T>(g.x / (1.0f + expf(-g.x)) * u.x);
    o[1] = from_float<T>(g.y / (1.0f + expf(-g.y)) * u.y);
    o[2] = from_float<T>(g.z / (1.0f + expf(-g.z)) * u.z);
    o[3] = from_float<T>(g.w / (1.0f + expf(-g.w)) * u.w);
  }
}

template <typename GT, typename T>
__global__ void silu_mul_scalar_kernel(const GT* gu, int I, T* act, int64_t ld_act) {
  grid_wait();
  const GT* g = gu + blockIdx.x * static_cast<int64_t>(2 * I);
  T* a = act + blockIdx.x * ld_act;
  for (int j = threadIdx.x; j < I; j += blockDim.x) {
    const float x = to_float(g[j]);
    a[j] = from_float<T>(x / (1.0f + expf(-x)) * to_float(g[I + j]));
  }
}

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

template <typename T>
__global__ void fill_uniform_kernel(T* dst, int64_t n, float scale, uint64_t seed) {
  grid_wait();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t r = mix64(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(i));
    const float u = static_cast<float>(r >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;  // [-1, 1)
    dst[i] = from_float<T>(u * scale);
  }
}

__global__ void fill_value_kernel(float* dst, int64_t n, float v) {
  grid_wait();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = v;
}

int row_threads(int n) { return n >= 1024 ? 256 : n >= 256 ? 128 : 64; }

int fill_blocks(int64_t n) {
  const int64_t b = (n + 255) / 256;
  return static_cast<int>(std::min<int64_t>(b, static_cast<int64_t>(sm_count()) * 32));
}

}  // namespace

void embed_rows(const void* table, DType dt, int D, const int32_t* ids, int T, float* out, cudaStream_t s) {
  if (dt == DType::BF16) launch(embed_kernel<bf16>, dim3(T), dim3(row_threads(D)), 0, s, static_cast<const bf16*>(table), D, ids, out);
  else launch(embed_kernel<float>, dim3(T), dim3(row_threads(D)), 0, s, static_cast<const float*>(table), D, ids, out);
}

void residual_rmsnorm(float* x, const float* delta, const MoeSum& moe, const float* w, float eps, float* h, int T, int D,
                      cudaStream_t s, void* h_bf16) {
  auto* hb = h ? static_cast<bf16*>(h_bf16) : nullptr;
  if (D > 512 * 16 || moe.pairs_per_token > 32) {
    check_launch(cudaErrorInvalidValue, __FILE__, __LINE__);
    return;
  }
  if (moe.pair_out && moe.pair_bf16) {
    if (D <= 512 * 4) launch(residual_rmsnorm_kernel<4, bf16>, dim3(T), dim3(512), 0, s, x, delta, moe, w, eps, h, D, hb);
    else if (D <= 512 * 8) launch(residual_rmsnorm_kernel<8, bf16>, dim3(T), dim3(512), 0, s, x, delta, moe, w, eps, h, D, hb);
    else launch(residual_rmsnorm_kernel<16, bf16>, dim3(T), dim3(512), 0, s, x, delta, moe, w, eps, h, D, hb);
    return;
  }
  if (D <= 512 * 4) launch(residual_rmsnorm_kernel<4, float>, dim3(T), dim3(512), 0, s, x, delta, moe, w, eps, h, D, hb);
  else if (D <= 512 * 8) launch(residual_rmsnorm_kernel<8, float>, dim3(T), dim3(512), 0, s, x, delta, moe, w, eps, h, D, hb);
  else launch(residual_rmsnorm_kernel<16, float>, dim3(T), dim3(512), 0, s, x, delta, moe, w, eps, h, D, hb);
}

void rmsnorm_rows(const float* x, int64_t ldx, const float* w, int n, float eps, float* y, int64_t ldy, int rows, cudaStream_t s) {
  launch(rmsnorm_kernel, dim3(rows), dim3(row_threads(n)), 0, s, x, ldx, w, n, eps, y, ldy);
}

void gather_rows(const float* src, int64_t ld_src, const int32_t* idx, int rows, int n, float* dst, int64_t ld_dst, cudaStream_t s) {
  launch(gather_kernel, dim3(rows), dim3(row_threads(n)), 0, s, src, ld_src, idx, n, dst, ld_dst);
}

void convert_rows(const float* src, int64_t ld_src, int rows, int n, void* dst, DType dt, int64_t ld_dst, cudaStream_t s) {
  if (dt == DType::BF16)
    launch(convert_kernel<bf16>, dim3(rows), dim3(row_threads(n)), 0, s, src, ld_src, n, static_cast<bf16*>(dst), ld_dst);
  else
    launch(convert_kernel<float>, dim3(rows), dim3(row_threads(n)), 0, s, src, ld_src, n, static_cast<float*>(dst), ld_dst);
}

void add_bias(float* y, int64_t ld, int rows, int n, const float* bias, cudaStream_t s) {
  launch(add_bias_kernel, dim3(rows), dim3(row_threads(n)), 0, s, y, ld, n, bias);
}

namespace {
template <typename GT>
void silu_mul_any(const GT* gu, int rows, int I, void* act, DType dt, int64_t ld_act, cudaStream_t s) {
  if (rows <= 0) return;
  if (I % 4 == 0 && (reinterpret_cast<uintptr_t>(gu) & (4 * sizeof(GT) - 1)) == 0) {
    const dim3 grid((I / 4 + 255) / 256, static_cast<unsigned>(std::min(rows, 4 * sm_count())));  // blocks loop over rows
    if (dt == DType::BF16)
      launch(silu_mul_kernel<GT, bf16>, grid, dim3(256), 0, s, gu, static_cast<int64_t>(rows), I, static_cast<bf16*>(act), ld_act);
    else launch(silu_mul_kernel<GT, float>, grid, dim3(256), 0, s, gu, static_cast<int64_t>(rows), I, static_cast<float*>(act), ld_act);
    return;
  }
  if (dt == DType::BF16)
    launch(silu_mul_scalar_kernel<GT, bf16>, dim3(rows), dim3(row_threads(I)), 0, s, gu, I, static_cast<bf16*>(act), ld_act);
  else launch(silu_mul_scalar_kernel<GT, float>, dim3(rows), dim3(row_threads(I)), 0, s, gu, I, static_cast<float*>(act), ld_act);
}
}  // namespace

void silu_mul_rows(const float* gu, int rows, int I, void* act, DType dt, int64_t ld_act, cudaStream_t s) {
  silu_mul_any(gu, rows, I, act, dt, ld_act, s);
}

void silu_mul_rows_bf16(const void* gu_bf16, int rows, int I, void* act, DType dt, int64_t ld_act, cudaStream_t s) {
  silu_mul_any(static_cast<const bf16*>(gu_bf16), rows, I, act, dt, ld_act, s);
}

void fill_uniform(void* dst, DType dt, int64_t n, float scale, uint64_t seed, cudaStream_t s) {
  if (n <= 0) return;
  if (dt == DType::BF16) launch(fill_uniform_kernel<bf16>, dim3(fill_blocks(n)), dim3(256), 0, s, static_cast<bf16*>(dst), n, scale, seed);
  else launch(fill_uniform_kernel<float>, dim3(fill_blocks(n)), dim3(256), 0, s, static_cast<float*>(dst), n, scale, seed);
}

void fill_value(float* dst, int64_t n, float v, cudaStream_t s) {
  if (n <= 0) return;
  launch(fill_value_kernel, dim3(fill_blocks(n)), dim3(256), 0, s, dst, n, v);
}

}  // namespace ghostline::kernels
