// The grouped expert products of prefill.h on Hopper's own instructions (sm_90a): the same call,
// tile list, row layout and epilogues as grouped_gemm.cu, which stays the path everywhere else.
//
// A work item is a 128 x 256 output tile: 128 rows of one tile of the list against 256 weight rows
// of its expert (SiLU: 128 gate rows and the 128 up rows of the same hidden units). One block per
// multiprocessor walks the items (GHOSTLINE_WGMMA_PERSIST=0: one block per item); a tile of at
// most 64 rows is multiplied by one consumer warpgroup (GHOSTLINE_WGMMA_HALF=0: by both). Three
// warpgroups: the first issues the bulk tensor copies (one thread), the other two each multiply
// 64 of the rows with wgmma m64n256k16 (operands in shared memory, 128-byte swizzle as the copy
// engine writes it, float32 accumulators in registers: 128 a thread). Four stages of k-slices of
// 64 (48 KB each) circulate between them on mbarriers: `full` completes when a stage's bytes have
// landed, `empty` when both consumer warpgroups have finished the products that read it. The
// copy engine zero-fills what lies outside the operands (rows past a_rows, k past K, weight rows
// past the expert), so partial tiles need no special case; the epilogue writes only the tile's
// rows and the columns < N, straight from the accumulators as grouped_gemm.cu does.
//
// The body exists only in the sm_90a pass (__CUDA_ARCH_FEAT_SM90_ALL); the build says whether it
// made one (GHOSTLINE_SM90A, kernels/CMakeLists.txt), the host checks the device, and
// GHOSTLINE_WGMMA=0 (read at every call) sends every call to grouped_gemm.cu.
#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels/common.cuh"
#include "kernels/grouped_store.cuh"
#include "kernels/mbarrier.cuh"
#include "kernels/prefill.h"

