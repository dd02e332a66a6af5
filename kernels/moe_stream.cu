// One token's experts on Hopper (sm_90): moe_gate_up_one / moe_down_one with the weights streamed
// through a ring of shared-memory stages, so that every multiprocessor keeps up to ~100 KB
// requested for the whole kernel. The kernel it was meant to replace (moe_one_kernel, skinny.cu)
// runs ~5 waves of short blocks, each paying its own chain (wait -> expert id -> weights -> FMAs
// -> exit) with nothing in flight between them. Measured on an H200 it is slower than that kernel
// (gate/up 44-50 us a layer against 31; the lm_head streamed at 1.6 TB/s against 3.4), so it is
// off unless GHOSTLINE_MOE_STREAM=1 (experts) / GHOSTLINE_SKINNY_STREAM=1 (plain products): kept
// with its op cases for the profile that would say why (bench/cuda/NOTES.md).
//
// Work item = (pair slot p, OUT output rows from n0): two weight rows of K bf16, each contiguous
// (gate/up: gate row n0 and up row N + n0, OUT = 1; down: rows n0 and n0 + 1, OUT = 2). Items run
// in slot order from the last slot (the always-on experts first), rows fastest; block b of G (one
// block per multiprocessor) takes items b, b + G, ...
// Warp 0 produces: it waits for a stage to be free, notes which expert it will hold and copies
// the rows with cp.async (16 bytes a lane, each lane's arrival on the stage's `full` barrier
// made when its pieces have landed; GHOSTLINE_MOE_STREAM=3 / GHOSTLINE_SKINNY_STREAM=3: one lane
// issues two bulk copies instead, which ran at ~2.3 TB/s on an H200). Before the wait it fills the ring
// with the items whose expert it knows (gate/up: the always-on slots; down: every slot, as
// pair_expert reads then: moe_route ran two launches before), after the wait the rest from the
// final ids. Warps 1..8 consume items j = w - 1 (mod 8): x from shared memory (loaded after the
// wait, each 256-chunk permuted so that a lane's 8 floats are two conflict-free float4 reads), the
// weights from the stage, warp sums, the output by lane 0, the stage released on `empty`. A stage
// that holds another expert than the final one (a hint that changed) is not used: that item's
// rows are read from global memory instead. The sums are the same, in the same order, as
// moe_one_kernel's.
// Plain products of one activation row (skinny_gemm, T = 1) run as down with one slot whose
// expert (the matrix) is known: the first ~100 KB a multiprocessor are requested before the wait.
#include <algorithm>
#include <cstdlib>

#include "kernels/common.cuh"
#include "kernels/mbarrier.cuh"
#include "kernels/moe_stream.h"

