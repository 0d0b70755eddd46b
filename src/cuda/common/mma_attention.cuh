// Warp-level steps of attention on mma.sync tiles: the two matrix products from swizzled shared
// memory, score transforms, the mask, the online softmax and the output epilogue.
//
// A warp owns kMmaM tiles of 16 query rows. Its scores S (16 x 8 per FragC) and its output
// accumulator O stay in registers for the whole key loop; P = exp2(...) overwrites S in place and
// is fed to P V as the A operand without a trip through shared memory (mma.cuh explains why the
// layouts agree). Each thread holds 2 * kMmaM rows: row g of tile mi is its row 2 mi, row g + 8
// is row 2 mi + 1 (g = lane / 4); the four threads of a quad share a row and reduce with shuffles.
#pragma once

#include <cmath>

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

// S += Q K^T for the warp's rows: Q [16 kMmaM, kHeadDim] and K [8 kTilesN, kHeadDim] in shared
// memory, k-loop over head_dim in steps of 16. Each ldmatrix_x4 of K gives two n8 tiles.
template <typename T, int kHeadDim, int kMmaM, int kTilesN, class QA, class KA>
__device__ __forceinline__ void gemm_qk(FragC (&s)[kMmaM][kTilesN], const QA& q_addr, const KA& k_addr) {
#pragma unroll
  for (int ks = 0; ks < kHeadDim / 16; ++ks) {
    FragA a[kMmaM];
#pragma unroll
    for (int mi = 0; mi < kMmaM; ++mi) ldmatrix_x4(a[mi].x, q_addr.at(16 * mi, 2 * ks));
#pragma unroll
    for (int nj = 0; nj < kTilesN / 2; ++nj) {
      uint32_t r[4];
      ldmatrix_x4(r, k_addr.at(16 * nj, 2 * ks));
      const FragB b0{{r[0], r[1]}}, b1{{r[2], r[3]}};
#pragma unroll
      for (int mi = 0; mi < kMmaM; ++mi) {
        mma_m16n8k16<T>(s[mi][2 * nj], a[mi], b0);
        mma_m16n8k16<T>(s[mi][2 * nj + 1], a[mi], b1);
      }
    }
  }
}

