// FlashAttention-2 forward on tensor cores (mma.sync m16n8k16, fp16/bf16, float32 accumulate).
//
// Paper notation (Dao 2023, Algorithm 1) -> code:
//   Br = kBlockM query rows per block (Q_i), Bc = kBlockN key rows per iteration (K_j, V_j),
//   S_ij = rS, P_ij = rS after the softmax step, O_i = rO, m_i / l_i = SoftmaxRows.
// Grid: one block per (batch b, head h, query block), all in gridDim.x (never above 65535 in y/z):
//   blockIdx.x = (b * heads + h) * m_blocks + i, query block m_block = m_blocks - 1 - i, so the
//   heaviest causal blocks of each head start first and the light ones fill the tail.
// Block: kWarps warps, warp w owns query rows [w kWarpRows, (w + 1) kWarpRows) of the block.
// Shared memory (dynamic, XOR-swizzled 16-byte chunks, see smem_tile.cuh): sQ [Br, d], sK [Bc, d],
//   sV [Bc, d]. The key loop runs from the last key block down: V_j is copied while S = Q K_j^T
//   runs, K_{j-1} while the softmax and P V_j run (cp.async, one tile of each in flight).
// Masked and unmasked iterations are split: the last key blocks (the ragged end, the causal
// diagonal) and, with a sliding window, the first ones are masked; the blocks in between are not,
// and blocks no query row of the block can see are never visited.
#pragma once

#include <cuda_runtime.h>

#include <climits>

#include "common/attention_math.h"
#include "common/problem.h"
#include "cuda/common/check.cuh"
#include "cuda/common/cp_async.cuh"
#include "cuda/common/mma_attention.cuh"
#include "cuda/common/varlen.cuh"
#include "cuda/cuda_backend.h"
#include "cuda/fa2_mma/fa2_mma_traits.cuh"

namespace sfa::cuda {

// The key blocks a query block visits, [n_min, n_max), and the unmasked run [unmasked_lo,
// unmasked_hi) inside it: every key of those blocks is visible from every row of the query block.
struct KeyBlocks {
  int n_min, n_max, unmasked_lo, unmasked_hi;
};

template <int kBlockN>
__device__ __forceinline__ KeyBlocks key_blocks(int first_row, int last_row, const SequenceView& s,
                                                int window_left, int window_right) {
  // Both ends of visible_keys() grow with the row, so the first and last rows bound the block.
  const KeyRange first = visible_keys(first_row, s.len_q, s.len_k, window_left, window_right);
  const KeyRange last = visible_keys(last_row, s.len_q, s.len_k, window_left, window_right);
  KeyBlocks kb;
  kb.n_min = static_cast<int>(first.lo / kBlockN);
  kb.n_max = last.hi > first.lo ? static_cast<int>((last.hi + kBlockN - 1) / kBlockN) : kb.n_min;
  const int64_t common_lo = last.lo, common_hi = first.hi > 0 ? first.hi : 0;
  kb.unmasked_hi = max(kb.n_min, min(kb.n_max, static_cast<int>(common_hi / kBlockN)));
  kb.unmasked_lo = max(kb.n_min, min(kb.unmasked_hi, static_cast<int>((common_lo + kBlockN - 1) / kBlockN)));
  return kb;
}

// Per-block state of the key loop: where the tiles are, and the warp's registers.
template <class Tr>
struct Fa2MmaBlock {
  using T = typename Tr::T;
  TileLoader<typename Tr::KTile, Tr::kThreads, T> k_loader;
  TileLoader<typename Tr::VTile, Tr::kThreads, T> v_loader;
  uint32_t sK, sV;
  LdmatrixAddress<typename Tr::QTile> q_addr;
  LdmatrixAddress<typename Tr::KTile> k_addr;
  LdmatrixAddress<typename Tr::VTile> v_addr;
  int len_q, len_k, row0, n_min;
  int window_left, window_right;  // clamped to int: -1 or a bound that still matters
  FragC rO[Tr::kMmaM][Tr::kTilesD];
  SoftmaxRows<Tr::kRowsPerThread> rows;

