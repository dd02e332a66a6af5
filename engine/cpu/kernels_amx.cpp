// AMX (TDPBF16PS) version of gemm_nt over bf16 weights, and the one-time repacking of the weights
// it reads. This file alone is compiled with the AMX-TILE / AMX-BF16 / AVX512-BF16 flags (and
// without floating-point contraction); kernels.cpp calls into it only after cpuid says the CPU
// has them and the kernel granted this process the tile state (arch_prctl ARCH_REQ_XCOMP_PERM).
//
// Layout and order (the contract of kernels_isa.h):
//   weights  packed once at load as the B operand: per block of 16 weight rows (n) and 32
//            columns (k), a 16 x 64-byte tile whose row p holds (w[n][2p], w[n][2p + 1]) for
//            n = 0..15; blocks [n / 16][k / 32], rows past N zero. A block of 16 rows is
//            16 * K values, so rows [16 b, ...) start at 16 b * K, as in the row-major matrix.
//   tokens   each float32 activation split into three bf16 terms (round to nearest, then the
//            remainder, twice): x = h0 + h1 + h2 exactly, every product h_s * w exact in
//            float32. Five tokens' terms fill the rows of one A tile (row 3 i + s: token i,
//            term s; row 15 unused).
//   order    each output's 3 x K products accumulate in two float32 chains inside the tile
//            unit, one over the even k-blocks, one over the odd ones (ascending), each term in
//            its own row; then per term even + odd, then (term 0 + term 1) + term 2.
// A row of the product depends only on its own A row, so a token's result is the same bits
// whatever else shares the call, and a block of 16 weight rows the same whatever the split.
// Loops: up to five tokens (one A tile), two blocks of weight rows at a time (four chains in
// flight); more tokens, two groups against one block, the next block prefetched. One thread,
// lm_head 16k x 256 from L3: 0.30 ms for 1-5 tokens as the AVX-512 kernel for one, 0.33-0.35 for
// 6-10 (isa_probe). Tiles are 64 bytes wide; the configuration is reloaded (~130 cycles) only
// when the rows in use change.
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "engine/cpu/kernels_isa.h"

// GCC 12's AVX-512 headers fill the unused part of a cast or extract with _mm*_undefined_*().
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace ghostline::cpu::isa {
namespace {

constexpr int kTerms = 3;                      // bf16 terms per float32 activation
constexpr int kGroup = 16 / kTerms;            // tokens per A tile (5)
constexpr int64_t kTileValues = 16 * 32;       // bf16 values in one tile

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles 0-3 accumulate, 4-5 hold activations, 6-7 weights, each 64 bytes wide; the weight tiles
// have 16 rows, the others `rows` (the rows of activation terms in use: fewer rows are fewer
// multiply-adds and stores for a few tokens; the rows each output gets are the same either way).
// Nothing else in the process uses AMX, so a thread reloads the configuration only when `rows`
// changes.
void configure_tiles(int rows) {
  thread_local int configured = 0;
  if (configured == rows) return;
  TileConfig cfg;
  for (int i = 0; i < 8; ++i) {
    cfg.colsb[i] = 64;
    cfg.rows[i] = static_cast<uint8_t>(i >= 6 ? 16 : rows);
  }
  _tile_loadconfig(&cfg);
  configured = rows;
}

// The three terms of 32 activations as bf16 rows (32 values each, 64 bytes apart).
inline void split32(const float* x, uint16_t* rows) {
  __m512 lo = _mm512_loadu_ps(x), hi = _mm512_loadu_ps(x + 16);
  for (int s = 0; s < kTerms; ++s) {
    const __m512i h = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));  // columns 0-15 low, 16-31 high
    _mm512_store_si512(rows + 32 * s, h);
    if (s + 1 == kTerms) break;
    const __m512 hlo = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16));
    const __m512 hhi = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1)), 16));
    lo = _mm512_sub_ps(lo, hlo);  // exact: the remainder of a rounding to 8 significant bits
    hi = _mm512_sub_ps(hi, hhi);
  }
}