// O += P V: P [16 kMmaM, 8 kTilesN] from registers (rounded to T), V [8 kTilesN, kHeadDim] in shared
// memory read transposed by ldmatrix.trans, k-loop over the key block in steps of 16.
template <typename T, int kHeadDim, int kMmaM, int kTilesN, int kTilesD, class VA>
__device__ __forceinline__ void gemm_pv(FragC (&o)[kMmaM][kTilesD], const FragC (&p)[kMmaM][kTilesN],
                                        const VA& v_addr) {
#pragma unroll
  for (int kk = 0; kk < kTilesN / 2; ++kk) {
    FragA a[kMmaM];
#pragma unroll
    for (int mi = 0; mi < kMmaM; ++mi) {
      const FragC& lo = p[mi][2 * kk];
      const FragC& hi = p[mi][2 * kk + 1];
      a[mi] = FragA{{pack_pair<T>(lo.x[0], lo.x[1]), pack_pair<T>(lo.x[2], lo.x[3]),
                     pack_pair<T>(hi.x[0], hi.x[1]), pack_pair<T>(hi.x[2], hi.x[3])}};
    }
#pragma unroll
    for (int dj = 0; dj < kHeadDim / 16; ++dj) {
      uint32_t r[4];
      ldmatrix_x4_trans(r, v_addr.at(16 * kk, 2 * dj));
      const FragB b0{{r[0], r[1]}}, b1{{r[2], r[3]}};
#pragma unroll
      for (int mi = 0; mi < kMmaM; ++mi) {
        mma_m16n8k16<T>(o[mi][2 * dj], a[mi], b0);
        mma_m16n8k16<T>(o[mi][2 * dj + 1], a[mi], b1);
      }
    }
  }
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
template <int kMmaM, int kTilesN>
__device__ __forceinline__ void mask_scores(FragC (&s)[kMmaM][kTilesN], int row0, int key0, int len_q,
                                            int len_k, int window_left, int window_right) {
#pragma unroll
  for (int mi = 0; mi < kMmaM; ++mi)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const KeyRange keys = visible_keys(row0 + 16 * mi + 8 * h, len_q, len_k, window_left, window_right);
      const int lo = static_cast<int>(keys.lo) - key0, hi = static_cast<int>(keys.hi) - key0;
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

// One online-softmax step over a score tile (FA-2 Algorithm 1, lines 8-10), base 2:
//   m_new = max(m, rowmax(S));  P = exp2(S c - m_new c);  alpha = exp2(m c - m_new c)
//   l = alpha l + rowsum(P);    O = alpha O               (c = scale_log2)
// P overwrites S. A row that has seen only masked scores keeps m = -inf; its P and alpha are 0.
template <int kMmaM, int kTilesN, int kTilesD>
__device__ __forceinline__ void online_softmax(FragC (&s)[kMmaM][kTilesN], FragC (&o)[kMmaM][kTilesD],
                                               SoftmaxRows<2 * kMmaM>& rows, float scale_log2) {
#pragma unroll
  for (int mi = 0; mi < kMmaM; ++mi)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = 2 * mi + h;
      float m_new = rows.m[r];
#pragma unroll
      for (int ni = 0; ni < kTilesN; ++ni)
        m_new = fmaxf(m_new, fmaxf(s[mi][ni].x[2 * h], s[mi][ni].x[2 * h + 1]));
      m_new = fmaxf(m_new, __shfl_xor_sync(kFullWarp, m_new, 1));
      m_new = fmaxf(m_new, __shfl_xor_sync(kFullWarp, m_new, 2));
      const float m_scaled = m_new == -INFINITY ? 0.0f : m_new * scale_log2;
      const float alpha = exp2_approx(rows.m[r] * scale_log2 - m_scaled);
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
      rows.l[r] = fmaf(rows.l[r], alpha, sum);
#pragma unroll
      for (int dj = 0; dj < kTilesD; ++dj) {
        o[mi][dj].x[2 * h] *= alpha;
        o[mi][dj].x[2 * h + 1] *= alpha;
      }
    }
}

// Epilogue: out = O / l (0 for a row that saw no key) and lse = (m c + log2 l) ln 2 (-inf then).
// out_row0 points at the thread's row 0 (tile 0, row g), column 2t; rows >= valid_rows (past
// the sequence) are not written. lse_row0 is the lse of that row, or nullptr.
template <typename T, int kMmaM, int kTilesD>
__device__ __forceinline__ void store_output(const FragC (&o)[kMmaM][kTilesD],
                                             const SoftmaxRows<2 * kMmaM>& rows, float scale_log2,
                                             T* out_row0, int64_t out_row_stride, float* lse_row0,
                                             int valid_rows, int lane) {
#pragma unroll
  for (int mi = 0; mi < kMmaM; ++mi)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = 2 * mi + h;
      float l = rows.l[r];
      l += __shfl_xor_sync(kFullWarp, l, 1);
      l += __shfl_xor_sync(kFullWarp, l, 2);
      const int row = 16 * mi + 8 * h;
      if (row >= valid_rows) continue;
      const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
      T* out = out_row0 + row * out_row_stride;
#pragma unroll
      for (int dj = 0; dj < kTilesD; ++dj) {
        *reinterpret_cast<uint32_t*>(out + 8 * dj) =
            pack_pair<T>(o[mi][dj].x[2 * h] * inv_l, o[mi][dj].x[2 * h + 1] * inv_l);
      }
      if (lse_row0 != nullptr && lane % 4 == 0) {
        lse_row0[row] = l > 0.0f ? (rows.m[r] * scale_log2 + log2f(l)) * kLn2 : -INFINITY;
      }
    }
}

}  // namespace sfa::cuda