  // Strides and scales are read from the kernel parameters `p` (constant memory) at each use
  // rather than held in registers, which O and S fill.
  // kGuard: the tile may hold rows past len_k (only the last key block does).
  template <bool kGuard>
  __device__ __forceinline__ void load_k(int n, const AttentionProblem& p) {
    k_loader.template load<kGuard>(sK, static_cast<int64_t>(n) * Tr::kBlockN, len_k - n * Tr::kBlockN, p.k_stride.row);
    cp_async_commit();
  }
  template <bool kGuard>
  __device__ __forceinline__ void load_v(int n, const AttentionProblem& p) {
    v_loader.template load<kGuard>(sV, static_cast<int64_t>(n) * Tr::kBlockN, len_k - n * Tr::kBlockN, p.v_stride.row);
    cp_async_commit();
  }

  // One iteration of the key loop over key block n (Algorithm 1, lines 6-10).
  template <bool kMasked>
  __device__ __forceinline__ void step(int n, const AttentionProblem& p) {
    const ScoreScale scale = score_scale(p.softmax_scale, p.softcap);
    FragC rS[Tr::kMmaM][Tr::kTilesN];
    clear(rS);
    cp_async_wait<0>();
    __syncthreads();  // K_n (and Q) are in shared memory; every warp is done reading V_{n+1}
    load_v<kMasked>(n, p);  // V_n streams in while the first product runs

    // S = Q K_n^T, then the score transform (scale sign / softcap) and the mask
    gemm_qk<T, Tr::kHeadDim>(rS, q_addr, k_addr);
    transform_scores(rS, scale);
    if constexpr (kMasked) {
      mask_scores(rS, row0, n * Tr::kBlockN + 2 * (threadIdx.x % 4), len_q, len_k, window_left, window_right);
    }

    cp_async_wait<0>();
    __syncthreads();  // V_n is in shared memory; every warp is done reading K_n
    if (n > n_min) load_k<false>(n - 1, p);  // K_{n-1} streams in during the softmax and the second product

    // m_new = max(m, rowmax(S)); P = exp2(S c - m_new c); l = alpha l + rowsum(P); O = alpha O
    online_softmax(rS, rO, rows, scale.scale_log2);
    // O = O + P V_n
    gemm_pv<T, Tr::kHeadDim>(rO, rS, v_addr);
  }
};

// A window bound as int: -1 (unbounded) also when the bound can never cut a row's keys
// (window_left >= len_k, window_right >= len_q), so every value left fits the int arithmetic.
__device__ __forceinline__ int clamp_window(int64_t w, int limit) {
  return (w < 0 || w >= limit) ? -1 : static_cast<int>(w);
}

template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kMinBlocksPerSm) fa2_mma_kernel(const AttentionProblem p) {
  using T = typename Tr::T;
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;

  // Which query block: see the header comment for the order.
  const int m_blocks = (p.seqlen_q + Tr::kBlockM - 1) / Tr::kBlockM;
  const int bh = blockIdx.x / m_blocks;
  const int i_block = static_cast<int>(blockIdx.x % m_blocks);
  const int m_block = Tr::kHeavyFirst ? m_blocks - 1 - i_block : i_block;
  const int b = bh / p.heads, h = bh % p.heads, h_kv = h / (p.heads / p.heads_kv);
  const SequenceView seq = sequence_view(p, b);
  const int m0 = m_block * Tr::kBlockM;
  if (m0 >= seq.len_q) return;
  const int valid_q = min(Tr::kBlockM, seq.len_q - m0);

  Fa2MmaBlock<Tr> blk;
  blk.len_q = seq.len_q;
  blk.len_k = seq.len_k;
  blk.window_left = Tr::kCausal ? clamp_window(p.window_left, seq.len_k) : -1;
  blk.window_right = Tr::kCausal ? clamp_window(p.window_right, seq.len_q) : -1;
  const KeyBlocks kb = key_blocks<Tr::kBlockN>(m0, m0 + valid_q - 1, seq, blk.window_left, blk.window_right);
  const int warp_row = warp * Tr::kWarpRows;
  blk.row0 = m0 + warp_row + lane / 4;  // sequence row of the thread's first row
  clear(blk.rO);
  blk.rows.init();

  if (kb.n_max > kb.n_min) {
    const T* gQ = static_cast<const T*>(p.q) + b * p.q_stride.batch + (seq.q_offset + m0) * p.q_stride.row +
                  h * p.q_stride.head;
    const T* gK = static_cast<const T*>(p.k) + b * p.k_stride.batch + seq.k_offset * p.k_stride.row +
                  h_kv * p.k_stride.head;
    const T* gV = static_cast<const T*>(p.v) + b * p.v_stride.batch + seq.k_offset * p.v_stride.row +
                  h_kv * p.v_stride.head;
    const uint32_t sQ = smem_address(smem) + Tr::kSmemQ;
    blk.sK = smem_address(smem) + Tr::kSmemK;
    blk.sV = smem_address(smem) + Tr::kSmemV;
    blk.k_loader = {gK, p.k_stride.row, tid};
    blk.v_loader = {gV, p.v_stride.row, tid};
    // ldmatrix lane roles (mma.cuh): A rows l % 16, chunk l / 16; K rows l % 8 + 8 (l / 16),
    // chunk (l / 8) % 2; V (transposed) rows l % 8 + 8 ((l / 8) % 2), chunk l / 16.
    blk.q_addr = {sQ, warp_row + lane % 16, lane / 16};
    blk.k_addr = {blk.sK, lane % 8 + 8 * (lane / 16), (lane / 8) % 2};
    blk.v_addr = {blk.sV, lane % 8 + 8 * ((lane / 8) % 2), lane / 16};
    blk.n_min = kb.n_min;

    // Prologue: Q_i and the last key block K_{n_max-1}.
    TileLoader<typename Tr::QTile, Tr::kThreads, T>(gQ, p.q_stride.row, tid)
        .template load<true>(sQ, 0, valid_q, p.q_stride.row);
    blk.template load_k<true>(kb.n_max - 1, p);
    int n = kb.n_max - 1;
    for (; n >= kb.unmasked_hi; --n) blk.template step<true>(n, p);  // ragged end / diagonal
    for (; n >= kb.unmasked_lo; --n) blk.template step<false>(n, p);
    if constexpr (Tr::kCausal) {
      for (; n >= kb.n_min; --n) blk.template step<true>(n, p);  // the left edge of a sliding window
    }
  }

  // out = O / l, lse = m + log(l); a row with no visible key gets 0 and -inf.
  T* out_row0 = static_cast<T*>(p.out) + b * p.out_stride.batch + (seq.q_offset + blk.row0) * p.out_stride.row +
                h * p.out_stride.head + 2 * (lane % 4);
  float* lse_row0 = p.lse == nullptr ? nullptr
                                     : p.lse + b * p.lse_batch_stride + h * p.lse_head_stride +
                                           seq.q_offset + blk.row0;
  store_output<T>(blk.rO, blk.rows, score_scale(p.softmax_scale, p.softcap).scale_log2, out_row0, p.out_stride.row, lse_row0,
                  seq.len_q - blk.row0, lane);
}

