// FlashAttention-2, SIMT float32 (Dao 2023, "FlashAttention-2", Algorithm 1).
//
// Paper -> code
//   Q_i  : the kBlockM = Br query rows of this thread block, in sQ for the whole kernel
//   K_j  : the kBlockN = Bc key rows of tile j, in sKV;  V_j : the same rows of V, then in sKV
//   S_ij = Q_i K_j^T        rS (registers), scaled into the log2 domain, masked to -inf
//   m_i, l_i                st[i] (OnlineSoftmax, common/attention_math.h)
//   P_ij = exp(S_ij - m_i)  sP (shared), written by the threads that own the scores
//   O_i  = diag(exp(m_old - m_i)) O_i + P_ij V_j    rO (registers), never normalised in the loop
//   O_i  = diag(l_i)^-1 O_i, L_i = m_i + log(l_i)   once, after the last tile (deferred normalisation)
// What changes from FA-1 (fa1/fa1.cu): the loops are swapped. The K/V loop runs inside one thread
// block that owns a query block, so O, m and l stay on chip for the whole loop and O is scaled by
// 1/l once instead of on every tile; parallelism comes from the query blocks as well as batch x heads.
//
// Grid: one thread block per (query block, head, batch), flattened into blockIdx.x =
// (b * heads + h) * m_blocks + m_block (the largest extent, x, has room for 2^31 - 1 blocks).
// Block: 256 threads, 16 row groups (ty) of 16 lanes (tx): see common/simt_tile.cuh; thread
// (ty, tx) owns query rows ty * kR + i, score columns tx + 16 * j and O columns 64 g + 4 tx + e.
// Shared memory (float32, rows padded by kPad floats against bank conflicts):
//   sQ [Br][head_dim + 4] | sKV [Bc][head_dim + 4] (K_j, then V_j) | sP [Br][Bc + 4]
//   = 52 KB at head_dim 64 (4 blocks per SM), 85 KB at 128, 150 KB at 256.
// Any seqlen: tiles past the sequence are zero-filled and masked; rows past it are not written.
#include "common/attention_math.h"
#include "cuda/common/check.cuh"
#include "cuda/common/simt_tile.cuh"
#include "cuda/launchers.h"