namespace ghostline::kernels {

namespace {

enum StreamMode { kGateUp = 0, kDown = 1 };
constexpr int kConsumers = 8;
constexpr int kThreads = 32 * (1 + kConsumers);
constexpr int kMaxStages = 32;
constexpr int kMaxSlots = 32;            // pair slots per token (ids held one a lane)
constexpr int kMaxK = 2048;
// Every block takes more than half of a multiprocessor's 228 KB, so that no two blocks of the
// grid (one per multiprocessor) can share one. 71a527c and b5a0863 (the measured runs) had 110 KB,
// where two could, and a gate/up and a down block fitted together.
constexpr int kSmemBudget = 116 * 1024;

struct StreamArgs {
  OneArgs a;
  int items_per_slot;  // ceil(N / OUT)
  int stages;
  int stage_bytes;     // two rows of K bf16, rounded up to 128
  int x_floats;        // floats per x row in shared memory (K rounded up to 256)
  int bad_hint;        // tests: down's requests before the wait use another expert
  int plain;           // down mode without routing: one slot, expert 0, output row 0
  int tma;             // the stages filled by bulk copies (else cp.async)
};

__host__ __device__ constexpr int out_rows(int mode) { return mode == kGateUp ? 1 : 2; }

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
// a0 += r0 · x, a1 += r1 · x over this lane's k (8 at lane * 8 of every 256), x chunk-permuted.
__device__ __forceinline__ void dot2(const bf16* r0, const bf16* r1, const float4* x4, int K, int lane, float& a0, float& a1) {
#pragma unroll 2
  for (int c = 0; c * 256 < K; ++c) {
    const int k = c * 256 + lane * 8;
    if (k >= K) break;
    const float4 xa = x4[c * 64 + lane], xb = x4[c * 64 + 32 + lane];
    const float xv[8] = {xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w};
    const uint4 u0 = *reinterpret_cast<const uint4*>(r0 + k), u1 = *reinterpret_cast<const uint4*>(r1 + k);
    const uint32_t w0[4] = {u0.x, u0.y, u0.z, u0.w}, w1[4] = {u1.x, u1.y, u1.z, u1.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      a0 = fmaf(__uint_as_float(w0[i] << 16), xv[2 * i], a0);
      a0 = fmaf(__uint_as_float(w0[i] & 0xffff0000u), xv[2 * i + 1], a0);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      a1 = fmaf(__uint_as_float(w1[i] << 16), xv[2 * i], a1);
      a1 = fmaf(__uint_as_float(w1[i] & 0xffff0000u), xv[2 * i + 1], a1);
    }
  }
}
#endif

template <int MODE>
__global__ void __launch_bounds__(kThreads, 1) moe_stream_kernel(const __grid_constant__ StreamArgs p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int OUT = out_rows(MODE);
  const OneArgs& a = p.a;
  // Shared memory: stages [stages][stage_bytes] | x [x_rows][x_floats] | full, empty barriers |
  // stage_expert [stages] | slot_expert [kMaxSlots].
  extern __shared__ __align__(128) uint8_t smem[];
  const int x_rows = MODE == kDown ? a.KP : 1;
  float* xs = reinterpret_cast<float*>(smem + p.stages * p.stage_bytes);
  uint64_t* bars = reinterpret_cast<uint64_t*>(xs + x_rows * p.x_floats);
  int* stage_expert = reinterpret_cast<int*>(bars + 2 * p.stages);
  int* slot_expert = stage_expert + p.stages;
  const uint32_t ring = sm_addr(smem), full0 = sm_addr(bars), empty0 = full0 + 8 * p.stages;
  const int G = gridDim.x, b = blockIdx.x, items = a.KP * p.items_per_slot;
  const int mine = b < items ? (items - 1 - b) / G + 1 : 0;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (threadIdx.x == 0) {
    for (int s = 0; s < p.stages; ++s) mbar_init(full0 + 8 * s, p.tma ? 1 : 33), mbar_init(empty0 + 8 * s, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  auto item = [&](int j, int& slot, int& n0) {
    const int i = b + j * G;
    slot = a.KP - 1 - i / p.items_per_slot;
    n0 = (i % p.items_per_slot) * OUT;
  };
  const int row_bytes = a.K * 2;

  if (warp == 0) {
    // The producer warp: item j into stage j % stages once its previous item there is released
    // (e < 0: no copy, the stage completes empty). Cp.async: every lane copies 16-byte pieces and
    // arrives when they have landed, lane 0 once more after noting the expert (33 arrivals);
    // bulk copies (p.tma): lane 0 alone (one arrival plus the bytes).
    auto issue = [&](int j, int e) {
      const int s = j % p.stages;
      if (j >= p.stages) mbar_wait(empty0 + 8 * s, ((j / p.stages) - 1) & 1);
      const uint32_t bar = full0 + 8 * s, dst = ring + s * p.stage_bytes;
      const bool valid = e >= 0 && e < a.X;
      int slot, n0;
      item(j, slot, n0);
      const uint8_t* W = static_cast<const uint8_t*>(a.w) + static_cast<int64_t>(valid ? e : 0) * a.w_batch * 2;
      const bool two = MODE == kGateUp || n0 + 1 < a.N;
      const uint8_t* src0 = W + static_cast<int64_t>(n0) * row_bytes;
      const uint8_t* src1 = W + static_cast<int64_t>(MODE == kGateUp ? a.N + n0 : n0 + 1) * row_bytes;
      if (p.tma) {
        if (lane != 0) return;
        stage_expert[s] = e;
        if (!valid) {
          mbar_arrive(bar);
          return;
        }
        mbar_expect_tx(bar, (two ? 2 : 1) * row_bytes);
        bulk_copy(dst, src0, row_bytes, bar);
        if (two) bulk_copy(dst + row_bytes, src1, row_bytes, bar);
        return;
      }
      if (valid) {
        for (int off = lane * 16; off < row_bytes; off += 512) {
          cp_async16(dst + off, src0 + off);
          if (two) cp_async16(dst + row_bytes + off, src1 + off);
        }
      }
      cp_async_arrive(bar);
      if (lane == 0) {
        stage_expert[s] = e;
        mbar_arrive(bar);
      }
    };
    if (MODE == kDown && lane < a.KP) slot_expert[lane] = p.plain ? 0 : __ldcg(a.pair_expert + lane);  // hints
    __syncwarp();
    int j = 0;
    for (; j < min(mine, p.stages); ++j) {
      int slot, n0;
      item(j, slot, n0);
      int e = MODE == kGateUp ? (slot >= a.n_routed ? a.E + slot - a.n_routed : -1) : slot_expert[slot];
      if (e < 0 || e >= a.X) break;
      if (MODE == kDown && p.bad_hint) e = (e + 1) % a.X;
      issue(j, e);
    }
    __syncwarp();
    grid_wait();
    if (lane < a.KP) slot_expert[lane] = p.plain ? 0 : __ldcg(a.pair_expert + lane);
    __syncwarp();
    for (; j < mine; ++j) {
      int slot, n0;
      item(j, slot, n0);
      issue(j, slot_expert[slot]);
    }
    return;
  }

  grid_wait();
  // x into shared memory, four loads in flight a thread (down: 11 a thread for 8 rows of 1408).
  const int k4 = a.K / 4, x_total = x_rows * k4;
  for (int i0 = threadIdx.x - 32; i0 < x_total; i0 += 4 * 32 * kConsumers) {
    float4 v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int i = i0 + u * 32 * kConsumers, r = i / k4;
      if (i < x_total) v[u] = __ldcg(reinterpret_cast<const float4*>(a.x + r * a.ldx) + (i - r * k4));
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int i = i0 + u * 32 * kConsumers, r = i / k4, g = i - r * k4, c = g >> 6, w = g & 63;
      if (i < x_total) reinterpret_cast<float4*>(xs + r * p.x_floats)[c * 64 + (w & 1) * 32 + (w >> 1)] = v[u];
    }
  }
  const int lane_e = lane < a.KP ? (p.plain ? 0 : __ldcg(a.pair_expert + lane)) : -1;
  const int lane_row = MODE == kDown ? (lane < a.KP ? (p.plain ? 0 : __ldcg(a.pair_slot + lane)) : -1) : lane;
  asm volatile("bar.sync 1, %0;\n" ::"n"(32 * kConsumers) : "memory");
  const bf16* W_all = static_cast<const bf16*>(a.w);
  for (int j = warp - 1; j < mine; j += kConsumers) {
    const int s = j % p.stages;
    int slot, n0;
    item(j, slot, n0);
    const int e = __shfl_sync(0xffffffffu, lane_e, slot), yrow = __shfl_sync(0xffffffffu, lane_row, slot);
    const bool live = e >= 0 && e < a.X && yrow >= 0;
    const bool two = MODE == kGateUp || n0 + 1 < a.N;
    const float4* x4 = reinterpret_cast<const float4*>(xs + (MODE == kDown ? slot : 0) * p.x_floats);
    float acc0 = 0.0f, acc1 = 0.0f;
    mbar_wait(full0 + 8 * s, (j / p.stages) & 1);
    if (live) {
      if (stage_expert[s] == e) {
        const bf16* r0 = reinterpret_cast<const bf16*>(smem + s * p.stage_bytes);
        dot2(r0, r0 + a.K, x4, a.K, lane, acc0, acc1);
      } else {
        const bf16* We = W_all + static_cast<int64_t>(e) * a.w_batch;
        const int r1 = MODE == kGateUp ? a.N + n0 : min(n0 + 1, a.N - 1);
        dot2(We + static_cast<int64_t>(n0) * a.K, We + static_cast<int64_t>(r1) * a.K, x4, a.K, lane, acc0, acc1);
      }
    }
    __syncwarp();
    if (lane == 0) mbar_arrive(empty0 + 8 * s);
    if (!live) continue;
    acc0 = warp_sum(acc0);
    acc1 = warp_sum(acc1);
    if (lane != 0) continue;
    const float* bias = a.bias ? a.bias + static_cast<int64_t>(e) * a.bias_batch : nullptr;
    float* y = a.y + static_cast<int64_t>(yrow) * a.ldy;
    if constexpr (MODE == kGateUp) {
      float g = acc0, u = acc1;
      if (bias) g += bias[n0], u += bias[a.N + n0];
      y[n0] = silu(g) * u;
    } else {
      y[n0] = acc0 + (bias ? bias[n0] : 0.0f);
      if (two) y[n0 + 1] = acc1 + (bias ? bias[n0 + 1] : 0.0f);
    }
  }
#endif  // __CUDA_ARCH__ >= 900
}

// GHOSTLINE_MOE_STREAM (GHOSTLINE_SKINNY_STREAM for plain products): 1 on, 2 on with wrong
// hints (tests), 3 on with bulk copies; unset or anything else: off (on an H200 these kernels
// made the decode step slower: bench/cuda/NOTES.md). Read at every call.
int stream_setting(bool plain) {
  const char* e = std::getenv(plain ? "GHOSTLINE_SKINNY_STREAM" : "GHOSTLINE_MOE_STREAM");
  if (!e || e[0] < '1' || e[0] > '3') return 0;
  return e[0] - '0';
}

template <int MODE>
bool launch_stream(const OneArgs& a, bool plain, cudaStream_t s) {
#if defined(GHOSTLINE_SM90A)
  const int setting = stream_setting(plain);
  if (setting == 0 || !device_is_sm90()) return false;
  auto al = [](const void* q) { return (reinterpret_cast<uintptr_t>(q) & 15u) == 0; };
  const bool aligned = al(a.w) && al(a.x) && a.w_batch % 8 == 0 && (MODE == kGateUp || a.ldx % 4 == 0);
  if (!aligned || a.N <= 0 || a.K <= 0 || a.K % 8 || a.K > kMaxK || a.KP <= 0 || a.KP > kMaxSlots) return false;
  StreamArgs p;
  p.a = a;
  p.items_per_slot = (a.N + out_rows(MODE) - 1) / out_rows(MODE);
  p.stage_bytes = (4 * a.K + 127) / 128 * 128;
  p.x_floats = (a.K + 255) / 256 * 256;
  p.bad_hint = setting == 2 && !plain;
  p.tma = setting == 3;
  p.plain = plain;
  const int x_bytes = (MODE == kDown ? a.KP : 1) * p.x_floats * 4;
  const int tables = kMaxStages * 2 * 8 + (kMaxStages + kMaxSlots) * 4;  // barriers and ids, at most
  p.stages = std::min(kMaxStages, (kSmemBudget - x_bytes - tables) / p.stage_bytes);
  if (p.stages < 2) return false;
  const size_t smem = kSmemBudget;  // >= stages, x, barriers and ids
  static bool raised = false;
  if (!raised) {
    check_launch(cudaFuncSetAttribute(moe_stream_kernel<MODE>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBudget), __FILE__,
                 __LINE__);
    raised = true;
  }
  const int items = a.KP * p.items_per_slot;
  launch(moe_stream_kernel<MODE>, dim3(std::min(items, sm_count())), dim3(kThreads), smem, s, p);
  return true;
#else  // no sm_90 code in this build
  (void)a, (void)plain, (void)s, (void)&stream_setting, (void)out_rows(0), (void)(kMaxStages + kMaxSlots + kMaxK + kSmemBudget);
  return false;
#endif
}

}  // namespace

bool moe_stream_gate_up(const OneArgs& a, cudaStream_t s) { return launch_stream<kGateUp>(a, false, s); }
bool moe_stream_down(const OneArgs& a, cudaStream_t s) { return launch_stream<kDown>(a, false, s); }

bool skinny_stream(const void* w, const float* x, float* y, const float* bias, int N, int K, cudaStream_t s) {
  OneArgs a{};
  a.w = w, a.w_batch = 0;
  a.x = x, a.ldx = K;
  a.y = y, a.ldy = N;
  a.bias = bias, a.bias_batch = 0;
  a.N = N, a.K = K;
  a.n_routed = 0, a.E = 0, a.X = 1, a.KP = 1;
  return launch_stream<kDown>(a, true, s);
}

}  // namespace ghostline::kernels
