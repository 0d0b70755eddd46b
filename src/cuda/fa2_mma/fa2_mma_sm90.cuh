// FlashAttention-2 forward on Hopper's warpgroup matrix products (wgmma, sm_90a): the kernel the
// sm_90a binary runs for head_dim 64, 128 and 256 (with and without a mask) on compute capability
// 9.0, where it is 1.05-1.6x faster than the mma.sync tiles (docs/fa2_mma.md, "Ninth round").
//
// The same algorithm as fa2_mma_kernel.cuh (Dao 2023, Algorithm 1), for one warpgroup:
//   Br = 64 query rows per block (Q_i), Bc = 64 keys per step (K_j, V_j), 128 threads, warp w
//   owns rows 16w..16w+15; S_ij = rS and O_i = rO in registers in mma.sync's C layout, so the
//   score transform, mask and online softmax are mma_attention.cuh's. Two to four blocks per SM:
//   while one block runs its softmax the others' products keep the tensor cores busy.
// Products: S = Q K_j^T is head_dim / 16 wgmma m64n64k16 with Q and K from shared memory; O += P V_j
//   takes P from registers (the S accumulators rounded to 16 bits, FragA's layout) and V from
//   shared memory read transposed, one m64n64k16 per 64 output columns per 16 keys.
// Shared memory: sQ [64, d], sK [64, d], sV [64, d] in WgTile's 128-byte-swizzled panels (96 KB
// at head_dim 256). Pipeline per key block j, from the last down (as fa2_mma's one-tile step):
//   wait K_j, barrier, start V_j -> S = Q K_j^T -> transform, mask (the ragged end, the causal
//   diagonal, a window's edges), online softmax -> wait V_j, barrier, start K_{j-1} -> O += P V_j.
// Each copy overlaps one product; the barriers also free the tile the next copy overwrites (every
// warp has waited for its products before it arrives).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <string>

#include "common/problem.h"
#include "cuda/common/check.cuh"
#include "cuda/common/cp_async.cuh"
#include "cuda/common/mma_attention.cuh"
#include "cuda/common/smem_tile.cuh"
#include "cuda/common/varlen.cuh"
#include "cuda/common/wgmma.cuh"
#include "cuda/cuda_backend.h"
#include "cuda/fa2_mma/fa2_mma_kernel.cuh"

