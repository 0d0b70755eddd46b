// Shared-memory tiles for the SIMT FlashAttention kernels (fa1, fa2): the (batch, head) view of a
// problem, the global -> shared tile copy, and the two tile products S = Q K^T and O += P V.
//
// Thread geometry (256 threads): thread tid = ty * kLanesPerRow + tx owns kR consecutive tile
// rows ty * kR + i (i < kR) and
//   - in S: kC columns tx + kLanesPerRow * j (j < kC), so a row's scores sit in one half-warp
//     and its max / sum are 4 shuffles;
//   - in O: head-dim columns g * kDColsPerGroup + 4 * tx + e (e < 4), one float4 per group g.
// Shared tiles are float32, row-major, with a row pitch of head_dim + kPad floats: the pad (4
// floats) shifts consecutive rows by 4 banks, so the eight 16-byte reads of a quarter-warp that
// touch eight different rows (sK in tile_qk) land in eight different bank quads.
#pragma once

#include "common/attention_math.h"
#include "common/problem.h"
#include "cuda/common/simt.cuh"

namespace sfa::cuda::simt {

constexpr int kTileThreads = 256;
constexpr int kLanesPerRow = 16;                              // threads sharing a tile row
constexpr int kRowGroups = kTileThreads / kLanesPerRow;      // 16 row groups (ty)
constexpr int kPad = 4;                                       // floats of padding per shared row
constexpr int kDColsPerGroup = 4 * kLanesPerRow;              // 64 head-dim columns per O group

// One (batch, head)'s slice of an attention problem. Varlen offsets are checked here: an offset
// or length out of bounds gives a zero-length sequence (never an out-of-bounds access).
template <typename T>
struct HeadView {
  const T* q;   // row i at q + i * q_ld
  const T* k;   // row j at k + j * k_ld
  const T* v;
  T* out;
  float* lse;   // lse of row i at lse[i]; nullptr when not requested
  int64_t q_ld, k_ld, v_ld, out_ld;
  int len_q, len_k;
  int64_t packed_row0;  // row of query 0 among all rows: b * seqlen_q (dense) or cu_seqlens_q[b]
};

__device__ __forceinline__ bool checked_span(const int32_t* cu, int b, int64_t total, int max_len,
                                             int64_t* start, int* len) {
  const int64_t s = cu[b], e = cu[b + 1];
  const bool ok = 0 <= s && s <= e && e <= total && e - s <= max_len;
  *start = ok ? s : 0;
  *len = ok ? static_cast<int>(e - s) : 0;
  return ok;
}

template <typename T>
__device__ __forceinline__ HeadView<T> head_view(const AttentionProblem& p, int b, int h) {
  int64_t q0 = 0, k0 = 0;
  int len_q = p.seqlen_q, len_k = p.seqlen_k;
  if (p.cu_seqlens_q != nullptr) {
    checked_span(p.cu_seqlens_q, b, p.total_q, p.seqlen_q, &q0, &len_q);
    checked_span(p.cu_seqlens_k, b, p.total_k, p.seqlen_k, &k0, &len_k);
  }
  const int h_kv = h / (p.heads / p.heads_kv);
  HeadView<T> hv;
  hv.q = static_cast<const T*>(p.q) + b * p.q_stride.batch + q0 * p.q_stride.row + h * p.q_stride.head;
  hv.k = static_cast<const T*>(p.k) + b * p.k_stride.batch + k0 * p.k_stride.row + h_kv * p.k_stride.head;
  hv.v = static_cast<const T*>(p.v) + b * p.v_stride.batch + k0 * p.v_stride.row + h_kv * p.v_stride.head;
  hv.out = static_cast<T*>(p.out) + b * p.out_stride.batch + q0 * p.out_stride.row + h * p.out_stride.head;
  hv.lse = p.lse == nullptr ? nullptr : p.lse + b * p.lse_batch_stride + h * p.lse_head_stride + q0;
  hv.q_ld = p.q_stride.row, hv.k_ld = p.k_stride.row, hv.v_ld = p.v_stride.row;
  hv.out_ld = p.out_stride.row;
  hv.len_q = len_q, hv.len_k = len_k;
  hv.packed_row0 = p.cu_seqlens_q != nullptr ? q0 : static_cast<int64_t>(b) * p.seqlen_q;
  return hv;
}

// Copies rows [0, kRows) x columns [0, head_dim) of a strided matrix g (row stride ld) into the
// float tile s (row pitch `pitch`), converting to float. Rows at or past `rows` become zeros, so
// keys past the sequence contribute exact zeros to P V. Each thread moves 16-byte vectors,
// consecutive threads consecutive vectors of a row (coalesced); kBatch loads are issued before
// the first shared store so that several are in flight per thread.
template <typename T, int kRows>
__device__ __forceinline__ void load_tile(float* s, int pitch, const T* __restrict__ g, int64_t ld,
                                          int rows, int head_dim, int tid) {
  constexpr int kE = kVecElems<T>;
  constexpr int kBatch = 4;
  const int vecs_per_row = head_dim / kE;
  const int total = kRows * vecs_per_row;
  for (int first = tid; first < total; first += kBatch * kTileThreads) {
    float r[kBatch][kE];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int vec = first + u * kTileThreads;
      const int row = vec / vecs_per_row;
      const int col = (vec - row * vecs_per_row) * kE;
      if (vec < total && row < rows) {
        load_vec(g + row * ld + col, r[u]);
      } else {
#pragma unroll
        for (int e = 0; e < kE; ++e) r[u][e] = 0.0f;
      }
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int vec = first + u * kTileThreads;
      if (vec >= total) break;
      const int row = vec / vecs_per_row;
      float* dst = s + row * pitch + (vec - row * vecs_per_row) * kE;
      const float4 lo = make_float4(r[u][0], r[u][1], r[u][2], r[u][3]);
      if constexpr (kE == 4) {
        *reinterpret_cast<float4*>(dst) = lo;
      } else {
        // Eight floats per thread: lanes 4..7 of each quarter-warp store their upper half first,
        // so each of the two 16-byte stores of a quarter-warp covers all 32 banks once.
        const float4 hi = make_float4(r[u][4], r[u][5], r[u][6], r[u][7]);
        const bool swap = (tid >> 2) & 1;
        *reinterpret_cast<float4*>(dst + (swap ? 4 : 0)) = swap ? hi : lo;
        *reinterpret_cast<float4*>(dst + (swap ? 0 : 4)) = swap ? lo : hi;
      }
    }
  }
}