// The A tiles of T tokens: [group g][k-block][16 rows][32], per thread, 64-byte aligned (rows
// past the group's tokens are left as they are: no output reads them).
const uint16_t* split_activations(const float* x, int64_t ldx, int64_t T, int64_t K) {
  struct Buffer {
    std::unique_ptr<uint16_t[], void (*)(void*)> data{nullptr, std::free};
    int64_t size = 0;
  };
  thread_local Buffer buf;
  const int64_t KB = K / 32, G = (T + kGroup - 1) / kGroup, need = G * KB * kTileValues;
  if (need > buf.size) {
    buf.data.reset(static_cast<uint16_t*>(std::aligned_alloc(64, static_cast<size_t>(need) * 2)));
    buf.size = need;
  }
  uint16_t* a = buf.data.get();
  for (int64_t t = 0; t < T; ++t) {
    uint16_t* rows = a + (t / kGroup) * KB * kTileValues + (t % kGroup) * kTerms * 32;
    for (int64_t kb = 0; kb < KB; ++kb) split32(x + t * ldx + kb * 32, rows + kb * kTileValues);
  }
  return a;
}

// y[t][0 .. cols) for the tokens of one group: each term even + odd, then the terms in order.
inline void emit(const float (*even)[16], const float (*odd)[16], int tokens, float* y, int64_t ldy, __mmask16 cols) {
  for (int i = 0; i < tokens; ++i) {
    __m512 v[kTerms];
    for (int s = 0; s < kTerms; ++s) v[s] = _mm512_add_ps(_mm512_load_ps(even[i * kTerms + s]), _mm512_load_ps(odd[i * kTerms + s]));
    __m512 sum = _mm512_add_ps(v[0], v[1]);
    for (int s = 2; s < kTerms; ++s) sum = _mm512_add_ps(sum, v[s]);
    _mm512_mask_storeu_ps(y + i * ldy, cols, sum);
  }
}

// Asks for `tiles` consecutive weight tiles at p to be brought into L1 (a tile load itself
// is not prefetched ahead by the hardware as the loads of a stream are).
inline void prefetch_tiles(const uint16_t* p, int tiles) {
  const char* b = reinterpret_cast<const char*>(p);
  for (int i = 0; i < 16 * tiles; ++i) _mm_prefetch(b + 64 * i, _MM_HINT_T0);
}

// One group of tokens (A tiles at a) against two blocks of 16 weight rows (B tiles at w0, w1):
// c[0] / c[1] block 0 even / odd k-blocks, c[2] / c[3] block 1 (four independent chains hide
// the tile unit's latency where the weights are in cache). w1 null: block 0 alone.
inline void one_group(const uint16_t* a, const uint16_t* w0, const uint16_t* w1, int64_t KB, float (*c)[16][16]) {
  _tile_zero(0);
  _tile_zero(1);
  if (w1) {
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int64_t kb = 0; kb < KB; kb += 2) {
    _tile_loadd(4, a + kb * kTileValues, 64);
    _tile_loadd(6, w0 + kb * kTileValues, 64);
    _tile_dpbf16ps(0, 4, 6);
    if (w1) {
      _tile_loadd(7, w1 + kb * kTileValues, 64);
      _tile_dpbf16ps(2, 4, 7);
    }
    if (kb + 1 == KB) break;
    _tile_loadd(5, a + (kb + 1) * kTileValues, 64);
    _tile_loadd(6, w0 + (kb + 1) * kTileValues, 64);
    _tile_dpbf16ps(1, 5, 6);
    if (w1) {
      _tile_loadd(7, w1 + (kb + 1) * kTileValues, 64);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, c[0], 64);
  _tile_stored(1, c[1], 64);
  if (w1) {
    _tile_stored(2, c[2], 64);
    _tile_stored(3, c[3], 64);
  }
}

// Two groups (a0, a1) against one block of weight rows, each weight tile loaded once for both:
// c[0] / c[1] group 0 even / odd, c[2] / c[3] group 1.
inline void two_groups(const uint16_t* a0, const uint16_t* a1, const uint16_t* w, const uint16_t* next, int64_t KB, float (*c)[16][16]) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t kb = 0; kb < KB; kb += 2) {
    if (next) prefetch_tiles(next + kb * kTileValues, kb + 1 < KB ? 2 : 1);
    _tile_loadd(6, w + kb * kTileValues, 64);
    _tile_loadd(4, a0 + kb * kTileValues, 64);
    _tile_loadd(5, a1 + kb * kTileValues, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(2, 5, 6);
    if (kb + 1 == KB) break;
    _tile_loadd(7, w + (kb + 1) * kTileValues, 64);
    _tile_loadd(4, a0 + (kb + 1) * kTileValues, 64);
    _tile_loadd(5, a1 + (kb + 1) * kTileValues, 64);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c[0], 64);
  _tile_stored(1, c[1], 64);
  _tile_stored(2, c[2], 64);
  _tile_stored(3, c[3], 64);
}

