// Warp-level steps of attention on mma.sync tiles: the two matrix products from swizzled shared
// memory, score transforms, the mask, the online softmax and the output epilogue.
//
// A warp owns kMmaM tiles of 16 query rows. Its scores S (16 x 8 per FragC) and its output
// accumulator O stay in registers for the whole key loop; P = exp2(...) overwrites S in place and
// is fed to P V as the A operand without a trip through shared memory (mma.cuh explains why the
// layouts agree); warps that split a key block share their P halves through shared memory
// (store_p, gemm_pv_smem). Each thread holds 2 * kMmaM rows: row g of tile mi is its row 2 mi, row g + 8
// is row 2 mi + 1 (g = lane / 4); the four threads of a quad share a row and reduce with shuffles.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/attention_math.h"
#include "cuda/common/fast_math.cuh"
#include "cuda/common/mma.cuh"
#include "cuda/common/smem_tile.cuh"

namespace sfa::cuda {

constexpr unsigned kFullWarp = 0xffffffffu;

template <int kMmaM, int kTiles>
__device__ __forceinline__ void clear(FragC (&acc)[kMmaM][kTiles]) {
#pragma unroll
  for (int mi = 0; mi < kMmaM; ++mi)
#pragma unroll
    for (int ni = 0; ni < kTiles; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mi][ni].x[e] = 0.0f;
}

// acc += A B over kKSteps k-steps of 16, for kMmaM row tiles and kTilesN column tiles of 8.
// load_a(k, FragA (&a)[kMmaM]) fills the A fragments of k-step k; load_b(k, j, uint32_t (&r)[4])
// the B fragments of column tiles 2j and 2j + 1 (one ldmatrix_x4). Software-pipelined: the
// (k-step, column pair) products run in one flattened order, and the B fragments kAhead products
// ahead and (from kAhead 2 on) the A fragments one k-step ahead are loaded before the current
// products issue, so shared-memory latency hides behind the tensor cores (all indices are
// compile-time after unrolling: the buffers stay in registers). With kAhead 0 or 1 A is loaded
// where it is used: 8 registers fewer at two 16-row tiles.
template <typename T, int kKSteps, int kMmaM, int kTilesN, int kAhead, class LoadA, class LoadB>
__device__ __forceinline__ void mma_pipelined(FragC (&acc)[kMmaM][kTilesN], const LoadA& load_a,
                                              const LoadB& load_b) {
  constexpr int kPairs = kTilesN / 2;
  constexpr int kFlat = kKSteps * kPairs;
  constexpr int kDist = kAhead < kFlat - 1 ? kAhead : kFlat - 1;
  constexpr int kRing = kDist + 1;
  constexpr int kABuffers = kDist > 1 ? 2 : 1;  // with look-ahead 0 or 1, A is loaded where it is used
  FragA a[kABuffers][kMmaM];
  uint32_t b[kRing][4];
  if constexpr (kABuffers > 1) load_a(0, a[0]);
#pragma unroll
  for (int f = 0; f < kDist; ++f) load_b(f / kPairs, f % kPairs, b[f]);
#pragma unroll
  for (int f = 0; f < kFlat; ++f) {
    const int k = f / kPairs, j = f % kPairs;
    if (f + kDist < kFlat) load_b((f + kDist) / kPairs, (f + kDist) % kPairs, b[(f + kDist) % kRing]);
    if constexpr (kABuffers > 1) {
      if (j == 0 && k + 1 < kKSteps) load_a(k + 1, a[(k + 1) % kABuffers]);
    } else {
      if (j == 0) load_a(k, a[0]);
    }
    const FragB b0{{b[f % kRing][0], b[f % kRing][1]}}, b1{{b[f % kRing][2], b[f % kRing][3]}};
#pragma unroll
    for (int mi = 0; mi < kMmaM; ++mi) {
      mma_m16n8k16<T>(acc[mi][2 * j], a[k % kABuffers][mi], b0);
      mma_m16n8k16<T>(acc[mi][2 * j + 1], a[k % kABuffers][mi], b1);
    }
  }
}

// How many products ahead the B fragments of the two matrix products are loaded.
constexpr int kFragmentsAhead = 2;

// S += Q K^T for the warp's rows: Q [16 kMmaM, kHeadDim] and K [8 kTilesN, kHeadDim] in shared
// memory, k-loop over head_dim in steps of 16. Each ldmatrix_x4 of K gives two n8 tiles.
template <typename T, int kHeadDim, int kAhead = kFragmentsAhead, int kMmaM, int kTilesN, class QA, class KA>
__device__ __forceinline__ void gemm_qk(FragC (&s)[kMmaM][kTilesN], const QA& q_addr, const KA& k_addr) {
  mma_pipelined<T, kHeadDim / 16, kMmaM, kTilesN, kAhead>(
      s,
      [&](int ks, FragA (&a)[kMmaM]) {
#pragma unroll
        for (int mi = 0; mi < kMmaM; ++mi) ldmatrix_x4(a[mi].x, q_addr.at(16 * mi, 2 * ks));
      },
      [&](int ks, int nj, uint32_t (&r)[4]) { ldmatrix_x4(r, k_addr.at(16 * nj, 2 * ks)); });
}

// O += P V: P [16 kMmaM, 8 kTilesN] from registers (the S accumulators, rounded to T and packed
// pairwise one k-step at a time: two C tiles side by side are one A tile, mma.cuh), V
// [8 kTilesN, 8 kTilesD] in shared memory read transposed by ldmatrix.trans, k-loop over the
// keys in steps of 16. (The lanes address V differently from K in gemm_qk: the x4 matrices must
// arrive in the order the B register pairs take them, or ptxas adds two moves per product.)
template <typename T, int kAhead = kFragmentsAhead, int kMmaM, int kTilesN, int kTilesD, class VA>
__device__ __forceinline__ void gemm_pv(FragC (&o)[kMmaM][kTilesD], const FragC (&p)[kMmaM][kTilesN],
                                        const VA& v_addr) {
  mma_pipelined<T, kTilesN / 2, kMmaM, kTilesD, kAhead>(
      o,
      [&](int kk, FragA (&a)[kMmaM]) {
#pragma unroll
        for (int mi = 0; mi < kMmaM; ++mi) {
          const FragC& lo = p[mi][2 * kk];
          const FragC& hi = p[mi][2 * kk + 1];
          a[mi] = FragA{{pack_pair<T>(lo.x[0], lo.x[1]), pack_pair<T>(lo.x[2], lo.x[3]),
                         pack_pair<T>(hi.x[0], hi.x[1]), pack_pair<T>(hi.x[2], hi.x[3])}};
        }
      },
      [&](int kk, int dj, uint32_t (&r)[4]) { ldmatrix_x4_trans(r, v_addr.at(16 * kk, 2 * dj)); });
}

// O += P V with P [16 kMmaM, 16 kKSteps] in shared memory (read like Q: p_addr addresses rows
// lane % 16, chunk lane / 16 of the warp's P rows) and V as in gemm_pv.
template <typename T, int kKSteps, int kAhead = kFragmentsAhead, int kMmaM, int kTilesD, class PA, class VA>
__device__ __forceinline__ void gemm_pv_smem(FragC (&o)[kMmaM][kTilesD], const PA& p_addr, const VA& v_addr) {
  mma_pipelined<T, kKSteps, kMmaM, kTilesD, kAhead>(
      o,
      [&](int kk, FragA (&a)[kMmaM]) {
#pragma unroll
        for (int mi = 0; mi < kMmaM; ++mi) ldmatrix_x4(a[mi].x, p_addr.at(16 * mi, 2 * kk));
      },
      [&](int kk, int dj, uint32_t (&r)[4]) { ldmatrix_x4_trans(r, v_addr.at(16 * kk, 2 * dj)); });
}

// Waits until `threads` threads (whole warps) have arrived at barrier `id` (1..15; 0 is
// __syncthreads). Orders the shared-memory accesses of those warps like __syncthreads.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// How raw scores x = q.k become the values the softmax maximises; the softmax then uses
// exp2(value * scale_log2 - max * scale_log2), one FFMA and one EX2 per score.
//   kPlain:   value = x,                     scale_log2 = scale * log2(e)     (scale > 0)
//   kNegate:  value = -x,                    scale_log2 = -scale * log2(e)    (scale < 0)
//   kSoftcap: value = tanh(x scale / cap),   scale_log2 = cap * log2(e)
enum class ScoreTransform : int { kPlain, kNegate, kSoftcap };

struct ScoreScale {
  ScoreTransform transform;
  float pre;         // the tanh argument's factor (softcap only)
  float scale_log2;  // > 0
};

__device__ __forceinline__ ScoreScale score_scale(float softmax_scale, float softcap) {
  if (softcap > 0.0f) return {ScoreTransform::kSoftcap, softmax_scale / softcap, softcap * kLog2e};
  if (softmax_scale < 0.0f) return {ScoreTransform::kNegate, 0.0f, -softmax_scale * kLog2e};
  return {ScoreTransform::kPlain, 0.0f, softmax_scale * kLog2e};
}

template <int kMmaM, int kTilesN>
__device__ __forceinline__ void transform_scores(FragC (&s)[kMmaM][kTilesN], const ScoreScale& sc) {
  if (sc.transform == ScoreTransform::kSoftcap) {
#pragma unroll
    for (int mi = 0; mi < kMmaM; ++mi)
#pragma unroll
      for (int ni = 0; ni < kTilesN; ++ni)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mi][ni].x[e] = tanh_accurate(s[mi][ni].x[e] * sc.pre);
  } else if (sc.transform == ScoreTransform::kNegate) {
#pragma unroll
    for (int mi = 0; mi < kMmaM; ++mi)
#pragma unroll
      for (int ni = 0; ni < kTilesN; ++ni)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mi][ni].x[e] = -s[mi][ni].x[e];
  }
}