// Launches one instantiation: grid, dynamic shared memory above 48 KB, launch check.
template <class Tr>
Status launch_fa2_mma_tiles(const AttentionProblem& p, const DeviceInfo& info, cudaStream_t stream) {
  const int64_t m_blocks = (static_cast<int64_t>(p.seqlen_q) + Tr::kBlockM - 1) / Tr::kBlockM;
  const int64_t blocks = m_blocks * p.batch * p.heads;
  if (blocks == 0) return Status::ok();
  if (blocks > INT_MAX) {
    return Status(StatusCode::kUnsupported, "fa2_mma: batch * heads * query blocks = " +
                                                std::to_string(blocks) + " exceeds the grid limit");
  }
  if (static_cast<size_t>(Tr::kSmemBytes) > info.smem_per_block_optin) {
    return Status(StatusCode::kUnsupported,
                  "fa2_mma: head_dim " + std::to_string(Tr::kHeadDim) + " needs " +
                      std::to_string(Tr::kSmemBytes) + " bytes of shared memory per block, the device has " +
                      std::to_string(info.smem_per_block_optin));
  }
  auto kernel = fa2_mma_kernel<Tr>;
  SFA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Tr::kSmemBytes));
  kernel<<<static_cast<unsigned>(blocks), Tr::kThreads, Tr::kSmemBytes, stream>>>(p);
  return check_launch("fa2_mma_kernel");
}

// The production instantiation of (dtype, head_dim, causal): tiles from fa2_mma_tile().
template <typename T, int kHeadDim, bool kCausal>
Status run_fa2_mma(const AttentionProblem& p, const DeviceInfo& info, cudaStream_t stream) {
  return launch_fa2_mma_tiles<Fa2MmaTraits<T, kHeadDim, kCausal>>(p, info, stream);
}

}  // namespace sfa::cuda
