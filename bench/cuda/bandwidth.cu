// The GPU's memory bandwidth as the decode bound needs it: a read-only pass (16-byte loads
// summed, the way decode streams weights) and a device-to-device copy (bytes read + written).
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "bench/cuda/bandwidth.h"

namespace ghostline::bench {

namespace {

__global__ void read_kernel(const float4* p, int64_t n, float* sink) {
  float s = 0.0f;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float4 v = __ldg(p + i);
    s += v.x + v.y + v.z + v.w;
  }
  if (s == 12345.678f) *sink = s;  // keeps the loads (never true for the data read here)
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

Bandwidth measure_bandwidth(int64_t bytes) {
  Bandwidth b;
  void *a = nullptr, *c = nullptr;
  float* sink = nullptr;
  if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&c, bytes) != cudaSuccess || cudaMalloc(&sink, 4) != cudaSuccess) {
    cudaGetLastError();
    if (a) cudaFree(a);
    if (c) cudaFree(c);
    return b;
  }
  cudaMemset(a, 0x3c, bytes);  // not zeros: every float 0.0115
  int dev = 0, sms = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<double> read_s, copy_s;
  for (int rep = 0; rep < 7; ++rep) {
    cudaEventRecord(e0);
    read_kernel<<<sms * 8, 512>>>(static_cast<const float4*>(a), bytes / 16, sink);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    if (rep > 0) read_s.push_back(ms / 1e3);
    cudaEventRecord(e0);
    cudaMemcpyAsync(c, a, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    cudaEventElapsedTime(&ms, e0, e1);
    if (rep > 0) copy_s.push_back(ms / 1e3);
  }
  b.read_gbs = static_cast<double>(bytes) / median(read_s) / 1e9;
  b.copy_gbs = 2.0 * static_cast<double>(bytes) / median(copy_s) / 1e9;
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(c);
  cudaFree(sink);
  return b;
}

}  // namespace ghostline::bench