// Sets S = -inf where key j is not visible from query row i (attention_math.h's visible_keys):
// row0 is the sequence row of the thread's row 0 (tile 0, row g), key0 the key of its column 0.
// The bounds are taken relative to key0 (visible_keys of a sequence whose keys start at key0) and
// computed in every call: the empty volatile asm hides that row0 is the same on each key block,
// so the compiler cannot hoist the 2 kMmaM per-row bounds (64-bit in visible_keys) out of the key
// loop, where they would hold registers through the matrix products (ptxas spilled them).
template <int kMmaM, int kTilesN>
__device__ __forceinline__ void mask_scores(FragC (&s)[kMmaM][kTilesN], int row0, int key0, int len_q,
                                            int len_k, int window_left, int window_right) {
  asm volatile("" : "+r"(row0));
  const int keys_left = len_k - key0;
#pragma unroll
  for (int mi = 0; mi < kMmaM; ++mi)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const KeyRange keys = visible_keys(row0 + 16 * mi + 8 * h, len_q, keys_left, window_left, window_right);
      const int lo = static_cast<int>(keys.lo), hi = static_cast<int>(keys.hi);
#pragma unroll
      for (int ni = 0; ni < kTilesN; ++ni)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int j = 8 * ni + e;  // key - key0
          if (j < lo || j >= hi) s[mi][ni].x[2 * h + e] = -INFINITY;
        }
    }
}