void gemm_nt_amx(const float* x, int64_t ldx, int64_t T, const uint16_t* packed, int64_t N, int64_t K, float* y, int64_t ldy) {
  if (T <= 0 || N <= 0) return;
  const int64_t KB = K / 32, G = (T + kGroup - 1) / kGroup, block = 16 * K;
  const uint16_t* a = split_activations(x, ldx, T, K);
  configure_tiles(G == 1 ? static_cast<int>(T) * kTerms : 16);
  alignas(64) float c[4][16][16];
  auto tokens_in = [&](int64_t g) { return static_cast<int>(std::min<int64_t>(kGroup, T - g * kGroup)); };
  auto mask = [&](int64_t n0) { return N - n0 >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << (N - n0)) - 1); };
  if (G == 1) {  // a few tokens: two blocks of weight rows at a time
    const int tokens = tokens_in(0);
    for (int64_t n0 = 0; n0 < N; n0 += 32) {
      const bool two = n0 + 16 < N;
      one_group(a, packed + (n0 / 16) * block, two ? packed + (n0 / 16 + 1) * block : nullptr, KB, c);
      emit(c[0], c[1], tokens, y + n0, ldy, mask(n0));
      if (two) emit(c[2], c[3], tokens, y + n0 + 16, ldy, mask(n0 + 16));
    }
    return;
  }
  for (int64_t n0 = 0; n0 < N; n0 += 16) {
    const uint16_t* w = packed + (n0 / 16) * block;
    int64_t g = 0;
    for (; g + 2 <= G; g += 2) {  // the weight tiles stay in L1 for the groups after the first
      two_groups(a + g * KB * kTileValues, a + (g + 1) * KB * kTileValues, w, g == 0 && n0 + 16 < N ? w + block : nullptr, KB, c);
      emit(c[0], c[1], tokens_in(g), y + g * kGroup * ldy + n0, ldy, mask(n0));
      emit(c[2], c[3], tokens_in(g + 1), y + (g + 1) * kGroup * ldy + n0, ldy, mask(n0));
    }
    if (g < G) {
      one_group(a + g * KB * kTileValues, w, nullptr, KB, c);
      emit(c[0], c[1], tokens_in(g), y + g * kGroup * ldy + n0, ldy, mask(n0));
    }
  }
}

bool amx_permitted() {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-bf16") || !__builtin_cpu_supports("avx512bf16"))
    return false;
  constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;  // <asm/prctl.h>, the kernel's xstate number
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
}

}  // namespace

bool amx_usable() {
  static const bool ok = amx_permitted();
  return ok;
}

int64_t amx_packed_size(int64_t rows, int64_t cols) { return (rows + 15) / 16 * 16 * cols; }

void amx_pack_bf16(const uint16_t* w, int64_t rows, int64_t cols, uint16_t* out) {
  const int64_t KB = cols / 32, NB = (rows + 15) / 16;
  for (int64_t nb = 0; nb < NB; ++nb)
    for (int64_t kb = 0; kb < KB; ++kb) {
      uint16_t* tile = out + (nb * KB + kb) * kTileValues;
      for (int p = 0; p < 16; ++p)
        for (int n = 0; n < 16; ++n) {
          const int64_t r = nb * 16 + n;
          for (int j = 0; j < 2; ++j) tile[p * 32 + n * 2 + j] = r < rows ? w[r * cols + kb * 32 + 2 * p + j] : uint16_t{0};
        }
    }
}

const Kernels* amx() {
  static const Kernels k = [] {
    Kernels s = *avx512();
    s.gemm_nt_bf16_packed = gemm_nt_amx;
    return s;
  }();
  return &k;
}

}  // namespace ghostline::cpu::isa