namespace sfa::cuda {
namespace {

using namespace simt;

template <int kD>
struct Fa2Config {
  static constexpr int kBlockM = 64;                        // Br
  static constexpr int kBlockN = 64;                        // Bc
  static constexpr int kR = kBlockM / kRowGroups;           // query rows per thread
  static constexpr int kC = kBlockN / kLanesPerRow;         // score columns per thread
  static constexpr int kGroups = kD / kDColsPerGroup;       // float4 column groups of O per thread
  static constexpr int kPPitch = kBlockN + kPad;
  // Two blocks per SM where shared memory allows (head_dim <= 128): caps registers at 128.
  static constexpr int kMinBlocksPerSm = kD <= 128 ? 2 : 1;
  static size_t smem_bytes(int head_dim) {
    return sizeof(float) * ((kBlockM + kBlockN) * (head_dim + kPad) + kBlockM * kPPitch);
  }
};

template <typename T, int kD>
__global__ void __launch_bounds__(kTileThreads, Fa2Config<kD>::kMinBlocksPerSm)
    fa2_kernel(const AttentionProblem p, const ScoreTransform score, const int m_blocks) {
  using Cfg = Fa2Config<kD>;
  constexpr int kR = Cfg::kR, kC = Cfg::kC, kBlockM = Cfg::kBlockM, kBlockN = Cfg::kBlockN;
  extern __shared__ float4 smem_vec[];
  const int pitch = p.head_dim + kPad;
  float* sQ = reinterpret_cast<float*>(smem_vec);
  float* sKV = sQ + kBlockM * pitch;
  float* sP = sKV + kBlockN * pitch;

  const int m_block = blockIdx.x % m_blocks;
  const int h = (blockIdx.x / m_blocks) % p.heads;
  const int b = blockIdx.x / m_blocks / p.heads;
  const HeadView<T> hv = head_view<T>(p, b, h);
  const int row0 = m_block * kBlockM;
  if (row0 >= hv.len_q) return;  // a short varlen sequence: the whole block leaves, before any barrier
  const int rows = min(kBlockM, hv.len_q - row0);
  const int tid = threadIdx.x, tx = tid % kLanesPerRow, ty = tid / kLanesPerRow;

  // The keys each of my rows sees, and the key tiles that some row of the block sees (the
  // visible ranges only move right as the row grows, so the first and last rows bound them).
  KeyRange range[kR];
#pragma unroll
  for (int i = 0; i < kR; ++i) {
    const int r = row0 + ty * kR + i;
    range[i] = r < hv.len_q ? visible_keys(r, hv.len_q, hv.len_k, p.window_left, p.window_right)
                            : KeyRange{0, 0};
  }
  const KeyRange first = visible_keys(row0, hv.len_q, hv.len_k, p.window_left, p.window_right);
  const KeyRange last = visible_keys(row0 + rows - 1, hv.len_q, hv.len_k, p.window_left, p.window_right);
  const int n_begin = static_cast<int>(first.lo / kBlockN);
  const int n_end = last.hi > first.lo ? static_cast<int>((last.hi + kBlockN - 1) / kBlockN) : n_begin;

  load_tile<T, kBlockM>(sQ, pitch, hv.q + row0 * hv.q_ld, hv.q_ld, rows, p.head_dim, tid);

  OnlineSoftmax st[kR];  // m_i and this thread's share of l_i (the row sum is taken at the end)
  float rO[kR][4 * Cfg::kGroups] = {};
  for (int n_block = n_begin; n_block < n_end; ++n_block) {
    const int key0 = n_block * kBlockN;
    const int keys = min(kBlockN, hv.len_k - key0);
    __syncthreads();  // the previous tile's P V has finished reading sKV and sP
    load_tile<T, kBlockN>(sKV, pitch, hv.k + key0 * hv.k_ld, hv.k_ld, keys, p.head_dim, tid);
    __syncthreads();  // K_j (and, on the first tile, Q_i) is in shared memory

    // S = Q_i K_j^T, as log2-domain scores; masked only on tiles some row does not fully see.
    float rS[kR][kC];
    tile_qk(rS, sQ, sKV, pitch, p.head_dim, ty, tx);
    const bool all_visible = key0 >= last.lo && key0 + kBlockN <= first.hi;
#pragma unroll
    for (int i = 0; i < kR; ++i) {
#pragma unroll
      for (int j = 0; j < kC; ++j) {
        const int key = key0 + tx + kLanesPerRow * j;
        const bool visible = all_visible || (key >= range[i].lo && key < range[i].hi);
        rS[i][j] = visible ? score(rS[i][j]) : -INFINITY;
      }
    }

    // m_new = max(m, rowmax(S)); O = diag(exp2(m - m_new)) O; P = exp2(S - m_new); l += rowsum(P)
#pragma unroll
    for (int i = 0; i < kR; ++i) {
      float tile_max = rS[i][0];
#pragma unroll
      for (int j = 1; j < kC; ++j) tile_max = fmaxf(tile_max, rS[i][j]);
      const float alpha = st[i].rescale(group_max<kLanesPerRow>(tile_max));
#pragma unroll
      for (int c = 0; c < 4 * Cfg::kGroups; ++c) rO[i][c] *= alpha;
#pragma unroll
      for (int j = 0; j < kC; ++j) {
        const float prob = st[i].prob(rS[i][j]);
        st[i].l += prob;
        sP[(ty * kR + i) * Cfg::kPPitch + tx + kLanesPerRow * j] = prob;
      }
    }
    __syncthreads();  // every thread has finished reading K_j, so V_j may replace it; P is complete
    load_tile<T, kBlockN>(sKV, pitch, hv.v + key0 * hv.v_ld, hv.v_ld, keys, p.head_dim, tid);
    __syncthreads();  // V_j is in shared memory

    // O += P V_j
    tile_pv<kR, Cfg::kGroups, kBlockN>(rO, sP, Cfg::kPPitch, sKV, pitch, p.head_dim, ty, tx);
  }

  // Deferred normalisation: O_i = diag(l_i)^-1 O_i and L_i = m_i + log(l_i), once per row.
#pragma unroll
  for (int i = 0; i < kR; ++i) {
    st[i].l = group_sum<kLanesPerRow>(st[i].l);
    const int r = row0 + ty * kR + i;
    if (r >= hv.len_q) continue;
    const float inv_l = st[i].inv_l();
#pragma unroll
    for (int g = 0; g < Cfg::kGroups; ++g) {
      const int col = g * kDColsPerGroup + 4 * tx;
      if (col >= p.head_dim) continue;
      float o[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) o[e] = rO[i][4 * g + e] * inv_l;
      store_vec<4>(hv.out + r * hv.out_ld + col, o);
    }
    if (hv.lse != nullptr && tx == 0) hv.lse[r] = st[i].lse();
  }
}

template <typename T, int kD>
Status launch_typed(const AttentionProblem& p, cudaStream_t stream) {
  using Cfg = Fa2Config<kD>;
  const int m_blocks = (p.seqlen_q + Cfg::kBlockM - 1) / Cfg::kBlockM;
  const int64_t blocks = static_cast<int64_t>(m_blocks) * p.heads * p.batch;
  if (blocks > INT32_MAX) {
    return Status(StatusCode::kUnsupported,
                  "kernel 'fa2': batch * heads * ceil(seqlen_q / 64) = " + std::to_string(blocks) +
                      " thread blocks exceed the grid limit (2^31 - 1)");
  }
  const size_t smem = Cfg::smem_bytes(p.head_dim);
  auto kernel = fa2_kernel<T, kD>;
  SFA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smem)));
  kernel<<<static_cast<unsigned>(blocks), kTileThreads, smem, stream>>>(
      p, make_score_transform(p.softmax_scale, p.softcap), m_blocks);
  return check_launch("fa2_kernel");
}

}  // namespace

Status launch_fa2(const AttentionProblem& p, cudaStream_t stream) {
  return dispatch_dtype(p.dtype, [&](auto type) {
    using T = typename decltype(type)::type;
    return dispatch_head_dim(p.head_dim, [&](auto d) { return launch_typed<T, decltype(d)::value>(p, stream); });
  });
}

}  // namespace sfa::cuda