// The running max m (of transformed scores) and the running sum l (this thread's columns only;
// the quad's partial sums are added once, in the epilogue), per thread row.
template <int kRows>
struct SoftmaxRows {
  float m[kRows];
  float l[kRows];
  __device__ __forceinline__ void init() {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      m[r] = -INFINITY;
      l[r] = 0.0f;
    }
  }
};

// rowmax(S) of the thread's rows over the warp's score tile, reduced over the quad (the four
// threads of a row), so every thread of the quad holds the row's value.
template <int kMmaM, int kTilesN>
__device__ __forceinline__ void tile_row_max(const FragC (&s)[kMmaM][kTilesN], float (&m)[2 * kMmaM]) {
#pragma unroll
  for (int mi = 0; mi < kMmaM; ++mi)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float v = -INFINITY;
#pragma unroll
      for (int ni = 0; ni < kTilesN; ++ni) v = fmaxf(v, fmaxf(s[mi][ni].x[2 * h], s[mi][ni].x[2 * h + 1]));
      v = fmaxf(v, __shfl_xor_sync(kFullWarp, v, 1));
      m[2 * mi + h] = fmaxf(v, __shfl_xor_sync(kFullWarp, v, 2));
    }
}

// One online-softmax step over a score tile (FA-2 Algorithm 1, lines 8-10), base 2, given the
// tile's row maxima m_tile (of every key of the block, tile_row_max and the other warps' parts):
//   m_new = max(m, m_tile);  P = exp2(S c - m_new c);  alpha = exp2(m c - m_new c)
//   l = alpha l + rowsum(P); O = alpha O               (c = scale_log2)
// P overwrites S. A row that has seen only masked scores keeps m = -inf; its P and alpha are 0.
// Branch-free on purpose: the caller's P V product then shares one basic block with it, and ptxas
// interleaves the exponentials, the O rescale and the first matrix products (a warp-uniform
// "skip O *= 1" branch measured 1-4% slower, docs/fa2_mma.md).
template <int kMmaM, int kTilesN, int kTilesD>
__device__ __forceinline__ void softmax_update(FragC (&s)[kMmaM][kTilesN], FragC (&o)[kMmaM][kTilesD],
                                               SoftmaxRows<2 * kMmaM>& rows, const float (&m_tile)[2 * kMmaM],
                                               float scale_log2) {
  float alpha[2 * kMmaM];
#pragma unroll
  for (int mi = 0; mi < kMmaM; ++mi)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = 2 * mi + h;
      const float m_new = fmaxf(rows.m[r], m_tile[r]);
      const float m_scaled = m_new == -INFINITY ? 0.0f : m_new * scale_log2;
      alpha[r] = exp2_approx(rows.m[r] * scale_log2 - m_scaled);
      rows.m[r] = m_new;
      float sum = 0.0f;
#pragma unroll
      for (int ni = 0; ni < kTilesN; ++ni)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float pe = exp2_approx(fmaf(s[mi][ni].x[2 * h + e], scale_log2, -m_scaled));
          s[mi][ni].x[2 * h + e] = pe;
          sum += pe;
        }
      rows.l[r] = fmaf(rows.l[r], alpha[r], sum);
    }