// S = Q K^T on a tile: rS[i][j] = sum_d sQ[ty*kR + i][d] * sK[tx + kLanesPerRow*j][d].
// Per step of 4 along d a thread reads kR + kC float4 (the sQ reads are half-warp broadcasts).
template <int kR, int kC>
__device__ __forceinline__ void tile_qk(float (&rS)[kR][kC], const float* sQ, const float* sK,
                                        int pitch, int head_dim, int ty, int tx) {
#pragma unroll
  for (int i = 0; i < kR; ++i) {
#pragma unroll
    for (int j = 0; j < kC; ++j) rS[i][j] = 0.0f;
  }
  for (int d = 0; d < head_dim; d += 4) {
    float4 q[kR], k[kC];
#pragma unroll
    for (int i = 0; i < kR; ++i) q[i] = *reinterpret_cast<const float4*>(sQ + (ty * kR + i) * pitch + d);
#pragma unroll
    for (int j = 0; j < kC; ++j) {
      k[j] = *reinterpret_cast<const float4*>(sK + (tx + kLanesPerRow * j) * pitch + d);
    }
#pragma unroll
    for (int i = 0; i < kR; ++i) {
#pragma unroll
      for (int j = 0; j < kC; ++j) {
        rS[i][j] = fmaf(q[i].x, k[j].x, rS[i][j]);
        rS[i][j] = fmaf(q[i].y, k[j].y, rS[i][j]);
        rS[i][j] = fmaf(q[i].z, k[j].z, rS[i][j]);
        rS[i][j] = fmaf(q[i].w, k[j].w, rS[i][j]);
      }
    }
  }
}

// O += P V on a tile: rO[i][4g + e] += sum_c sP[ty*kR + i][c] * sV[c][g*kDColsPerGroup + 4*tx + e]
// over the kBlockN keys of the tile (zero rows of sV and zero columns of sP past the keys add 0).
// Groups past head_dim are skipped. The sP reads are half-warp broadcasts, the sV reads 16
// consecutive float4 per half-warp.
template <int kR, int kGroups, int kBlockN>
__device__ __forceinline__ void tile_pv(float (&rO)[kR][4 * kGroups], const float* sP, int p_pitch,
                                        const float* sV, int pitch, int head_dim, int ty, int tx) {
#pragma unroll 1
  for (int c = 0; c < kBlockN; c += 4) {
    float p[kR][4];
#pragma unroll
    for (int i = 0; i < kR; ++i) {
      const float4 v = *reinterpret_cast<const float4*>(sP + (ty * kR + i) * p_pitch + c);
      p[i][0] = v.x, p[i][1] = v.y, p[i][2] = v.z, p[i][3] = v.w;
    }
#pragma unroll
    for (int cc = 0; cc < 4; ++cc) {
#pragma unroll
      for (int g = 0; g < kGroups; ++g) {
        const int col = g * kDColsPerGroup + 4 * tx;
        if (col >= head_dim) continue;
        const float4 v = *reinterpret_cast<const float4*>(sV + (c + cc) * pitch + col);
#pragma unroll
        for (int i = 0; i < kR; ++i) {
          rO[i][4 * g + 0] = fmaf(p[i][cc], v.x, rO[i][4 * g + 0]);
          rO[i][4 * g + 1] = fmaf(p[i][cc], v.y, rO[i][4 * g + 1]);
          rO[i][4 * g + 2] = fmaf(p[i][cc], v.z, rO[i][4 * g + 2]);
          rO[i][4 * g + 3] = fmaf(p[i][cc], v.w, rO[i][4 * g + 3]);
        }
      }
    }
  }
}

// Scores in the log2 domain: s = log2(e) * softcap(scale * q.k). Masked scores are -inf.
struct ScoreTransform {
  float scale_log2;  // scale * log2(e), used when softcap is off
  float scale;
  float softcap;
  __device__ __forceinline__ float operator()(float dot) const {
    return softcap > 0.0f ? apply_softcap(dot * scale, softcap) * kLog2e : dot * scale_log2;
  }
};

inline ScoreTransform make_score_transform(float scale, float softcap) {
  return ScoreTransform{scale * kLog2e, scale, softcap};
}

}  // namespace sfa::cuda::simt