namespace sfa::cuda {

// kCausal: any bounded key range (causal and/or a sliding window), as fa2_mma's. kMinBlocksPerSm:
// the launch bound (blocks per SM the registers must allow; shared memory allows 2 at head_dim
// 256, 4 at 128).
template <typename T_, int kHeadDim_, bool kCausal_, int kMinBlocksPerSm_ = (kHeadDim_ >= 256 ? 2 : kHeadDim_ >= 128 ? 3 : 4)>
struct Fa2WgmmaTraits {
  using T = T_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr bool kCausal = kCausal_;
  static constexpr int kMinBlocksPerSm = kMinBlocksPerSm_;
  // Query rows per head from which a causal mask takes the heaviest query blocks of all heads
  // first (auto_group_heads). Measured (H100, bf16, 64-row blocks, against head after head):
  // head_dim 64 and 128 -20..-25% at 2k, -1..+1% (128) and -7% (64) at 4k, +5% (128) at 8k-16k;
  // head_dim 256 -3% at 2k, +7-9% at 4k-8k.
  static constexpr int64_t kLptMinQueryRows = kHeadDim >= 256 ? 4096 : 8192;
  static constexpr int kBlockM = 64;  // one warpgroup's rows
  static constexpr int kBlockN = 64;
  static constexpr int kThreads = 128;
  static constexpr int kTilesN = kBlockN / 8;    // C fragments of S per warp
  static constexpr int kTilesD = kHeadDim / 8;   // C fragments of O per warp
  static constexpr int kPanels = kHeadDim / 64;  // m64n64 products per 16 keys of P V
  using QTile = WgTile<kBlockM, kHeadDim>;
  using KTile = WgTile<kBlockN, kHeadDim>;
  using VTile = WgTile<kBlockN, kHeadDim>;
  static constexpr int kSmemQ = 0;
  static constexpr int kSmemK = kSmemQ + QTile::kBytes;
  static constexpr int kSmemV = kSmemK + KTile::kBytes;
  // The swizzle needs 1024-byte aligned panels: the kernel rounds the dynamic base up.
  static constexpr int kSmemBytes = kSmemV + VTile::kBytes + 1024;
};

// One key block: S = Q K_j^T (into rS), the score transform and mask, the online softmax
// (P overwrites rS, O is rescaled), then the copy of the next K under the products of P V_j.
template <class Tr, bool kMasked>
__device__ __forceinline__ void fa2_wgmma_step(FragC (&rS)[1][Tr::kTilesN], FragC (&rO)[1][Tr::kTilesD],
                                               SoftmaxRows<2>& rows, uint32_t sQ, uint32_t sK, const ScoreScale& sc, int j, int row0, int col0,
                                               const SequenceView& seq, int window_left, int window_right) {
  using T = typename Tr::T;
  // S = Q K_j^T: k-steps of 16 head_dim columns; the first overwrites the accumulators.
  wgmma_fence();
#pragma unroll
  for (int ks = 0; ks < Tr::kHeadDim / 16; ++ks) {
    wgmma_m64n64k16_ss<T>(rS[0], wgmma_descriptor(sQ + Tr::QTile::k_major_step(ks), 16, 1024),
                          wgmma_descriptor(sK + Tr::KTile::k_major_step(ks), 16, 1024), ks > 0);
  }
  wgmma_commit();
  wgmma_wait<0>();
  wgmma_fence_operands(rS[0]);

  transform_scores(rS, sc);
  if constexpr (kMasked) mask_scores(rS, row0, j * Tr::kBlockN + col0, seq.len_q, seq.len_k, window_left, window_right);
  float m_tile[2];
  tile_row_max(rS, m_tile);
  softmax_update(rS, rO, rows, m_tile, sc.scale_log2);
}

// O += P V_j: 16 keys per k-step, P's A fragment packed from two C tiles of S (mma.cuh). All of P
// is packed before the first product: registers the products read must not change while they run.
template <class Tr>
__device__ __forceinline__ void fa2_wgmma_pv(FragC (&rO)[1][Tr::kTilesD], const FragC (&rP)[1][Tr::kTilesN],
                                             uint32_t sV) {
  using T = typename Tr::T;
  constexpr int kKSteps = Tr::kBlockN / 16;
  FragA a[kKSteps];
#pragma unroll
  for (int kk = 0; kk < kKSteps; ++kk) {
    const FragC& lo = rP[0][2 * kk];
    const FragC& hi = rP[0][2 * kk + 1];
    a[kk] = FragA{{pack_pair<T>(lo.x[0], lo.x[1]), pack_pair<T>(lo.x[2], lo.x[3]), pack_pair<T>(hi.x[0], hi.x[1]),
                   pack_pair<T>(hi.x[2], hi.x[3])}};
  }
  wgmma_fence();  // P was just written and the softmax rescaled O
#pragma unroll
  for (int kk = 0; kk < kKSteps; ++kk)
#pragma unroll
    for (int c = 0; c < Tr::kPanels; ++c) {
      wgmma_m64n64k16_rs_trans_b<T>(&rO[0][8 * c], a[kk],
                                    wgmma_descriptor(sV + c * Tr::VTile::kPanelBytes + kk * 16 * 128,
                                                     Tr::VTile::kPanelBytes, 1024));
    }
  wgmma_commit();
  wgmma_wait<0>();
  wgmma_fence_operands(rO[0]);
}

template <class Tr>
__device__ __forceinline__ void fa2_wgmma_block(const AttentionProblem& p, int group_heads) {
  using T = typename Tr::T;
  extern __shared__ __align__(1024) unsigned char smem[];
  const uint32_t s_base = (smem_address(smem) + 1023u) & ~1023u;
  const uint32_t sQ = s_base + Tr::kSmemQ, sK = s_base + Tr::kSmemK, sV = s_base + Tr::kSmemV;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;

  const BlockCoords bc = block_coords<Tr::kBlockM>(p, blockIdx.x, group_heads);
  const int b = bc.b, h = bc.h, h_kv = h / (p.heads / p.heads_kv), m0 = bc.m0;
  const SequenceView seq = bc.seq;
  if (m0 >= seq.len_q) return;  // the whole block leaves
  const int valid_q = min(Tr::kBlockM, seq.len_q - m0);
  const int window_left = Tr::kCausal ? clamp_window(p.window_left, seq.len_k) : -1;
  const int window_right = Tr::kCausal ? clamp_window(p.window_right, seq.len_q) : -1;
  const KeyBlocks kb = key_blocks<Tr::kBlockN>(m0, m0 + valid_q - 1, seq, window_left, window_right);
  const int row0 = m0 + 16 * warp + lane / 4;  // the thread's row 0 (row g of the warp's tile)
  const int col0 = 2 * (lane % 4);              // and its column 0 in a key block
  const ScoreScale sc = score_scale(p.softmax_scale, p.softcap);

  FragC rO[1][Tr::kTilesD];
  clear(rO);
  SoftmaxRows<2> rows;
  rows.init();

  if (kb.n_max > kb.n_min) {
    const BlockSources<T> g = block_sources<T>(p, bc, h_kv);
    const WgTileLoader<typename Tr::KTile, Tr::kThreads, T> k_loader(g.k, p.k_stride.row, tid);
    const WgTileLoader<typename Tr::VTile, Tr::kThreads, T> v_loader(g.v, p.v_stride.row, tid);
    // Prologue: Q_i and the last key block (ragged: rows past the keys are zero-filled).
    const int last = kb.n_max - 1;
    WgTileLoader<typename Tr::QTile, Tr::kThreads, T>(g.q, p.q_stride.row, tid)
        .template load<true>(sQ, 0, valid_q, p.q_stride.row);
    k_loader.template load<true>(sK, int64_t(last) * Tr::kBlockN, seq.len_k - last * Tr::kBlockN, p.k_stride.row);
    cp_async_commit();

    for (int j = last; j >= kb.n_min; --j) {
      // K_j (and Q) have landed; every warp has finished P V_{j+1}: V's tile is free.
      cp_async_wait<0>();
      fence_proxy_async();
      __syncthreads();
      v_loader.template load<true>(sV, int64_t(j) * Tr::kBlockN, seq.len_k - j * Tr::kBlockN, p.v_stride.row);
      cp_async_commit();

      // Masked: the ragged end, the causal diagonal and a window's left edge (KeyBlocks).
      FragC rS[1][Tr::kTilesN];
      if (j >= kb.unmasked_hi || j < kb.unmasked_lo) {
        fa2_wgmma_step<Tr, true>(rS, rO, rows, sQ, sK, sc, j, row0, col0, seq, window_left, window_right);
      } else {
        fa2_wgmma_step<Tr, false>(rS, rO, rows, sQ, sK, sc, j, row0, col0, seq, window_left, window_right);
      }

      // V_j has landed; every warp's S = Q K_j^T is done: K's tile is free for K_{j-1} (a whole tile).
      cp_async_wait<0>();
      fence_proxy_async();
      __syncthreads();
      if (j > kb.n_min) k_loader.template load<false>(sK, int64_t(j - 1) * Tr::kBlockN, Tr::kBlockN, p.k_stride.row);
      cp_async_commit();

      fa2_wgmma_pv<Tr>(rO, rS, sV);
    }
    cp_async_wait<0>();
  }

  // out = O / l, lse = m + log(l) (0 and -inf for a row that saw no key). Each warp stages its rows
  // in sQ (as a plain swizzled tile) once every warp's last products have read it.
  quad_sum_l(rows);
  __syncthreads();
  T* out_warp = static_cast<T*>(p.out) + b * p.out_stride.batch + (seq.q_offset + m0 + 16 * warp) * p.out_stride.row +
                h * p.out_stride.head;
  float* lse_row0 = p.lse == nullptr ? nullptr
                                     : p.lse + b * p.lse_batch_stride + h * p.lse_head_stride + seq.q_offset + row0;
  using Staging = SmemTile<16, Tr::kHeadDim>;
  store_output<T, Staging>(rO, rows, sc.scale_log2, sQ + warp * Staging::kBytes, 0, out_warp, p.out_stride.row,
                           lse_row0, valid_q - 16 * warp, lane);
}

template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kMinBlocksPerSm)
    fa2_wgmma_kernel(const AttentionProblem p, int group_heads) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  fa2_wgmma_block<Tr>(p, group_heads);