#pragma unroll
  for (int mi = 0; mi < kMmaM; ++mi)
#pragma unroll
    for (int dj = 0; dj < kTilesD; ++dj)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mi][dj].x[e] *= alpha[2 * mi + e / 2];
}

// Stores P (the thread's fragments, rounded to T) into a swizzled shared tile of the warp's rows,
// at key columns [key0, key0 + 8 kTilesN): row 16 mi + 8 h + g, columns 8 ni + 2t, 2t + 1.
// Conflict-free: a store's 32 lanes cover 8 rows of one chunk column, which the swizzle spreads
// over the 8 bank groups, and 4 words within each.
template <typename T, class PTile, int kMmaM, int kTilesN>
__device__ __forceinline__ void store_p(uint32_t tile, int key0, const FragC (&p)[kMmaM][kTilesN], int lane) {
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int mi = 0; mi < kMmaM; ++mi)
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int ni = 0; ni < kTilesN; ++ni) {
        const uint32_t addr = tile + PTile::offset(16 * mi + 8 * h + g, key0 / 8 + ni) + 4 * t;
        const uint32_t v = pack_pair<T>(p[mi][ni].x[2 * h], p[mi][ni].x[2 * h + 1]);
        asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory");
      }
}

// l summed over the quad: afterwards every thread of a row holds the row's full sum (the
// softmax keeps per-thread partial sums over its own columns until the end).
template <int kRows>
__device__ __forceinline__ void quad_sum_l(SoftmaxRows<kRows>& rows) {
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    rows.l[r] += __shfl_xor_sync(kFullWarp, rows.l[r], 1);
    rows.l[r] += __shfl_xor_sync(kFullWarp, rows.l[r], 2);
  }
}