namespace ghostline::kernels {

namespace {

constexpr int kBM = kGroupedRows;    // rows per tile (two consumer warpgroups of 64)
constexpr int kBN = 256;             // weight rows per block
constexpr int kBK = 64;              // k per stage: one 128-byte swizzle row of bf16
constexpr int kStages = 4;
constexpr int kThreads = 384;        // producer warpgroup + 2 consumer warpgroups
constexpr int kABytes = kBM * kBK * 2, kBBytes = kBN * kBK * 2, kStageBytes = kABytes + kBBytes;
constexpr int kSmem = kStages * kStageBytes + 2 * kStages * 8 + 1024;  // + barriers + alignment slack

// Kernel parameters: the two tensor maps travel by value (__grid_constant__).
struct WgmmaArgs {
  CUtensorMap a_map;  // a: [a_rows, K] bf16, boxes of 64 k x 128 rows
  CUtensorMap w_map;  // weights: [experts, N', K] bf16, boxes of 64 k x (128 or 256) rows x 1
  const int4* tiles;
  const int32_t* n_tiles;
  const float* bias;
  void* out;
  int64_t ldo;
  int N, K;
  int cols;  // weight blocks per tile: work items = tiles x cols
  int skip_idle;  // the second consumer skips tiles of <= 64 rows
  int out_bf16;   // down: out in bf16
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// Bulk tensor copies into shared memory, completing on `bar` (coordinates innermost first).
__device__ __forceinline__ void tma_2d(uint32_t dst, const CUtensorMap* map, int c0, int c1, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void tma_3d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}

// Shared-memory matrix descriptor of a K-major operand in the 128-byte swizzle: rows of 128
// bytes, 8-row groups 1024 bytes apart (stride offset), leading offset unused (1), swizzle mode 1.
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (uint64_t{1} << 16) | (uint64_t{1024 >> 4} << 32) | (uint64_t{1} << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// d (64 x 256 of this warpgroup, float32) += A (64 x 16, smem) · B (256 x 16, smem)^T.
// d[4j + {0,1,2,3}] of thread (warp w, g = lane / 4, t = lane % 4) is row 16w + g (+8 for 2, 3),
// column 8j + 2t (+1 for 1, 3).
__device__ __forceinline__ void wgmma_256(float (&d)[128], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
      "}, %128, %129, p, 1, 1, 0, 0;\n}\n"
      :
        "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
        "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
        "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(desc_a), "l"(desc_b), "r"(scale_d));
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// Work item i = (tile i / cols, weight block i % cols): neighbouring items share the tile's rows
// and the expert's weights in L2. Block b takes items b, b + gridDim.x, ...: with one block per
// multiprocessor (persistent) the producer fetches the next item's stages while the consumers
// write the last one's outputs; with a block per item, each block does one.
template <bool kSilu>
__global__ void __launch_bounds__(kThreads, 1) grouped_wgmma_kernel(const __grid_constant__ WgmmaArgs p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  grid_wait();
  const int items = *p.n_tiles * p.cols;
  if (static_cast<int>(blockIdx.x) >= items) return;
  extern __shared__ __align__(1024) uint8_t smem_raw[];
  // The swizzled stages need 1024-byte alignment.
  const uint32_t raw = sm_addr(smem_raw);
  const uint32_t base = (raw + 1023) & ~1023u;
  const uint32_t full0 = base + kStages * kStageBytes, empty0 = full0 + kStages * 8;
  const int wg = threadIdx.x / 128;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full0 + 8 * s, 1);
      mbar_init(empty0 + 8 * s, 2 * 128);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  const int KT = (p.K + kBK - 1) / kBK;

  if (wg == 0) {
    // Producer: one thread keeps the stages full; `it` counts stages over all items.
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    if (threadIdx.x != 0) return;
    int it = 0;
    for (int item = blockIdx.x; item < items; item += gridDim.x) {
      const int4 td = p.tiles[item / p.cols];
      const int e = td.x, row0 = td.y, nb = item % p.cols;
      for (int kt = 0; kt < KT; ++kt, ++it) {
        const int s = it % kStages;
        if (it >= kStages) mbar_wait(empty0 + 8 * s, ((it / kStages) - 1) & 1);
        const uint32_t sa = base + s * kStageBytes, sb = sa + kABytes, bar = full0 + 8 * s;
        mbar_expect_tx(bar, kStageBytes);
        tma_2d(sa, &p.a_map, kt * kBK, row0, bar);
        if (kSilu) {
          tma_3d(sb, &p.w_map, kt * kBK, nb * (kBN / 2), e, bar);                      // gate rows
          tma_3d(sb + kBBytes / 2, &p.w_map, kt * kBK, p.N + nb * (kBN / 2), e, bar);  // up rows
        } else {
          tma_3d(sb, &p.w_map, kt * kBK, nb * kBN, e, bar);
        }
      }
    }
    return;
  }

  // Consumers: warpgroup c multiplies rows [64c, 64c + 64) of the tile.
  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
  const int c = wg - 1;
  const int lane = threadIdx.x & 31, w = (threadIdx.x >> 5) & 3, g = lane >> 2, t = lane & 3;
  int it = 0;
  for (int item = blockIdx.x; item < items; item += gridDim.x) {
    const int4 td = p.tiles[item / p.cols];
    const int e = td.x, row0 = td.y, rows = td.z, nb = item % p.cols;
    // A tile of at most 64 rows is the first warpgroup's alone: the second only passes the stages
    // on (the tensor cores serve one warpgroup at a time anyway).
    const bool idle = p.skip_idle && c * 64 >= rows;
    float d[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) d[i] = 0.0f;
    if (idle) {
      // Only pass the stages on. The tensor-core loop stays out of any branch that ptxas cannot
      // prove uniform: a wgmma under `if (!idle)` made ptxas serialize every wgmma of the kernel
      // (C7520, "wgmma.mma_async instructions are serialized ... in divergent path").
      for (int kt = 0; kt < KT; ++kt, ++it) {
        mbar_wait(full0 + 8 * (it % kStages), (it / kStages) & 1);
        mbar_arrive(empty0 + 8 * (it % kStages));
      }
    } else {
      for (int kt = 0; kt < KT; ++kt, ++it) {
        const int s = it % kStages;
        mbar_wait(full0 + 8 * s, (it / kStages) & 1);
        const uint32_t sa = base + s * kStageBytes + c * 64 * kBK * 2, sb = base + s * kStageBytes + kABytes;
        wgmma_fence();
#pragma unroll
        for (int k = 0; k < kBK / 16; ++k) wgmma_256(d, smem_desc(sa + k * 32), smem_desc(sb + k * 32), 1);
        wgmma_commit();
        // The products of the previous stage are done: its slot may be refilled.
        wgmma_wait<1>();
        if (kt > 0) mbar_arrive(empty0 + 8 * ((it - 1) % kStages));
      }
      wgmma_wait<0>();
      mbar_arrive(empty0 + 8 * ((it - 1) % kStages));
    }

#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = c * 64 + w * 16 + g + half * 8;
      if (r >= rows) continue;
      const int64_t row = row0 + r;
      if (kSilu) {
        bf16* out = static_cast<bf16*>(p.out) + row * p.ldo;
        const float* bias = p.bias ? p.bias + static_cast<int64_t>(e) * 2 * p.N : nullptr;
#pragma unroll
        for (int j = 0; j < 16; ++j) {
          const int col = nb * (kBN / 2) + j * 8 + 2 * t;
          if (col < p.N)
            store_silu_pair(out, bias, p.N, col, d[4 * j + 2 * half], d[4 * j + 2 * half + 1], d[4 * (j + 16) + 2 * half],
                            d[4 * (j + 16) + 2 * half + 1]);
        }
      } else {
        const float* bias = p.bias ? p.bias + static_cast<int64_t>(e) * p.N : nullptr;
        auto store_row = [&](auto* out) {
#pragma unroll
          for (int j = 0; j < 32; ++j) {
            const int col = nb * kBN + j * 8 + 2 * t;
            if (col < p.N) store_pair(out, bias, col, d[4 * j + 2 * half], d[4 * j + 2 * half + 1]);
          }
        };
        if (p.out_bf16) store_row(static_cast<bf16*>(p.out) + row * p.ldo);
        else store_row(static_cast<float*>(p.out) + row * p.ldo);
      }
    }
  }
#endif  // __CUDA_ARCH_FEAT_SM90_ALL
}

// cuTensorMapEncodeTiled from the driver, through the runtime (no link against libcuda).
PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess)
      f = nullptr;
    cudaGetLastError();
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// A bf16 tensor map with the 128-byte swizzle: dims and box innermost first, strides in bytes
// of dims 1.. (rank - 1 of them).
bool encode(CUtensorMap* map, const void* ptr, int rank, const uint64_t* dims, const uint64_t* strides, const uint32_t* box) {
  const auto fn = encode_fn();
  if (!fn) return false;
  const cuuint32_t elem[3] = {1, 1, 1};
  return fn(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, rank, const_cast<void*>(ptr), dims, strides, box, elem, CU_TENSOR_MAP_INTERLEAVE_NONE,
            CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace

// Whether the current device is compute capability 9.0 (cached per device).
bool device_is_sm90() {
  static int cc[64];  // 0 unknown, 1 yes, 2 no
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return false;
  if (cc[dev] == 0) {
    int major = 0, minor = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
    cc[dev] = major == 9 && minor == 0 ? 1 : 2;
  }
  return cc[dev] == 1;
}

bool grouped_wgmma_available() {
#if defined(GHOSTLINE_SM90A)
  return env_on("GHOSTLINE_WGMMA") && device_is_sm90() && encode_fn() != nullptr;
#else
  return false;
#endif
}

bool grouped_gemm_sm90(const GroupedGemm& g, cudaStream_t s) {
  if (!grouped_wgmma_available() || g.a_rows <= 0 || g.experts <= 0) return false;
  // The copy engine wants 16-byte aligned bases and row strides.
  if ((reinterpret_cast<uintptr_t>(g.a) & 15u) || (reinterpret_cast<uintptr_t>(g.w) & 15u) || g.lda % 8 || g.K % 8 ||
      g.w_expert_stride % 8)
    return false;
  WgmmaArgs a;
  std::memset(&a, 0, sizeof a);
  const int wrows = g.silu ? 2 * g.N : g.N;
  const uint64_t a_dims[2] = {static_cast<uint64_t>(g.K), static_cast<uint64_t>(g.a_rows)};
  const uint64_t a_strides[1] = {static_cast<uint64_t>(g.lda) * 2};
  const uint32_t a_box[2] = {kBK, kBM};
  const uint64_t w_dims[3] = {static_cast<uint64_t>(g.K), static_cast<uint64_t>(wrows), static_cast<uint64_t>(g.experts)};
  const uint64_t w_strides[2] = {static_cast<uint64_t>(g.K) * 2, static_cast<uint64_t>(g.w_expert_stride) * 2};
  const uint32_t w_box[3] = {kBK, static_cast<uint32_t>(g.silu ? kBN / 2 : kBN), 1};
  if (!encode(&a.a_map, g.a, 2, a_dims, a_strides, a_box) || !encode(&a.w_map, g.w, 3, w_dims, w_strides, w_box)) return false;
  a.tiles = g.tiles, a.n_tiles = g.n_tiles, a.bias = g.bias, a.out = g.out, a.ldo = g.ldo, a.N = g.N, a.K = g.K;
  a.out_bf16 = !g.silu && g.out_bf16;
  static bool raised = false;
  if (!raised) {
    check_launch(cudaFuncSetAttribute(grouped_wgmma_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem), __FILE__, __LINE__);
    check_launch(cudaFuncSetAttribute(grouped_wgmma_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem), __FILE__, __LINE__);
    raised = true;
  }
  const int per = g.silu ? kBN / 2 : kBN;
  a.cols = (g.N + per - 1) / per;
  // Tiles of <= 64 rows on one consumer warpgroup unless GHOSTLINE_WGMMA_HALF=0.
  a.skip_idle = env_on("GHOSTLINE_WGMMA_HALF");
  const int64_t most = static_cast<int64_t>(a.cols) * g.max_tiles;
  // Persistent (a block per multiprocessor) unless GHOSTLINE_WGMMA_PERSIST=0: a block per item.
  const dim3 grid(static_cast<unsigned>(env_on("GHOSTLINE_WGMMA_PERSIST") ? std::min<int64_t>(most, sm_count()) : most));
  if (g.silu) {
    launch(grouped_wgmma_kernel<true>, grid, dim3(kThreads), kSmem, s, a);
  } else {
    launch(grouped_wgmma_kernel<false>, grid, dim3(kThreads), kSmem, s, a);
  }
  return true;
}

}  // namespace ghostline::kernels