#endif
}

// Launches one instantiation (group_heads 0: auto_group_heads from Tr::kLptMinQueryRows rows).
template <class Tr>
Status launch_fa2_wgmma_tiles(const AttentionProblem& p, const DeviceInfo& info, cudaStream_t stream,
                              int group_heads = 0) {
  int64_t m_blocks = 0, blocks = 0;
  if (Status st = query_block_grid(p, Tr::kBlockM, &m_blocks, &blocks); !st || blocks == 0) return st;
  if (static_cast<size_t>(Tr::kSmemBytes) > info.smem_per_block_optin) {
    return Status(StatusCode::kUnsupported, "fa2_mma (wgmma): needs " + std::to_string(Tr::kSmemBytes) +
                                                " bytes of shared memory per block, the device has " +
                                                std::to_string(info.smem_per_block_optin));
  }
  if (group_heads <= 0) group_heads = auto_group_heads<Tr>(p, info, m_blocks, Tr::kLptMinQueryRows);
  group_heads = std::min(group_heads, p.batch * p.heads);
  auto kernel = fa2_wgmma_kernel<Tr>;
  SFA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Tr::kSmemBytes));
  kernel<<<static_cast<unsigned>(blocks), Tr::kThreads, Tr::kSmemBytes, stream>>>(p, group_heads);
  return check_launch("fa2_wgmma_kernel");
}

template <typename T, int kHeadDim, bool kCausal>
Status run_fa2_wgmma(const AttentionProblem& p, const DeviceInfo& info, cudaStream_t stream) {
  return launch_fa2_wgmma_tiles<Fa2WgmmaTraits<T, kHeadDim, kCausal>>(p, info, stream);
}

}  // namespace sfa::cuda