// Epilogue: out = O / l (0 for a row that saw no key) and lse = (m c + log2 l) ln 2 (-inf then);
// l must hold the row's full sum (quad_sum_l). out_warp points at the warp's first row and first
// column; rows >= valid_rows (past the sequence) are not written. lse_row0 is the lse of the
// thread's row 0 (tile 0, row g), or nullptr.
// With kStaged and every row start 16-byte aligned, the warp's rows go through shared memory first
// (`staging`: the warp's rows of a swizzled tile nothing reads any more, its columns from chunk
// chunk0): written like P (store_p), read back and stored as whole 16-byte chunks, 8 rows of a
// 128-byte row per warp instruction instead of 8 rows x 16 bytes. Otherwise each thread stores
// its pairs of columns directly.
template <typename T, class Tile, bool kStaged = true, int kMmaM, int kTilesD>
__device__ __forceinline__ void store_output(FragC (&o)[kMmaM][kTilesD], const SoftmaxRows<2 * kMmaM>& rows,
                                             float scale_log2, uint32_t staging, int chunk0, T* out_warp,
                                             int64_t out_row_stride, float* lse_row0, int valid_rows, int lane) {
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int mi = 0; mi < kMmaM; ++mi)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = 2 * mi + h;
      const float l = rows.l[r];
      const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
      for (int dj = 0; dj < kTilesD; ++dj) {
        o[mi][dj].x[2 * h] *= inv_l;
        o[mi][dj].x[2 * h + 1] *= inv_l;
      }
      if (lse_row0 != nullptr && t == 0 && 16 * mi + 8 * h + g < valid_rows) {
        lse_row0[16 * mi + 8 * h] = l > 0.0f ? (rows.m[r] * scale_log2 + log2f(l)) * kLn2 : -INFINITY;
      }
    }
  constexpr int kChunkElems = Tile::kChunkElems;
  const bool aligned = reinterpret_cast<uintptr_t>(out_warp) % 16 == 0 && out_row_stride % kChunkElems == 0;
  if (kStaged && aligned) {
    store_p<T, Tile>(staging, kChunkElems * chunk0, o, lane);
    __syncwarp();  // the warp's rows are in shared memory
    constexpr int kRowChunks = kTilesD;  // one n8 tile of O is one 16-byte chunk of a row
    constexpr int kPerLane = 16 * kMmaM * kRowChunks / 32;
    static_assert(16 * kMmaM * kRowChunks % 32 == 0, "whole chunks per lane");
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int idx = 32 * i + lane, row = idx / kRowChunks, c = idx % kRowChunks;
      uint4 v;
      asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
                   : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                   : "r"(staging + Tile::offset(row, chunk0 + c)));
      if (row < valid_rows) *reinterpret_cast<uint4*>(out_warp + row * out_row_stride + kChunkElems * c) = v;
    }
    return;
  }
#pragma unroll
  for (int mi = 0; mi < kMmaM; ++mi)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = 16 * mi + 8 * h + g;
      if (row >= valid_rows) continue;
      T* out = out_warp + row * out_row_stride + 2 * t;
#pragma unroll
      for (int dj = 0; dj < kTilesD; ++dj) {
        *reinterpret_cast<uint32_t*>(out + 8 * dj) = pack_pair<T>(o[mi][dj].x[2 * h], o[mi][dj].x[2 * h + 1]);
      }
    }
}

}  // namespace sfa::cuda
