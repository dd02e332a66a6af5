// Owned device and pinned-host allocations, and CUDA_TRY for host code that returns Expected.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <utility>

#include "engine/base/expected.h"

namespace ghostline::engine::cuda {

inline Error cuda_error(cudaError_t e, const char* what, const char* file, int line) {
  const char* base = file;
  for (const char* p = file; *p; ++p)
    if (*p == '/') base = p + 1;
  return Error(e == cudaErrorMemoryAllocation ? ErrorCode::ResourceExhausted : ErrorCode::Internal,
               std::string(base) + ":" + std::to_string(line) + ": " + what + ": " + cudaGetErrorString(e));
}

// Returns an Error naming the call, file and line when a CUDA runtime call fails.
#define CUDA_TRY(call)                                                              \
  do {                                                                              \
    cudaError_t e_ = (call);                                                        \
    if (e_ != cudaSuccess) return ::ghostline::engine::cuda::cuda_error(e_, #call, __FILE__, __LINE__); \
  } while (0)

// Device memory of `bytes` bytes (cudaMalloc), freed on destruction. Moves, never copies.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  Expected<void> alloc(int64_t bytes) {
    reset();
    if (bytes <= 0) return ok();
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, static_cast<size_t>(bytes));
    if (e != cudaSuccess) {
      cudaGetLastError();
      return Error(ErrorCode::ResourceExhausted,
                   "out of GPU memory allocating " + std::to_string(bytes >> 20) + " MiB (" + cudaGetErrorString(e) + ")");
    }
    p_ = p;
    bytes_ = bytes;
    return ok();
  }
  // Keeps the contents' address when already large enough (returns false then), else reallocates.
  Expected<bool> ensure(int64_t bytes) {
    if (bytes <= bytes_) return false;
    auto r = alloc(bytes);
    if (!r) return r.error();
    return true;
  }
  void reset() {
    if (p_) cudaFree(p_);
    p_ = nullptr;
    bytes_ = 0;
  }
  template <typename T = void>
  T* get() const { return static_cast<T*>(p_); }
  int64_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  int64_t bytes_ = 0;
};

// Page-locked host memory for asynchronous copies.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { reset(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  Expected<void> ensure(int64_t bytes) {
    if (bytes <= bytes_) return ok();
    reset();
    void* p = nullptr;
    CUDA_TRY(cudaMallocHost(&p, static_cast<size_t>(bytes)));
    p_ = p;
    bytes_ = bytes;
    return ok();
  }
  void reset() {
    if (p_) cudaFreeHost(p_);
    p_ = nullptr;
    bytes_ = 0;
  }
  template <typename T = void>
  T* get() const { return static_cast<T*>(p_); }

 private:
  void* p_ = nullptr;
  int64_t bytes_ = 0;
};

}  // namespace ghostline::engine::cuda
